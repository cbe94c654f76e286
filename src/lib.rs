//! Lifeline's dashboard: a Leptos single-page app, compiled to WebAssembly and built with trunk,
//! that draws the task life cycle from the shared model.
//!
//! Build and serve it with `trunk serve` (see README); `main.rs` only mounts [`App`].

use leptos::prelude::*;
use lifeline_model::StateCounts;

pub mod components;

use components::diagram::LifecycleDiagram;

/// The whole dashboard.
#[component]
pub fn App() -> impl IntoView {
    let counts = RwSignal::new(StateCounts::default());
    view! {
        <header class="top">
            <h1>"Lifeline"</h1>
            <p class="tagline">"Every task's place in its life cycle."</p>
        </header>
        <main>
            <section class="panel" aria-labelledby="diagram-title">
                <h2 id="diagram-title">"Task life cycle"</h2>
                <LifecycleDiagram counts=counts.into()/>
            </section>
        </main>
    }
}
