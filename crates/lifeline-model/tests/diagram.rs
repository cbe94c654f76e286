//! The diagram data, and the generated copies of it kept in the repository.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use lifeline_model::diagram::{layout, mermaid, state_table, svg};
use lifeline_model::{State, edges};

const README: &str = include_str!("../../../README.md");
const SVG_FILE: &str = include_str!("../../../docs/lifecycle.svg");

#[test]
fn every_state_and_edge_is_laid_out_inside_the_picture() {
    let l = layout();
    assert_eq!(l.nodes.len(), State::COUNT);
    assert_eq!(l.routes.len(), edges().count());
    for (node, state) in l.nodes.iter().zip(State::ALL) {
        assert_eq!(node.state, state);
        assert!(node.x >= 0.0 && node.x + node.width <= l.width, "{state}");
        assert!(node.y >= 0.0 && node.y + node.height <= l.height, "{state}");
        let lane = l
            .lanes
            .iter()
            .find(|lane| lane.actor == state.lane())
            .expect("lane");
        assert!(
            node.y >= lane.y && node.y + node.height <= lane.y + lane.height,
            "{state} in its lane"
        );
    }
    for (i, a) in l.nodes.iter().enumerate() {
        for b in &l.nodes[i + 1..] {
            let apart = a.x + a.width <= b.x
                || b.x + b.width <= a.x
                || a.y + a.height <= b.y
                || b.y + b.height <= a.y;
            assert!(apart, "{} overlaps {}", a.state, b.state);
        }
    }
    for r in &l.routes {
        assert!(r.path().starts_with('M'));
    }
}

#[test]
fn mermaid_lists_every_edge_with_its_actors() {
    let text = mermaid();
    assert!(text.starts_with("stateDiagram-v2\n"));
    assert!(
        text.contains("    running --> waiting_for_nodes: worker lost, next attempt (endpoint)\n")
    );
    assert!(text.contains("    running --> failed: exception (worker or endpoint or forwarder)\n"));
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(" --> ") && !l.contains("[*]"))
            .count(),
        edges().count()
    );
}

#[test]
fn svg_marks_every_state() {
    let picture = svg();
    for state in State::ALL {
        assert!(
            picture.contains(&format!("data-state=\"{}\"", state.wire())),
            "{state}"
        );
    }
}

/// README and docs/lifecycle.svg carry generated copies; they must match what the model
/// generates now. `LIFELINE_BLESS=1 cargo test -p lifeline-model --test diagram` rewrites them.
#[test]
fn generated_copies_are_fresh() {
    let fresh_readme = replace_between(README, "```mermaid\n", "```", &mermaid());
    let fresh_readme = replace_between(
        &fresh_readme,
        "<!-- states -->\n",
        "<!-- /states -->",
        &state_table(),
    );
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("LIFELINE_BLESS").is_some() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        std::fs::write(format!("{root}/README.md"), &fresh_readme).expect("write README.md");
        std::fs::write(format!("{root}/docs/lifecycle.svg"), svg())
            .expect("write docs/lifecycle.svg");
        return;
    }
    assert!(
        fresh_readme == README,
        "README.md's diagram is stale: run `LIFELINE_BLESS=1 cargo test -p lifeline-model --test diagram`"
    );
    assert!(
        SVG_FILE == svg(),
        "docs/lifecycle.svg is stale: run `LIFELINE_BLESS=1 cargo test -p lifeline-model --test diagram`"
    );
}

/// Replaces what stands between the first `open` marker in `markdown` and the `close` after it.
fn replace_between(markdown: &str, open: &str, close: &str, body: &str) -> String {
    let start = markdown
        .find(open)
        .unwrap_or_else(|| panic!("README.md has no {open:?}"))
        + open.len();
    let end = start
        + markdown[start..]
            .find(close)
            .unwrap_or_else(|| panic!("README.md has no {close:?}"));
    format!("{}{}{}", &markdown[..start], body, &markdown[end..])
}
