//! Where managers reach the interchange: a TCP listener on the login node's address. Each new
//! connection must open with a [`ManagerHello`] line within [`HELLO_TIMEOUT`] and
//! [`HELLO_LIMIT`] bytes; the hello and the connection then go to the interchange, which checks
//! the block's secret. Nothing a stranger sends gets further than that.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::ManagerEvent;
use crate::config::InterchangeConfig;
use crate::node::ManagerHello;

/// How long a new connection has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest hello read.
const HELLO_LIMIT: u64 = 4096;

/// The bound listener, and the address managers are told to dial.
#[derive(Debug)]
pub(crate) struct Listener {
    listener: TcpListener,
    address: String,
}

impl Listener {
    /// Listens on the configured address and port, or on this host's address (as its name
    /// resolves) and a free port.
    pub(crate) async fn bind(config: &InterchangeConfig) -> anyhow::Result<Self> {
        let host = match &config.address {
            Some(address) => address.clone(),
            None => default_address().await,
        };
        let listener = TcpListener::bind((host.as_str(), config.port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "the interchange cannot listen on {host}:{}: {e} (set [interchange] address and port in endpoint.toml)",
                    config.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        tracing::info!(%address, "the interchange listens for managers");
        Ok(Self { listener, address })
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Accepts connections until the interchange goes away, handing each one that says hello
    /// to it through `events`.
    pub(crate) fn spawn(self, events: mpsc::UnboundedSender<ManagerEvent>) {
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match self.listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a manager's connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if events.is_closed() {
                    return;
                }
                let events = events.clone();
                tokio::spawn(async move {
                    let event = match tokio::time::timeout(HELLO_TIMEOUT, hello(stream)).await {
                        Ok(Ok((hello, stream))) => ManagerEvent::Hello {
                            hello,
                            stream,
                            peer,
                        },
                        Ok(Err(why)) => ManagerEvent::Refused { peer, why },
                        Err(_) => ManagerEvent::Refused {
                            peer,
                            why: format!("no hello within {} s", HELLO_TIMEOUT.as_secs()),
                        },
                    };
                    let _ = events.send(event);
                });
            }
        });
    }
}

/// Reads a connection's first line as a hello. Byte by byte, so that nothing after the hello
/// is read into a buffer the manager's reader would not see (a hello is a hundred bytes).
async fn hello(mut stream: TcpStream) -> Result<(ManagerHello, TcpStream), String> {
    let _ = stream.set_nodelay(true);
    let mut line = Vec::new();
    loop {
        let byte = stream
            .read_u8()
            .await
            .map_err(|e| format!("unreadable hello: {e}"))?;
        if byte == b'\n' {
            break;
        }
        if line.len() as u64 >= HELLO_LIMIT {
            return Err(format!("a hello longer than {HELLO_LIMIT} bytes"));
        }
        line.push(byte);
    }
    let hello =
        serde_json::from_slice::<ManagerHello>(&line).map_err(|e| format!("not a hello: {e}"))?;
    Ok((hello, stream))
}

/// This host's address as its name resolves (IPv4 first), or the loopback address.
async fn default_address() -> String {
    let name = crate::manager::host_name();
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .map(Iterator::collect)
        .unwrap_or_default();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or(addresses.first())
        .map_or_else(|| "127.0.0.1".into(), |a| a.ip().to_string())
}
