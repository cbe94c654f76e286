//! Loading what the dashboard starts from: statistics at a sequence number and the newest
//! finished tasks (for the throughput chart), for the endpoint filter and, with `mine`, the
//! caller's own tasks only. The task list fetches its own rows ([`crate::window`]).

use std::time::Duration;

use lifeline_model::{EndpointId, State, StatsSummary};

use crate::api::{Api, ApiError};
use crate::live::TaskRow;
use crate::window::Query;

/// The newest finished tasks read to draw the last five minutes of throughput.
const RECENT_FINISHES: usize = 2000;

/// Statistics and the newest finished tasks for the filter.
pub(super) async fn everything(
    api: &Api,
    endpoints: &[EndpointId],
    mine: bool,
) -> Result<(StatsSummary, Vec<TaskRow>), ApiError> {
    let stats = api.stats(endpoints, mine).await?;
    let finished = Query {
        states: State::ALL.into_iter().filter(|s| s.is_terminal()).collect(),
        ..Query::default()
    };
    let page = api
        .tasks(endpoints, mine, &finished, RECENT_FINISHES, None)
        .await?;
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
