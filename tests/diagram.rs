//! Components mounted in a real browser page: the diagram, and an executor's blocks as the
//! endpoints page shows them.
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
        Some("running: 7 tasks")
    );
    assert_eq!(
        state_node(State::Failed)
            .get_attribute("data-count")
            .as_deref(),
        Some("2")
    );
    assert!(running.text_content().unwrap_or_default().contains('7'));
}

#[wasm_bindgen_test]
async fn a_selected_task_s_path_is_drawn_and_clicks_reach_the_callbacks() {
    use lifeline_model::{Timestamp, TransitionRecord};
    let counts = RwSignal::new(StateCounts::default());
    let path = RwSignal::new(Vec::<TransitionRecord>::new());
    let clicked = RwSignal::new(None::<State>);
    let mount = document().create_element("div").expect("div");
    mount.set_id("second");
    document()
        .body()
        .expect("body")
        .append_child(&mount)
        .expect("append");
    let _handle = leptos::mount::mount_to(mount.clone().unchecked_into(), move || {
        view! {
            <LifecycleDiagram counts=counts.into() path=path on_state=Callback::new(move |s| clicked.set(Some(s)))/>
        }
    });
    let steps = [
        State::Received,
        State::DispatchedToEp,
        State::WaitingForNodes,
        State::WaitingForLaunch,
        State::Running,
        State::WaitingForNodes,
    ];
    path.set(
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| TransitionRecord {
                state: *s,
                actor: s.lane(),
                attempt: 1,
                at: Timestamp::from_secs_f64(1_700_000_000.0 + i as f64),
                reason: None,
            })
            .collect(),
    );
    leptos::task::tick().await;

    let within = |selector: &str| mount.query_selector(selector).expect("valid selector");
    assert!(within("[data-state=\"running\"].visited").is_some());
    assert!(within("[data-state=\"success\"].visited").is_none());
    assert!(
        within(".edge-group.taken[data-from=\"running\"][data-to=\"waiting-for-nodes\"]").is_some(),
        "the retry loop is drawn"
    );
    let step = within("[data-steps-for=\"waiting-for-nodes\"] text").expect("step numbers");
    assert_eq!(step.text_content().as_deref(), Some("3 · 6"));
    assert!(
        within("svg.diagram.has-path").is_some(),
        "what the path does not touch is dimmed"
    );
    // The taken retry stays a retry edge: its kind's class, not the path's colour.
    assert!(
        within(".edge-group.taken[data-from=\"running\"][data-to=\"waiting-for-nodes\"] path.edge-retry")
            .is_some()
    );
    let title = within("[data-state=\"waiting-for-nodes\"] > title")
        .expect("title")
        .text_content()
        .unwrap_or_default();
    assert!(
        title.contains(
            "step 3: waiting-for-nodes by endpoint, attempt 1, at 22:13:22.000; 1.00 s there"
        ),
        "{title}"
    );
    assert!(
        title.contains(
            "step 6: waiting-for-nodes by endpoint, attempt 1, at 22:13:25.000; still there"
        ),
        "{title}"
    );

    let node: web_sys::HtmlElement = within("[data-state=\"failed\"]")
        .expect("node")
        .unchecked_into();
    node.dispatch_event(&web_sys::Event::new("click").expect("event"))
        .expect("dispatch");
    assert_eq!(clicked.get_untracked(), Some(State::Failed));
}

#[wasm_bindgen_test]
async fn an_executor_shows_its_blocks_and_the_tasks_waiting_for_them() {
    use lifeline_dashboard::components::blocks::Executor;
    use lifeline_model::{BlockReport, BlockState, ExecutorReport, Timestamp};
    let t0 = 1_700_000_000.0;
    let block = |block_id: u64, state: BlockState| BlockReport {
        block_id,
        job_id: Some(format!("{}", 50 + block_id)),
        state,
        reason: None,
        nodes: 1,
        managers: 0,
        submitted_at: Timestamp::from_secs_f64(t0),
        started_at: None,
        walltime_secs: Some(600),
        tasks: 0,
    };
    let mut tasks = StateCounts::default();
    tasks.set(State::WaitingForNodes, 3);
    tasks.set(State::Running, 1);
    let executor = ExecutorReport {
        label: "cpu".into(),
        provider: "slurm".into(),
        managers: 1,
        total_workers: 1,
        idle_workers: 0,
        busy_workers: 1,
        tasks,
        provider_error: Some("squeue timed out after 10 s".into()),
        blocks: vec![
            BlockReport {
                reason: Some("sbatch: error: invalid partition specified: nope".into()),
                job_id: None,
                ..block(1, BlockState::Failed)
            },
            BlockReport {
                managers: 1,
                started_at: Some(Timestamp::from_secs_f64(t0 + 5.0)),
                tasks: 1,
                ..block(2, BlockState::Running)
            },
            BlockReport {
                reason: Some("Resources".into()),
                ..block(3, BlockState::Pending)
            },
        ],
    };
    let mount = document().create_element("ul").expect("ul");
    mount.set_id("executor");
    document()
        .body()
        .expect("body")
        .append_child(&mount)
        .expect("append");
    let _handle = leptos::mount::mount_to(mount.clone().unchecked_into(), move || {
        view! { <Executor executor=executor.clone() now=t0 + 65.0/> }
    });
    leptos::task::tick().await;

    let within = |selector: &str| mount.query_selector(selector).expect("valid selector");
    let text = |selector: &str| {
        within(selector)
            .unwrap_or_else(|| panic!("nothing at {selector}"))
            .text_content()
            .unwrap_or_default()
    };
    let all = text("[data-executor=\"cpu\"]");
    let at = |block: &str| {
        all.find(block)
            .unwrap_or_else(|| panic!("no {block} in {all}"))
    };
    assert!(
        at("block 3") < at("block 2") && at("block 2") < at("block 1"),
        "pending first, ended last: {all}"
    );
    for (id, state) in [(1, "failed"), (2, "running"), (3, "pending")] {
        let selector = format!("[data-block-id=\"{id}\"][data-block-state=\"{state}\"]");
        assert!(within(&selector).is_some(), "{selector}");
    }
    let running = text("[data-block-id=\"2\"][data-block-state=\"running\"]");
    for part in [
        "block 2",
        "slurm job 52",
        "1/1 nodes",
        "up 1m 0s",
        "9m 0s left",
        "1 task",
    ] {
        assert!(running.contains(part), "{part} in {running}");
    }
    let pending = text("[data-block-id=\"3\"][data-block-state=\"pending\"]");
    assert!(
        pending.contains("waiting 1m 5s") && pending.contains("Resources"),
        "{pending}"
    );
    // The waiting tasks stand with the pending blocks.
    let waiting = within(".pending-blocks [data-waiting-for-nodes=\"3\"]").expect("waiting count");
    assert!(
        waiting
            .text_content()
            .unwrap_or_default()
            .contains("3 tasks waiting for nodes")
    );
    assert!(text("[data-block-id=\"1\"]").contains("invalid partition"));
    assert!(text("[data-provider-error]").contains("squeue timed out"));
    assert!(
        all.contains("tasks: 3 waiting-for-nodes, 1 running"),
        "{all}"
    );
}
