//! The lifecycle diagram, drawn as SVG from the shared model's layout: lanes per actor, one box
//! per state with its live count, one curve per edge that thickens with its flow, and, for a
//! selected task, the path it took.
//!
//! The path is drawn over the diagram without changing what each edge is: a taken retry stays
//! dashed amber and a taken failure orange, only wider and outlined, while everything the task
//! did not touch is dimmed. Step numbers sit in badges of their own. Rates and step badges are
//! drawn in layers of their own, off the arrows and out of the accessible tree, so that each
//! state's and edge's accessible name matches what it shows.
//!
//! For the keyboard the diagram is one tab stop: the arrow keys move between its states and
//! then its edges, Home and End jump to the ends, Enter or Space activates.

use leptos::prelude::*;
use lifeline_model::diagram::{self, Point, Route};
use lifeline_model::{EdgeKind, State, StateCounts, TransitionRecord, edges, human_duration};

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

fn kind_word(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Forward => "forward",
        EdgeKind::Retry => "retry",
        EdgeKind::Requeue => "requeue",
        EdgeKind::Fail => "failure",
        EdgeKind::Cancel => "cancel",
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

/// Stroke width for a flow of `rate` transitions per second: a square root, so that a trickle
/// already shows (0.5/s is twice an idle edge's width) and a flood stays within bounds.
pub fn width(rate: f64) -> f64 {
    if rate.is_nan() || rate <= 0.0 {
        1.5
    } else {
        (2.5 + rate.sqrt() * 2.0).min(11.0)
    }
}

fn rate_text(rate: f64) -> String {
    match rate {
        r if r >= 100.0 => format!("{r:.0}/s"),
        r if r >= 1.0 => format!("{r:.1}/s"),
        r => format!("{r:.2}/s"),
    }
}

/// How full a state's count bar is: logarithmic, so that 1 task shows and 100,000 does not
/// swamp the rest; 0 for an empty state.
pub fn count_weight(count: u64, largest: u64) -> f64 {
    if count == 0 || largest == 0 {
        return 0.0;
    }
    ((1.0 + count as f64).ln() / (1.0 + largest as f64).ln()).clamp(0.08, 1.0)
}

/// The steps at which a path visited `state`, as "3 · 6".
pub fn step_numbers(path: &[TransitionRecord], state: State) -> String {
    path.iter()
        .enumerate()
        .filter(|(_, s)| s.state == state)
        .map(|(i, _)| (i + 1).to_string())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Where an edge's rate label goes: beside the curve's middle, off the line, on the side away
/// from the curve's bend.
fn label_point(route: &Route) -> Point {
    let (a, b, c, d) = (route.start, route.control1, route.control2, route.end);
    let tx = 0.75 * (b.x - a.x) + 1.5 * (c.x - b.x) + 0.75 * (d.x - c.x);
    let ty = 0.75 * (b.y - a.y) + 1.5 * (c.y - b.y) + 0.75 * (d.y - c.y);
    let length = (tx * tx + ty * ty).sqrt().max(1e-6);
    let (nx, ny) = (-ty / length, tx / length);
    let mid = route.midpoint();
    // Mostly horizontal edges get their label above, vertical ones to the right.
    let flip = if ny > 0.0 || (ny.abs() < 1e-6 && nx < 0.0) {
        -1.0
    } else {
        1.0
    };
    Point {
        x: mid.x + nx * flip * 10.0,
        y: mid.y + ny * flip * 10.0 + 4.0,
    }
}

/// Calls `focus()` on an element of the diagram (SVG elements are not `HtmlElement`s).
fn focus_element(id: &str) {
    let Some(el) = document().get_element_by_id(id) else {
        return;
    };
    if let Ok(focus) = js_sys::Reflect::get(&el, &"focus".into())
        && let Ok(focus) = wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(focus)
    {
        let _ = focus.call0(&el);
    }
}

fn state_id(scope: &str, state: State) -> String {
    format!("{scope}-state-{}", state.wire())
}

fn edge_id(scope: &str, from: State, to: State) -> String {
    format!("{scope}-edge-{}-{}", from.wire(), to.wire())
}

/// Where the arrow keys move the diagram's focus among `len` items.
pub fn roving_move(key: &str, at: usize, len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    Some(match key {
        "ArrowRight" | "ArrowDown" => (at + 1) % len,
        "ArrowLeft" | "ArrowUp" => (at + len - 1) % len,
        "Home" => 0,
        "End" => len - 1,
        _ => return None,
    })
}

/// The life cycle with the number of tasks in each state.
///
/// `flows` gives transitions per second per edge, in the order of
/// [`lifeline_model::edges`]; `path` draws a selected task's steps (its transition log);
/// `highlighted` marks states and `selected_edge` an edge the list is filtered by; `known` is
/// false until the counts have been loaded (they show as "–", not as an empty system); `on_state`
/// and `on_edge` receive clicks (and Enter or Space on a focused state or edge). `scope` starts
/// its elements' ids (`diagram` unless given), so that several diagrams share a page.
#[component]
pub fn LifecycleDiagram(
    counts: Signal<StateCounts>,
    #[prop(optional, into)] flows: Option<Signal<Vec<f64>>>,
    #[prop(optional, into)] path: Option<Signal<Vec<TransitionRecord>>>,
    #[prop(optional, into)] highlighted: Option<Signal<Vec<State>>>,
    #[prop(optional, into)] selected_edge: Option<Signal<Option<(State, State)>>>,
    #[prop(optional, into)] known: Option<Signal<bool>>,
    #[prop(optional, into)] on_state: Option<Callback<State>>,
    #[prop(optional, into)] on_edge: Option<Callback<(State, State)>>,
    #[prop(optional, into)] scope: Option<String>,
) -> impl IntoView {
    let scope = scope.unwrap_or_else(|| "diagram".to_owned());
    let arrow = format!("{scope}-arrow");
    let arrow_url = format!("url(#{arrow})");
    let layout = diagram::layout();
    let view_box = format!("0 0 {} {}", layout.width, layout.height);
    let flows = flows.unwrap_or_else(|| Signal::derive(Vec::new));
    let path = path.unwrap_or_else(|| Signal::derive(Vec::new));
    let highlighted = highlighted.unwrap_or_else(|| Signal::derive(Vec::new));
    let selected_edge = selected_edge.unwrap_or_else(|| Signal::derive(|| None));
    let known = known.unwrap_or_else(|| Signal::derive(|| true));
    let has_path = move || path.with(|p| !p.is_empty());
    let largest = Memo::new(move |_| {
        counts.with(|c| State::ALL.into_iter().map(|s| c.get(s)).max().unwrap_or(0))
    });

    // The keyboard's order: the states, then the edges; one of them is the tab stop.
    let order: Vec<String> = State::ALL
        .into_iter()
        .map(|s| state_id(&scope, s))
        .chain(edges().map(|e| edge_id(&scope, e.from, e.to)))
        .collect();
    let item_count = order.len();
    let order = StoredValue::new(order);
    let focus_at = RwSignal::new(0_usize);
    let tab_index = move |i: usize| if focus_at.get() == i { "0" } else { "-1" };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let Some(next) = roving_move(&ev.key(), focus_at.get_untracked(), item_count) else {
            return;
        };
        ev.prevent_default();
        focus_at.set(next);
        order.with_value(|o| {
            if let Some(id) = o.get(next) {
                focus_element(id);
            }
        });
    };
    let activate_key = |ev: &leptos::ev::KeyboardEvent| {
        let key = ev.key();
        if key == "Enter" || key == " " {
            ev.prevent_default();
            true
        } else {
            false
        }
    };

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

    let edge_views = layout
        .routes
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let e = route.edge;
            let item = State::ALL.len() + i;
            let rate = move || flows.with(|f| f.get(i).copied().unwrap_or(0.0));
            let taken = move || {
                path.with(|p| {
                    p.windows(2)
                        .any(|w| w[0].state == e.from && w[1].state == e.to)
                })
            };
            let selected = move || selected_edge.get() == Some((e.from, e.to));
            let activate = move || {
                if let Some(cb) = on_edge {
                    cb.run((e.from, e.to));
                }
            };
            view! {
                <g class="edge-group" class:taken=taken class:selected=selected class:flowing=move || { rate() > 0.0 }
                    id=edge_id(&scope, e.from, e.to) data-from=e.from.wire() data-to=e.to.wire() data-kind=kind_word(e.kind)
                    role="button" tabindex=move || tab_index(item)
                    aria-label=format!("{} → {}, {}", e.from.wire(), e.to.wire(), kind_word(e.kind))
                    aria-pressed=move || selected().to_string()
                    on:focus=move |_| focus_at.set(item)
                    on:click=move |_| activate()
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| if activate_key(&ev) { activate() }>
                    <title>{edge_title(route)}</title>
                    // Under the edge, seen only when the path takes it or the list is filtered by it.
                    <path class="edge-halo" d=route.path()/>
                    // An inline style, because the style sheet's width for an edge would override
                    // a presentation attribute.
                    <path class=edge_class(e.kind) d=route.path() marker-end=arrow_url.clone()
                        style=move || {
                            let least = if selected() { 4.0 } else if taken() { 3.5 } else { 0.0 };
                            format!("stroke-width: {:.2}px", width(rate()).max(least))
                        }/>
                    // A wide invisible stroke makes thin edges easy to hit.
                    <path class="edge-hit" d=route.path()/>
                </g>
            }
        })
        .collect_view();

    // Rates beside their edges, with a halo in the panel's colour so that they read over lines.
    let rates = layout
        .routes
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let rate = move || flows.with(|f| f.get(i).copied().unwrap_or(0.0));
            let at = label_point(route);
            let (from, to) = (route.edge.from.wire(), route.edge.to.wire());
            view! {
                <Show when=move || { rate() > 0.0 }>
                    <text class="flow" x=at.x y=at.y data-flow-from=from data-flow-to=to>
                        {move || rate_text(rate())}
                    </text>
                </Show>
            }
        })
        .collect_view();

    let nodes = layout
        .nodes
        .iter()
        .map(|node| {
            let state = node.state;
            let item = state.index();
            let count = move || counts.with(|c| c.get(state));
            let center = node.center();
            let visited = move || path.with(|p| p.iter().any(|s| s.state == state));
            let is_highlighted = move || highlighted.with(|h| h.contains(&state));
            let activate = move || {
                if let Some(cb) = on_state {
                    cb.run(state);
                }
            };
            let bar_width = node.width - 16.0;
            view! {
                <g
                    class=node_class(state)
                    class:visited=visited
                    class:highlighted=is_highlighted
                    class:empty=move || count() == 0
                    id=state_id(&scope, state)
                    data-state=state.wire()
                    data-count=count
                    role="button"
                    tabindex=move || tab_index(item)
                    aria-label=move || {
                        let n = count();
                        if known.get() {
                            format!("{}: {n} {}", state.wire(), if n == 1 { "task" } else { "tasks" })
                        } else {
                            format!("{}: – (not loaded yet)", state.wire())
                        }
                    }
                    aria-pressed=move || is_highlighted().to_string()
                    on:focus=move |_| focus_at.set(item)
                    on:click=move |_| activate()
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| if activate_key(&ev) { activate() }
                >
                    <title>{move || {
                        // What the state means, then every visit of the selected task.
                        let visits = path.with(|p| {
                            p.iter()
                                .enumerate()
                                .filter(|(_, s)| s.state == state)
                                .map(|(i, s)| describe_step(i + 1, s, p.get(i + 1)))
                                .collect::<Vec<_>>()
                        });
                        std::iter::once(format!("{}: {}", state.label(), state.description()))
                            .chain(visits)
                            .collect::<Vec<_>>()
                            .join("\n")
                    }}</title>
                    <rect x=node.x y=node.y width=node.width height=node.height rx="8"/>
                    <rect class="count-bar" x=node.x + 8.0 y=node.y + node.height - 7.0 height="3" rx="1.5"
                        width=move || (bar_width * count_weight(count(), largest.get())).to_string()/>
                    // One text, its two lines separated by a space, so that what it reads is
                    // "running 7", as the accessible name begins.
                    <text>
                        <tspan class="node-name" x=center.x y=center.y - 5.0>{state.wire()}</tspan>
                        " "
                        <tspan class="node-count" x=center.x y=center.y + 12.0>
                            {move || if known.get() { count().to_string() } else { "–".to_owned() }}
                        </tspan>
                    </text>
                </g>
            }
        })
        .collect_view();

    // The selected task's step numbers, in badges at each visited state's corner.
    let badges = layout
        .nodes
        .iter()
        .map(|node| {
            let state = node.state;
            let steps = move || path.with(|p| step_numbers(p, state));
            let x = node.x + node.width;
            let y = node.y;
            view! {
                <Show when=move || !steps().is_empty()>
                    {move || {
                        let text = steps();
                        // Wide enough for the numbers at 12 px bold.
                        let w = 10.0 + text.chars().count() as f64 * 7.0;
                        view! {
                            <g class="step" data-steps-for=state.wire()>
                                <rect x=x - w + 6.0 y=y - 10.0 width=w height="18" rx="9"/>
                                <text x=x - w / 2.0 + 6.0 y=y + 3.5>{text}</text>
                            </g>
                        }
                    }}
                </Show>
            }
        })
        .collect_view();

    view! {
        <svg class="diagram" class:has-path=has_path viewBox=view_box role="group"
            aria-label="Task life cycle: arrow keys move between states and edges, Enter filters the list"
            on:keydown=on_key>
            <defs>
                <marker id=arrow viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse">
                    <path d="M0,0 L10,5 L0,10 z" class="arrow-head"/>
                </marker>
            </defs>
            {lanes}
            {edge_views}
            <g class="flows" aria-hidden="true">{rates}</g>
            {nodes}
            <g class="steps" aria-hidden="true">{badges}</g>
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_thicken_visibly_and_within_bounds() {
        assert_eq!(width(0.0), 1.5);
        assert_eq!(width(f64::NAN), 1.5);
        assert!(width(0.1) >= 3.0, "a trickle shows: {}", width(0.1));
        assert!(width(5.0) > width(0.5) + 2.0);
        assert_eq!(width(1e6), 11.0);
    }

    #[test]
    fn counts_weigh_logarithmically() {
        assert_eq!(count_weight(0, 118), 0.0);
        assert!(count_weight(1, 100_000) > 0.0);
        assert_eq!(count_weight(118, 118), 1.0);
        assert!(count_weight(10, 1000) > 0.3, "{}", count_weight(10, 1000));
    }

    #[test]
    fn steps_are_numbered_from_one() {
        use lifeline_model::{Actor, Timestamp};
        let at = |state| TransitionRecord {
            state,
            actor: Actor::Worker,
            attempt: 1,
            at: Timestamp::from_micros(0),
            reason: None,
        };
        let path = [
            at(State::Received),
            at(State::WaitingForNodes),
            at(State::Running),
            at(State::WaitingForNodes),
        ];
        assert_eq!(step_numbers(&path, State::WaitingForNodes), "2 · 4");
        assert_eq!(step_numbers(&path, State::Success), "");
    }

    #[test]
    fn the_arrow_keys_wrap_around() {
        assert_eq!(roving_move("ArrowRight", 2, 3), Some(0));
        assert_eq!(roving_move("ArrowLeft", 0, 3), Some(2));
        assert_eq!(roving_move("End", 0, 3), Some(2));
        assert_eq!(roving_move("Tab", 0, 3), None);
    }
}
