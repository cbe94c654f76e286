//! `GET /v1/events`: every transition and endpoint status change as Server-Sent Events, the
//! event id being the global sequence number.
//!
//! A client resumes with `Last-Event-ID` (or `?after=`): it first gets what it missed from the
//! durable log, then live events. A subscriber that falls behind the live channel goes back to the
//! log, so nothing is lost or repeated either way.
//!
//! A client resuming from before an event that retention removed first gets an `event: reset`
//! ([`StreamReset`]) telling it to reload, then the events after the head.
//!
//! A subscriber gets only what it may see (see [`crate::access`]): its own tasks' transitions,
//! those of tasks on endpoints it owns, and the status of endpoints it may use. The stream closes
//! as soon as the token it was opened with is revoked or expires.
//!
//! `?task_group_id=` narrows the stream to the transitions of some submissions' tasks. Only a
//! task's first event, `received`, names its group, so the subscriber's [`Groups`] learns the
//! groups' tasks twice over: from the store when the subscription begins (tasks whose `received`
//! lies before the resume point), and from every later `received` event it reads, replayed or
//! live. Events are read in sequence order, so a task is known before its next event is judged.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use lifeline_model::api::{EventsQuery, StreamReset};
use lifeline_model::{EndpointId, EventBody, TaskGroupId, TaskId};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use super::auth::StreamUser;
use super::endpoints::parse_endpoint_id;
use super::error::{ApiError, ApiResult};
use crate::access::Scope;
use crate::store::{self, StoreResult, StoredEvent, TaskFilter};
use crate::users::Caller;

/// Events read from the log per query while catching up.
const CATCH_UP_PAGE: usize = 2000;
/// The most task groups one subscription may follow.
const MAX_GROUPS: usize = 1000;
/// Tasks read per query while looking up the groups' tasks.
const MEMBERS_PAGE: usize = 10_000;

