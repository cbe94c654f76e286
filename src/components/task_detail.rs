//! One task in full: its status document, result or exception, and every transition.

use leptos::prelude::*;
use leptos::task::spawn_local;
use lifeline_model::{TaskId, TransitionRecord};
use serde_json::Value;

use crate::components::task_table::age;
use crate::session::Session;

/// A selected task's status document, fetched again whenever its row changes.
pub fn use_task_document(session: Session) -> RwSignal<Option<Value>> {
    let doc = RwSignal::new(None::<Value>);
    // The row's (state, attempt, since) changes when the task moves.
    let key = Memo::new(move |_| {
        session.version.track();
        let task = session.view.with(|v| v.task)?;
        let row = session.live.with_value(|l| {
            l.as_ref()
                .and_then(|l| l.task(task).map(|t| (t.state, t.attempt, t.since)))
        });
        Some((task, row))
    });
    Effect::new(move |_| {
        let Some((task, _)) = key.get() else {
            doc.set(None);
            return;
        };
        let Some(api) = session.api.get_untracked() else {
            return;
        };
        spawn_local(async move {
            match api.get::<Value>(&format!("/v1/tasks/{task}")).await {
                Ok(value) if session.view.with_untracked(|v| v.task == Some(task)) => {
                    doc.set(Some(value))
                }
                Ok(_) => {}
                Err(error) => session.fail(&error),
            }
        });
    });
    doc
}

/// The steps of a status document, for the diagram: its transition log.
pub fn path_of(doc: &Value) -> Vec<TransitionRecord> {
    serde_json::from_value(doc["details"]["task_transitions"].clone()).unwrap_or_default()
}

fn time(epoch: f64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(epoch * 1000.0));
    let iso: String = date.to_iso_string().into();
    iso.replace('T', " ")
}

#[component]
pub fn TaskDetail(doc: RwSignal<Option<Value>>, task: TaskId) -> impl IntoView {
    let session = expect_context::<Session>();
    let endpoint_name = move |id: &str| {
        session
            .endpoints
            .with(|list| {
                list.iter()
                    .find(|e| e.endpoint_id.to_string() == id)
                    .map(|e| e.name.clone())
            })
            .unwrap_or_else(|| id.to_owned())
    };
    view! {
        <aside class="detail" aria-label="Task detail" data-task-detail=task.to_string()>
            <header>
                <h2>"Task " <span class="mono">{task.to_string()}</span></h2>
                <button aria-label="Close (Escape)" on:click=move |_| session.view.update(|v| v.task = None)>"×"</button>
            </header>
            {move || match doc.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(d) => {
                    let status = d["status"].as_str().unwrap_or_default().to_owned();
                    let label = status.parse::<lifeline_model::State>().map(|s| s.label()).unwrap_or("unknown");
                    let log = d["details"]["task_transitions"].as_array().cloned().unwrap_or_default();
                    let endpoint = endpoint_name(d["details"]["endpoint_id"].as_str().unwrap_or_default());
                    // Where each attempt ran: the endpoint records it when a manager takes the task.
                    let ran_on = log
                        .iter()
                        .filter(|t| t["state"] == "waiting-for-launch")
                        .map(|t| format!("attempt {}: {} ({})", t["attempt"], endpoint, t["reason"].as_str().unwrap_or("?")))
                        .collect::<Vec<_>>();
                    let rows = log
                        .iter()
                        .enumerate()
                        .map(|(i, t)| {
                            let at = t["at"].as_f64().unwrap_or_default();
                            let stay = log.get(i + 1).and_then(|n| n["at"].as_f64()).map(|n| lifeline_model::human_duration(n - at)).unwrap_or_else(|| "now".into());
                            view! {
                                <tr data-step=i + 1>
                                    <td>{i + 1}</td>
                                    <td class=format!("state-label state-{}", t["state"].as_str().unwrap_or_default())>{t["state"].as_str().unwrap_or_default().to_owned()}</td>
                                    <td>{t["actor"].as_str().unwrap_or_default().to_owned()}</td>
                                    <td>{t["attempt"].as_u64().unwrap_or_default()}</td>
                                    <td class="mono">{time(at)}</td>
                                    <td>{stay}</td>
                                    <td class="reason">{t["reason"].as_str().unwrap_or_default().lines().next().unwrap_or_default().to_owned()}</td>
                                </tr>
                            }
                        })
                        .collect_view();
                    view! {
                        <dl class="facts">
                            <dt>"status"</dt><dd class=format!("state-label state-{status}") data-status=status.clone()>{label}</dd>
                            <dt>"pending"</dt><dd>{d["pending"].to_string()}</dd>
                            <dt>"attempt"</dt><dd>{format!("{} of at most {}", d["details"]["attempt"], d["details"]["max_retries"].as_u64().unwrap_or(0) + 1)}</dd>
                            <dt>"endpoint"</dt><dd>{endpoint.clone()}</dd>
                            {(!ran_on.is_empty()).then(|| view! {
                                <dt>"ran on"</dt><dd data-ran-on="">{ran_on.into_iter().map(|r| view! { <div>{r}</div> }).collect_view()}</dd>
                            })}
                            {d["completion_t"].as_str().map(|c| view! { <dt>"completion_t"</dt><dd class="mono">{c.to_owned()}</dd> })}
                            {d["details"]["task_transitions"].as_array().and_then(|l| l.first()).and_then(|f| f["at"].as_f64()).map(|t0| view! {
                                <dt>"age"</dt><dd>{move || age(session.clock.get() - t0)}</dd>
                            })}
                        </dl>
                        {d.get("result").map(|r| view! { <h3>"Result"</h3><pre class="result">{serde_json::to_string_pretty(r).unwrap_or_default()}</pre> })}
                        {d["exception"].as_str().map(|e| view! { <h3>"Exception"</h3><pre class="exception">{e.to_owned()}</pre> })}
                        <h3>"Transitions"</h3>
                        <table class="transitions">
                            <thead><tr><th>"#"</th><th>"state"</th><th>"actor"</th><th>"attempt"</th><th>"at (UTC)"</th><th>"time there"</th><th>"reason"</th></tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    }
                    .into_any()
                }
            }}
        </aside>
    }
}
