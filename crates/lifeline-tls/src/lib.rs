//! TLS for Lifeline, with rustls and its `ring` provider (no OpenSSL).
//!
//! - [`server_config`]: what `lifeline serve --tls-cert FILE --tls-key FILE` presents.
//! - [`client_config`]: what the endpoint agent (WSS) and the command line (HTTPS) trust: the
//!   system's roots, plus the CA certificates of a `--ca-cert FILE` (a site's own CA). There is
//!   no way to turn verification off.
//! - [`explain`]: a certificate error in words that say what to do.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Every certificate in a PEM file.
fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read the certificate file {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        bail!(
            "{} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certs)
}

/// The service's TLS settings: its certificate chain (leaf first) and private key, both PEM.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read a private key from {} ({e})", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "the certificate {} and the key do not make a usable pair",
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a client of the service trusts: the system's root certificates, and those of `ca`.
pub fn client_config(ca: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: the ones that load still count.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(ca) = ca {
        for cert in certificates(ca)? {
            roots.add(cert).with_context(|| {
                format!("{} holds a certificate that is not a CA", ca.display())
            })?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connection error in words a user can act on, when it is about the service's certificate.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    untrusted(error).map(|why| {
        format!(
            "the service's TLS certificate is not trusted ({why:?}): if a CA of your own signed \
             it, pass that CA's certificate with --ca-cert FILE"
        )
    })
}

/// The certificate error somewhere in `error`'s chain. An I/O error's `source` skips the error
/// it wraps, so wrapped errors are searched too.
fn untrusted<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::CertificateError> {
    if let Some(rustls::Error::InvalidCertificate(why)) = error.downcast_ref::<rustls::Error>() {
        return Some(why);
    }
    let wrapped = error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| untrusted(inner));
    wrapped.or_else(|| error.source().and_then(untrusted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_certificates_are_named() {
        let dir = std::env::temp_dir().join(format!("lifeline-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = client_config(Some(&empty)).expect_err("no certificate");
        assert!(
            format!("{err:#}").contains("holds no certificate"),
            "{err:#}"
        );
        let err = server_config(&dir.join("missing.pem"), &empty).expect_err("missing");
        assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");
        assert!(client_config(None).is_ok());
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
