//! `GET /v1/events`: every transition and endpoint status change as Server-Sent Events, the
//! event id being the global sequence number.
//!
//! A client resumes with `Last-Event-ID` (or `?after=`): it first gets what it missed from the
//! durable log, then live events. A subscriber that falls behind the live channel goes back to the
//! log, so nothing is lost or repeated either way.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use lifeline_model::EndpointId;
use lifeline_model::api::EventsQuery;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use super::auth::User;
use super::endpoints::parse_endpoint_id;
use super::error::{ApiError, ApiResult};
use crate::store::{self, StoredEvent};

/// Events read from the log per query while catching up.
const CATCH_UP_PAGE: usize = 2000;

pub(super) async fn stream(
    _: User,
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let Query(q) = query.map_err(|e| ApiError::bad("invalid_query", e.body_text()))?;
    let endpoint = q
        .endpoint_id
        .as_deref()
        .map(parse_endpoint_id)
        .transpose()?;
    let last_event_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad(
                        "invalid_last_event_id",
                        "Last-Event-ID must be an event's sequence number",
                    )
                })?,
        ),
        None => None,
    };
    // Subscribe before reading the head so that no event falls between the two.
    let live = state.store().subscribe();
    let start = last_event_id
        .or(q.after)
        .unwrap_or_else(|| state.store().head());
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(pump(state, endpoint, start, live, tx));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

fn sse(event: &StoredEvent) -> Result<SseEvent, Infallible> {
    Ok(SseEvent::default()
        .id(event.seq.to_string())
        .data(&*event.json))
}

/// Feeds one subscriber until it goes away or the service shuts down.
async fn pump(
    state: AppState,
    endpoint: Option<EndpointId>,
    mut sent: u64,
    mut live: broadcast::Receiver<std::sync::Arc<StoredEvent>>,
    tx: mpsc::Sender<Result<SseEvent, Infallible>>,
) {
    let mut shutdown = state.shutdown();
    let wanted = |e: &StoredEvent| endpoint.is_none_or(|id| e.endpoint_id == id);
    loop {
        // Catch up from the log until it holds nothing newer than what was sent.
        loop {
            let after = sent;
            let page = match state
                .store()
                .read(move |c| store::events_after(c, after, endpoint, CATCH_UP_PAGE))
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "event stream could not read the log");
                    return;
                }
            };
            let caught_up = page.len() < CATCH_UP_PAGE;
            for event in &page {
                if tx.send(sse(event)).await.is_err() {
                    return;
                }
                sent = event.seq;
            }
            // Events committed after this read arrive on the live channel, subscribed earlier.
            if caught_up {
                break;
            }
        }
        // Then follow the live channel; falling behind sends us back to the log.
        loop {
            let event = tokio::select! {
                event = live.recv() => event,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            };
            match event {
                Ok(event) if event.seq <= sent => {}
                Ok(event) if wanted(&event) => {
                    if tx.send(sse(&event)).await.is_err() {
                        return;
                    }
                    sent = event.seq;
                }
                Ok(event) => sent = event.seq,
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
