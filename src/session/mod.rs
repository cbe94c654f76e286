//! The dashboard's data layer: who is signed in, the live picture of the tasks, the endpoint
//! list, function names, statistics, the clock and the connection indicator, each provided as
//! its own small context so that a view asks only for what it reads.
//!
//! Data flows one way. Loading builds a [`Live`] from `/v1/stats` and `/v1/tasks` at a sequence
//! number; [`use_event_stream`] then hands over every later event in batches, which are applied
//! (each transition checked by the model) and bump the version the views depend on. A gap in the
//! sequence reopens the stream after the last applied event. When the stream cannot be had,
//! the dashboard polls, and tries the stream again every few rounds.

mod endpoints;
mod load;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use lifeline_model::{EventBody, FunctionId, StatsSummary};

use crate::api::{Api, ApiError};
use crate::event_stream::{
    Applied, StreamAddress, StreamState, UseEventStreamOptions, UseEventStreamReturn,
    use_event_stream_with_options,
};
use crate::live::Live;
use crate::url_state::ViewState;

pub use endpoints::{Endpoints, apply_status};
pub use load::TASK_CAP;

/// The connection indicator's states (`data-connection`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    Live,
    Reconnecting,
    Polling,
    Offline,
}

impl Connection {
    pub fn wire(self) -> &'static str {
        match self {
            Connection::Live => "live",
            Connection::Reconnecting => "reconnecting",
            Connection::Polling => "polling",
            Connection::Offline => "offline",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Connection::Live => "Live",
            Connection::Reconnecting => "Reconnecting…",
            Connection::Polling => "Polling",
            Connection::Offline => "Offline",
        }
    }

    /// What the indicator shows for the stream's state and the polling fallback. While the
    /// dashboard polls, the indicator says so until the stream really opens again, however
    /// its attempts go.
    pub fn of(stream: StreamState, fallback: Fallback) -> Self {
        match (stream, fallback) {
            (StreamState::Open, _) => Connection::Live,
            (_, Fallback::Polling) => Connection::Polling,
            (_, Fallback::Unreachable) => Connection::Offline,
            (StreamState::Connecting | StreamState::Reconnecting, Fallback::Off) => {
                Connection::Reconnecting
            }
            (StreamState::Closed | StreamState::Failed, Fallback::Off) => Connection::Offline,
        }
    }
}

/// Polling, for when the stream cannot be had.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    Off,
    /// Polling, and the last round got an answer.
    Polling,
    /// Polling, and the last round could not reach the service.
    Unreachable,
}

/// Seconds between polling rounds.
const POLL_PERIOD: Duration = Duration::from_secs(2);
/// Polling rounds between attempts to open the stream again.
const RETRY_EVERY: u32 = 5;
/// Seconds between refreshes of the statistics (time-in-state percentiles).
const STATS_EVERY: u64 = 3;

/// Who is signed in, and what went wrong.
#[derive(Copy, Clone, Debug)]
pub struct Auth {
    /// The service and token; `None` shows the sign-in form.
    pub api: RwSignal<Option<Api>>,
    /// A message for the user, shown until dismissed.
    pub notice: RwSignal<Option<String>>,
}

impl Auth {
    /// Shows an error; a refused token sends the user back to the sign-in form.
    pub fn fail(&self, error: &ApiError) {
        if *error == ApiError::Unauthorized {
            self.sign_out("The service refused the token. Sign in again.");
        } else {
            self.notice.try_set(Some(error.to_string()));
        }
    }

    /// Forgets the token; the data layer stops following the service when it sees that.
    pub fn sign_out(&self, why: &str) {
        if let Some(storage) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
            let _ = storage.remove_item(crate::TOKEN_KEY);
        }
        self.api.try_set(None);
        self.notice.try_set(Some(why.to_owned()));
    }
}

/// The live picture of the tasks ([`Live`]). It changes with every batch of events, so it is
/// kept out of the reactive graph and a version number stands for it there.
#[derive(Copy, Clone, Debug)]
pub struct LiveTasks {
    live: StoredValue<Option<Live>>,
    version: RwSignal<u64>,
}

