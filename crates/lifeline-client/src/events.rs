//! The event stream (`GET /v1/events`), read with a Server-Sent Events parser and kept open:
//! after a dropped connection it waits (with growing, jittered pauses, or the `retry:` the
//! service asked for) and resumes after the last event it gave.

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use lifeline_model::api::{Event, EventsQuery};
use reqwest::Method;

use crate::{Client, Error, Result, api_error};

type SseStream = Pin<
    Box<
        dyn Stream<
                Item = std::result::Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<reqwest::Error>,
                >,
            > + Send,
    >,
>;

/// The shortest and longest pause before reconnecting.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// A resumable stream of the service's events; see [`Client::events`].
pub struct EventStream {
    client: Client,
    query: EventsQuery,
    /// The sequence number of the last event given out.
    last: Option<u64>,
    open: Option<SseStream>,
    pause: Duration,
    /// What the service's `retry:` field asked for.
    asked_pause: Option<Duration>,
    reconnects: u64,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("query", &self.query)
            .field("last", &self.last)
            .field("open", &self.open.is_some())
            .field("reconnects", &self.reconnects)
            .finish()
    }
}

impl EventStream {
    pub(crate) fn new(client: Client, query: EventsQuery) -> Self {
        let last = query.after;
        Self {
            client,
            query,
            last,
            open: None,
            pause: FIRST_PAUSE,
            asked_pause: None,
            reconnects: 0,
        }
    }

    /// The sequence number of the last event given out, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.last
    }

    /// How many times the stream had to reconnect.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The next event. Waits through disconnections; fails only when the service refuses the
    /// stream itself (a bad token or query), which no retry would fix.
    pub async fn next(&mut self) -> Result<Event> {
        loop {
            let stream = match self.open.as_mut() {
                Some(stream) => stream,
                None => match self.connect().await {
                    Ok(stream) => self.open.insert(stream),
                    Err(error @ Error::Api { status, .. }) if (400..500).contains(&status) => {
                        return Err(error);
                    }
                    Err(_) => {
                        self.wait().await;
                        continue;
                    }
                },
            };
            match stream.next().await {
                Some(Ok(message)) => {
                    if let Some(retry) = message.retry {
                        self.asked_pause = Some(retry);
                    }
                    if message.data.is_empty() {
                        continue;
                    }
                    let event: Event = serde_json::from_str(&message.data)
                        .map_err(|e| Error::Protocol(format!("an unreadable event: {e}")))?;
                    self.last = Some(event.seq);
                    self.pause = FIRST_PAUSE;
                    return Ok(event);
                }
                Some(Err(_)) | None => {
                    self.open = None;
                    self.wait().await;
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<SseStream> {
        let mut query = self.query.clone();
        query.after = None;
        let mut request = self
            .client
            .request(Method::GET, "/v1/events")
            .query(&query)
            .header("accept", "text/event-stream");
        if let Some(last) = self.last {
            request = request.header("last-event-id", last.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.client.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(api_error(status, &bytes));
        }
        Ok(Box::pin(response.bytes_stream().eventsource()))
    }

    /// Pauses before the next attempt: the service's `retry:` if it gave one, else a jittered
    /// pause that doubles up to [`LONGEST_PAUSE`].
    async fn wait(&mut self) {
        self.reconnects += 1;
        let pause = self.asked_pause.unwrap_or(self.pause);
        let jitter = 0.5 + (self.reconnects.wrapping_mul(0x9e37_79b9) % 1000) as f64 / 1000.0;
        tokio::time::sleep(pause.mul_f64(jitter)).await;
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
    }
}
