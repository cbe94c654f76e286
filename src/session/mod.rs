//! The dashboard's shared state: the session (service and token), the view in the URL, the
//! live picture of the tasks and the connection to the event stream.
//!
//! Data flows one way. Loading builds a [`Live`] from `/v1/stats` and `/v1/tasks`; the stream's
//! events are buffered and applied once per animation frame; each applied batch bumps
//! `version`, which is what the views depend on. A gap in the sequence, or a dropped stream,
//! reopens it after the last applied event.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use lifeline_model::{EndpointId, EndpointSummary, Event, FunctionId, StatsSummary, TaskPage};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

use crate::api::{Api, ApiError};
use crate::live::{Live, TaskRow};

/// `/v1/endpoints` entries.
pub type EndpointInfo = EndpointSummary;
/// `/v1/stats`.
pub type Stats = StatsSummary;
use crate::url_state::ViewState;

/// The stream's state, shown by the connection indicator (`data-connection`).
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
}

/// Most tasks the list loads for one filter.
pub const TASK_CAP: usize = crate::live::MAX_ROWS;
/// Tasks per request while loading: few requests, each still quick to parse.
const PAGE: usize = 5000;
/// Stream errors in a row, without it ever opening, before falling back to polling.
const ERRORS_BEFORE_POLLING: u32 = 3;

/// Everything the views share, cheap to copy.
#[derive(Copy, Clone, Debug)]
pub struct Session {
    pub api: RwSignal<Option<Api>>,
    pub view: RwSignal<ViewState>,
    pub live: StoredValue<Option<Live>>,
    /// Bumped whenever `live` changes.
    pub version: RwSignal<u64>,
    pub connection: RwSignal<Connection>,
    pub notice: RwSignal<Option<String>>,
    pub endpoints: RwSignal<Vec<EndpointInfo>>,
    pub stats: RwSignal<Stats>,
    pub functions: RwSignal<HashMap<FunctionId, String>>,
    /// Wall clock in epoch seconds, ticking every second for ages and rates.
    pub clock: RwSignal<f64>,
    /// Which load the running stream belongs to; older streams stop themselves.
    generation: StoredValue<u64>,
    stream: StoredValue<Option<web_sys::EventSource>, LocalStorage>,
    buffer: StoredValue<Rc<RefCell<Vec<Event>>>, LocalStorage>,
    frame_pending: StoredValue<bool>,
    errors: StoredValue<u32>,
}

pub fn now_secs() -> f64 {
    js_sys::Date::now() / 1000.0
}

impl Session {
    pub fn new(api: Option<Api>, view: ViewState) -> Self {
        Self {
            api: RwSignal::new(api),
            view: RwSignal::new(view),
            live: StoredValue::new(None),
            version: RwSignal::new(0),
            connection: RwSignal::new(Connection::Offline),
            notice: RwSignal::new(None),
            endpoints: RwSignal::new(Vec::new()),
            stats: RwSignal::new(Stats::default()),
            functions: RwSignal::new(HashMap::new()),
            clock: RwSignal::new(now_secs()),
            generation: StoredValue::new(0),
            stream: StoredValue::new_local(None),
            buffer: StoredValue::new_local(Rc::new(RefCell::new(Vec::new()))),
            frame_pending: StoredValue::new(false),
            errors: StoredValue::new(0),
        }
    }

    /// Shows an error; a refused token sends the user back to the sign-in form.
    pub fn fail(&self, error: &ApiError) {
        if *error == ApiError::Unauthorized {
            self.sign_out("The service refused the token. Sign in again.");
        } else {
            self.notice.set(Some(error.to_string()));
        }
    }

