//! The lifecycle diagram as data: states placed in swimlanes by actor, edges routed between
//! them, and two renderings of that data (SVG and Mermaid text).
//!
//! The dashboard draws its live diagram from [`layout`]; README carries [`mermaid`]'s output;
//! `docs/lifecycle.svg` is [`svg`]'s. All three come from the transition table, so none can drift
//! from the rules that [`crate::validate`] applies.

use std::fmt::Write as _;

use crate::state::{Actor, State};
use crate::transition::{Edge, EdgeKind, edges};

/// Width of the lane-label column on the left.
pub const LANE_LABEL_WIDTH: f64 = 104.0;
/// Horizontal distance between columns.
pub const COLUMN_WIDTH: f64 = 156.0;
/// Vertical distance between rows.
pub const ROW_HEIGHT: f64 = 88.0;
pub const NODE_WIDTH: f64 = 132.0;
pub const NODE_HEIGHT: f64 = 46.0;
const COLUMNS: usize = 7;
const ROWS: usize = 6;

/// A point in diagram coordinates.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// A state's box.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Node {
    pub state: State,
    /// Top-left corner.
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Node {
    pub fn center(&self) -> Point {
        Point {
            x: self.x + self.width / 2.0,
            y: self.y + self.height / 2.0,
        }
    }

    fn left(&self) -> Point {
        Point {
            x: self.x,
            y: self.y + self.height / 2.0,
        }
    }

    fn right(&self) -> Point {
        Point {
            x: self.x + self.width,
            y: self.y + self.height / 2.0,
        }
    }

    /// A point on the top side, `dx` from its middle.
    fn top(&self, dx: f64) -> Point {
        Point {
            x: self.x + self.width / 2.0 + dx,
            y: self.y,
        }
    }

    /// A point on the bottom side, `dx` from its middle.
    fn bottom(&self, dx: f64) -> Point {
        Point {
            x: self.x + self.width / 2.0 + dx,
            y: self.y + self.height,
        }
    }
}

/// An actor's horizontal band.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Lane {
    pub actor: Actor,
    pub y: f64,
    pub height: f64,
}

/// An edge's route: a cubic Bézier curve.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Route {
    pub edge: &'static Edge,
    pub start: Point,
    pub control1: Point,
    pub control2: Point,
    pub end: Point,
}

impl Route {
    /// The SVG path data (`d` attribute).
    pub fn path(&self) -> String {
        let Route {
            start: a,
            control1: b,
            control2: c,
            end: d,
            ..
        } = self;
        format!(
            "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
            a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y
        )
    }

    /// The curve's point halfway along its parameter, where its label goes.
    pub fn midpoint(&self) -> Point {
        let Route {
            start: a,
            control1: b,
            control2: c,
            end: d,
            ..
        } = self;
        Point {
            x: (a.x + 3.0 * b.x + 3.0 * c.x + d.x) / 8.0,
            y: (a.y + 3.0 * b.y + 3.0 * c.y + d.y) / 8.0,
        }
    }
}

/// The whole diagram, in diagram coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    pub lanes: Vec<Lane>,
    pub nodes: Vec<Node>,
    pub routes: Vec<Route>,
}

impl Layout {
    pub fn node(&self, state: State) -> &Node {
        &self.nodes[state.index()]
    }
}

/// Grid cell `(column, row)` of each state: the forward path descends from the web service to
/// the worker as a staircase, with terminal states in the last column.
const fn cell(state: State) -> (usize, usize) {
    match state {
        State::Received => (0, 0),
        State::WaitingForEp => (1, 1),
        State::DispatchedToEp => (2, 1),
        State::WaitingForNodes => (3, 2),
        State::WaitingForLaunch => (4, 3),
        State::Running => (5, 4),
        State::Success => (6, 4),
        State::Failed => (6, 5),
        State::Cancelled => (6, 0),
    }
}

/// Grid rows spanned by each actor's lane; the worker's holds both outcomes of running.
const fn lane_rows(actor: Actor) -> (usize, usize) {
    match actor {
        Actor::WebService => (0, 1),
        Actor::Forwarder => (1, 2),
        Actor::Endpoint => (2, 3),
        Actor::Manager => (3, 4),
        Actor::Worker => (4, 6),
    }
}

