//! What Lifeline's test suites share (a dev-dependency only): waiting for something that should
//! happen soon, by asking again until it holds, instead of sleeping a fixed time and hoping.

use std::fmt::Debug;
use std::time::Duration;

/// How long a test waits for something that should happen promptly. Generous: the machines
/// that run the tests are shared and noisy, and a passing test never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How long to wait between two looks.
const INTERVAL: Duration = Duration::from_millis(25);

/// Looks with `probe` until `check` holds for what it sees, and returns that. Panics after
/// [`PATIENCE`] saying what was awaited and the last thing seen.
pub async fn eventually<T, Fut>(
    what: &str,
    probe: impl FnMut() -> Fut,
    check: impl Fn(&T) -> bool,
) -> T
where
    T: Debug,
    Fut: Future<Output = T>,
{
    eventually_within(PATIENCE, what, probe, check).await
}

/// [`eventually`] with a patience of its own, for what takes long by nature (a whole demo run).
pub async fn eventually_within<T, Fut>(
    patience: Duration,
    what: &str,
    mut probe: impl FnMut() -> Fut,
    check: impl Fn(&T) -> bool,
) -> T
where
    T: Debug,
    Fut: Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let seen = probe().await;
        if check(&seen) {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what} within {} s; last seen: {seen:#?}",
            patience.as_secs()
        );
        tokio::time::sleep(INTERVAL).await;
    }
}