impl LiveTasks {
    fn new() -> Self {
        Self {
            live: StoredValue::new(None),
            version: RwSignal::new(0),
        }
    }

    /// Reads the picture (`None` before the first load), and runs again when it changes.
    pub fn with<R>(&self, f: impl FnOnce(Option<&Live>) -> R) -> R {
        self.version.track();
        self.live.with_value(|l| f(l.as_ref()))
    }

    /// Reads the picture without subscribing to its changes.
    pub fn with_untracked<R>(&self, f: impl FnOnce(Option<&Live>) -> R) -> R {
        self.live.with_value(|l| f(l.as_ref()))
    }

    fn replace(&self, live: Live) {
        self.live.set_value(Some(live));
        self.version.update(|v| *v += 1);
    }

    /// Changes the picture, if there is one, and tells the views.
    fn update<R>(&self, f: impl FnOnce(&mut Live) -> R) -> Option<R> {
        let out = self.live.try_update_value(|l| l.as_mut().map(f)).flatten();
        self.version.try_update(|v| *v += 1);
        out
    }
}

/// The wall clock in epoch seconds, ticking every second for ages and rates.
#[derive(Copy, Clone, Debug)]
pub struct Clock(RwSignal<f64>);

impl Clock {
    pub fn get(&self) -> f64 {
        self.0.get()
    }

    pub fn track(&self) {
        self.0.track();
    }
}

/// Function names by id, looked up as the task list shows them.
#[derive(Copy, Clone, Debug)]
pub struct FunctionNames {
    names: RwSignal<HashMap<FunctionId, String>>,
    auth: Auth,
}

impl FunctionNames {
    /// Reads the names known so far, and runs again when one arrives.
    pub fn with<R>(&self, f: impl FnOnce(&HashMap<FunctionId, String>) -> R) -> R {
        self.names.with(f)
    }

    /// Looks up the names not known yet. Until one arrives, the function shows as the end of
    /// its id.
    pub fn want(&self, ids: Vec<FunctionId>) {
        let Some(api) = self.auth.api.get_untracked() else {
            return;
        };
        let missing: HashSet<FunctionId> = self
            .names
            .with_untracked(|f| ids.into_iter().filter(|id| !f.contains_key(id)).collect());
        for id in missing {
            self.names.update(|f| {
                f.insert(id, short(&id.to_string()));
            });
            let api = api.clone();
            let names = self.names;
            spawn_local(async move {
                if let Ok(f) = api.function(id).await {
                    names.try_update(|m| {
                        m.insert(id, f.name);
                    });
                }
            });
        }
    }
}

