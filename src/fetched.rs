//! A value the dashboard fetches from the service, fetched again whenever what its request reads
//! changes.
//!
//! Leptos's resources do this too, but each one instantiates the whole of the asynchronous
//! derived-signal machinery (wakers, subscribers, suspense hooks) for its value's type, which the
//! dashboard paid for in its bundle once per resource. Nothing here waits on a fetch inside
//! `<Suspense>`, so a signal set when the answer arrives is all it needs.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

/// The answer of `request`'s latest fetch: `None` until the first answer, then the latest
/// answer, which stays while the next one is on its way.
///
/// `request` runs in an effect, so every signal it reads before returning its future is
/// tracked, and a change to any of them fetches again; what the future reads is not. A memo it
/// depends on must be read, not only tracked: a memo that nobody has read follows nothing. An
/// answer that arrives after a newer fetch has started is dropped, so a slow answer never
/// overwrites a newer one.
pub fn fetched<T, F>(request: impl Fn() -> F + 'static) -> ReadSignal<Option<T>>
where
    T: Send + Sync + 'static,
    F: Future<Output = T> + 'static,
{
    let answer = RwSignal::new(None);
    follow(Box::new(move || {
        let fetch = request();
        Box::pin(async move {
            let value = fetch.await;
            // The view that asked may be gone by now; then nobody reads the answer.
            Box::new(move || {
                let _ = answer.try_set(Some(value));
            }) as Landing
        })
    }));
    answer.read_only()
}

/// What to do with an answer once it is known to be the latest.
type Landing = Box<dyn FnOnce()>;

/// A request on its way, ending in what to do with its answer.
type Fetch = Pin<Box<dyn Future<Output = Landing>>>;

/// The effect and the tasks behind every [`fetched`] value, whatever its type: one copy in the
/// wasm rather than one per type.
fn follow(request: Box<dyn Fn() -> Fetch>) {
    let latest = Rc::new(Cell::new(0_u64));
    Effect::new(move |_| {
        let fetch = request();
        let this = latest.get().wrapping_add(1);
        latest.set(this);
        let latest = Rc::clone(&latest);
        spawn_local(async move {
            let land = fetch.await;
            if latest.get() == this {
                land();
            }
        });
    });
}

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests {
    use super::*;
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_browser);

    async fn sleep(ms: i32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(w) = web_sys::window() {
                let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    #[wasm_bindgen_test]
    async fn a_change_fetches_again_and_a_slow_answer_never_overwrites_a_newer_one() {
        let _ = any_spawner::Executor::init_wasm_bindgen();
        let owner = Owner::new();
        let asked = RwSignal::new(1_u32);
        // Read through a memo, as the pages' refresh periods are.
        let (answer, asked) = owner.with(|| {
            let period = Memo::new(move |_| asked.get() * 10);
            let answer = fetched(move || {
                let period = period.get();
                async move {
                    // The first answer is the slowest.
                    sleep(if period == 10 { 300 } else { 20 }).await;
                    period
                }
            });
            (answer, asked)
        });
        assert_eq!(
            answer.get_untracked(),
            None,
            "nothing before the first answer"
        );
        sleep(50).await;
        asked.set(2);
        sleep(150).await;
        assert_eq!(
            answer.get_untracked(),
            Some(20),
            "the newer request answered first"
        );
        sleep(400).await;
        assert_eq!(
            answer.get_untracked(),
            Some(20),
            "the older answer was dropped"
        );
        asked.set(3);
        sleep(150).await;
        assert_eq!(answer.get_untracked(), Some(30));
        drop(owner);
    }
}
