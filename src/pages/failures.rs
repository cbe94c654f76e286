//! Why tasks fail: failed tasks and retried attempts grouped by cause (the kind of reason and
//! the message with its volatile parts masked), as the service computes them
//! (`/v1/failures`). Each group shows its count, final failures against retries, when it was
//! first and last seen, the endpoints and functions it hit and an example traceback; choosing
//! a group shows its tasks in the life cycle's task list (`?failure=KEY`).

use leptos::prelude::*;
use lifeline_model::api::FailureGroup;

use crate::components::header::clock_time;
use crate::session::{Auth, Clock, Endpoints, FunctionNames, short};
use crate::url_state::{Page, ViewState};

/// Seconds between refreshes of the groups while the page is open.
const REFRESH_SECS: f64 = 5.0;

/// "3 final failures, 2 retried" (the parts that are not zero).
pub fn outcome_text(group: &FailureGroup) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if group.final_failures > 0 {
        parts.push(plural(
            group.final_failures,
            "final failure",
            "final failures",
        ));
    }
    if group.retried > 0 {
        parts.push(plural(group.retried, "attempt retried", "attempts retried"));
    }
    parts.join(", ")
}

#[component]
pub fn FailuresPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let clock = expect_context::<Clock>();
    let endpoints = expect_context::<Endpoints>();
    let functions = expect_context::<FunctionNames>();
    let refresh = Memo::new(move |_| (clock.get() / REFRESH_SECS).floor() as u64);
    let failures = crate::fetched::fetched(move || {
        // Read, not only tracked: a memo nobody has read follows nothing.
        let _period = refresh.get();
        let api = auth.api.get();
        let scope = view_state.with(|v| v.endpoints.clone());
        let mine = auth.mine(view_state.with(|v| v.mine));
        async move {
            let (api, mine) = (api?, mine?);
            Some(api.failures(&scope, mine).await.map_err(|e| e.to_string()))
        }
    });
    let answer = move || failures.get().flatten();
    Effect::new(move |_| {
        if let Some(Ok(f)) = answer() {
            functions.want(
                f.groups
                    .iter()
                    .flat_map(|g| g.functions.iter().copied())
                    .collect(),
            );
        }
    });
    let choose = move |key: String| {
        view_state.update(|v| {
            v.failure = Some(key);
            v.page = Page::Lifecycle;
        })
    };
    let group_view = move |g: FailureGroup| {
        let key = g.key.clone();
        let names = functions.with(|f| {
            g.functions
                .iter()
                .map(|id| f.get(id).cloned().unwrap_or_else(|| short(&id.to_string())))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let sites = endpoints.name_list(&g.endpoints).join(", ");
        view! {
            <li class="failure-group" data-failure-group=g.key.clone() data-count=g.count data-reason=g.reason.wire()>
                <div class="failure-head">
                    <span class=format!("badge reason reason-{}", g.reason.wire())>{g.reason.wire()}</span>
                    <button class="link failure-signature" title="Show these tasks in the task list"
                        on:click=move |_| choose(key.clone())>{g.signature.clone()}</button>
                    <span class="failure-count">{g.count}</span>
                </div>
                <dl class="failure-facts">
                    <div><dt>"Outcome"</dt><dd>{outcome_text(&g)}</dd></div>
                    <div><dt>"Seen"</dt><dd>{format!("{} – {}", clock_time(g.first_seen.as_secs_f64()), clock_time(g.last_seen.as_secs_f64()))}</dd></div>
                    <div><dt>"Endpoints"</dt><dd>{sites}</dd></div>
                    <div><dt>"Functions"</dt><dd>{names}</dd></div>
                </dl>
                <details class="failure-example">
                    <summary>{format!("Example: task {}", short(&g.example_task_id.to_string()))}</summary>
                    <pre>{g.example.clone()}</pre>
                </details>
            </li>
        }
    };
    let body = move || {
        match answer() {
        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="muted" role="status">{e}</p> }.into_any(),
        Some(Ok(f)) if f.groups.is_empty() => {
            view! { <p class="muted" data-testid="no-failures">"No task has failed or been retried."</p> }.into_any()
        }
        Some(Ok(f)) => {
            let note = f.truncated.then(|| view! {
                <p class="muted">{format!("Only the newest {} failures and retries were read: choose endpoints to narrow the view.", f.scanned)}</p>
            });
            view! {
                {note}
                <ul class="failure-groups">{f.groups.into_iter().map(group_view).collect_view()}</ul>
            }
            .into_any()
        }
    }
    };
    view! {
        <section class="panel" aria-labelledby="failures-title">
            <h2 id="failures-title">"Why tasks fail"</h2>
            <p class="muted">"Failed tasks and retried attempts, grouped by cause: the same kind of reason and the same message once ids, addresses and numbers are masked. Choose a cause to list its tasks."</p>
            {body}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{ReasonKind, TaskId, Timestamp};

    #[test]
    fn the_outcome_says_final_failures_and_retries_apart() {
        let mut group = FailureGroup {
            key: "exception:ValueError".into(),
            reason: ReasonKind::Exception,
            signature: "ValueError".into(),
            count: 3,
            final_failures: 1,
            retried: 2,
            first_seen: Timestamp::from_micros(0),
            last_seen: Timestamp::from_micros(0),
            endpoints: Vec::new(),
            functions: Vec::new(),
            example_task_id: TaskId::from_u128(1),
            example: String::new(),
        };
        assert_eq!(outcome_text(&group), "1 final failure, 2 attempts retried");
        group.retried = 0;
        group.final_failures = 3;
        assert_eq!(outcome_text(&group), "3 final failures");
    }
}
