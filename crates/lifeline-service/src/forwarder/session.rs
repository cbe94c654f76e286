//! One endpoint's WebSocket session: the hello and the reconciliation it starts, then a reader
//! and a writer joined by `select!` until the socket closes or the service shuts down.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use lifeline_model::{EndpointId, TaskId};
use lifeline_protocol::{FromEndpoint, ToEndpoint};
use tokio::sync::{mpsc, watch};

use super::Forwarder;

/// The close frame that answers a read error the endpoint caused (a message over the size
/// limit: 1009), if it was one.
fn refusal(error: &axum::Error) -> Option<CloseFrame> {
    use tokio_tungstenite::tungstenite::Error;
    let inner = std::error::Error::source(error)?;
    match inner.downcast_ref::<Error>()? {
        Error::Capacity(why) => Some(CloseFrame {
            code: axum::extract::ws::close_code::SIZE,
            reason: format!("message too big: {why}").into(),
        }),
        _ => None,
    }
}

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits for the agent's hello; `None` if the socket closed or said something else first.
async fn hello(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<(Vec<TaskId>, Option<u32>), String> {
    loop {
        let message = match tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(_) => return Err(String::new()),
            Err(_) => return Err(format!("no hello within {} s", HELLO_TIMEOUT.as_secs())),
        };
        match message {
            Message::Text(text) => {
                return match serde_json::from_str::<FromEndpoint>(&text) {
                    Ok(FromEndpoint::Hello { tasks, window }) => Ok((tasks, window)),
                    Ok(_) => Err("the first message must be a hello".into()),
                    Err(error) => Err(format!("not a valid message: {error}")),
                };
            }
            Message::Close(_) => return Err(String::new()),
            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) => continue,
        }
    }
}

/// One endpoint's WebSocket session, until it closes or the service shuts down.
#[tracing::instrument(skip_all, fields(endpoint_id = %endpoint))]
pub(crate) async fn session(
    forwarder: std::sync::Arc<Forwarder>,
    endpoint: EndpointId,
    socket: WebSocket,
    mut shutdown: watch::Receiver<bool>,
) {
    let (mut sink, mut stream) = socket.split();
    let (held, window) = match hello(&mut stream).await {
        Ok(hello) => hello,
        Err(message) => {
            if !message.is_empty() {
                let text =
                    serde_json::to_string(&ToEndpoint::Error { message }).unwrap_or_default();
                let _ = sink.send(Message::Text(text.into())).await;
            }
            let _ = sink.close().await;
            return;
        }
    };
    // Whatever the agent no longer holds (it restarted, say) starts its next attempt.
    let reason = "system failure: the endpoint reconnected without this task".to_owned();
    if let Err(error) = forwarder
        .retry_in_flight(endpoint, held.into_iter().collect(), reason)
        .await
    {
        tracing::error!(%error, %endpoint, "could not reconcile the endpoint's tasks");
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let conn_id = forwarder.attach(endpoint, tx, window);
    tracing::info!(%endpoint, "endpoint connected");
    let welcome = ToEndpoint::Welcome {
        heartbeat_period_secs: forwarder.timings.heartbeat_period.as_secs_f64(),
    };
    forwarder.reply(endpoint, conn_id, &welcome);
    if let Some(status) = forwarder.heard_from(endpoint, None) {
        forwarder.announce(status).await;
    }
    let writer = async {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    // How the reader ended: the endpoint closed cleanly, or broke the protocol with a frame
    // the service must answer with a close code, or the connection simply dropped.
    enum End {
        Clean,
        Refused(CloseFrame),
        Dropped,
    }
    let reader = async {
        spawn_dispatch(&forwarder, endpoint);
        loop {
            let text = match stream.next().await {
                None => return End::Dropped,
                Some(Err(error)) => return refusal(&error).map_or(End::Dropped, End::Refused),
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) => return End::Clean,
                Some(Ok(Message::Binary(_))) => {
                    let message =
                        "binary frames are not part of the protocol; send JSON text".into();
                    forwarder.reply(endpoint, conn_id, &ToEndpoint::Error { message });
                    continue;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            };
            match serde_json::from_str::<FromEndpoint>(&text) {
                Ok(FromEndpoint::Heartbeat { report }) => {
                    if let Some(status) = forwarder.heard_from(endpoint, Some(report)) {
                        forwarder.announce(status).await;
                    }
                }
                Ok(FromEndpoint::Report { batch, transitions }) => {
                    forwarder.heard_from(endpoint, None);
                    match forwarder.report(endpoint, batch, transitions).await {
                        Ok(ack) => forwarder.reply(endpoint, conn_id, &ack),
                        Err(error) => {
                            tracing::error!(%error, %endpoint, "could not store a report");
                            return End::Dropped;
                        }
                    }
                    // Finished tasks leave room in the endpoint's window for waiting ones:
                    // dispatched beside the reading, so that a large refill never holds up
                    // the endpoint's next reports and heartbeats.
                    spawn_dispatch(&forwarder, endpoint);
                }
                Ok(FromEndpoint::Hello { .. }) => {
                    let message = "hello is only the first message of a connection".into();
                    forwarder.reply(endpoint, conn_id, &ToEndpoint::Error { message });
                }
                Err(error) => {
                    let message = format!("not a valid message: {error}");
                    forwarder.reply(endpoint, conn_id, &ToEndpoint::Error { message });
                }
            }
        }
    };
    let end = tokio::select! {
        _ = writer => End::Dropped,
        end = reader => end,
        _ = shutdown.changed() => End::Dropped,
    };
    if let End::Refused(frame) = &end {
        tracing::warn!(%endpoint, code = frame.code, reason = %frame.reason, "closing an endpoint's connection");
        let _ = sink.send(Message::Close(Some(frame.clone()))).await;
    }
    forwarder.detach(endpoint, conn_id);
    if matches!(end, End::Clean)
        && let Some(status) = forwarder.closed(endpoint)
    {
        forwarder.announce(status).await;
    }
    tracing::info!(%endpoint, "endpoint disconnected");
}

/// Dispatches the endpoint's waiting tasks in a task of its own.
fn spawn_dispatch(forwarder: &std::sync::Arc<Forwarder>, endpoint: EndpointId) {
    let forwarder = forwarder.clone();
    tokio::spawn(async move {
        if let Err(error) = forwarder.dispatch_waiting(endpoint).await {
            tracing::warn!(%error, %endpoint, "could not dispatch waiting tasks");
        }
    });
}
