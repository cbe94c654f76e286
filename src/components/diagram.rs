//! The lifecycle diagram, drawn as SVG from the shared model's layout: lanes per actor, one box
//! per state with its count, one curve per edge.

use leptos::prelude::*;
use lifeline_model::diagram::{self, Route};
use lifeline_model::{EdgeKind, State, StateCounts};

fn edge_class(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Forward => "edge edge-forward",
        EdgeKind::Retry => "edge edge-retry",
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

/// The life cycle with the number of tasks in each state.
#[component]
pub fn LifecycleDiagram(counts: Signal<StateCounts>) -> impl IntoView {
    let layout = diagram::layout();
    let view_box = format!("0 0 {} {}", layout.width, layout.height);

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
        .map(|route| {
            let e = route.edge;
            view! {
                <path
                    class=edge_class(e.kind)
                    d=route.path()
                    data-from=e.from.wire()
                    data-to=e.to.wire()
                    marker-end="url(#arrow)"
                >
                    <title>{edge_title(route)}</title>
                </path>
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
            view! {
                <g
                    class=node_class(state)
                    data-state=state.wire()
                    data-count=count
                    role="img"
                    aria-label=move || format!("{}: {} tasks", state.label(), count())
                >
                    <title>{state.description()}</title>
                    <rect x=node.x y=node.y width=node.width height=node.height rx="8"/>
                    <text class="node-name" x=center.x y=center.y - 4.0>{state.wire()}</text>
                    <text class="node-count" x=center.x y=center.y + 13.0>{count}</text>
                </g>
            }
        })
        .collect_view();

    view! {
        <svg class="diagram" viewBox=view_box role="group" aria-label="Task life cycle">
            <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                    <path d="M0,0 L10,5 L0,10 z" class="arrow-head"/>
                </marker>
            </defs>
            {lanes}
            {edges}
            {nodes}
        </svg>
    }
}