fn place(state: State) -> Node {
    let (col, row) = cell(state);
    Node {
        state,
        x: LANE_LABEL_WIDTH + col as f64 * COLUMN_WIDTH + (COLUMN_WIDTH - NODE_WIDTH) / 2.0,
        y: row as f64 * ROW_HEIGHT + (ROW_HEIGHT - NODE_HEIGHT) / 2.0,
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
    }
}

/// Routes an edge by its kind and the relative position of its ends, so that the common shapes
/// stay apart: forward steps leave on the right, failures drop from the bottom, retries and
/// requeues leave on the left and climb back, cancellations rise from the top.
fn route(edge: &'static Edge, from: &Node, to: &Node) -> Route {
    let bend = ROW_HEIGHT * 0.55;
    let (start, control1, control2, end) = match edge.kind {
        EdgeKind::Forward | EdgeKind::Cancel if from.y == to.y => {
            let (a, d) = (from.right(), to.left());
            let third = (d.x - a.x) / 3.0;
            (
                a,
                Point {
                    x: a.x + third,
                    y: a.y,
                },
                Point {
                    x: d.x - third,
                    y: d.y,
                },
                d,
            )
        }
        EdgeKind::Forward => {
            let (a, d) = (from.right(), to.top(-NODE_WIDTH / 4.0));
            (a, Point { x: d.x, y: a.y }, Point { x: d.x, y: a.y }, d)
        }
        EdgeKind::Fail => {
            let (a, d) = (from.bottom(NODE_WIDTH / 4.0), to.left());
            (a, Point { x: a.x, y: d.y }, Point { x: a.x, y: d.y }, d)
        }
        EdgeKind::Cancel => {
            let (a, d) = (from.top(NODE_WIDTH / 4.0), to.bottom(0.0));
            (
                a,
                Point {
                    x: a.x,
                    y: a.y - bend,
                },
                Point {
                    x: d.x,
                    y: d.y + bend,
                },
                d,
            )
        }
        EdgeKind::Retry | EdgeKind::Requeue if from.y == to.y => {
            let (a, d) = (from.bottom(-NODE_WIDTH / 4.0), to.bottom(0.0));
            let dip = ROW_HEIGHT * 0.4;
            (
                a,
                Point {
                    x: a.x,
                    y: a.y + dip,
                },
                Point {
                    x: d.x,
                    y: d.y + dip,
                },
                d,
            )
        }
        EdgeKind::Retry | EdgeKind::Requeue => {
            let (a, d) = (from.left(), to.bottom(0.0));
            (a, Point { x: d.x, y: a.y }, Point { x: d.x, y: a.y }, d)
        }
    };
    Route {
        edge,
        start,
        control1,
        control2,
        end,
    }
}

/// Lays out the whole diagram from the transition table.
pub fn layout() -> Layout {
    let nodes: Vec<Node> = State::ALL.into_iter().map(place).collect();
    let lanes = Actor::ALL
        .into_iter()
        .map(|actor| {
            let (first, end) = lane_rows(actor);
            Lane {
                actor,
                y: first as f64 * ROW_HEIGHT,
                height: (end - first) as f64 * ROW_HEIGHT,
            }
        })
        .collect();
    let routes = edges()
        .map(|e| route(e, &nodes[e.from.index()], &nodes[e.to.index()]))
        .collect();
    Layout {
        width: LANE_LABEL_WIDTH + COLUMNS as f64 * COLUMN_WIDTH,
        height: ROWS as f64 * ROW_HEIGHT,
        lanes,
        nodes,
        routes,
    }
}

