//! The page's footer: which Lifeline service the dashboard talks to, by version and commit, so
//! that a screenshot or a bug report says what was running.

use leptos::prelude::*;
use lifeline_model::api::Health;

use crate::session::Auth;

/// How much of a commit hash the footer shows: enough to find it, short enough to read.
const COMMIT_DIGITS: usize = 12;

/// `Lifeline 0.1.0 · commit 1a2b3c4d5e6f`, from what `/healthz` says; the parts it leaves out
/// are left out here too.
pub fn version_text(health: &Health) -> String {
    let mut text = "Lifeline".to_owned();
    if let Some(version) = &health.version {
        text.push(' ');
        text.push_str(version);
    }
    if let Some(commit) = &health.commit {
        text.push_str(" · commit ");
        text.extend(commit.chars().take(COMMIT_DIGITS));
    }
    text
}

/// The footer, once the service has said its version (asked once per session).
#[component]
pub fn Footer() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let health = crate::fetched::fetched(move || {
        let api = auth.api.get();
        async move {
            match api {
                Some(api) => api.health().await.ok(),
                None => None,
            }
        }
    });
    move || {
        health.get().flatten().map(|h| {
            view! {
                <footer class="site-footer" data-version=h.version.clone().unwrap_or_default()
                    data-commit=h.commit.clone().unwrap_or_default()>
                    {version_text(&h)}
                </footer>
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::version_text;
    use lifeline_model::api::Health;

    #[test]
    fn the_footer_names_the_version_and_a_short_commit() {
        let health = |version: Option<&str>, commit: Option<&str>| Health {
            status: "ok".into(),
            seq: 0,
            version: version.map(Into::into),
            commit: commit.map(Into::into),
        };
        assert_eq!(
            version_text(&health(Some("0.1.0"), Some("1a2b3c4d5e6f7a8b9c0d"))),
            "Lifeline 0.1.0 · commit 1a2b3c4d5e6f"
        );
        assert_eq!(
            version_text(&health(Some("0.1.0"), Some("unknown"))),
            "Lifeline 0.1.0 · commit unknown"
        );
        assert_eq!(version_text(&health(None, None)), "Lifeline");
    }
}
