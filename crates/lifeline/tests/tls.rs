//! HTTPS and WSS: `lifeline serve --tls-cert/--tls-key`, an endpoint agent and the command line
//! trusting a CA of the site's own (`--ca-cert`), and clear refusals when the CA is wrong.
//! Certificates are made at run time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{BIN, PATIENCE, eventually};
use lifeline_client::Client;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A CA and a certificate it signed for localhost and 127.0.0.1, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path, name: &str) -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("certificate");
    let pki = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pki.ca, ca.pem()).expect("write");
    std::fs::write(&pki.cert, leaf.pem()).expect("write");
    std::fs::write(&pki.key, key.serialize_pem()).expect("write");
    pki
}

/// `lifeline serve` over TLS; returns it and its https:// URL.
async fn serve_tls(dir: &Path, pki: &Pki) -> (Child, String) {
    let flags = [
        "--tls-cert".as_ref(),
        pki.cert.as_os_str(),
        "--tls-key".as_ref(),
        pki.key.as_os_str(),
    ];
    common::start_serve_with(dir, "127.0.0.1:0", "2", &flags).await
}

fn agent(dir: &Path, url: &str, token: &str, ca: &Path) -> Child {
    std::fs::create_dir_all(dir).expect("dir");
    let token_file = dir.join("endpoint.token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token");
    Command::new(BIN)
        .args(["endpoint", "start", "--service", url, "--token-file"])
        .arg(&token_file)
        .arg("--dir")
        .arg(dir)
        .arg("--ca-cert")
        .arg(ca)
        .env("LIFELINE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the agent starts")
}

async fn cli(args: &[&str], url: &str, token: &str, home: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--url", url, "--token", token])
        .env("HOME", home)
        .env_remove("LIFELINE_CA_CERT")
        .output()
        .await
        .expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn an_endpoint_and_the_command_line_over_tls_trust_only_the_right_ca() {
    let tmp = tempfile::tempdir().expect("dir");
    let site = pki(tmp.path(), "site");
    let stranger = pki(tmp.path(), "stranger");
    let (_serve, url) = serve_tls(tmp.path(), &site).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let token = std::fs::read_to_string(tmp.path().join("data/token"))
        .expect("token")
        .trim()
        .to_owned();
    let api = Client::with_ca_cert(&url, &token, &site.ca).expect("client");
    let registered = api.register_endpoint("secure").await.expect("register");
    let ep = registered.endpoint_id;

    let _agent = agent(&tmp.path().join("agent"), &url, &registered.token, &site.ca);
    let _online = eventually(
        "the agent to connect over WSS",
        || api.endpoint(ep),
        |e| e.as_ref().is_ok_and(|e| e.online),
    )
    .await;

    let ca = site.ca.display().to_string();
    let out = cli(
        &[
            "submit",
            "--shell",
            "echo over tls",
            "--endpoint",
            "secure",
            "--ca-cert",
            &ca,
        ],
        &url,
        &token,
        tmp.path(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    let out = cli(&["result", &id, "--ca-cert", &ca], &url, &token, tmp.path()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("over tls"),
        "{}",
        text(&out.stdout)
    );

    // Another CA, or none (the system's roots do not hold this one): refused, saying what to do.
    let wrong = stranger.ca.display().to_string();
    for extra in [vec!["--ca-cert", wrong.as_str()], vec![]] {
        let mut args = vec!["endpoint", "list"];
        args.extend(extra);
        let out = cli(&args, &url, &token, tmp.path()).await;
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("certificate is not trusted") && stderr.contains("--ca-cert"),
            "{stderr}"
        );
    }
    let out = cli(
        &["endpoint", "list", "--ca-cert", "/nonexistent/ca.pem"],
        &url,
        &token,
        tmp.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("/nonexistent/ca.pem"));

    // An agent that trusts another CA never connects, and its log says why.
    let other = api
        .register_endpoint("distrustful")
        .await
        .expect("register");
    let mut refused = agent(
        &tmp.path().join("refused"),
        &url,
        &other.token,
        &stranger.ca,
    );
    let mut log = BufReader::new(refused.stderr.take().expect("stderr")).lines();
    let line = tokio::time::timeout(PATIENCE, async {
        loop {
            let line = log.next_line().await.expect("stderr").expect("a line");
            if line.contains("certificate is not trusted") {
                return line;
            }
        }
    })
    .await
    .expect("the agent says the certificate is not trusted");
    assert!(line.contains("--ca-cert"), "{line}");
    let summary = api.endpoint(other.endpoint_id).await.expect("endpoint");
    assert!(!summary.online);
}
