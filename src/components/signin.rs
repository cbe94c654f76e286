//! The sign-in form: a token, kept in session storage.

use leptos::prelude::*;

use crate::api::Api;
use crate::session::Auth;

#[component]
pub fn SignIn() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let token = RwSignal::new(String::new());
    let service = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = token.get_untracked().trim().to_owned();
        if value.is_empty() {
            auth.notice.set(Some(
                "Paste the token that `lifeline up` or `lifeline serve` printed.".into(),
            ));
            return;
        }
        if let Some(storage) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
            let _ = storage.set_item(crate::TOKEN_KEY, &value);
        }
        auth.notice.set(None);
        auth.api.set(Some(Api {
            base: String::new(),
            token: value,
        }));
    };
    view! {
        <main class="signin">
            <h1>"Lifeline"</h1>
            <form on:submit=submit aria-labelledby="signin-title">
                <h2 id="signin-title">"Sign in"</h2>
                <p>"Open the URL that " <code>"lifeline up"</code> " printed, or paste its token:"</p>
                <label for="token">"Token"</label>
                <input id="token" type="password" autocomplete="off" prop:value=move || token.get()
                    on:input=move |ev| token.set(event_target_value(&ev))/>
                <label for="service">"Service URL (empty: this site)"</label>
                <input id="service" type="url" placeholder="http://127.0.0.1:8080" prop:value=move || service.get()
                    on:input=move |ev| service.set(event_target_value(&ev))/>
                <button type="submit">"Sign in"</button>
                {move || auth.notice.get().map(|n| view! { <p class="notice" role="alert">{n}</p> })}
            </form>
        </main>
    }
}
