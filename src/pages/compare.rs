//! Endpoints side by side (`?view=compare&endpoint=A,B&window=15m`): for each chosen endpoint,
//! its life cycle with the tasks in each state now, the flow on each edge and the time tasks
//! spent in each state (p50 / p90 / p99) over the chosen window, as the service computes them
//! from its log (`/v1/stats?endpoint_id=X&window=W`), so that a slow queue on one site stands
//! out.

use leptos::prelude::*;
use lifeline_model::{EndpointId, State, StatsSummary, human_duration};

use crate::components::diagram::LifecycleDiagram;
use crate::session::{Auth, Clock, Endpoints, flows_of};
use crate::url_state::{CompareWindow, ViewState};

/// Seconds between refreshes of the figures.
const REFRESH_SECS: f64 = 5.0;

/// A percentile in words, or a dash when no task left the state in the window.
fn percentile(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), human_duration)
}

/// One endpoint's column: its diagram and its stays.
fn column(id: EndpointId, name: String, stats: Result<StatsSummary, String>) -> impl IntoView {
    let body = match stats {
        Err(e) => view! { <p class="muted" role="status">{e}</p> }.into_any(),
        Ok(stats) => {
            let flows = flows_of(&stats);
            let counts = stats.tasks;
            let dwell = State::ALL
                .into_iter()
                .filter(|s| !s.is_terminal())
                .map(|s| {
                    let d = stats.dwell.iter().find(|d| d.state == s);
                    let (p50, p90, p99) = d.map_or((None, None, None), |d| (d.p50, d.p90, d.p99));
                    view! {
                        <tr data-dwell-state=s.wire()>
                            <th scope="row">{s.wire()}</th>
                            <td>{percentile(p50)}</td>
                            <td>{percentile(p90)}</td>
                            <td>{percentile(p99)}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <div class="diagram-scroll">
                    <LifecycleDiagram counts=Signal::stored(counts) flows=Signal::stored(flows)
                        scope=format!("compare-{id}")/>
                </div>
                <table class="compare-dwell">
                    <caption>"Time in each state before leaving it"</caption>
                    <thead><tr><th scope="col">"State"</th><th scope="col">"p50"</th><th scope="col">"p90"</th><th scope="col">"p99"</th></tr></thead>
                    <tbody>{dwell}</tbody>
                </table>
            }
            .into_any()
        }
    };
    let heading = format!("compare-title-{id}");
    let labelled_by = heading.clone();
    view! {
        <section class="compare-column" data-compare-endpoint=id.to_string() aria-labelledby=labelled_by>
            <h3 id=heading>{name}</h3>
            {body}
        </section>
    }
}

#[component]
pub fn ComparePage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let clock = expect_context::<Clock>();
    let endpoints = expect_context::<Endpoints>();
    let refresh = Memo::new(move |_| (clock.get() / REFRESH_SECS).floor() as u64);
    let chosen = Memo::new(move |_| view_state.with(|v| v.endpoints.clone()));
    let window = Memo::new(move |_| view_state.with(|v| v.window));
    let figures = crate::fetched::fetched(move || {
        // Read, not only tracked: a memo nobody has read follows nothing.
        let _period = refresh.get();
        let api = auth.api.get();
        let chosen = chosen.get();
        let window = window.get();
        let mine = auth.mine(view_state.with(|v| v.mine));
        async move {
            let (api, mine) = (api?, mine?);
            let mut out = Vec::new();
            for id in chosen {
                let query = lifeline_model::api::StatsQuery {
                    endpoint_id: Some(id.to_string()),
                    mine: mine.then_some(true),
                    window: Some(window.wire().to_owned()),
                    ..Default::default()
                };
                out.push((id, api.stats_of(&query).await.map_err(|e| e.to_string())));
            }
            Some(out)
        }
    });
    let toggle = move |id: EndpointId| {
        view_state.update(|v| {
            if let Some(i) = v.endpoints.iter().position(|x| *x == id) {
                v.endpoints.remove(i);
            } else {
                v.endpoints.push(id);
            }
        })
    };
    let pickers = move || {
        endpoints.with(|list| {
            list.iter()
                .map(|e| {
                    let id = e.endpoint_id;
                    let checked = move || chosen.with(|c| c.contains(&id));
                    view! {
                        <label class="compare-pick">
                            <input type="checkbox" prop:checked=checked on:change=move |_| toggle(id)/>
                            {e.name.clone()}
                        </label>
                    }
                })
                .collect_view()
        })
    };
    let columns = move || {
        if chosen.with(Vec::len) < 2 {
            return view! { <p class="muted" data-testid="compare-hint">"Choose two or more endpoints to compare."</p> }.into_any();
        }
        let Some(list) = figures.get().flatten() else {
            return view! { <p class="muted">"Loading…"</p> }.into_any();
        };
        view! {
            <div class="compare-columns">
                {list.into_iter().map(|(id, stats)| {
                    let name = endpoints.name(id).unwrap_or_else(|| id.to_string());
                    column(id, name, stats)
                }).collect_view()}
            </div>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="compare-title">
            <h2 id="compare-title">"Compare endpoints"</h2>
            <div class="compare-choices">
                <fieldset>
                    <legend>"Endpoints"</legend>
                    {pickers}
                </fieldset>
                <label class="compare-window">"Flows and stays over "
                    <select on:change=move |ev| {
                        let value = event_target_value(&ev);
                        if let Some(w) = CompareWindow::ALL.into_iter().find(|w| w.wire() == value) {
                            view_state.update(|v| v.window = w);
                        }
                    } prop:value=move || window.get().wire()>
                        {CompareWindow::ALL.into_iter().map(|w| view! { <option value=w.wire()>{w.label()}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            {columns}
        </section>
    }
}