pub(super) async fn stream(
    StreamUser(caller): StreamUser,
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
    let groups = q.task_group_id.as_deref().map(parse_groups).transpose()?;
    // Subscribe before reading the head so that no event falls between the two.
    let live = state.store().subscribe();
    let mut start = last_event_id
        .or(q.after)
        .unwrap_or_else(|| state.store().head());
    // Resuming from before an event retention removed: say so, then go on from the head.
    let purged_through = state.store().purged_through();
    let reset = (start < purged_through).then(|| {
        let head = state.store().head();
        let reset = StreamReset {
            after: start,
            purged_through,
            head,
        };
        start = head;
        reset
    });
    // The groups' tasks are read after the head: a task stored later has its `received` event
    // after `start`, so the stream itself introduces it.
    let groups = match groups {
        Some(wanted) => Some(Groups::load(&state, wanted).await?),
        None => None,
    };
    let filter = Filter {
        endpoint,
        groups,
        caller,
        mine: q.mine.unwrap_or(false),
    };
    let (tx, rx) = mpsc::channel(256);
    if let Some(reset) = reset {
        let event = SseEvent::default()
            .event("reset")
            .id(reset.head.to_string())
            .json_data(&reset)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        // The channel is new and empty: there is room.
        let _ = tx.try_send(Ok(event));
    }
    tokio::spawn(pump(state, filter, start, live, tx));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

/// Task group ids, comma-separated.
fn parse_groups(text: &str) -> ApiResult<HashSet<TaskGroupId>> {
    let groups = text
        .split(',')
        .map(|g| {
            g.trim()
                .parse()
                .map_err(|e: lifeline_model::IdError| ApiError::bad("invalid_id", e.to_string()))
        })
        .collect::<ApiResult<HashSet<TaskGroupId>>>()?;
    if groups.len() > MAX_GROUPS {
        return Err(ApiError::bad(
            "too_many_groups",
            format!(
                "a stream follows at most {MAX_GROUPS} task groups, not {}",
                groups.len()
            ),
        ));
    }
    Ok(groups)
}

/// What one subscriber may see and wants: one endpoint's events, some groups' transitions, or
/// both.
struct Filter {
    endpoint: Option<EndpointId>,
    groups: Option<Groups>,
    caller: Caller,
    /// Only the caller's own tasks.
    mine: bool,
}

impl Filter {
    /// Whether the subscriber may see and wants `event`. Called once per event, in sequence
    /// order.
    fn wants(&mut self, state: &AppState, event: &StoredEvent) -> bool {
        if self.endpoint.is_some_and(|id| event.endpoint_id != id) {
            return false;
        }
        let directory = state.directory();
        let visible = match event.owner {
            Some(owner) if self.mine => owner == self.caller.id,
            Some(owner) => directory.may_see_task(&self.caller, owner, event.endpoint_id),
            None => directory.may_use(&self.caller, event.endpoint_id),
        };
        if !visible {
            return false;
        }
        match &mut self.groups {
            Some(groups) => groups.wants(&event.event.body),
            None => true,
        }
    }
}

/// The task groups a subscriber follows, and the tasks known to belong to them.
#[derive(Debug, Default)]
struct Groups {
    wanted: HashSet<TaskGroupId>,
    tasks: HashSet<TaskId>,
}

impl Groups {
    /// The groups with the tasks the store holds for them now.
    async fn load(state: &AppState, wanted: HashSet<TaskGroupId>) -> ApiResult<Self> {
        let groups: Vec<TaskGroupId> = wanted.iter().copied().collect();
        let tasks = state.store().read(move |c| tasks_of(c, &groups)).await?;
        Ok(Self { wanted, tasks })
    }

    /// Whether an event is a transition of one of the groups' tasks; a task's first transition
    /// names its group, and a `received` event of a wanted group adds its task.
    fn wants(&mut self, event: &EventBody) -> bool {
        let EventBody::Transition(t) = event else {
            return false;
        };
        if t.task_group_id.is_some_and(|g| self.wanted.contains(&g)) {
            self.tasks.insert(t.task_id);
            return true;
        }
        self.tasks.contains(&t.task_id)
    }
}

/// Every stored task of `groups`, a page at a time along the task list's group index.
fn tasks_of(conn: &rusqlite::Connection, groups: &[TaskGroupId]) -> StoreResult<HashSet<TaskId>> {
    let mut tasks = HashSet::new();
    for &group in groups {
        let mut before = None;
        loop {
            // Every task of the group: what the subscriber may see of them is judged per event.
            let filter = TaskFilter {
                scope: Scope::All,
                endpoints: Vec::new(),
                states: Vec::new(),
                function: None,
                group: Some(group),
                edge: None,
                failure: None,
                before,
                limit: MEMBERS_PAGE,
            };
            let page = store::list_tasks(conn, &filter)?;
            tasks.extend(page.tasks.iter().map(|t| t.task_id));
            match page.next_cursor.and_then(|c| c.parse().ok()) {
                Some(cursor) => before = Some(cursor),
                None => break,
            }
        }
    }
    Ok(tasks)
}

fn sse(event: &StoredEvent) -> Result<SseEvent, Infallible> {
    Ok(SseEvent::default()
        .id(event.seq().to_string())
        .data(event.json()))
}

/// One open stream in the subscribers gauge, for as long as it lives.
struct Subscribed(prometheus_client::metrics::gauge::Gauge);

impl Subscribed {
    fn new(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Feeds one subscriber until it goes away or the service shuts down.
async fn pump(
    state: AppState,
    mut filter: Filter,
    mut sent: u64,
    mut live: broadcast::Receiver<std::sync::Arc<StoredEvent>>,
    tx: mpsc::Sender<Result<SseEvent, Infallible>>,
) {
    let _counted = Subscribed::new(&state.metrics().subscribers);
    let mut shutdown = state.shutdown();
    let mut revocations = state.tokens().revocations();
    let token = filter.caller.token_id.clone();
    // A token that expires by itself ends the stream then.
    let expiry = state.tokens().expiry(&token).map(|at| {
        let left = at
            .as_micros()
            .saturating_sub(crate::now().as_micros())
            .max(0);
        tokio::time::Instant::now() + Duration::from_micros(left as u64)
    });
    let expired = async move {
        match expiry {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    let endpoint = filter.endpoint;
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
            if !state.tokens().user_token_valid(&token, crate::now()) {
                return;
            }
            for event in &page {
                if filter.wants(&state, event) && tx.send(sse(event)).await.is_err() {
                    return;
                }
                sent = event.seq();
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
                _ = &mut expired => return,
                _ = revocations.changed() => {
                    if state.tokens().user_token_valid(&token, crate::now()) {
                        continue;
                    }
                    return;
                }
            };
            match event {
                Ok(event) if event.seq() <= sent => {}
                Ok(event) => {
                    if filter.wants(&state, &event) && tx.send(sse(&event)).await.is_err() {
                        return;
                    }
                    sent = event.seq();
                }
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0192f0a0-0000-7000-8000-00000000000a";
    const B: &str = "0192f0a0-0000-7000-8000-00000000000b";
    const T1: &str = "0192f0a0-0000-7000-8000-000000000001";
    const T2: &str = "0192f0a0-0000-7000-8000-000000000002";
    const T3: &str = "0192f0a0-0000-7000-8000-000000000003";

    fn transition(task: &str, group: Option<&str>, to: &str) -> EventBody {
        EventBody::Transition(lifeline_model::TransitionEvent {
            task_id: task.parse().expect("id"),
            task_group_id: group.map(|g| g.parse().expect("id")),
            endpoint_id: B.parse().expect("id"),
            function_id: B.parse().expect("id"),
            from: None,
            to: to.parse().expect("state"),
            actor: lifeline_model::Actor::WebService,
            attempt: 1,
            max_retries: 0,
            at: lifeline_model::Timestamp::from_micros(0),
            reason: None,
        })
    }

    #[test]
    fn a_received_event_of_a_wanted_group_introduces_its_task() {
        let mut groups = Groups {
            wanted: parse_groups(A).expect("ids"),
            tasks: HashSet::new(),
        };
        assert!(groups.wants(&transition(T1, Some(A), "received")));
        assert!(groups.wants(&transition(T1, None, "waiting-for-ep")));
        assert!(!groups.wants(&transition(T2, Some(B), "received")));
        assert!(!groups.wants(&transition(T2, None, "waiting-for-ep")));
        // Known from the store: its `received` came before the stream began.
        groups.tasks.insert(T3.parse().expect("id"));
        assert!(groups.wants(&transition(T3, None, "running")));
        let endpoint: lifeline_model::Event = serde_json::from_str(&format!(
            r#"{{"seq":9,"type":"endpoint","endpoint_id":"{B}","name":"e","online":true}}"#
        ))
        .expect("an endpoint event");
        assert!(!groups.wants(&endpoint.body));
    }

    #[test]
    fn group_lists_are_comma_separated_ids_and_bounded() {
        assert_eq!(parse_groups(&format!("{A}, {B}")).expect("ids").len(), 2);
        assert!(parse_groups("nope").is_err());
        assert!(parse_groups(&format!("{A},")).is_err());
        let many: Vec<String> = (0..=MAX_GROUPS)
            .map(|i| format!("0192f0a0-0000-7000-8000-{i:012x}"))
            .collect();
        assert!(parse_groups(&many.join(",")).is_err());
    }
}
