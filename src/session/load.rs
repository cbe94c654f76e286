//! Loading what the dashboard starts from: statistics at a sequence number and the newest tasks,
//! all of them up to a cap when (re)loading, the newest page when polling; for the endpoint
//! filter and, with `mine`, the caller's own tasks only.

use std::time::Duration;

use lifeline_model::{EndpointId, StatsSummary};

use crate::api::{Api, ApiError};
use crate::live::TaskRow;

/// Most tasks the list loads for one filter.
pub const TASK_CAP: usize = crate::live::MAX_ROWS;
/// Tasks per request while loading: few requests, each still quick to parse.
const PAGE: usize = 5000;

/// Statistics and the newest tasks (up to [`TASK_CAP`]) for the filter.
pub(super) async fn everything(
    api: &Api,
    endpoints: &[EndpointId],
    mine: bool,
) -> Result<(StatsSummary, Vec<TaskRow>), ApiError> {
    let stats = api.stats(endpoints, mine).await?;
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    while rows.len() < TASK_CAP {
        let page = api.tasks(endpoints, mine, PAGE, cursor.take()).await?;
        rows.extend(page.tasks);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok((stats, rows))
}

/// Statistics and the newest page of tasks, for polling.
pub(super) async fn head(
    api: &Api,
    endpoints: &[EndpointId],
    mine: bool,
) -> Result<(StatsSummary, Vec<TaskRow>), ApiError> {
    let stats = api.stats(endpoints, mine).await?;
    let page = api.tasks(endpoints, mine, PAGE, None).await?;
    Ok((stats, page.tasks))
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
