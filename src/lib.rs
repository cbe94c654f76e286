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
pub mod fetched;
pub mod live;
pub mod pages;
pub mod session;
pub mod url_state;
pub mod window;

use leptos::prelude::*;

use crate::api::Api;
use crate::components::footer::Footer;
use crate::components::header::Header;
use crate::components::signin::SignIn;
use crate::pages::compare::ComparePage;
use crate::pages::endpoints::EndpointsPage;
use crate::pages::failures::FailuresPage;
use crate::pages::groups::GroupsPage;
use crate::pages::lifecycle::LifecyclePage;
use crate::pages::overview::OverviewPage;
use crate::session::{Auth, Connection, LiveTasks, provide_session};
use crate::url_state::{HistoryStep, Page, ViewState, from_fragment};
use lifeline_model::{State, StateCounts};

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

/// Keeps the view in the address bar: a new history entry for a step Back should undo, the
/// current one rewritten otherwise. Nothing is written when the address already says it (the
/// view came from the address, after Back or Forward).
fn write_url(view: &ViewState, step: HistoryStep) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let query = view.to_query();
    if location.search().unwrap_or_default() == query {
        return;
    }
    let path = location.pathname().unwrap_or_else(|_| "/".into());
    let url = format!("{path}{query}");
    if let Ok(history) = window.history() {
        let _ = match step {
            HistoryStep::Push => {
                history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url))
            }
            HistoryStep::Replace => {
                history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url))
            }
        };
    }
}

/// The tab's title: the page, then what the tasks are doing, so that a background tab says
/// whether anything failed.
pub fn page_title(page: Option<Page>, counts: Option<&StateCounts>, offline: bool) -> String {
    let Some(page) = page else {
        return "Sign in · Lifeline".to_owned();
    };
    let mut parts = Vec::new();
    if offline {
        parts.push("offline".to_owned());
    }
    if let Some(c) = counts {
        let queued: u64 = State::ALL
            .into_iter()
            .filter(|s| s.is_pending() && *s != State::Running)
            .map(|s| c.get(s))
            .sum();
        let summary = [
            (queued, "queued"),
            (c.get(State::Running), "running"),
            (c.get(State::Success), "succeeded"),
            (c.get(State::Failed), "failed"),
            (c.get(State::Cancelled), "cancelled"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>();
        parts.push(if summary.is_empty() {
            "no tasks".to_owned()
        } else {
            summary.join(", ")
        });
    }
    if parts.is_empty() {
        format!("{} · Lifeline", page.label())
    } else {
        format!("{} · {} · Lifeline", page.label(), parts.join(", "))
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

    // The address bar follows the view, and Back and Forward move the view.
    let shown = StoredValue::new(view_state.get_untracked());
    Effect::new(move |_| {
        let next = view_state.get();
        let step = shown.with_value(|prev| prev.history_step(&next));
        write_url(&next, step);
        shown.set_value(next);
    });
    let back = window_event_listener(leptos::ev::popstate, move |_| {
        let query = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        view_state.set(ViewState::from_query(&query));
    });
    on_cleanup(move || back.remove());

    // The tab's title follows the page and the counts.
    let live = expect_context::<LiveTasks>();
    let connection = expect_context::<Signal<Connection>>();
    Effect::new(move |_| {
        let page = auth
            .api
            .with(Option::is_some)
            .then(|| view_state.with(|v| v.page));
        let offline = connection.get() == Connection::Offline;
        let title = live.with(|l| page_title(page, l.map(|l| &l.counts), offline));
        document().set_title(&title);
    });

    // The page drawn only changes with the page asked for: a filter or a selection changes what
    // the page shows, not the page.
    let page = Memo::new(move |_| view_state.with(|v| v.page));
    view! {
        <Show when=move || auth.api.with(Option::is_some) fallback=|| view! { <SignIn/> }>
            <Header/>
            <main id="content" tabindex="-1">
                {move || match page.get() {
                    Page::Lifecycle => view! { <LifecyclePage/> }.into_any(),
                    Page::Endpoints => view! { <EndpointsPage/> }.into_any(),
                    Page::Overview => view! { <OverviewPage/> }.into_any(),
                    Page::Failures => view! { <FailuresPage/> }.into_any(),
                    Page::Groups => view! { <GroupsPage/> }.into_any(),
                    Page::Compare => view! { <ComparePage/> }.into_any(),
                }}
            </main>
            <Footer/>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_says_the_page_and_what_tasks_are_doing() {
        let mut counts = StateCounts::default();
        assert_eq!(
            page_title(Some(Page::Lifecycle), Some(&counts), false),
            "Life cycle · no tasks · Lifeline"
        );
        counts.set(State::WaitingForEp, 3);
        counts.set(State::WaitingForNodes, 2);
        counts.set(State::Running, 4);
        counts.set(State::Failed, 1);
        assert_eq!(
            page_title(Some(Page::Overview), Some(&counts), false),
            "Overview · 5 queued, 4 running, 1 failed · Lifeline"
        );
        assert_eq!(
            page_title(Some(Page::Endpoints), None, true),
            "Endpoints · offline · Lifeline"
        );
        assert_eq!(page_title(None, None, false), "Sign in · Lifeline");
    }
}
