//! The agent's connection to the service: one WebSocket at a time, reconnected with jittered
//! exponential back-off. Each connection opens with the interchange's hello, waits for the
//! service's welcome, then relays messages both ways until it breaks.
//!
//! Each connection has a channel of its own for what the interchange sends. The interchange
//! takes it with the welcome and first puts every batch of its outbox in it, oldest first, then
//! each new report: so no report can overtake one written before it, and nothing meant for an
//! old connection reaches a new one.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lifeline_protocol::ToEndpoint;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Messages from the connection task to the interchange.
#[derive(Debug)]
pub(crate) enum FromConn {
    /// Connected: answer with the hello to send.
    Connected(oneshot::Sender<String>),
    /// The service reconciled and welcomed the connection: send through `outgoing` from now on,
    /// starting with the outbox's batches.
    Welcome {
        heartbeat_period: Duration,
        outgoing: mpsc::UnboundedSender<String>,
    },
    Message(ToEndpoint),
    Disconnected,
}

/// `http://host:port[/prefix]` → `ws://host:port[/prefix]/v1/connect`.
pub(crate) fn connect_url(service: &str) -> anyhow::Result<String> {
    let base = service.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        anyhow::bail!("the service URL {service:?} must start with http:// or https://");
    };
    Ok(format!("{ws}/v1/connect"))
}

/// Keeps a connection to the service, reconnecting with jittered exponential back-off.
pub(crate) async fn connection(
    url: String,
    token: String,
    tls: Arc<rustls::ClientConfig>,
    to_interchange: mpsc::UnboundedSender<FromConn>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match session(&url, &token, &tls, &to_interchange).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => match lifeline_tls::explain(error.as_ref()) {
                Some(why) => tracing::warn!(url = %url, "cannot connect to the service: {why}"),
                None => tracing::warn!(error = %format!("{error:#}"), "cannot reach the service"),
            },
        }
        // The connection's channel is gone with it: what was still queued there is in the
        // outbox, replayed after the next welcome, or out of date.
        let _ = to_interchange.send(FromConn::Disconnected);
        let jitter = rand::random_range(0.5..1.5);
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One connection: hello, welcome, then relay both ways until it breaks.
async fn session(
    url: &str,
    token: &str,
    tls: &Arc<rustls::ClientConfig>,
    to_interchange: &mpsc::UnboundedSender<FromConn>,
) -> anyhow::Result<()> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            true,
            Some(Connector::Rustls(tls.clone())),
        ),
    )
    .await??;
    let (mut sink, mut stream) = ws.split();
    let (tx, rx) = oneshot::channel();
    to_interchange.send(FromConn::Connected(tx))?;
    let hello = rx.await?;
    sink.send(Message::Text(hello.into())).await?;
    // Wait for the welcome before sending anything else, so the service has reconciled first.
    let heartbeat_period = loop {
        let Some(message) = stream.next().await else {
            anyhow::bail!("closed before welcome")
        };
        if let Message::Text(text) = message? {
            match serde_json::from_str::<ToEndpoint>(&text)? {
                ToEndpoint::Welcome {
                    heartbeat_period_secs,
                } => {
                    break Duration::from_secs_f64(heartbeat_period_secs.clamp(0.05, 3600.0));
                }
                ToEndpoint::Error { message } => {
                    anyhow::bail!("the service refused the connection: {message}")
                }
                other => to_interchange.send(FromConn::Message(other))?,
            }
        }
    };
    let (tx, mut outgoing) = mpsc::unbounded_channel();
    to_interchange.send(FromConn::Welcome {
        heartbeat_period,
        outgoing: tx,
    })?;
    loop {
        tokio::select! {
            out = outgoing.recv() => {
                let Some(text) = out else { return Ok(()) };
                sink.send(Message::Text(text.into())).await?;
            }
            message = stream.next() => {
                let Some(message) = message else { return Ok(()) };
                match message? {
                    Message::Text(text) => match serde_json::from_str::<ToEndpoint>(&text) {
                        Ok(message) => to_interchange.send(FromConn::Message(message))?,
                        Err(error) => tracing::warn!(%error, "ignoring an unreadable message from the service"),
                    },
                    Message::Close(_) => return Ok(()),
                    _ => {}
                }
            }
        }
    }
}
