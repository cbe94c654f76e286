//! One task in full: its status document, result or exception, and every transition.
//!
//! The document is a [`LocalResource`] keyed by the selected task and its row in the live
//! picture, so it is fetched again whenever the task moves; the detail shows it through a
//! `<Transition>` (the previous document stays up while the next loads) and an
//! `<ErrorBoundary>`.

use leptos::prelude::*;
use lifeline_model::{State, TaskId, Timestamp, TransitionRecord, human_duration};

use crate::api::{ApiError, TaskStatus};
use crate::components::task_table::age;
use crate::session::{Auth, Clock, Endpoints, LiveTasks};
use crate::url_state::ViewState;

/// The selected task's status document: `Ok(None)` while no task is selected.
pub type TaskDocument = LocalResource<Result<Option<TaskStatus>, ApiError>>;

/// The selected task's status document, fetched again whenever its row changes.
pub fn use_task_document(task: Memo<Option<TaskId>>) -> TaskDocument {
    let auth = expect_context::<Auth>();
    let live = expect_context::<LiveTasks>();
    // The row's (state, attempt, since) changes when the task moves.
    let key = Memo::new(move |_| {
        let task = task.get()?;
        let row = live.with(|l| {
            l.and_then(|l| l.task(task))
                .map(|t| (t.state, t.attempt, t.since))
        });
        Some((task, row))
    });
    LocalResource::new(move || {
        let key = key.get();
        let api = auth.api.get_untracked();
        async move {
            let (Some((task, _)), Some(api)) = (key, api) else {
                return Ok(None);
            };
            match api.task(task).await {
                Ok(doc) => Ok(Some(doc)),
                Err(error) => {
                    if error == ApiError::Unauthorized {
                        auth.fail(&error);
                    }
                    Err(error)
                }
            }
        }
    })
}

/// The transitions of the selected task, for the diagram (empty while none is loaded).
pub fn path_of(doc: TaskDocument, task: Memo<Option<TaskId>>) -> Signal<Vec<TransitionRecord>> {
    Signal::derive(move || {
        let selected = task.get();
        doc.map(|d| match d {
            Ok(Some(d)) if Some(d.task_id) == selected => d.details.task_transitions.clone(),
            Ok(_) | Err(_) => Vec::new(),
        })
        .unwrap_or_default()
    })
}

fn time(at: Timestamp) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at.as_secs_f64() * 1000.0));
    let iso: String = date.to_iso_string().into();
    iso.replace('T', " ")
}

/// The detail's heading, which takes focus when a task is opened from the keyboard or on a
/// phone.
pub const TITLE_ID: &str = "task-detail-title";

/// Closes the detail. Focus that was in it (or nowhere) goes back to the task grid, rather than
/// dropping to the page's start.
pub fn close_detail(view_state: RwSignal<ViewState>) {
    let inside = document()
        .active_element()
        .is_none_or(|el| el.tag_name() == "BODY" || el.closest(".detail").ok().flatten().is_some());
    view_state.update(|v| v.task = None);
    if inside
        && let Some(grid) = document().get_element_by_id(crate::components::task_table::GRID_ID)
        && let Ok(grid) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(grid)
    {
        let _ = grid.focus();
    }
}