    pub fn sign_out(&self, why: &str) {
        self.close_stream();
        if let Some(storage) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
            let _ = storage.remove_item("lifeline-token");
        }
        self.api.set(None);
        self.notice.set(Some(why.to_owned()));
    }

    fn close_stream(&self) {
        self.stream.update_value(|s| {
            if let Some(es) = s.take() {
                es.close();
            }
        });
    }

    /// (Re)loads everything for the current endpoint filter, then follows the stream.
    pub fn reload(&self) {
        let Some(api) = self.api.get_untracked() else {
            return;
        };
        let endpoints = self.view.with_untracked(|v| v.endpoints.clone());
        let generation = self.generation.get_value() + 1;
        self.generation.set_value(generation);
        self.close_stream();
        let session = *self;
        spawn_local(async move {
            match load(&api, &endpoints).await {
                Ok((stats, rows)) => {
                    if session.generation.get_value() != generation {
                        return;
                    }
                    let filter = (!endpoints.is_empty())
                        .then(|| endpoints.iter().copied().collect::<HashSet<_>>());
                    let seq = stats.seq;
                    session
                        .live
                        .set_value(Some(Live::new(seq, stats.tasks, rows, filter)));
                    session.stats.set(stats);
                    session.version.update(|v| *v += 1);
                    session.notice.set(None);
                    session.open_stream(&api, seq, generation);
                }
                Err(error) => {
                    session.connection.set(Connection::Offline);
                    session.fail(&error);
                }
            }
        });
    }

    fn open_stream(&self, api: &Api, after: u64, generation: u64) {
        let Ok(es) = web_sys::EventSource::new(&api.events_url(after)) else {
            self.start_polling(api.clone(), generation);
            return;
        };
        let session = *self;
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if session.generation.get_value() != generation {
                    return;
                }
                let Some(data) = e.data().as_string() else {
                    return;
                };
                if let Ok(event) = serde_json::from_str::<Event>(&data) {
                    session.buffer.with_value(|b| b.borrow_mut().push(event));
                    session.schedule_frame(generation);
                }
            });
        let on_open = Closure::<dyn FnMut()>::new(move || {
            session.errors.set_value(0);
            session.connection.set(Connection::Live);
        });
        let api_for_errors = api.clone();
        let es_for_errors = es.clone();
        let on_error = Closure::<dyn FnMut()>::new(move || {
            if session.generation.get_value() != generation {
                return;
            }
            let errors = session.errors.get_value() + 1;
            session.errors.set_value(errors);
            // The browser retries by itself, resuming with Last-Event-ID; after repeated
            // failures, or once it gives up, poll instead.
            if es_for_errors.ready_state() == web_sys::EventSource::CLOSED
                || errors >= ERRORS_BEFORE_POLLING
            {
                es_for_errors.close();
                session.start_polling(api_for_errors.clone(), generation);
            } else {
                session.connection.set(Connection::Reconnecting);
            }
        });
        es.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        es.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        es.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_message.forget();
        on_open.forget();
        on_error.forget();
        self.stream.set_value(Some(es));
        if self.connection.get_untracked() != Connection::Polling {
            self.connection.set(Connection::Reconnecting);
        }
    }

    fn schedule_frame(&self, generation: u64) {
        if self.frame_pending.get_value() {
            return;
        }
        self.frame_pending.set_value(true);
        let session = *self;
        request_animation_frame(move || session.apply_buffer(generation));
    }

    /// Applies every buffered event, once per animation frame.
    fn apply_buffer(&self, generation: u64) {
        self.frame_pending.set_value(false);
        if self.generation.get_value() != generation {
            return;
        }
        let events: Vec<Event> = self
            .buffer
            .with_value(|b| std::mem::take(&mut *b.borrow_mut()));
        if events.is_empty() {
            return;
        }
        let now = now_secs();
        let mut gap = None;
        self.live.update_value(|live| {
            let Some(live) = live.as_mut() else { return };
            for event in &events {
                if let Err(g) = live.apply(event, now) {
                    gap = Some(g);
                    break;
                }
            }
        });
        self.version.update(|v| *v += 1);
        if let Some(gap) = gap
            && let Some(api) = self.api.get_untracked()
        {
            // Fetch what was missed: reopen the stream after the last applied event.
            self.close_stream();
            self.buffer.with_value(|b| b.borrow_mut().clear());
            self.open_stream(&api, gap.after, generation);
        }
    }

    fn start_polling(&self, api: Api, generation: u64) {
        self.connection.set(Connection::Polling);
        let session = *self;
        spawn_local(async move {
            let mut rounds = 0u32;
            while session.generation.get_value() == generation {
                sleep(Duration::from_secs(2)).await;
                rounds += 1;
                let endpoints = session.view.with_untracked(|v| v.endpoints.clone());
                match load_head(&api, &endpoints).await {
                    Ok((stats, rows)) => {
                        if session.generation.get_value() != generation {
                            return;
                        }
                        session.connection.set(Connection::Polling);
                        session.live.update_value(|live| {
                            if let Some(live) = live.as_mut() {
                                live.refresh(stats.seq, stats.tasks, rows);
                            }
                        });
                        session.stats.set(stats);
                        session.version.update(|v| *v += 1);
                    }
                    Err(ApiError::Unauthorized) => {
                        session.fail(&ApiError::Unauthorized);
                        return;
                    }
                    Err(_) => session.connection.set(Connection::Offline),
                }
                // Every few rounds, try the stream again.
                if rounds.is_multiple_of(5) {
                    let after = session.live.with_value(|l| l.as_ref().map_or(0, |l| l.seq));
                    session.errors.set_value(0);
                    session.open_stream(&api, after, generation);
                    return;
                }
            }
        });
    }

    /// Refreshes the endpoint list (names, heartbeats, executor reports).
    pub async fn refresh_endpoints(&self) {
        let Some(api) = self.api.get_untracked() else {
            return;
        };
        match api.get::<Vec<EndpointInfo>>("/v1/endpoints").await {
            Ok(list) => self.endpoints.set(list),
            Err(error) => self.fail(&error),
        }
    }

    /// Refreshes `/v1/stats` (time-in-state percentiles) for the current filter.
    pub async fn refresh_stats(&self) {
        let Some(api) = self.api.get_untracked() else {
            return;
        };
        let endpoints = self.view.with_untracked(|v| v.endpoints.clone());
        if let Ok(stats) = stats_for(&api, &endpoints).await {
            self.stats.set(stats);
        }
    }

    /// Looks up function names not seen yet.
    pub fn want_functions(&self, ids: Vec<FunctionId>) {
        let Some(api) = self.api.get_untracked() else {
            return;
        };
        let missing: Vec<FunctionId> = self
            .functions
            .with_untracked(|f| ids.into_iter().filter(|id| !f.contains_key(id)).collect());
        for id in missing {
            self.functions.update(|f| {
                f.insert(id, short(&id.to_string()));
            });
            let api = api.clone();
            let session = *self;
            spawn_local(async move {
                if let Ok(f) = api
                    .get::<serde_json::Value>(&format!("/v1/functions/{id}"))
                    .await
                    && let Some(name) = f["name"].as_str()
                {
                    session.functions.update(|m| {
                        m.insert(id, name.to_owned());
                    });
                }
            });
        }
    }
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

