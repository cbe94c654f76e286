//! The dashboard's data layer: who is signed in, the live picture of the tasks, the endpoint
//! list, function names, statistics, the clock and the connection indicator, each provided as
//! its own small context so that a view asks only for what it reads.
//!
//! Data flows one way. Loading builds a [`Live`] from `/v1/stats` at a sequence number;
//! [`use_event_stream`] then hands over every later event in batches, which are applied (each
//! transition checked by the model, then given to the task list's [`Window`]) and bump the
//! versions the views depend on. The list fetches its own rows, a window at a time ([`TaskList`]). A gap in the
//! sequence reopens the stream after the last applied event. When the stream cannot be had,
//! the dashboard polls, and tries the stream again every few rounds.

mod endpoints;
mod exceptions;
mod load;
mod replay;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use lifeline_model::api::UserInfo;
use lifeline_model::{EndpointId, EventBody, FunctionId, StatsSummary, TaskGroupId, TaskId};

use crate::api::{Api, ApiError, Outcome, REFUSED};
use crate::event_stream::{
    Applied, StreamAddress, StreamState, UseEventStreamOptions, UseEventStreamReturn,
    use_event_stream_with_options,
};
use crate::live::Live;
use crate::url_state::ViewState;
use crate::window::{Fetch, Query, Window};

pub use endpoints::{Endpoints, apply_status};
pub use exceptions::{Exceptions, exception_line};
pub use replay::{Figures, Replay, flows_of, use_shown_counts};

/// The connection indicator's states (`data-connection`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Loading, or opening the stream for the first time.
    Connecting,
    Live,
    Reconnecting,
    Polling,
    Offline,
    /// Showing a moment of the past (`?at=`), not now.
    Replay,
}

impl Connection {
    pub fn wire(self) -> &'static str {
        match self {
            Connection::Connecting => "connecting",
            Connection::Live => "live",
            Connection::Reconnecting => "reconnecting",
            Connection::Polling => "polling",
            Connection::Offline => "offline",
            Connection::Replay => "replay",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Connection::Connecting => "Connecting…",
            Connection::Live => "Live",
            Connection::Reconnecting => "Reconnecting…",
            Connection::Polling => "Polling",
            Connection::Offline => "Offline",
            Connection::Replay => "Replay",
        }
    }

    /// What the indicator shows, from the stream's state, the polling fallback, whether the
    /// last call reached the service and whether a load is under way. A service that cannot
    /// be reached is offline whatever is being tried meanwhile (so the indicator does not
    /// flicker between polling and offline while it is away); while the dashboard polls, the
    /// indicator says so until the stream really opens again.
    pub fn of(stream: StreamState, fallback: Fallback, reachable: bool, loading: bool) -> Self {
        match (stream, fallback) {
            (StreamState::Open, _) => Connection::Live,
            _ if !reachable => Connection::Offline,
            (_, Fallback::Unreachable) => Connection::Offline,
            (_, Fallback::Polling) => Connection::Polling,
            _ if loading => Connection::Connecting,
            (StreamState::Connecting, Fallback::Off) => Connection::Connecting,
            (StreamState::Reconnecting, Fallback::Off) => Connection::Reconnecting,
            (StreamState::Closed | StreamState::Failed, Fallback::Off) => Connection::Offline,
        }
    }

    /// Whether what is shown is current (or being brought up to date).
    pub fn current(self) -> bool {
        matches!(self, Connection::Live | Connection::Polling)
    }
}

/// When the dashboard last knew its picture to be current (the stream live, or a poll
/// answered), in epoch seconds: what an offline dashboard shows is as of then.
#[derive(Copy, Clone, Debug)]
pub struct LastCurrent(pub Signal<Option<f64>>);

/// Polling, for when the stream cannot be had.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    Off,
    /// Polling, and the last round got an answer.
    Polling,
    /// Polling, and the last round failed (unreachable, or an error answer).
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
    /// Whose token it is, once `/v1/me` has said.
    pub user: RwSignal<Option<UserInfo>>,
    /// Whether the last call reached the service (a refusal or an error answer counts: the
    /// service is there).
    pub reachable: RwSignal<bool>,
    /// A message for the user, shown until dismissed.
    pub notice: RwSignal<Option<String>>,
}