/// A standalone SVG picture of the life cycle.
pub fn svg() -> String {
    let l = layout();
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="system-ui, sans-serif" font-size="12">"#,
        w = l.width,
        h = l.height
    );
    out.push_str(concat!(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">"##,
        r##"<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##,
        "\n"
    ));
    for (i, lane) in l.lanes.iter().enumerate() {
        let fill = if i % 2 == 0 { "#f4f6f8" } else { "#ffffff" };
        let _ = writeln!(
            out,
            r##"<rect x="0" y="{}" width="{}" height="{}" fill="{fill}"/><text x="10" y="{}" font-weight="600" fill="#444">{}</text>"##,
            lane.y,
            l.width,
            lane.height,
            lane.y + 20.0,
            lane.actor.label()
        );
    }
    for r in &l.routes {
        let (stroke, dash) = edge_style(r.edge.kind);
        let _ = writeln!(
            out,
            r#"<path d="{}" fill="none" stroke="{stroke}" stroke-width="1.5"{dash} marker-end="url(#arrow)"><title>{} → {} by {}: {}</title></path>"#,
            r.path(),
            r.edge.from,
            r.edge.to,
            actors_text(r.edge.actors),
            r.edge.description
        );
    }
    for n in &l.nodes {
        let (fill, stroke) = node_style(n.state);
        let c = n.center();
        let _ = writeln!(
            out,
            r##"<g data-state="{}"><rect x="{}" y="{}" width="{}" height="{}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/><text x="{}" y="{}" text-anchor="middle" fill="#111">{}</text><title>{}</title></g>"##,
            n.state.wire(),
            n.x,
            n.y,
            n.width,
            n.height,
            c.x,
            c.y + 4.0,
            n.state.wire(),
            n.state.description()
        );
    }
    out.push_str("</svg>\n");
    out
}

fn actors_text(actors: &[Actor]) -> String {
    actors
        .iter()
        .map(|a| a.wire())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Stroke colour and dash pattern per edge kind (Okabe–Ito colours, safe for colour blindness).
fn edge_style(kind: EdgeKind) -> (&'static str, &'static str) {
    match kind {
        EdgeKind::Forward => ("#555555", ""),
        EdgeKind::Retry => ("#E69F00", r#" stroke-dasharray="6 3""#),
        EdgeKind::Requeue => ("#0072B2", r#" stroke-dasharray="1 3""#),
        EdgeKind::Fail => ("#D55E00", ""),
        EdgeKind::Cancel => ("#999999", r#" stroke-dasharray="2 3""#),
    }
}

fn node_style(state: State) -> (&'static str, &'static str) {
    match state {
        State::Success => ("#d5ecf7", "#0072B2"),
        State::Failed => ("#f9ddcc", "#D55E00"),
        State::Cancelled => ("#e6e6e6", "#666666"),
        State::Received
        | State::WaitingForEp
        | State::DispatchedToEp
        | State::WaitingForNodes
        | State::WaitingForLaunch
        | State::Running => ("#ffffff", "#333333"),
    }
}

/// The Mermaid identifier of a state (Mermaid ids cannot hold dashes).
fn mermaid_id(state: State) -> String {
    state.wire().replace('-', "_")
}

/// The life cycle as a Mermaid `stateDiagram-v2`, for README and anywhere Markdown renders it.
pub fn mermaid() -> String {
    let mut out = String::from("stateDiagram-v2\n");
    for s in State::ALL {
        let _ = writeln!(out, "    state \"{}\" as {}", s.wire(), mermaid_id(s));
    }
    let _ = writeln!(out, "    [*] --> {}", mermaid_id(State::Received));
    for e in edges() {
        // Losses say what they cost: a requeue keeps the attempt, a retry takes the next one.
        let cost = match e.kind {
            EdgeKind::Retry => ", next attempt",
            EdgeKind::Requeue => ", same attempt",
            EdgeKind::Forward | EdgeKind::Fail | EdgeKind::Cancel => "",
        };
        let _ = writeln!(
            out,
            "    {} --> {}: {}{cost} ({})",
            mermaid_id(e.from),
            mermaid_id(e.to),
            e.label,
            actors_text(e.actors)
        );
    }
    for s in State::ALL.into_iter().filter(|s| s.is_terminal()) {
        let _ = writeln!(out, "    {} --> [*]", mermaid_id(s));
    }
    out.push_str("    classDef terminal font-weight:bold,stroke-width:3px\n");
    let terminal: Vec<String> = State::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(mermaid_id)
        .collect();
    let _ = writeln!(out, "    class {} terminal", terminal.join(","));
    out
}

/// The states as a Markdown table (wire value, lane, terminal or not, meaning), for README.
pub fn state_table() -> String {
    let mut out = String::from("| state | lane | terminal | meaning |\n|---|---|---|---|\n");
    for s in State::ALL {
        let terminal = if s.is_terminal() { "yes" } else { "" };
        let _ = writeln!(
            out,
            "| `{}` | {} | {terminal} | {} |",
            s.wire(),
            s.lane().wire(),
            s.description()
        );
    }
    out
}
