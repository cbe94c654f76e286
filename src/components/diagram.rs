//! The lifecycle diagram, drawn as SVG from the shared model's layout: lanes per actor, one box
//! per state with its live count, one curve per edge that thickens with its flow, and, for a
//! selected task, the path it took.

use leptos::prelude::*;
use lifeline_model::diagram::{self, Route};
use lifeline_model::{EdgeKind, State, StateCounts, TransitionRecord, human_duration};

/// A step in words: when, by whom, on which attempt, and how long the task stayed.
fn describe_step(
    number: usize,
    step: &TransitionRecord,
    next: Option<&TransitionRecord>,
) -> String {
    let stay = match next {
        Some(n) => format!(
            "{} there",
            human_duration(n.at.as_secs_f64() - step.at.as_secs_f64())
        ),
        None => "still there".to_owned(),
    };
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        step.at.as_secs_f64() * 1000.0,
    ));
    let time: String = date.to_iso_string().into();
    format!(
        "step {number}: {} by {}, attempt {}, at {}; {stay}",
        step.state,
        step.actor,
        step.attempt,
        &time[11..23]
    )
}

fn edge_class(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Forward => "edge edge-forward",
        EdgeKind::Retry => "edge edge-retry",
        EdgeKind::Requeue => "edge edge-requeue",
        EdgeKind::Fail => "edge edge-fail",
        EdgeKind::Cancel => "edge edge-cancel",
    }
}

fn node_class(state: State) -> &'static str {
    match state {
        State::Success => "node node-success",
        State::Failed => "node node-failed",
        State::Cancelled => "node node-cancelled",
        State::Received
        | State::WaitingForEp
        | State::DispatchedToEp
        | State::WaitingForNodes
        | State::WaitingForLaunch
        | State::Running => "node",
    }
}

fn edge_title(route: &Route) -> String {
    let e = route.edge;
    let actors: Vec<&str> = e.actors.iter().map(|a| a.wire()).collect();
    format!(
        "{} → {} by {}: {}",
        e.from,
        e.to,
        actors.join(" or "),
        e.description
    )
}

/// Stroke width for a flow of `rate` transitions per second.
fn width(rate: f64) -> f64 {
    1.5 + (1.0 + rate).log2().min(5.0) * 1.2
}

fn rate_text(rate: f64) -> String {
    match rate {
        r if r >= 100.0 => format!("{r:.0}/s"),
        r if r >= 1.0 => format!("{r:.1}/s"),
        r => format!("{r:.2}/s"),
    }
}

/// The life cycle with the number of tasks in each state.
///
/// `flows` gives transitions per second per edge, in the order of
/// [`lifeline_model::edges`]; `path` draws a selected task's steps (its transition log);
/// `on_state` and `on_edge` receive clicks (and Enter on a focused state).
#[component]
pub fn LifecycleDiagram(
    counts: Signal<StateCounts>,
    #[prop(optional, into)] flows: Option<Signal<Vec<f64>>>,
    #[prop(optional, into)] path: Option<Signal<Vec<TransitionRecord>>>,
    #[prop(optional, into)] highlighted: Option<Signal<Vec<State>>>,
    #[prop(optional, into)] on_state: Option<Callback<State>>,
    #[prop(optional, into)] on_edge: Option<Callback<(State, State)>>,
) -> impl IntoView {
    let layout = diagram::layout();
    let view_box = format!("0 0 {} {}", layout.width, layout.height);
    let flows = flows.unwrap_or_else(|| Signal::derive(Vec::new));
    let path = path.unwrap_or_else(|| Signal::derive(Vec::new));
    let highlighted = highlighted.unwrap_or_else(|| Signal::derive(Vec::new));

    let lanes = layout
        .lanes
        .iter()
        .map(|lane| {
            view! {
                <g class="lane">
                    <rect x="0" y=lane.y width=layout.width height=lane.height/>
                    <text class="lane-label" x="10" y=lane.y + 20.0>{lane.actor.label()}</text>
                </g>
            }
        })
        .collect_view();

    let edges = layout
        .routes
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let e = route.edge;
            let rate = move || flows.with(|f| f.get(i).copied().unwrap_or(0.0));
            let taken = move || {
                path.with(|p| {
                    p.windows(2)
                        .any(|w| w[0].state == e.from && w[1].state == e.to)
                })
            };
            let mid = route.midpoint();
            view! {
                <g class="edge-group" class:taken=taken data-from=e.from.wire() data-to=e.to.wire()
                    on:click=move |_| if let Some(cb) = on_edge { cb.run((e.from, e.to)) }>
                    <path class=edge_class(e.kind) d=route.path() marker-end="url(#arrow)"
                        stroke-width=move || width(rate()).to_string()>
                        <title>{edge_title(route)}</title>
                    </path>
                    // A wide invisible stroke makes thin edges easy to click.
                    <path class="edge-hit" d=route.path()/>
                    <Show when=move || { rate() > 0.0 }>
                        <text class="flow" x=mid.x y=mid.y - 3.0>{move || rate_text(rate())}</text>
                    </Show>
                </g>
            }
        })
        .collect_view();

    let nodes = layout
        .nodes
        .iter()
        .map(|node| {
            let state = node.state;
            let count = move || counts.with(|c| c.get(state));
            let center = node.center();
            let steps = move || {
                path.with(|p| {
                    p.iter()
                        .enumerate()
                        .filter(|(_, s)| s.state == state)
                        .map(|(i, _)| (i + 1).to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
            };
            let visited = move || !steps().is_empty();
            let is_highlighted = move || highlighted.with(|h| h.contains(&state));
            let activate = move || {
                if let Some(cb) = on_state {
                    cb.run(state);
                }
            };
            let badge_x = node.x + node.width - 6.0;
            let badge_y = node.y - 2.0;
            view! {
                <g
                    class=node_class(state)
                    class:visited=visited
                    class:highlighted=is_highlighted
                    data-state=state.wire()
                    data-count=count
                    role="button"
                    tabindex="0"
                    aria-label=move || format!("{}: {} tasks", state.label(), count())
                    aria-pressed=move || is_highlighted().to_string()
                    on:click=move |_| activate()
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Enter" || ev.key() == " " {
                            ev.prevent_default();
                            activate();
                        }
                    }
                >
                    <title>{move || {
                        // The description, then every visit of the selected task.
                        let visits = path.with(|p| {
                            p.iter()
                                .enumerate()
                                .filter(|(_, s)| s.state == state)
                                .map(|(i, s)| describe_step(i + 1, s, p.get(i + 1)))
                                .collect::<Vec<_>>()
                        });
                        std::iter::once(state.description().to_owned()).chain(visits).collect::<Vec<_>>().join("\n")
                    }}</title>
                    <rect x=node.x y=node.y width=node.width height=node.height rx="8"/>
                    <text class="node-name" x=center.x y=center.y - 4.0>{state.wire()}</text>
                    <text class="node-count" x=center.x y=center.y + 13.0>{count}</text>
                    <Show when=visited>
                        <text class="step" x=badge_x y=badge_y>{steps}</text>
                    </Show>
                </g>
            }
        })
        .collect_view();

    view! {
        <svg class="diagram" viewBox=view_box role="group" aria-label="Task life cycle">
            <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
                    <path d="M0,0 L10,5 L0,10 z" class="arrow-head"/>
                </marker>
            </defs>
            {lanes}
            {edges}
            {nodes}
        </svg>
    }
}
