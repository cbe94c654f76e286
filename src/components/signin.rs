//! The sign-in form: a token and, for a service other than the one serving this page, its URL.
//! The pair is checked with `GET /v1/me` before the dashboard opens, so that a wrong token or
//! address is said here, in one sentence, and the dashboard opens already knowing who is
//! signed in.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{Api, ApiError};
use crate::session::Auth;

/// A service URL as a person types it: `host:8080` means `http://host:8080`.
pub fn service_url(typed: &str) -> String {
    let typed = typed.trim();
    if typed.is_empty() || typed.contains("://") {
        typed.to_owned()
    } else {
        format!("http://{typed}")
    }
}

#[component]
pub fn SignIn() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let token = RwSignal::new(String::new());
    let service = RwSignal::new(crate::stored_service());
    let checking = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = token.get_untracked().trim().to_owned();
        if value.is_empty() {
            auth.notice.set(Some(
                "Paste the token that `lifeline up` or `lifeline serve` printed.".into(),
            ));
            return;
        }
        let api = Api::new(&service_url(&service.get_untracked()), &value);
        checking.set(true);
        auth.notice.set(None);
        spawn_local(async move {
            let answer = api.me().await;
            checking.try_set(false);
            match answer {
                Ok(user) => auth.sign_in(api, Some(user)),
                Err(ApiError::Unauthorized) => {
                    auth.notice.try_set(Some(
                        "The service refused this token: check that it was copied whole and has not been revoked."
                            .into(),
                    ));
                }
                Err(error) => {
                    auth.notice.try_set(Some(error.to_string()));
                }
            }
        });
    };
    view! {
        <main class="signin">
            <h1>"Lifeline"</h1>
            <form on:submit=submit aria-labelledby="signin-title" novalidate>
                <h2 id="signin-title">"Sign in"</h2>
                <p>"Open the URL that " <code>"lifeline up"</code> " printed, or paste its token:"</p>
                <label for="token">"Token"</label>
                <input id="token" type="password" autocomplete="off" prop:value=move || token.get()
                    on:input=move |ev| token.set(event_target_value(&ev))/>
                <label for="service">"Service URL (empty: this site)"</label>
                <input id="service" type="url" placeholder="http://127.0.0.1:8080" prop:value=move || service.get()
                    on:input=move |ev| service.set(event_target_value(&ev))/>
                <button type="submit" disabled=move || checking.get()>
                    {move || if checking.get() { "Signing in…" } else { "Sign in" }}
                </button>
                {move || auth.notice.get().map(|n| view! { <p class="notice" role="alert" data-testid="notice">{n}</p> })}
            </form>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::service_url;

    #[test]
    fn a_bare_host_means_http() {
        assert_eq!(service_url(""), "");
        assert_eq!(service_url("  "), "");
        assert_eq!(service_url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(service_url("https://lab.example/"), "https://lab.example/");
    }
}
