//! Lifeline's dashboard: a Leptos single-page app, compiled to WebAssembly and built with trunk,
//! that shows each task's live position in its life cycle.
//!
//! `main.rs` only mounts [`App`]. [`session`] holds the shared state and talks to the service
//! through [`api`]; [`live`] and [`url_state`] are plain logic, tested natively; `components/`
//! and `pages/` draw.

pub mod api;
pub mod components;
pub mod live;
pub mod pages;
pub mod session;
pub mod url_state;

use leptos::prelude::*;

use crate::api::Api;
use crate::components::header::Header;
use crate::components::signin::SignIn;
use crate::pages::endpoints::EndpointsPage;
use crate::pages::lifecycle::LifecyclePage;
use crate::pages::overview::OverviewPage;
use crate::session::{Session, now_secs};
use crate::url_state::{Page, ViewState, from_fragment};

const TOKEN_KEY: &str = "lifeline-token";
const SERVICE_KEY: &str = "lifeline-service";

/// The service and token from `#token=...&service=...` (then removed from the address bar),
/// or from session storage. Without `service`, the service is the page's own origin.
fn initial_api() -> Option<Api> {
    let window = web_sys::window()?;
    let storage = window.session_storage().ok().flatten();
    let location = window.location();
    let fragment = location.hash().unwrap_or_default();
    if let Some(token) = from_fragment(&fragment, "token") {
        let base = from_fragment(&fragment, "service")
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        if let Some(s) = &storage {
            let _ = s.set_item(TOKEN_KEY, &token);
            let _ = s.set_item(SERVICE_KEY, &base);
        }
        let clean = format!(
            "{}{}",
            location.pathname().unwrap_or_default(),
            location.search().unwrap_or_default()
        );
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&clean));
        }
        return Some(Api { base, token });
    }
    let storage = storage?;
    let token = storage.get_item(TOKEN_KEY).ok().flatten()?;
    let base = storage
        .get_item(SERVICE_KEY)
        .ok()
        .flatten()
        .unwrap_or_default();
    Some(Api { base, token })
}

/// Keeps the view in the address bar.
fn write_url(view: &ViewState) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let path = window.location().pathname().unwrap_or_else(|_| "/".into());
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&format!("{path}{}", view.to_query())),
        );
    }
}

/// The whole dashboard.
#[component]
pub fn App() -> impl IntoView {
    let query = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let session = Session::new(initial_api(), ViewState::from_query(&query));
    provide_context(session);

    // The address bar follows the view.
    Effect::new(move |_| session.view.with(write_url));
    // A new session or endpoint filter loads everything again.
    let filter = Memo::new(move |_| {
        (
            session.api.get(),
            session.view.with(|v| v.endpoints.clone()),
        )
    });
    Effect::new(move |_| {
        if filter.with(|(api, _)| api.is_some()) {
            session.reload();
        }
    });
    // Endpoint heartbeats and time-in-state figures refresh every few seconds.
    Effect::new(move |_| {
        if session.api.with(Option::is_some) {
            leptos::task::spawn_local(async move {
                session.refresh_endpoints().await;
            });
        }
    });
    let ticker = set_interval_with_handle(
        move || {
            session.clock.set(now_secs());
            let tick = session.clock.get_untracked() as u64;
            if session.api.with_untracked(Option::is_some) && tick.is_multiple_of(3) {
                leptos::task::spawn_local(async move {
                    session.refresh_endpoints().await;
                    session.refresh_stats().await;
                });
            }
        },
        std::time::Duration::from_secs(1),
    );
    on_cleanup(move || {
        if let Ok(t) = ticker {
            t.clear();
        }
    });

    view! {
        <Show when=move || session.api.with(Option::is_some) fallback=|| view! { <SignIn/> }>
            <Header/>
            <main>
                {move || match session.view.with(|v| v.page) {
                    Page::Lifecycle => view! { <LifecyclePage/> }.into_any(),
                    Page::Endpoints => view! { <EndpointsPage/> }.into_any(),
                    Page::Overview => view! { <OverviewPage/> }.into_any(),
                }}
            </main>
        </Show>
    }
}
