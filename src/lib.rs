//! Lifeline's dashboard: a Leptos single-page app, compiled to WebAssembly and built with trunk,
//! that shows each task's live position in its life cycle.
//!
//! `main.rs` only mounts [`App`]. [`session`] is the data layer: it loads through [`api`],
//! follows the service's events through the [`event_stream`] hook and provides what the views
//! read as small contexts; [`live`] and [`url_state`] are plain logic, tested natively;
//! `components/` and `pages/` draw.

pub mod api;
pub mod components;
pub mod event_stream;
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
use crate::session::{Auth, provide_session};
use crate::url_state::{Page, ViewState, from_fragment};

pub(crate) const TOKEN_KEY: &str = "lifeline-token";
pub(crate) const SERVICE_KEY: &str = "lifeline-service";

/// The service URL last signed in to, for the sign-in form.
pub(crate) fn stored_service() -> String {
    web_sys::window()
        .and_then(|w| w.session_storage().ok().flatten())
        .and_then(|s| s.get_item(SERVICE_KEY).ok().flatten())
        .unwrap_or_default()
}

/// The service and token from `#token=...&service=...` (then removed from the address bar),
/// or from session storage. Without `service`, the service is the page's own origin.
fn initial_api() -> Option<Api> {
    let window = web_sys::window()?;
    let location = window.location();
    let fragment = location.hash().unwrap_or_default();
    if let Some(token) = from_fragment(&fragment, "token") {
        let base = from_fragment(&fragment, "service").unwrap_or_default();
        let clean = format!(
            "{}{}",
            location.pathname().unwrap_or_default(),
            location.search().unwrap_or_default()
        );
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&clean));
        }
        return Some(Api::new(&base, &token));
    }
    let storage = window.session_storage().ok().flatten()?;
    let token = storage.get_item(TOKEN_KEY).ok().flatten()?;
    Some(Api::new(&stored_service(), &token))
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
    provide_session(initial_api(), ViewState::from_query(&query));
    let auth = expect_context::<Auth>();
    let view_state = expect_context::<RwSignal<ViewState>>();

    // The address bar follows the view.
    Effect::new(move |_| view_state.with(write_url));

    view! {
        <Show when=move || auth.api.with(Option::is_some) fallback=|| view! { <SignIn/> }>
            <Header/>
            <main id="content" tabindex="-1">
                {move || match view_state.with(|v| v.page) {
                    Page::Lifecycle => view! { <LifecyclePage/> }.into_any(),
                    Page::Endpoints => view! { <EndpointsPage/> }.into_any(),
                    Page::Overview => view! { <OverviewPage/> }.into_any(),
                }}
            </main>
        </Show>
    }
}
