//! The main page: the lifecycle diagram with live counts and flows (or those of a replayed
//! moment, chosen on the timeline under it), the task list, the selected task's detail (and its
//! path on the diagram), and warnings about refused transitions.

use leptos::prelude::*;
use lifeline_model::{State, edges};

use crate::components::diagram::LifecycleDiagram;
use crate::components::task_detail::{TaskDetail, close_detail, path_of, use_task_document};
use crate::components::task_table::{TaskTable, clear_filters};
use crate::components::timeline::Timeline;
use crate::session::{
    Clock, Connection, FunctionNames, LiveTasks, Replay, now_secs, short, use_shown_counts,
};
use crate::url_state::ViewState;

#[component]
pub fn LifecyclePage() -> impl IntoView {
    let live = expect_context::<LiveTasks>();
    let clock = expect_context::<Clock>();
    let functions = expect_context::<FunctionNames>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let replay = expect_context::<Replay>();
    let shown = use_shown_counts();
    let counts = Signal::derive(move || shown.get().unwrap_or_default());
    let flows = Signal::derive(move || {
        if replay.active() {
            return replay.flows();
        }
        clock.track();
        let now = now_secs();
        live.with(|l| match l {
            Some(l) => edges().map(|e| l.flow(e.from, e.to, now)).collect(),
            None => Vec::new(),
        })
    });
    let task = Memo::new(move |_| view_state.with(|v| v.task));
    let doc = use_task_document(task);
    let path = path_of(doc, task);
    let highlighted = Signal::derive(move || view_state.with(|v| v.states.clone()));
    let selected_edge = Signal::derive(move || view_state.with(|v| v.edge));
    let connection = expect_context::<Signal<Connection>>();
    let stale = move || connection.get() == Connection::Offline;
    let known = Signal::derive(move || shown.with(Option::is_some));
    // Where the diagram scrolls sideways (a phone), an opened task brings its last state into
    // view.
    let scroller = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        let Some(last) = path.with(|p| p.last().map(|s| s.state)) else {
            return;
        };
        let Some(el) = scroller.get() else {
            return;
        };
        let (width, visible) = (f64::from(el.scroll_width()), f64::from(el.client_width()));
        if width <= visible {
            return;
        }
        let layout = lifeline_model::diagram::layout();
        let x = layout.node(last).center().x / layout.width * width;
        el.set_scroll_left((x - visible / 2.0).max(0.0) as i32);
    });
    let on_state = Callback::new(move |state: State| {
        view_state.update(|v| {
            v.edge = None;
            v.states = if v.states == [state] {
                Vec::new()
            } else {
                vec![state]
            };
        })
    });
    let on_edge = Callback::new(move |edge: (State, State)| {
        view_state.update(|v| {
            v.states.clear();
            v.edge = if v.edge == Some(edge) {
                None
            } else {
                Some(edge)
            };
        })
    });

    // "/" focuses the search, Escape clears the selection.
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(t).ok())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
        match ev.key().as_str() {
            "/" if !typing => {
                ev.prevent_default();
                if let Some(el) = document().get_element_by_id("search")
                    && let Ok(input) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el)
                {
                    let _ = input.focus();
                }
            }
            "Escape" if view_state.with_untracked(|v| v.task.is_some()) => close_detail(view_state),
            _ => {}
        }
    });
    on_cleanup(move || keys.remove());

    let filter_text = move || {
        view_state.with(|v| {
            let mut parts = Vec::new();
            if !v.states.is_empty() {
                parts.push(format!(
                    "state {}",
                    v.states
                        .iter()
                        .map(|s| s.wire())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some((from, to)) = v.edge {
                parts.push(format!("took {from} → {to}"));
            }
            if let Some(failure) = &v.failure {
                let signature = failure.split_once(':').map_or(failure.as_str(), |(_, s)| s);
                parts.push(format!("failed: {signature}"));
            }
            if let Some(group) = v.group {
                parts.push(format!("submission {}", short(&group.to_string())));
            }
            parts.join("; ")
        })
    };
    let function_options = move || {
        functions.with(|f| {
            let mut all: Vec<(String, String)> = f.iter().map(|(id, name)| (id.to_string(), name.clone())).collect();
            all.sort_by(|a, b| a.1.cmp(&b.1));
            all.into_iter().map(|(id, name)| view! { <option value=id.clone()>{format!("{name} ({})", short(&id))}</option> }).collect_view()
        })
    };
    let warnings = move || {
        live.with(|l| {
            l.map(|l| l.warnings.iter().rev().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
    };

    view! {
        <div class="lifecycle">
            <section class="panel diagram-panel" aria-labelledby="diagram-title">
                <h2 id="diagram-title">"Task life cycle"</h2>
                <div class="diagram-scroll" class:stale=stale node_ref=scroller>
                    <LifecycleDiagram counts=counts flows=flows path=path highlighted=highlighted selected_edge=selected_edge
                        known=known on_state=on_state on_edge=on_edge/>
                </div>
                <p class="scroll-hint muted">"Swipe sideways to see the whole life cycle."</p>
                <Timeline/>
                <ul class="state-counts" aria-label="Tasks per state">
                    {State::ALL.into_iter().map(|state| {
                        let pressed = move || highlighted.with(|h| h.contains(&state));
                        view! {
                            <li>
                                <button class=format!("state-count state-{}", state.wire()) data-count-state=state.wire()
                                    aria-pressed=move || pressed().to_string()
                                    on:click=move |_| on_state.run(state)>
                                    <span>{state.label()}</span>
                                    <span class="count">{move || counts.with(|c| c.get(state))}</span>
                                </button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
                <p class="legend">
                    <span class="key forward">"forward"</span>
                    <span class="key retry">"retry (next attempt)"</span>
                    <span class="key requeue">"requeue (same attempt)"</span>
                    <span class="key fail">"failure"</span>
                    <span class="key cancel">"cancel"</span>
                    " Edges thicken with their flow (transitions per second over 10 s, or over the minute before a replayed moment). Click a state or an edge to filter the list."
                </p>
                <Show when=move || !warnings().is_empty()>
                    <details class="warnings" open>
                        <summary>{move || format!("{} transitions refused by the life cycle model", warnings().len())}</summary>
                        <ul>
                            {move || warnings().into_iter().map(|w| view! {
                                <li data-warning-seq=w.seq><span class="mono">{format!("#{} {}", w.seq, short(&w.task_id.to_string()))}</span>" "{w.message}</li>
                            }).collect_view()}
                        </ul>
                    </details>
                </Show>
            </section>
            <div class="work">
                <section class="panel tasks-panel" class:stale=stale aria-labelledby="tasks-title">
                    <div class="toolbar">
                        <h2 id="tasks-title">"Tasks"</h2>
                        <input id="search" type="search" placeholder="Search ids  (press /)" aria-label="Search task ids"
                            prop:value=move || view_state.with(|v| v.search.clone())
                            on:input=move |ev| { let text = event_target_value(&ev); view_state.update(|v| v.search = text) }/>
                        <select aria-label="State" on:change=move |ev| {
                            let value = event_target_value(&ev);
                            view_state.update(|v| { v.edge = None; v.states = value.parse().map(|s| vec![s]).unwrap_or_default(); });
                        } prop:value=move || view_state.with(|v| v.states.first().map(|s| s.wire().to_owned()).unwrap_or_default())>
                            <option value="">"any state"</option>
                            {State::ALL.into_iter().map(|s| view! { <option value=s.wire()>{s.label()}</option> }).collect_view()}
                        </select>
                        <select aria-label="Function" on:change=move |ev| {
                            let value = event_target_value(&ev);
                            view_state.update(|v| v.function = value.parse().ok());
                        } prop:value=move || view_state.with(|v| v.function.map(|f| f.to_string()).unwrap_or_default())>
                            <option value="">"any function"</option>
                            {function_options}
                        </select>
                        <span class="active-filter">{filter_text}</span>
                        <button on:click=move |_| view_state.update(clear_filters)>"Clear filters"</button>
                    </div>
                    <TaskTable/>
                </section>
                {move || task.get().map(|task| view! { <TaskDetail doc=doc task=task/> })}
            </div>
        </div>
    }
}
