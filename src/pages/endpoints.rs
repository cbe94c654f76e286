//! Endpoints: online or offline with the age of their last heartbeat, each executor's managers,
//! workers and tasks, and unfinished tasks stranded on an endpoint that went silent.
//!
//! Online and offline follow the event stream everywhere; heartbeat ages and executor reports
//! are not streamed, so this page asks for the list again every few seconds while it is open.

use leptos::prelude::*;
use lifeline_model::State;

use crate::components::task_table::age;
use crate::session::{Clock, Endpoints, LiveTasks};
use crate::url_state::{Page, ViewState};

/// How often the page asks for heartbeats and executor reports.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

#[component]
pub fn EndpointsPage() -> impl IntoView {
    let live = expect_context::<LiveTasks>();
    let clock = expect_context::<Clock>();
    let endpoints = expect_context::<Endpoints>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    endpoints.refresh();
    let refresher = set_interval_with_handle(move || endpoints.refresh(), REFRESH);
    on_cleanup(move || {
        if let Ok(r) = refresher {
            r.clear();
        }
    });
    let rows = move || {
        let now = clock.get();
        let pending = live.with(|l| l.map(|l| l.pending_by_endpoint()).unwrap_or_default());
        endpoints.with(|list| {
            list.iter()
                .map(|e| {
                    let id = e.endpoint_id;
                    let heartbeat = e.last_heartbeat.map(|t| format!("{} ago", age(now - t.as_secs_f64()))).unwrap_or_else(|| "never".into());
                    let stranded = if e.online { 0 } else { pending.get(&id).copied().unwrap_or(0) };
                    let executors = e
                        .report
                        .as_ref()
                        .map(|r| r.executors.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|x| {
                            let tasks = State::ALL
                                .into_iter()
                                .filter(|s| x.tasks.get(*s) > 0)
                                .map(|s| format!("{} {}", x.tasks.get(s), s.wire()))
                                .collect::<Vec<_>>()
                                .join(", ");
                            view! {
                                <li data-executor=x.label.clone()>
                                    <strong>{x.label.clone()}</strong>
                                    {format!(" ({}): {} managers, {} workers: {} busy, {} idle", x.provider, x.managers, x.total_workers, x.busy_workers, x.idle_workers)}
                                    {(!tasks.is_empty()).then(|| format!("; tasks: {tasks}"))}
                                </li>
                            }
                        })
                        .collect_view();
                    view! {
                        <tr data-endpoint-row=id.to_string() data-online=e.online.to_string()>
                            <td>
                                <button class="link" on:click=move |_| view_state.update(|v| { v.endpoints = vec![id]; v.page = Page::Lifecycle; })>
                                    {e.name.clone()}
                                </button>
                                <div class="mono muted">{id.to_string()}</div>
                            </td>
                            <td><span class=if e.online { "badge online" } else { "badge offline" }>{if e.online { "online" } else { "offline" }}</span></td>
                            <td>{heartbeat}</td>
                            <td><ul class="executors">{executors}</ul></td>
                            <td>
                                {(stranded > 0).then(|| view! {
                                    <span class="badge stranded" data-stranded=stranded title="Unfinished tasks on an endpoint whose heartbeat stopped">
                                        {format!("{stranded} stranded")}
                                    </span>
                                })}
                            </td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <section class="panel" aria-labelledby="endpoints-title">
            <h2 id="endpoints-title">"Endpoints"</h2>
            <table class="endpoints">
                <thead><tr><th>"Endpoint"</th><th>"Status"</th><th>"Last heartbeat"</th><th>"Executors"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <Show when=move || endpoints.with(<[_]>::is_empty)>
                <p class="muted">"No endpoint yet. " <code>"lifeline endpoint register NAME"</code> " creates one."</p>
            </Show>
        </section>
    }
}
