//! Loading what the dashboard starts from: statistics at a sequence number and the newest
//! finished tasks (for the throughput chart), for the endpoint filter and, with `mine`, the
//! caller's own tasks only. The task list fetches its own rows ([`crate::window`]).

use std::time::Duration;

use std::collections::HashSet;

use lifeline_model::api::StatsQuery;
use lifeline_model::{EndpointId, State, StatsSummary, TaskGroupId, TaskId};

use crate::api::{Api, ApiError};
use crate::live::TaskRow;
use crate::window::Query;

/// The newest finished tasks read to draw the last five minutes of throughput.
const RECENT_FINISHES: usize = 2000;

/// Tasks read per request while learning a submission's tasks.
const GROUP_PAGE: usize = 1000;

/// Statistics and the newest finished tasks for the filter; narrowed to a submission, its
/// figures instead, and its tasks' ids.
pub(super) async fn everything(
    api: &Api,
    endpoints: &[EndpointId],
    mine: bool,
    group: Option<TaskGroupId>,
) -> Result<(StatsSummary, Vec<TaskRow>, Option<HashSet<TaskId>>), ApiError> {
    let stats = match group {
        Some(group) => {
            let query = StatsQuery {
                task_group_id: Some(group.to_string()),
                ..StatsQuery::default()
            };
            api.stats_of(&query).await?
        }
        None => api.stats(endpoints, mine).await?,
    };
    let members = match group {
        Some(group) => Some(members(api, group).await?),
        None => None,
    };
    let finished = Query {
        states: State::ALL.into_iter().filter(|s| s.is_terminal()).collect(),
        group,
        ..Query::default()
    };
    let page = api
        .tasks(endpoints, mine, &finished, RECENT_FINISHES, None)
        .await?;
    Ok((stats, page.tasks, members))
}

/// Every task of a submission (at most 10,000), a page at a time.
async fn members(api: &Api, group: TaskGroupId) -> Result<HashSet<TaskId>, ApiError> {
    let query = Query {
        group: Some(group),
        ..Query::default()
    };
    let mut ids = HashSet::new();
    let mut cursor = None;
    loop {
        let page = api.tasks(&[], false, &query, GROUP_PAGE, cursor).await?;
        ids.extend(page.tasks.iter().map(|t| t.task_id));
        match page.next_cursor.and_then(|c| c.parse().ok()) {
            Some(next) => cursor = Some(next),
            None => return Ok(ids),
        }
    }
}

/// Waits `duration` on the browser's timer.
pub(super) async fn sleep(duration: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                duration.as_millis() as i32,
            );
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
