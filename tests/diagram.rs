//! The diagram component, mounted in a real browser page.
#![cfg(target_arch = "wasm32")]

use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use lifeline_dashboard::components::diagram::LifecycleDiagram;
use lifeline_model::{State, StateCounts};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn state_node(state: State) -> web_sys::Element {
    document()
        .query_selector(&format!("[data-state=\"{}\"]", state.wire()))
        .expect("valid selector")
        .unwrap_or_else(|| panic!("no node for {state}"))
}

#[wasm_bindgen_test]
async fn diagram_shows_live_counts_for_every_state() {
    let counts = RwSignal::new(StateCounts::default());
    let mount = document().create_element("div").expect("div");
    document()
        .body()
        .expect("body")
        .append_child(&mount)
        .expect("append");
    let _handle = leptos::mount::mount_to(mount.clone().unchecked_into(), move || {
        view! { <LifecycleDiagram counts=counts.into()/> }
    });

    for state in State::ALL {
        assert_eq!(
            state_node(state).get_attribute("data-count").as_deref(),
            Some("0"),
            "{state}"
        );
    }

    counts.update(|c| {
        c.set(State::Running, 7);
        c.set(State::Failed, 2);
    });
    leptos::task::tick().await;

    let running = state_node(State::Running);
    assert_eq!(running.get_attribute("data-count").as_deref(), Some("7"));
    assert_eq!(
        running.get_attribute("aria-label").as_deref(),
        Some("Running: 7 tasks")
    );
    assert_eq!(
        state_node(State::Failed)
            .get_attribute("data-count")
            .as_deref(),
        Some("2")
    );
    assert!(running.text_content().unwrap_or_default().contains('7'));
}
