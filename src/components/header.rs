//! The top bar: pages, the endpoint filter, the connection indicator, who is signed in (with
//! admin's "mine / everyone" switch) and the sign-out control, then notices.

use leptos::prelude::*;

use crate::session::{Auth, Connection, Endpoints};
use crate::url_state::{Page, ViewState};

#[component]
pub fn Header() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let endpoints = expect_context::<Endpoints>();
    let connection = expect_context::<Signal<Connection>>();
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
        endpoints.with(|list| {
            list.iter()
                .map(|e| {
                    let id = e.endpoint_id;
                    let selected = move || view_state.with(|v| v.endpoints.contains(&id));
                    let dot = if e.online { "dot online" } else { "dot offline" };
                    let status = if e.online { "online" } else { "offline" };
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
        Page::Endpoints | Page::Overview => ("#content", "Skip to the content"),
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
                <button class="signout" data-testid="sign-out" on:click=move |_| auth.sign_out("Signed out.")>"Sign out"</button>
            </div>
        </header>
        {move || auth.notice.get().map(|n| view! {
            <div class="notice" role="alert">
                {n}
                <button aria-label="Dismiss" on:click=move |_| auth.notice.set(None)>"×"</button>
            </div>
        })}
    }
}
