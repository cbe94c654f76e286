//! Endpoints: online or offline with the age of their last heartbeat, each executor's managers,
//! workers, tasks and blocks (see [`crate::components::blocks`]), and unfinished tasks stranded
//! on an endpoint that went silent.
//!
//! Online and offline follow the event stream everywhere; heartbeat ages and executor reports
//! are not streamed, so this page asks for the list again every few seconds while it is open.

use crate::components::blocks::{Executor, endpoint_now};
use crate::components::task_table::age;
use crate::session::{Auth, Clock, Connection, Endpoints};
use crate::url_state::{Page, ViewState};
use leptos::prelude::*;

/// How often the page asks for heartbeats and executor reports.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

#[component]
pub fn EndpointsPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let clock = expect_context::<Clock>();
    let endpoints = expect_context::<Endpoints>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let connection = expect_context::<Signal<Connection>>();
    endpoints.refresh();
    let refresher = set_interval_with_handle(move || endpoints.refresh(), REFRESH);
    on_cleanup(move || {
        if let Ok(r) = refresher {
            r.clear();
        }
    });
    // Unfinished tasks on each offline endpoint, from its statistics (asked again with the list).
    let stranded_by = crate::fetched::fetched(move || {
        let offline: Vec<lifeline_model::EndpointId> = endpoints.with(|list| {
            list.iter()
                .filter(|e| !e.online)
                .map(|e| e.endpoint_id)
                .collect()
        });
        let api = auth.api.get_untracked();
        let mine = auth
            .mine(view_state.with_untracked(|v| v.mine))
            .unwrap_or(false);
        async move {
            let mut pending = std::collections::HashMap::new();
            let Some(api) = api else {
                return pending;
            };
            for id in offline {
                if let Ok(stats) = api.stats(&[id], mine).await {
                    pending.insert(id, stats.pending);
                }
            }
            pending
        }
    });
    let rows = move || {
        let now = clock.get();
        let pending = stranded_by.get().unwrap_or_default();
        endpoints.with(|list| {
            list.iter()
                .map(|e| {
                    let id = e.endpoint_id;
                    let heartbeat = e.last_heartbeat.map(|t| format!("{} ago", age(now - t.as_secs_f64()))).unwrap_or_else(|| "never".into());
                    let stranded = if e.online { 0 } else { pending.get(&id).copied().unwrap_or(0) };
                    let executors = e
                        .report
                        .as_ref()
                        .map(|r| {
                            let now = endpoint_now(r.at, e.last_heartbeat, now);
                            r.executors
                                .iter()
                                .map(|x| view! { <Executor executor=x.clone() now=now/> })
                                .collect_view()
                        });
                    let rejected = e.report.as_ref().map_or(0, |r| r.rejected_connections);
                    view! {
                        <tr data-endpoint-row=id.to_string() data-online=e.online.to_string()>
                            <td class="endpoint-name">
                                <button class="link" on:click=move |_| view_state.update(|v| { v.endpoints = vec![id]; v.page = Page::Lifecycle; })>
                                    {e.name.clone()}
                                </button>
                                <div class="mono muted">{id.to_string()}</div>
                            </td>
                            <td data-label="Status">{
                                // Without the service, the last state known is all there is.
                                let status = if e.online { "online" } else { "offline" };
                                if connection.get() == Connection::Offline {
                                    view! { <span class="badge unknown" title="The service cannot be reached">{format!("{status}?")}</span> }.into_any()
                                } else {
                                    view! { <span class=format!("badge {status}")>{status}</span> }.into_any()
                                }
                            }</td>
                            <td data-label="Last heartbeat">{heartbeat}</td>
                            <td data-label="Executors">
                                <ul class="executors">{executors}</ul>
                                {(rejected > 0).then(|| view! {
                                    <p class="muted rejected" data-rejected-connections=rejected>
                                        {format!(
                                            "{rejected} {} to the interchange refused: not a manager of a live block",
                                            if rejected == 1 { "connection" } else { "connections" }
                                        )}
                                    </p>
                                })}
                            </td>
                            <td class="endpoint-flags">
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
                <thead><tr><th>"Endpoint"</th><th>"Status"</th><th>"Last heartbeat"</th><th>"Executors"</th><th><span class="sr-only">"Notes"</span></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <Show when=move || endpoints.with(<[_]>::is_empty)>
                <p class="muted">"No endpoint yet. " <code>"lifeline endpoint register NAME"</code> " creates one."</p>
            </Show>
        </section>
    }
}