impl Auth {
    fn new() -> Self {
        Self {
            api: RwSignal::new(None),
            user: RwSignal::new(None),
            reachable: RwSignal::new(true),
            notice: RwSignal::new(None),
        }
    }

    /// Hears every call the session's [`Api`] makes. A refusal of the current token, by
    /// whichever call met it, signs out with the same message; one for a token signed out
    /// since (an answer arriving late) changes nothing.
    fn observer(self) -> crate::api::Observer {
        Arc::new(move |token: &str, outcome: Outcome| match outcome {
            Outcome::Refused => {
                let current = self
                    .api
                    .try_with_untracked(|a| a.as_ref().is_some_and(|a| a.token == token))
                    .unwrap_or(false);
                if current {
                    self.sign_out(Some(REFUSED));
                }
            }
            Outcome::Unreachable => {
                self.reachable.try_set(false);
            }
            Outcome::Answered => {
                if self.reachable.try_get_untracked() == Some(false) {
                    self.reachable.try_set(true);
                }
            }
        })
    }

    /// Signs in with a service and token (and who it belongs to, when already known), keeping
    /// them in session storage so that a reload stays signed in.
    pub fn sign_in(&self, api: Api, user: Option<UserInfo>) {
        if let Some(storage) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
            let _ = storage.set_item(crate::TOKEN_KEY, &api.token);
            let _ = storage.set_item(crate::SERVICE_KEY, &api.base);
        }
        self.notice.set(None);
        self.reachable.set(true);
        self.user.set(user);
        self.api.set(Some(api.observed(self.observer())));
    }

    /// Shows an error. A refused token has already signed out (see [`Auth::observer`]) and an
    /// unreachable service shows in the connection indicator, so neither becomes a notice.
    pub fn fail(&self, error: &ApiError) {
        match error {
            ApiError::Unauthorized => {
                if self.api.try_with_untracked(Option::is_some) == Some(true) {
                    self.sign_out(Some(REFUSED));
                }
            }
            ApiError::Network(_) => {
                self.reachable.try_set(false);
            }
            ApiError::Http { .. } | ApiError::Decode(_) => {
                self.notice.try_set(Some(error.to_string()));
            }
        }
    }

    /// Forgets the token; the data layer stops following the service when it sees that. The
    /// service URL is kept, for the sign-in form, which shows `why` (nothing when the user
    /// asked to sign out: that needs no explaining).
    pub fn sign_out(&self, why: Option<&str>) {
        if let Some(storage) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
            let _ = storage.remove_item(crate::TOKEN_KEY);
        }
        self.api.try_set(None);
        self.user.try_set(None);
        self.reachable.try_set(true);
        self.notice.try_set(why.map(str::to_owned));
    }

    /// Whether the view narrows to the caller's own tasks: admin's choice (the `mine` switch),
    /// `None` until `/v1/me` has said who is signed in. Others see what is theirs or shared
    /// with them either way.
    pub fn mine(&self, wanted: bool) -> Option<bool> {
        self.user.with(|u| u.as_ref().map(|u| u.admin && wanted))
    }

    fn mine_untracked(&self, wanted: bool) -> bool {
        self.user
            .with_untracked(|u| u.as_ref().is_some_and(|u| u.admin && wanted))
    }

    /// Asks `/v1/me` who the token belongs to, unless that is known or being asked.
    fn ask_who(&self, asking: StoredValue<bool>) {
        let Some(api) = self.api.get_untracked() else {
            return;
        };
        if self.user.with_untracked(Option::is_some) || asking.get_value() {
            return;
        }
        asking.set_value(true);
        let auth = *self;
        spawn_local(async move {
            let answer = api.me().await;
            if asking.try_set_value(false).is_some() {
                return; // The session is gone.
            }
            let same = auth
                .api
                .try_with_untracked(|a| a.as_ref() == Some(&api))
                .unwrap_or(false);
            match answer {
                Ok(user) if same => {
                    auth.user.set(Some(user));
                }
                Ok(_) => {}
                Err(error) if same => auth.fail(&error),
                Err(_) => {}
            }
        });
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

/// The task list's rows: a [`Window`] over the service's listing, fetched as the list scrolls
/// and filters, one request at a time.
#[derive(Copy, Clone, Debug)]
pub struct TaskList {
    window: StoredValue<Window>,
    version: RwSignal<u64>,
    /// The page being fetched.
    fetching: StoredValue<Option<Fetch>>,
    /// What the list last asked to show: listing positions and its length, when known.
    wanted: StoredValue<Option<(usize, usize, Option<usize>)>>,
    /// Whether the last fetch failed.
    failed: RwSignal<bool>,
    auth: Auth,
    view: RwSignal<ViewState>,
}

impl TaskList {
    fn new(auth: Auth, view: RwSignal<ViewState>) -> Self {
        Self {
            window: StoredValue::new(Window::default()),
            version: RwSignal::new(0),
            fetching: StoredValue::new(None),
            wanted: StoredValue::new(None),
            failed: RwSignal::new(false),
            auth,
            view,
        }
    }

    /// Reads the window, and runs again when it changes.
    pub fn with<R>(&self, f: impl FnOnce(&Window) -> R) -> R {
        self.version.track();
        self.window.with_value(f)
    }

    /// Reads the window without subscribing to its changes.
    pub fn with_untracked<R>(&self, f: impl FnOnce(&Window) -> R) -> R {
        self.window.with_value(f)
    }

    /// Runs the caller again when the window changes.
    pub fn track(&self) {
        self.version.track();
    }

    /// Whether the last request for rows failed.
    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    fn update<R>(&self, f: impl FnOnce(&mut Window) -> R) -> Option<R> {
        let out = self.window.try_update_value(f);
        self.version.try_update(|v| *v += 1);
        out
    }

    /// Shows `query`'s listing positions `first..=last` (`total`: the listing's length, when
    /// the counts say), fetching what the window does not hold.
    pub fn show(&self, query: Query, first: usize, last: usize, total: Option<usize>) {
        self.wanted.set_value(Some((first, last, total)));
        if self.window.with_value(|w| *w.query() != query) {
            self.window.set_value(Window::new(query));
            self.fetching.set_value(None);
            self.version.update(|v| *v += 1);
        }
        if let Some(fetch) = self.window.with_value(|w| w.fetch_for(first, last, total)) {
            self.start(fetch, total);
        }
    }

    /// Starts again from nothing (a new session, endpoint filter or scope).
    fn reset(&self) {
        let query = self.window.with_value(|w| w.query().clone());
        self.window.set_value(Window::new(query));
        self.fetching.set_value(None);
        self.version.update(|v| *v += 1);
    }

    /// Fetches the held rows again if the stream or polling brought news the window could not
    /// place, or what the list shows if the last request failed.
    fn tick(&self) {
        if let Some(fetch) = self.window.with_value(Window::refetch) {
            let total = self.wanted.get_value().and_then(|w| w.2);
            self.start(fetch, total);
        } else if self.failed.get_untracked()
            && let Some((first, last, total)) = self.wanted.get_value()
            && let Some(fetch) = self.window.with_value(|w| w.fetch_for(first, last, total))
        {
            self.start(fetch, total);
        }
    }

    /// Counts the streamed moves of the task whose detail is open.
    pub fn watch(&self, task: Option<TaskId>) {
        self.window.update_value(|w| w.watch(task));
    }

    fn start(&self, fetch: Fetch, total: Option<usize>) {
        if self.fetching.with_value(Option::is_some) {
            return; // One at a time: the list asks again when this one lands.
        }
        let Some(api) = self.auth.api.get_untracked() else {
            return;
        };
        let (endpoints, wanted) = self.view.with_untracked(|v| (v.endpoints.clone(), v.mine));
        let mine = self.auth.mine_untracked(wanted);
        self.fetching.set_value(Some(fetch.clone()));
        let list = *self;
        spawn_local(async move {
            let answer = api
                .tasks(&endpoints, mine, &fetch.query, fetch.limit, fetch.cursor)
                .await;
            if list.fetching.try_get_value().flatten().as_ref() != Some(&fetch) {
                return; // Reset meanwhile.
            }
            list.fetching.set_value(None);
            match answer {
                Ok(page) => {
                    list.failed.set(false);
                    list.update(|w| w.place(fetch, page, total));
                }
                Err(error) => {
                    list.failed.set(true);
                    list.auth.fail(&error);
                }
            }
        });
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
/// its contexts: [`Auth`], `RwSignal<ViewState>`, [`LiveTasks`], [`TaskList`], [`Endpoints`],
/// [`FunctionNames`], [`Clock`], [`Replay`], `Signal<StatsSummary>` and `Signal<Connection>`.
pub fn provide_session(api: Option<Api>, view: ViewState) {
    let auth = Auth::new();
    if let Some(api) = api {
        auth.sign_in(api, None);
    }
    let view = RwSignal::new(view);
    let live = LiveTasks::new();
    let list = TaskList::new(auth, view);
    let stats = RwSignal::new(StatsSummary::default());
    let endpoints = Endpoints::new(auth);
    let functions = FunctionNames {
        names: RwSignal::new(HashMap::new()),
        auth,
    };
    let clock = Clock(RwSignal::new(now_secs()));
    // The stream's resets (history removed by retention), counted: each reloads everything.
    let resets = RwSignal::new(0_u64);
    let stream = use_event_stream_with_options(
        move |after| {
            let api = auth.api.get_untracked();
            let mine = auth.mine_untracked(view.with_untracked(|v| v.mine));
            // A refused ticket signs out through the observer; any failure here makes the
            // stream fall back to polling.
            Box::pin(async move {
                match api {
                    Some(api) => api.events_url(after, mine).await.ok(),
                    None => None,
                }
            }) as StreamAddress
        },
        UseEventStreamOptions::default()
            .on_events(move |events| apply_events(live, list, endpoints, events))
            .on_reset(move |_| resets.update(|n| *n += 1)),
    );
    let fallback = RwSignal::new(Fallback::Off);
    let loading = RwSignal::new(false);
    let replay = Replay::new(auth, view);
    let connection = Memo::new(move |_| {
        if replay.active() {
            return Connection::Replay;
        }
        Connection::of(
            stream.ready_state.get(),
            fallback.get(),
            auth.reachable.get(),
            loading.get(),
        )
    });
    let last_current = RwSignal::new(None::<f64>);
    let data = Data {
        auth,
        view,
        live,
        list,
        stats,
        stream,
        fallback,
        loading,
        generation: StoredValue::new(0),
        polling: StoredValue::new(None),
    };

    provide_context(auth);
    provide_context(view);
    provide_context(live);
    provide_context(list);
    provide_context(endpoints);
    provide_context(functions);
    provide_context(Exceptions::new(auth));
    provide_context(clock);
    provide_context(replay);
    provide_context::<Signal<StatsSummary>>(stats.into());
    provide_context::<Signal<Connection>>(connection.into());
    provide_context(LastCurrent(last_current.into()));

    // Who is signed in is asked first: admin's "mine" switch decides what loads.
    let asking = StoredValue::new(false);
    Effect::new(move |_| {
        if auth.api.with(Option::is_some) {
            auth.ask_who(asking);
        }
    });
    // A new session, endpoint filter or scope loads everything again; signing out stops.
    let filter = Memo::new(move |_| {
        (
            auth.api.get(),
            auth.mine(view.with(|v| v.mine)),
            view.with(|v| v.endpoints.clone()),
            view.with(|v| v.group),
        )
    });
    Effect::new(move |_| {
        if filter.with(|(api, mine, ..)| api.is_some() && mine.is_some()) {
            data.reload();
        } else {
            data.stop();
        }
    });
    // What the stream would have brought is gone: the counts and the list start again from
    // the service's figures of now, and the stream goes on from there.
    Effect::watch(move || resets.get(), move |_, _, _| data.reload(), false);
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
    // Current from the moment the stream opens or a poll answers, then every tick (below).
    Effect::new(move |_| {
        if connection.get().current() {
            last_current.set(Some(now_secs()));
        }
    });
    let ticker = set_interval_with_handle(
        move || {
            clock.0.set(now_secs());
            list.tick();
            if connection.get_untracked().current() {
                last_current.set(Some(now_secs()));
            }
            let tick = clock.0.get_untracked() as u64;
            if auth.api.with_untracked(Option::is_some) && tick.is_multiple_of(STATS_EVERY) {
                // Until `/v1/me` answers (the service was unreachable, say), ask again.
                auth.ask_who(asking);
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

/// Applies a batch from the stream: to the live picture, stopping at a gap, each accepted
/// transition to the task list's window, and each endpoint change to the endpoint list.
fn apply_events(
    live: LiveTasks,
    list: TaskList,
    endpoints: Endpoints,
    events: Vec<lifeline_model::Event>,
) -> Applied {
    let now = now_secs();
    let mut gap = false;
    let mut statuses = Vec::new();
    let mut named = HashSet::new();
    let mut accepted = Vec::new();
    let through = live.update(|l| {
        for event in &events {
            match (l.apply(event, now), &event.body) {
                (Err(_), _) => {
                    gap = true;
                    break;
                }
                (Ok(shown), EventBody::Transition(t)) => {
                    named.insert(t.endpoint_id);
                    if shown {
                        accepted.push((event.seq, t));
                    }
                }
                (Ok(_), EventBody::Endpoint(status)) => statuses.push(status.clone()),
            }
        }
        l.seq
    });
    if !accepted.is_empty() {
        let refused: Vec<_> = list
            .update(|w| {
                accepted
                    .iter()
                    .filter_map(|(seq, t)| w.apply(t).err().map(|m| (*seq, t.task_id, m)))
                    .collect()
            })
            .unwrap_or_default();
        if !refused.is_empty() {
            live.update(|l| {
                for (seq, task, message) in refused {
                    l.warn(seq, task, message);
                }
            });
        }
    }
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
    list: TaskList,
    stats: RwSignal<StatsSummary>,
    stream: UseEventStreamReturn<O, C>,
    fallback: RwSignal<Fallback>,
    /// A load is under way.
    loading: RwSignal<bool>,
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

    /// The view's endpoints, and whether it narrows to the caller's own tasks.
    fn scope(&self) -> (Vec<EndpointId>, bool) {
        let (endpoints, wanted) = self.view.with_untracked(|v| (v.endpoints.clone(), v.mine));
        (endpoints, self.auth.mine_untracked(wanted))
    }

    /// The submission the view is narrowed to, if any.
    fn group(&self) -> Option<TaskGroupId> {
        self.view.with_untracked(|v| v.group)
    }

    fn stop(&self) {
        self.generation.update_value(|g| *g += 1);
        (self.stream.close)();
        self.fallback.set(Fallback::Off);
        self.loading.set(false);
    }

    /// (Re)loads everything for the current endpoint filter, then follows the stream.
    fn reload(&self) {
        let Some(api) = self.auth.api.get_untracked() else {
            return;
        };
        self.stop();
        self.list.reset();
        let generation = self.generation.get_value();
        let (endpoints, mine) = self.scope();
        let group = self.group();
        let data = *self;
        self.loading.set(true);
        spawn_local(async move {
            let loaded = load::everything(&api, &endpoints, mine, group).await;
            if !data.current(generation) {
                return;
            }
            data.loading.set(false);
            match loaded {
                Ok((stats, finished, members)) => {
                    let filter = (!endpoints.is_empty())
                        .then(|| endpoints.iter().copied().collect::<HashSet<_>>());
                    let seq = stats.seq;
                    let mut live = Live::new(seq, stats.tasks, filter);
                    if let (Some(group), Some(members)) = (group, members) {
                        live = live.narrowed_to(group, members);
                    }
                    live.count_recent_finishes(&finished, now_secs());
                    data.live.replace(live);
                    data.stats.set(stats);
                    data.auth.notice.set(None);
                    (data.stream.open)(seq);
                }
                Err(error) => {
                    data.auth.fail(&error);
                    // The service is away or failing: try again while this load is current.
                    let transient = match &error {
                        ApiError::Network(_) => true,
                        ApiError::Http { status, .. } => *status >= 500 || *status == 429,
                        ApiError::Unauthorized | ApiError::Decode(_) => false,
                    };
                    if transient {
                        load::sleep(POLL_PERIOD).await;
                        if data.current(generation) {
                            data.reload();
                        }
                    }
                }
            }
        });
    }

    /// Refreshes `/v1/stats` (time-in-state percentiles) for the current filter.
    fn refresh_stats(&self) {
        let Some(api) = self.auth.api.get_untracked() else {
            return;
        };
        let (endpoints, mine) = self.scope();
        let group = self.group();
        let stats = self.stats;
        spawn_local(async move {
            let answer = match group {
                Some(group) => {
                    let query = lifeline_model::api::StatsQuery {
                        task_group_id: Some(group.to_string()),
                        ..Default::default()
                    };
                    api.stats_of(&query).await
                }
                None => api.stats(&endpoints, mine).await,
            };
            if let Ok(s) = answer {
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
            let (endpoints, mine) = self.scope();
            match load::everything(&api, &endpoints, mine, self.group()).await {
                // An answer that comes after the stream opened is older than what it applied.
                Ok(_) if !self.still_polling(generation) => return,
                Ok((stats, finished, _)) => {
                    let was_away = self.fallback.get_untracked() == Fallback::Unreachable;
                    self.live.update(|l| {
                        l.refresh(stats.seq, stats.tasks);
                        // Without the stream, finishes are known only from the rows.
                        l.count_recent_finishes(&finished, now_secs());
                    });
                    // The list's rows may have moved: the window is fetched again.
                    self.list.update(Window::mark_stale);
                    self.stats.set(stats);
                    self.fallback.set(Fallback::Polling);
                    // Back from an outage: the stream is worth trying at once.
                    if was_away {
                        rounds = RETRY_EVERY;
                    }
                }
                Err(ApiError::Unauthorized) => return,
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
    fn the_indicator_follows_the_stream_the_fallback_and_reachability() {
        use Connection::*;
        use StreamState as S;
        // (stream, fallback, reachable, loading) → shown
        let cases = [
            (S::Closed, Fallback::Off, true, true, Connecting),
            (S::Connecting, Fallback::Off, true, false, Connecting),
            (S::Closed, Fallback::Off, true, false, Offline),
            (S::Open, Fallback::Off, true, false, Live),
            (S::Reconnecting, Fallback::Off, true, false, Reconnecting),
            (S::Failed, Fallback::Off, true, false, Offline),
            (S::Failed, Fallback::Polling, true, false, Polling),
            (S::Connecting, Fallback::Polling, true, false, Polling),
            (S::Reconnecting, Fallback::Polling, true, false, Polling),
            (S::Connecting, Fallback::Unreachable, true, false, Offline),
            (S::Open, Fallback::Polling, true, false, Live),
            (S::Open, Fallback::Unreachable, false, false, Live),
            // Away: offline whatever is being tried, never flickering back to polling.
            (S::Connecting, Fallback::Polling, false, false, Offline),
            (S::Reconnecting, Fallback::Off, false, false, Offline),
            (S::Closed, Fallback::Off, false, true, Offline),
        ];
        for (stream, fallback, reachable, loading, shown) in cases {
            assert_eq!(
                Connection::of(stream, fallback, reachable, loading),
                shown,
                "{stream:?} {fallback:?} reachable {reachable} loading {loading}"
            );
        }
        assert!(Live.current() && Polling.current() && !Offline.current());
    }
}
