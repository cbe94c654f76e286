//! One task in full: its status document, result or exception, and every transition.
//!
//! The document is [`fetched`](crate::fetched::fetched) again whenever the selected task moves
//! in the stream; the previous document stays up while the next loads.

use leptos::prelude::*;
use lifeline_model::{State, TaskId, Timestamp, TransitionRecord, human_duration};

use crate::api::{ApiError, TaskStatus};
use crate::components::task_table::age;
use crate::session::{Auth, Clock, Endpoints, TaskList, exception_line};
use crate::url_state::ViewState;

/// The selected task's status document: `None` until the first answer, `Ok(None)` while no task
/// is selected.
pub type TaskDocument = ReadSignal<Option<Result<Option<TaskStatus>, ApiError>>>;

/// The selected task's status document, fetched again whenever the stream moves the task.
pub fn use_task_document(task: Memo<Option<TaskId>>) -> TaskDocument {
    let auth = expect_context::<Auth>();
    let list = expect_context::<TaskList>();
    Effect::new(move |_| list.watch(task.get()));
    let key = Memo::new(move |_| {
        let task = task.get()?;
        Some((task, list.with(|w| w.watched_moves(task))))
    });
    crate::fetched::fetched(move || {
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
        doc.with(|d| match d {
            Some(Ok(Some(d))) if Some(d.task_id) == selected => d.details.task_transitions.clone(),
            _ => Vec::new(),
        })
    })
}

/// A moment as the time of day in UTC to the millisecond (`04:35:41.327`), and the whole date
/// and time for a tooltip.
fn time_parts(at: Timestamp) -> (String, String) {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at.as_secs_f64() * 1000.0));
    let iso: String = date.to_iso_string().into();
    let clock = iso.get(11..23).unwrap_or(&iso).to_owned();
    (clock, iso.replace('T', " ").replace('Z', " UTC"))
}

/// The status document's `completion_t` (epoch seconds in a string) as a date and time in UTC.
fn completed_at(epoch: &str) -> Option<String> {
    Some(time_parts(epoch.trim().parse().ok()?).1)
}

/// JSON text laid out as `serde_json::to_string_pretty` lays it out: one member or element per
/// line, indented two spaces a level. It works on the text alone, which is valid JSON (the
/// service checked it), so numbers keep every digit they were written with.
pub fn pretty_json(text: &str) -> String {
    fn newline(out: &mut String, depth: usize) {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0_usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    out.push(c);
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                while chars.next_if(char::is_ascii_whitespace).is_some() {}
                if let Some(close) = chars.next_if(|c| matches!(c, '}' | ']')) {
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// What a step's reason says, in one line: a traceback's exception (its last line), otherwise
/// the reason as written (a placement, a lost worker), whose first line is all of it.
pub fn step_reason(reason: &str) -> String {
    if reason.trim_start().starts_with("Traceback") {
        exception_line(reason)
    } else {
        reason.lines().next().unwrap_or_default().trim().to_owned()
    }
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
            {move || doc.with(|d| match d {
                Some(Ok(Some(d))) if d.task_id == task => view! { <Document doc=d.clone()/> }.into_any(),
                Some(Err(e)) => view! { <p class="notice" role="alert">{e.to_string()}</p> }.into_any(),
                // Before the first answer, or the previous task's document until this one's
                // arrives.
                _ => view! { <p class="muted">"Loading…"</p> }.into_any(),
            })}
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
            let at = t.at.as_secs_f64();
            // How long the task stayed: until the next step; a finished task's last state is
            // where it ended, and an unfinished one's is still counting.
            let stay = match log.get(i + 1) {
                Some(next) => human_duration(next.at.as_secs_f64() - at).into_any(),
                None if t.state.is_terminal() => view! { <span class="muted">"(end)"</span> }.into_any(),
                None => view! { <span>{move || format!("{} so far", age(clock.get() - at))}</span> }.into_any(),
            };
            let full_reason = t.reason.clone().unwrap_or_default();
            let reason = step_reason(&full_reason);
            let (clock_time, date) = time_parts(t.at);
            view! {
                <tr data-step=i + 1>
                    <td class="num">{i + 1}</td>
                    <td class=format!("nowrap state-label state-{}", t.state.wire())>{t.state.wire()}</td>
                    <td class="nowrap">{t.actor.wire()}</td>
                    <td class="num">{t.attempt}</td>
                    <td class="mono nowrap" title=date>{clock_time}</td>
                    <td class="nowrap">{stay}</td>
                </tr>
                {(!reason.is_empty()).then(|| view! {
                    <tr class="reason-row" data-reason-of=i + 1>
                        <td></td>
                        <td class="reason" colspan="5" title=full_reason>{reason}</td>
                    </tr>
                })}
            }
        })
        .collect_view();
    // A function that returned nothing succeeded with `null`.
    let result = (status == State::Success).then(|| {
        doc.result
            .map_or_else(|| "null".to_owned(), |r| pretty_json(r.get()))
    });
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
            {doc.completion_t.as_deref().and_then(completed_at).map(|c| view! {
                <dt>"completed"</dt><dd data-completed="">{c}</dd>
            })}
            {started.map(|t0| view! {
                <dt>"age"</dt><dd>{move || age(clock.get() - t0)}</dd>
            })}
        </dl>
        // Focusable, so that a long result or traceback scrolls from the keyboard too.
        {result.map(|r| view! { <h3>"Result"</h3><pre class="result" tabindex="0" aria-label="Result">{r}</pre> })}
        {doc.exception.map(|e| view! { <h3>"Exception"</h3><pre class="exception" tabindex="0" aria-label="Exception">{e}</pre> })}
        <h3>"Transitions"</h3>
        // Scrolls sideways on its own on a narrow screen, rather than the whole detail.
        <div class="table-scroll" tabindex="0" role="region" aria-label="Transitions">
        <table class="transitions">
            <thead><tr><th class="num">"#"</th><th>"state"</th><th>"by"</th><th class="num">"attempt"</th><th>"at (UTC)"</th><th>"time there"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::step_reason;

    #[test]
    fn a_failed_step_reads_as_its_exception() {
        let traceback =
            "Traceback (most recent call last):\n  File \"x\", line 1\nValueError: bad input: 42";
        assert_eq!(step_reason(traceback), "ValueError: bad input: 42");
        assert_eq!(
            step_reason("executor default, manager 1, block 1 (local job 4649), node vm"),
            "executor default, manager 1, block 1 (local job 4649), node vm"
        );
        assert_eq!(step_reason(""), "");
    }
}

#[cfg(test)]
mod pretty_tests {
    use super::pretty_json;

    #[test]
    fn results_are_laid_out_as_serde_json_lays_them_out() {
        for text in [
            r#"{"a":[1,2,{"b":null}],"c":{},"d":[],"e":"x"}"#,
            r#"[ { "k" : [ ] , "v" : { } } , true , -1.5 ]"#,
            r#""a \"quoted\" {brace}, [bracket]: colon \\""#,
            r#"{"nested":{"deeper":{"deepest":[[["x"]]]}}}"#,
            "42",
            "null",
        ] {
            let value: serde_json::Value = serde_json::from_str(text).expect("valid");
            let expected = serde_json::to_string_pretty(&value).expect("serializes");
            assert_eq!(pretty_json(text), expected, "{text}");
        }
    }

    #[test]
    fn numbers_keep_every_digit() {
        assert_eq!(
            pretty_json("[123456789012345678901234567890,0.10000000000000000001,-1.5e3]"),
            "[\n  123456789012345678901234567890,\n  0.10000000000000000001,\n  -1.5e3\n]"
        );
    }
}
