//! The top bar: pages, the endpoint filter, the connection indicator, who is signed in (with
//! admin's "mine / everyone" switch) and the sign-out control, then notices.

use leptos::prelude::*;

use crate::session::{Auth, Connection, Endpoints, LastCurrent};

/// A wall-clock time of day in the browser's time zone, `14:03:07`.
pub fn clock_time(epoch_secs: f64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(epoch_secs * 1000.0));
    format!(
        "{:02}:{:02}:{:02}",
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}
use crate::url_state::{Page, ViewState};

#[component]
pub fn Header() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let endpoints = expect_context::<Endpoints>();
    let connection = expect_context::<Signal<Connection>>();
    let last_current = expect_context::<LastCurrent>();
    let tabs = Page::ALL
        .into_iter()
        .map(|page| {
            let current = move || view_state.with(|v| v.page == page);
            view! {
                <button class="tab" class:active=current aria-current=move || if current() { "page" } else { "false" }
                    data-page=page.wire()
                    on:click=move |_| view_state.update(|v| v.page = page)>
                    {page.label()}
                </button>
            }
        })
        .collect_view();
    let chips = move || {
        // Without the service, an endpoint's state is not known: its dot says so rather than
        // showing the last colour it had.
        let known = connection.get() != Connection::Offline;
        endpoints.with(|list| {
            list.iter()
                .map(|e| {
                    let id = e.endpoint_id;
                    let selected = move || view_state.with(|v| v.endpoints.contains(&id));
                    let (dot, status) = match (known, e.online) {
                        (false, true) => ("dot unknown", "last known online; the service cannot be reached"),
                        (false, false) => ("dot unknown", "last known offline; the service cannot be reached"),
                        (true, true) => ("dot online", "online"),
                        (true, false) => ("dot offline", "offline"),
                    };
                    view! {
                        <button class="chip" class:selected=selected aria-pressed=move || selected().to_string()
                            data-endpoint=id.to_string() title=format!("{} ({status})", e.name)
                            on:click=move |_| view_state.update(|v| {
                                if let Some(i) = v.endpoints.iter().position(|x| *x == id) {
                                    v.endpoints.remove(i);
                                } else {
                                    v.endpoints.push(id);
                                }
                            })>
                            <span class=dot aria-hidden="true"></span>
                            {e.name.clone()}
                        </button>
                    }
                })
                .collect_view()
        })
    };
    let who = move || {
        auth.user.get().map(|u| {
            let name = u.user.clone();
            view! {
                <span class="who" data-testid="user" data-user=name.clone() data-admin=u.admin.to_string()
                    title=if u.admin { format!("Signed in as {name} (admin)") } else { format!("Signed in as {name}") }>
                    <span class="user-name">{name.clone()}</span>
                    {u.admin.then(|| view! { <span class="admin-badge">"admin"</span> })}
                </span>
            }
        })
    };
    let admin = move || auth.user.with(|u| u.as_ref().is_some_and(|u| u.admin));
    let scope_button = move |mine: bool, label: &'static str| {
        let pressed = move || view_state.with(|v| v.mine == mine);
        view! {
            <button class="scope-choice" class:active=pressed aria-pressed=move || pressed().to_string()
                data-scope=if mine { "mine" } else { "everyone" }
                on:click=move |_| view_state.update(|v| v.mine = mine)>
                {label}
            </button>
        }
    };
    // The first tab stop jumps past the pages, filters and the diagram's states and edges.
    let skip = move || match view_state.with(|v| v.page) {
        Page::Lifecycle => ("#task-grid", "Skip to the task list"),
        Page::Endpoints | Page::Overview | Page::Failures | Page::Groups | Page::Compare => {
            ("#content", "Skip to the content")
        }
    };
    view! {
        <a class="skip-link" href=move || skip().0>{move || skip().1}</a>
        <header class="top">
            <h1>"Lifeline"</h1>
            <nav aria-label="Pages">{tabs}</nav>
            <div class="filters" role="group" aria-label="Endpoints shown">
                <span class="filter-label">"Endpoints:"</span>
                {chips}
                <Show when=move || view_state.with(|v| !v.endpoints.is_empty())>
                    <button class="chip clear" on:click=move |_| view_state.update(|v| v.endpoints.clear())>"all"</button>
                </Show>
            </div>
            <span class="connection" data-connection=move || connection.get().wire()
                role="status" aria-live="polite">
                <span class="dot" aria-hidden="true"></span>
                {move || connection.get().label()}
            </span>
            <Show when=admin>
                <div class="scope" role="group" aria-label="Whose tasks" data-testid="scope">
                    {scope_button(true, "Mine")}
                    {scope_button(false, "Everyone")}
                </div>
            </Show>
            <div class="account">
                {who}
                <button class="signout" data-testid="sign-out" on:click=move |_| auth.sign_out(None)>"Sign out"</button>
            </div>
        </header>
        {move || (connection.get() == Connection::Offline).then(|| {
            let base = auth.api.with(|a| a.as_ref().map(|a| a.base.clone()).unwrap_or_default());
            let place = if base.is_empty() { "this site's Lifeline service".to_owned() } else { base };
            let since = last_current.0.get().map(clock_time);
            view! {
                <div class="connection-banner" role="status" data-testid="offline">
                    {match since {
                        Some(at) => format!("Cannot reach {place}. What is shown is as of {at}; trying again."),
                        None => format!("Cannot reach {place}; trying again."),
                    }}
                </div>
            }
        })}
        {move || auth.notice.get().map(|n| view! {
            <div class="notice" role="alert">
                {n}
                <button aria-label="Dismiss" on:click=move |_| auth.notice.set(None)>"×"</button>
            </div>
        })}
    }
}