async fn sleep(duration: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                duration.as_millis() as i32,
            );
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn endpoint_query(endpoints: &[EndpointId]) -> String {
    if endpoints.is_empty() {
        String::new()
    } else {
        format!(
            "endpoint_id={}",
            endpoints
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

/// Statistics for the filter: one endpoint's, several summed (at one sequence number), or all.
async fn stats_for(api: &Api, endpoints: &[EndpointId]) -> Result<Stats, ApiError> {
    let filter = endpoint_query(endpoints);
    if filter.is_empty() {
        api.get("/v1/stats").await
    } else {
        api.get(&format!("/v1/stats?{filter}")).await
    }
}

/// Statistics and the newest tasks (up to [`TASK_CAP`]) for the filter.
async fn load(api: &Api, endpoints: &[EndpointId]) -> Result<(Stats, Vec<TaskRow>), ApiError> {
    let stats = stats_for(api, endpoints).await?;
    let filter = endpoint_query(endpoints);
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    while rows.len() < TASK_CAP {
        let mut path = format!("/v1/tasks?limit={PAGE}");
        if !filter.is_empty() {
            path.push('&');
            path.push_str(&filter);
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: TaskPage = api.get(&path).await?;
        rows.extend(page.tasks);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok((stats, rows))
}

/// Statistics and the newest page of tasks, for polling.
async fn load_head(api: &Api, endpoints: &[EndpointId]) -> Result<(Stats, Vec<TaskRow>), ApiError> {
    let stats = stats_for(api, endpoints).await?;
    let filter = endpoint_query(endpoints);
    let path = if filter.is_empty() {
        format!("/v1/tasks?limit={PAGE}")
    } else {
        format!("/v1/tasks?limit={PAGE}&{filter}")
    };
    let page: TaskPage = api.get(&path).await?;
    Ok((stats, page.tasks))
}
