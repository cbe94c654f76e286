//! Submissions: one row per task group (`/v1/groups`, newest first) with its function,
//! endpoint, when it was submitted, a progress bar of its tasks by state and its failures.
//! Choosing one narrows the dashboard to it (`?group=ID`).

use leptos::prelude::*;
use lifeline_model::api::GroupSummary;
use lifeline_model::{State, StateCounts};

use crate::components::header::clock_time;
use crate::session::{Auth, Clock, Endpoints, FunctionNames, short};
use crate::url_state::{Page, ViewState};

/// Submissions listed: the newest.
const LIMIT: usize = 100;
/// Seconds between refreshes, so that progress bars follow their tasks.
const REFRESH_SECS: f64 = 2.0;

/// A progress bar in words: "3 of 5 finished: 2 succeeded, 1 failed, 2 running".
pub fn progress_text(tasks: &StateCounts, size: u64) -> String {
    let finished: u64 = State::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(|s| tasks.get(s))
        .sum();
    let parts: Vec<String> = State::ALL
        .into_iter()
        .filter(|&s| tasks.get(s) > 0)
        .map(|s| format!("{} {}", tasks.get(s), s.wire()))
        .collect();
    format!("{finished} of {size} finished: {}", parts.join(", "))
}

/// The bar: one segment per state that holds tasks, in the life cycle's order.
fn progress_bar(tasks: StateCounts, size: u64) -> impl IntoView {
    let segments = State::ALL
        .into_iter()
        .filter(|&s| tasks.get(s) > 0)
        .map(|s| {
            let n = tasks.get(s);
            let width = n as f64 / size.max(1) as f64 * 100.0;
            view! {
                <span class=format!("segment state-{}", s.wire()) data-state=s.wire() data-count=n
                    style=format!("width: {width:.2}%")></span>
            }
        })
        .collect_view();
    view! {
        <div class="progress" role="img" aria-label=progress_text(&tasks, size)>{segments}</div>
    }
}

#[component]
pub fn GroupsPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let clock = expect_context::<Clock>();
    let endpoints = expect_context::<Endpoints>();
    let functions = expect_context::<FunctionNames>();
    let refresh = Memo::new(move |_| (clock.get() / REFRESH_SECS).floor() as u64);
    let groups = crate::fetched::fetched(move || {
        // Read, not only tracked: a memo nobody has read follows nothing.
        let _period = refresh.get();
        let api = auth.api.get();
        let scope = view_state.with(|v| v.endpoints.clone());
        let mine = auth.mine(view_state.with(|v| v.mine));
        async move {
            let (api, mine) = (api?, mine?);
            Some(
                api.groups(&scope, mine, LIMIT)
                    .await
                    .map(|page| page.groups)
                    .map_err(|e| e.to_string()),
            )
        }
    });
    let answer = move || groups.get().flatten();
    Effect::new(move |_| {
        if let Some(Ok(list)) = answer() {
            functions.want(list.iter().map(|g| g.function_id).collect());
        }
    });
    let row = move |g: GroupSummary| {
        let id = g.task_group_id;
        let function = functions.with(|f| {
            f.get(&g.function_id)
                .cloned()
                .unwrap_or_else(|| short(&g.function_id.to_string()))
        });
        let site = endpoints
            .name(g.endpoint_id)
            .unwrap_or_else(|| short(&g.endpoint_id.to_string()));
        let failed = g.tasks.get(State::Failed);
        let finished: u64 = State::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(|s| g.tasks.get(s))
            .sum();
        view! {
            <tr data-group=id.to_string() data-size=g.size data-finished=finished>
                <td>
                    <button class="link" title="Show this submission's tasks"
                        on:click=move |_| view_state.update(|v| { v.group = Some(id); v.page = Page::Lifecycle; })>
                        {function}
                    </button>
                    <div class="mono muted">{short(&id.to_string())}</div>
                </td>
                <td data-label="Endpoint">{site}</td>
                <td data-label="Submitted">{clock_time(g.created_at.as_secs_f64())}</td>
                <td data-label="Progress" class="progress-cell">{progress_bar(g.tasks, g.size)}</td>
                <td data-label="Failed" class="num" data-failed=failed>{failed}</td>
            </tr>
        }
    };
    let body = move || {
        match answer() {
        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="muted" role="status">{e}</p> }.into_any(),
        Some(Ok(list)) if list.is_empty() => {
            view! { <p class="muted">"No submission yet."</p> }.into_any()
        }
        Some(Ok(list)) => view! {
            <table class="groups">
                <thead><tr><th>"Function"</th><th>"Endpoint"</th><th>"Submitted"</th><th>"Progress"</th><th class="num">"Failed"</th></tr></thead>
                <tbody>{list.into_iter().map(row).collect_view()}</tbody>
            </table>
        }
        .into_any(),
    }
    };
    view! {
        <section class="panel" aria-labelledby="groups-title">
            <h2 id="groups-title">"Submissions"</h2>
            <p class="muted">"Each submission's tasks by state, newest first. Choose one to narrow the dashboard to it."</p>
            {body}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_finished_of_all_then_each_state() {
        let mut tasks = StateCounts::default();
        tasks.set(State::Success, 2);
        tasks.set(State::Failed, 1);
        tasks.set(State::Running, 2);
        assert_eq!(
            progress_text(&tasks, 5),
            "3 of 5 finished: 2 running, 2 success, 1 failed"
        );
    }
}
