//! The top bar: pages, the endpoint filter, the connection indicator and notices.

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
    view! {
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
            <button class="signout" on:click=move |_| auth.sign_out("Signed out.")>"Sign out"</button>
        </header>
        {move || auth.notice.get().map(|n| view! {
            <div class="notice" role="alert">
                {n}
                <button aria-label="Dismiss" on:click=move |_| auth.notice.set(None)>"×"</button>
            </div>
        })}
    }
}