#[component]
pub fn TaskDetail(doc: TaskDocument, task: TaskId) -> impl IntoView {
    let view_state = expect_context::<RwSignal<ViewState>>();
    view! {
        <aside class="detail" aria-labelledby=TITLE_ID data-task-detail=task.to_string()>
            <header>
                <h2 id=TITLE_ID tabindex="-1">"Task " <span class="mono">{task.to_string()}</span></h2>
                <button class="close" aria-label="Close (Escape)" on:click=move |_| close_detail(view_state)>"×"</button>
            </header>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                <ErrorBoundary fallback=|errors| view! {
                    <p class="notice" role="alert">
                        {move || errors.with(|e| e.iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join("; "))}
                    </p>
                }>
                    {move || Suspend::new(async move {
                        doc.await.map(|d| match d {
                            Some(d) if d.task_id == task => view! { <Document doc=d/> }.into_any(),
                            // The previous task's document, until this one's arrives.
                            Some(_) | None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </aside>
    }
}

/// A status document's facts, result or exception, and transitions.
#[component]
fn Document(doc: TaskStatus) -> impl IntoView {
    let endpoints = expect_context::<Endpoints>();
    let clock = expect_context::<Clock>();
    let status = doc.status;
    let log = doc.details.task_transitions;
    let endpoint_id = doc.details.endpoint_id;
    let endpoint = move || {
        endpoints
            .name(endpoint_id)
            .unwrap_or_else(|| endpoint_id.to_string())
    };
    // Where each attempt ran: the endpoint records it when a manager takes the task, as the
    // reason of `waiting-for-launch` (`executor cpu, manager 3, block 2 (slurm job 57), node
    // c12`). It is shown as written, whole, on a line of its own per attempt.
    let launches = log
        .iter()
        .filter(|t| t.state == State::WaitingForLaunch)
        .map(|t| (t.attempt, t.reason.clone().unwrap_or_else(|| "?".into())))
        .collect::<Vec<_>>();
    let started = log.first().map(|first| first.at.as_secs_f64());
    let rows = log
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let stay = log
                .get(i + 1)
                .map(|n| human_duration(n.at.as_secs_f64() - t.at.as_secs_f64()))
                .unwrap_or_else(|| "now".into());
            let full_reason = t.reason.clone().unwrap_or_default();
            let reason = full_reason.lines().next().unwrap_or_default().to_owned();
            view! {
                <tr data-step=i + 1>
                    <td>{i + 1}</td>
                    <td class=format!("state-label state-{}", t.state.wire())>{t.state.wire()}</td>
                    <td>{t.actor.wire()}</td>
                    <td>{t.attempt}</td>
                    <td class="mono">{time(t.at)}</td>
                    <td>{stay}</td>
                    <td class="reason" title=full_reason>{reason}</td>
                </tr>
            }
        })
        .collect_view();
    // A function that returned nothing succeeded with `null`.
    let result = (status == State::Success)
        .then(|| serde_json::to_string_pretty(&doc.result.unwrap_or_default()).unwrap_or_default());
    view! {
        <dl class="facts">
            <dt>"status"</dt><dd class=format!("state-label state-{}", status.wire()) data-status=status.wire()>{status.label()}</dd>
            <dt>"pending"</dt><dd>{doc.pending.to_string()}</dd>
            <dt>"attempt"</dt><dd>{format!("{} of at most {}", doc.details.attempt, doc.details.max_retries + 1)}</dd>
            <dt>"endpoint"</dt><dd>{endpoint}</dd>
            {(!launches.is_empty()).then(|| view! {
                <dt>"ran on"</dt>
                <dd data-ran-on="">
                    <ol class="ran-on">
                        {launches.into_iter().map(|(attempt, place)| view! {
                            <li data-attempt=attempt>
                                <span class="attempt">{format!("attempt {attempt}")}</span>
                                <span class="place">{move || endpoint()}</span>
                                <span class="where mono">{place}</span>
                            </li>
                        }).collect_view()}
                    </ol>
                </dd>
            })}
            {doc.completion_t.map(|c| view! { <dt>"completion_t"</dt><dd class="mono">{c}</dd> })}
            {started.map(|t0| view! {
                <dt>"age"</dt><dd>{move || age(clock.get() - t0)}</dd>
            })}
        </dl>
        // Focusable, so that a long result or traceback scrolls from the keyboard too.
        {result.map(|r| view! { <h3>"Result"</h3><pre class="result" tabindex="0" aria-label="Result">{r}</pre> })}
        {doc.exception.map(|e| view! { <h3>"Exception"</h3><pre class="exception" tabindex="0" aria-label="Exception">{e}</pre> })}
        <h3>"Transitions"</h3>
        <table class="transitions">
            <thead><tr><th>"#"</th><th>"state"</th><th>"actor"</th><th>"attempt"</th><th>"at (UTC)"</th><th>"time there"</th><th>"reason"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