pub fn now_secs() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// The last eight characters of an id: the random part of a time-ordered UUID, which tells
/// tasks submitted together apart.
pub fn short(id: &str) -> String {
    id.chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

/// Creates the data layer for a service (or none, to sign in first) and a view, and provides
/// its contexts: [`Auth`], `RwSignal<ViewState>`, [`LiveTasks`], [`Endpoints`],
/// [`FunctionNames`], [`Clock`], `Signal<StatsSummary>` and `Signal<Connection>`.
pub fn provide_session(api: Option<Api>, view: ViewState) {
    let auth = Auth {
        api: RwSignal::new(api),
        notice: RwSignal::new(None),
    };
    let view = RwSignal::new(view);
    let live = LiveTasks::new();
    let stats = RwSignal::new(StatsSummary::default());
    let endpoints = Endpoints::new(auth);
    let functions = FunctionNames {
        names: RwSignal::new(HashMap::new()),
        auth,
    };
    let clock = Clock(RwSignal::new(now_secs()));
    let stream = use_event_stream_with_options(
        move |after| {
            let api = auth.api.get_untracked();
            Box::pin(async move {
                match api {
                    Some(api) => api.events_url(after).await.ok(),
                    None => None,
                }
            }) as StreamAddress
        },
        UseEventStreamOptions::default()
            .on_events(move |events| apply_events(live, endpoints, events)),
    );
    let fallback = RwSignal::new(Fallback::Off);
    let connection = Memo::new(move |_| Connection::of(stream.ready_state.get(), fallback.get()));
    let data = Data {
        auth,
        view,
        live,
        stats,
        stream,
        fallback,
        generation: StoredValue::new(0),
        polling: StoredValue::new(None),
    };

    provide_context(auth);
    provide_context(view);
    provide_context(live);
    provide_context(endpoints);
    provide_context(functions);
    provide_context(clock);
    provide_context::<Signal<StatsSummary>>(stats.into());
    provide_context::<Signal<Connection>>(connection.into());

    // A new session or endpoint filter loads everything again; signing out stops.
    let filter = Memo::new(move |_| (auth.api.get(), view.with(|v| v.endpoints.clone())));
    Effect::new(move |_| {
        if filter.with(|(api, _)| api.is_some()) {
            data.reload();
        } else {
            data.stop();
        }
    });
    // The endpoint list comes with the session; the stream keeps it current.
    Effect::new(move |_| {
        if auth.api.with(Option::is_some) {
            endpoints.refresh();
        }
    });
    Effect::new(move |_| {
        if stream.ready_state.get() == StreamState::Failed {
            data.start_polling();
        }
    });
    let ticker = set_interval_with_handle(
        move || {
            clock.0.set(now_secs());
            let tick = clock.0.get_untracked() as u64;
            if auth.api.with_untracked(Option::is_some) && tick.is_multiple_of(STATS_EVERY) {
                data.refresh_stats();
            }
        },
        Duration::from_secs(1),
    );
    on_cleanup(move || {
        if let Ok(t) = ticker {
            t.clear();
        }
    });
}

/// Applies a batch from the stream: to the live picture, stopping at a gap, and each endpoint
/// change to the endpoint list.
fn apply_events(
    live: LiveTasks,
    endpoints: Endpoints,
    events: Vec<lifeline_model::Event>,
) -> Applied {
    let now = now_secs();
    let mut gap = false;
    let mut statuses = Vec::new();
    let mut named = HashSet::new();
    let through = live.update(|l| {
        for event in &events {
            if l.apply(event, now).is_err() {
                gap = true;
                break;
            }
            match &event.body {
                EventBody::Endpoint(status) => statuses.push(status.clone()),
                EventBody::Transition(t) => {
                    named.insert(t.endpoint_id);
                }
            }
        }
        l.seq
    });
    endpoints.apply(&statuses, &named);
    Applied {
        // Without a picture nothing was applied: resume before the batch.
        through: through.unwrap_or_else(|| events.first().map_or(0, |e| e.seq.saturating_sub(1))),
        gap,
    }
}

/// The data layer's own handles.
#[derive(Copy, Clone)]
struct Data<O, C>
where
    O: Fn(u64) + Copy + 'static,
    C: Fn() + Copy + 'static,
{
    auth: Auth,
    view: RwSignal<ViewState>,
    live: LiveTasks,
    stats: RwSignal<StatsSummary>,
    stream: UseEventStreamReturn<O, C>,
    fallback: RwSignal<Fallback>,
    /// Which load is current; older loads and polling loops stop themselves.
    generation: StoredValue<u64>,
    /// The load whose polling loop is running, if one is.
    polling: StoredValue<Option<u64>>,
}

impl<O, C> Data<O, C>
where
    O: Fn(u64) + Copy + 'static,
    C: Fn() + Copy + 'static,
{
    fn current(&self, generation: u64) -> bool {
        self.generation.try_get_value() == Some(generation)
    }

    fn stop(&self) {
        self.generation.update_value(|g| *g += 1);
        (self.stream.close)();
        self.fallback.set(Fallback::Off);
    }

    /// (Re)loads everything for the current endpoint filter, then follows the stream.
    fn reload(&self) {
        let Some(api) = self.auth.api.get_untracked() else {
            return;
        };
        self.stop();
        let generation = self.generation.get_value();
        let endpoints = self.view.with_untracked(|v| v.endpoints.clone());
        let data = *self;
        spawn_local(async move {
            let loaded = load::everything(&api, &endpoints).await;
            if !data.current(generation) {
                return;
            }
            match loaded {
                Ok((stats, rows)) => {
                    let filter = (!endpoints.is_empty())
                        .then(|| endpoints.iter().copied().collect::<HashSet<_>>());
                    let seq = stats.seq;
                    data.live.replace(Live::new(seq, stats.tasks, rows, filter));
                    data.stats.set(stats);
                    data.auth.notice.set(None);
                    (data.stream.open)(seq);
                }
                Err(error) => data.auth.fail(&error),
            }
        });
    }

    /// Refreshes `/v1/stats` (time-in-state percentiles) for the current filter.
    fn refresh_stats(&self) {
        let Some(api) = self.auth.api.get_untracked() else {
            return;
        };
        let endpoints = self.view.with_untracked(|v| v.endpoints.clone());
        let stats = self.stats;
        spawn_local(async move {
            if let Ok(s) = api.stats(&endpoints).await {
                stats.try_set(s);
            }
        });
    }

    /// Polls until the stream opens again, unless this load already polls.
    fn start_polling(&self) {
        let generation = self.generation.get_value();
        if self.polling.get_value() == Some(generation) {
            return;
        }
        self.polling.set_value(Some(generation));
        self.fallback.set(Fallback::Polling);
        let data = *self;
        spawn_local(async move {
            data.poll(generation).await;
            if data.polling.try_get_value() == Some(Some(generation)) {
                data.polling.set_value(None);
                data.fallback.set(Fallback::Off);
            }
        });
    }

    /// Whether the polling loop of `generation` should go on.
    fn still_polling(&self, generation: u64) -> bool {
        self.current(generation)
            && self.stream.ready_state.try_get_untracked() != Some(StreamState::Open)
    }

    async fn poll(&self, generation: u64) {
        let mut rounds = 0u32;
        loop {
            load::sleep(POLL_PERIOD).await;
            if !self.still_polling(generation) {
                return;
            }
            rounds += 1;
            let Some(api) = self.auth.api.get_untracked() else {
                return;
            };
            let endpoints = self.view.with_untracked(|v| v.endpoints.clone());
            match load::head(&api, &endpoints).await {
                // An answer that comes after the stream opened is older than what it applied.
                Ok(_) if !self.still_polling(generation) => return,
                Ok((stats, rows)) => {
                    self.live
                        .update(|l| l.refresh(stats.seq, stats.tasks, rows));
                    self.stats.set(stats);
                    self.fallback.set(Fallback::Polling);
                }
                Err(ApiError::Unauthorized) => {
                    self.auth.fail(&ApiError::Unauthorized);
                    return;
                }
                Err(_) => self.fallback.set(Fallback::Unreachable),
            }
            // Every few rounds, try the stream again; polling goes on until it opens.
            let idle = matches!(
                self.stream.ready_state.try_get_untracked(),
                Some(StreamState::Failed | StreamState::Closed)
            );
            if rounds.is_multiple_of(RETRY_EVERY) && idle && self.current(generation) {
                let after = self.live.with_untracked(|l| l.map_or(0, |l| l.seq));
                (self.stream.open)(after);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indicator_follows_the_stream_and_the_fallback() {
        use Connection::*;
        use StreamState as S;
        let cases = [
            (S::Closed, Fallback::Off, Offline),
            (S::Connecting, Fallback::Off, Reconnecting),
            (S::Open, Fallback::Off, Live),
            (S::Reconnecting, Fallback::Off, Reconnecting),
            (S::Failed, Fallback::Off, Offline),
            (S::Failed, Fallback::Polling, Polling),
            (S::Connecting, Fallback::Polling, Polling),
            (S::Reconnecting, Fallback::Polling, Polling),
            (S::Connecting, Fallback::Unreachable, Offline),
            (S::Open, Fallback::Polling, Live),
            (S::Open, Fallback::Unreachable, Live),
        ];
        for (stream, fallback, shown) in cases {
            assert_eq!(
                Connection::of(stream, fallback),
                shown,
                "{stream:?} {fallback:?}"
            );
        }
    }
}
