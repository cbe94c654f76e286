//! The service's event stream as one hook, in the shape of leptos-use's `use_event_source`:
//! [`use_event_stream`] and [`use_event_stream_with_options`] return a [`UseEventStreamReturn`]
//! with the connection's state as a signal and functions to (re)open and close it.
//!
//! The browser's `EventSource` (through `gloo-net`) does the reading and its own reconnecting,
//! resuming with `Last-Event-ID`. The hook adds what a gap-free, numbered stream needs:
//! - Events are held in a bounded buffer and handed to the consumer in batches, once per
//!   animation frame, so that a burst of thousands costs one redraw. A hidden tab gets no
//!   animation frames, so there a timer hands them over instead.
//! - Dropping events to make room would break the sequence, so a full buffer instead closes the
//!   connection, and once the consumer has applied what was held the stream reopens after the
//!   last applied event. A gap the consumer finds is mended the same way.
//! - A connection that fails or drops is not left to the browser's own reconnection, which
//!   would send the same address again: a service's single-use ticket in it is spent. The hook
//!   closes it and, after a short jittered pause, opens a new one from a new address, resuming
//!   after the last event the consumer applied.
//! - Errors in a row without the connection ever opening are counted; past the limit the hook
//!   gives up ([`StreamState::Failed`]) and the consumer falls back to something else.
//! - A stream resumed from before an event the service's retention removed starts with a named
//!   `reset` event: history is missing and cannot be had. The hook goes on after the stream's
//!   head (so that no later connection asks for the lost part again) and tells the consumer,
//!   which reloads what it shows ([`UseEventStreamOptions::on_reset`]).
//!
//! Each connection is read by one task that owns its listeners (gloo-net's subscriptions remove
//! them when dropped), so reconnecting leaks nothing.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use gloo_net::eventsource::futures::{EventSource, EventSourceSubscription};
use gloo_net::eventsource::{EventSourceError, State as SourceState};
use leptos::prelude::*;
use lifeline_model::Event;
use lifeline_model::api::StreamReset;
use wasm_bindgen_futures::spawn_local;

/// Where the connection stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Not opened, or closed by [`UseEventStreamReturn::close`].
    Closed,
    /// Opening, not yet confirmed by the service.
    Connecting,
    /// Events flow.
    Open,
    /// The connection dropped and the browser is trying again.
    Reconnecting,
    /// Too many errors in a row: the hook gave up until it is opened again.
    Failed,
}

/// What the consumer made of a batch of events.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The last sequence number applied: the stream resumes after it when it must reopen.
    pub through: u64,
    /// The batch skipped a sequence number: what follows `through` must be fetched again.
    pub gap: bool,
}

/// Events most often held before they are handed over.
pub const DEFAULT_CAPACITY: usize = 50_000;
/// Errors in a row, without the connection ever opening, before the hook gives up.
pub const DEFAULT_RECONNECT_LIMIT: u32 = 3;
/// How soon a hidden tab gets its events (browsers run its timers at most once a second).
const HIDDEN_FLUSH: Duration = Duration::from_millis(250);
/// A frame requested just before the tab was hidden never comes; this timer stands in for it.
const FRAME_FALLBACK: Duration = Duration::from_secs(1);
/// The pause before the first new connection after an error; it doubles with every error in a
/// row, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(300);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// How long to wait before connecting again after `errors` errors in a row: doubling from
/// [`FIRST_PAUSE`] up to [`MAX_PAUSE`], then spread by `jitter` (0 to 1) over ±25%, so that
/// many dashboards do not come back all at once.
pub fn pause_after(errors: u32, jitter: f64) -> Duration {
    let doubled = FIRST_PAUSE.as_secs_f64() * 2f64.powi(errors.saturating_sub(1).min(16) as i32);
    let base = doubled.min(MAX_PAUSE.as_secs_f64());
    Duration::from_secs_f64(base * (0.75 + 0.5 * jitter.clamp(0.0, 1.0)))
}

/// Options for [`use_event_stream_with_options`].
#[derive(Clone)]
pub struct UseEventStreamOptions {
    capacity: usize,
    reconnect_limit: u32,
    on_events: Rc<dyn Fn(Vec<Event>) -> Applied>,
    on_reset: Rc<dyn Fn(StreamReset)>,
}

impl Default for UseEventStreamOptions {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            reconnect_limit: DEFAULT_RECONNECT_LIMIT,
            on_events: Rc::new(|events| Applied {
                through: events.last().map_or(0, |e| e.seq),
                gap: false,
            }),
            on_reset: Rc::new(|_| {}),
        }
    }
}

impl std::fmt::Debug for UseEventStreamOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UseEventStreamOptions")
            .field("capacity", &self.capacity)
            .field("reconnect_limit", &self.reconnect_limit)
            .finish_non_exhaustive()
    }
}

impl UseEventStreamOptions {
    /// Events held at most before they are handed over (default [`DEFAULT_CAPACITY`]).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Errors in a row before giving up (default [`DEFAULT_RECONNECT_LIMIT`]).
    pub fn reconnect_limit(mut self, limit: u32) -> Self {
        self.reconnect_limit = limit.max(1);
        self
    }

    /// Receives every batch of events, in order, and says how far it applied them.
    pub fn on_events(mut self, on_events: impl Fn(Vec<Event>) -> Applied + 'static) -> Self {
        self.on_events = Rc::new(on_events);
        self
    }

    /// Hears that the service removed history the stream should have brought: the consumer
    /// reloads what it shows. The stream itself goes on after the reset's `head`.
    pub fn on_reset(mut self, on_reset: impl Fn(StreamReset) + 'static) -> Self {
        self.on_reset = Rc::new(on_reset);
        self
    }
}

/// What [`use_event_stream`] returns. Every field is a handle, so the whole is `Copy`.
#[derive(Copy, Clone, Debug)]
pub struct UseEventStreamReturn<OpenFn, CloseFn>
where
    OpenFn: Fn(u64) + Copy + 'static,
    CloseFn: Fn() + Copy + 'static,
{
    /// Where the connection stands.
    pub ready_state: Signal<StreamState>,
    /// Events received and not handed over yet (not reactive: it changes with every event).
    pub buffer: EventBuffer,
    /// Closes any connection and opens one that starts after the given sequence number.
    pub open: OpenFn,
    /// Closes the connection and drops whatever was held.
    pub close: CloseFn,
}

/// Events received and not yet handed to the consumer, at most `capacity` of them. Plain data,
/// so that its rules are tested natively.
#[derive(Debug)]
pub struct Held {
    events: Vec<Event>,
    capacity: usize,
    overflowed: bool,
}

/// What became of an event offered to the buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Offer {
    Held,
    /// The buffer is full: the event is not kept, and the stream must resume after the last
    /// event the consumer applies.
    Overflowed,
}

impl Held {
    pub fn new(capacity: usize) -> Self {
        Self {
            events: Vec::new(),
            capacity,
            overflowed: false,
        }
    }

    pub fn offer(&mut self, event: Event) -> Offer {
        if self.overflowed || self.events.len() >= self.capacity {
            self.overflowed = true;
            Offer::Overflowed
        } else {
            self.events.push(event);
            Offer::Held
        }
    }

    /// Everything held, and whether events were refused since the last take.
    pub fn take(&mut self) -> (Vec<Event>, bool) {
        (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.overflowed),
        )
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn clear(&mut self) {
        self.events.clear();
        self.overflowed = false;
    }
}

/// Where the stream resumes after a batch, if it must reopen: after the last applied event,
/// when the consumer found a gap or events were refused for want of room.
pub fn resume_after(applied: Applied, overflowed: bool) -> Option<u64> {
    (applied.gap || overflowed).then_some(applied.through)
}

/// A handle on the hook's buffer.
#[derive(Copy, Clone, Debug)]
pub struct EventBuffer(StoredValue<Inner, LocalStorage>);

impl EventBuffer {
    /// Events waiting to be handed over.
    pub fn len(&self) -> usize {
        self.0.try_with_value(|i| i.held.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The hook's mutable state, owned by the reactive owner that created it.
struct Inner {
    /// Bumped by every open and close: a connection's reader stops once it is not current.
    connection: u64,
    /// Dropping it closes the browser's connection.
    source: Option<EventSource>,
    held: Held,
    /// Errors since the connection last opened.
    errors: u32,
    /// The last event the consumer applied: a new connection resumes after it.
    through: u64,
    /// A hand-over is scheduled; `flush_token` tells the scheduled one from stale ones.
    flush_pending: bool,
    flush_token: u64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("connection", &self.connection)
            .field("held", &self.held.len())
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

/// The hook's handles, all `Copy`, so that callbacks and tasks can hold them.
#[derive(Copy, Clone)]
struct Hook {
    inner: StoredValue<Inner, LocalStorage>,
    state: RwSignal<StreamState>,
    url: StoredValue<Rc<dyn Fn(u64) -> StreamAddress>, LocalStorage>,
    options: StoredValue<UseEventStreamOptions, LocalStorage>,
}

/// Where a stream opens: found asynchronously (a service hands out a single-use ticket for each
/// connection); `None` when it cannot be opened (the ticket was refused, say).
pub type StreamAddress = Pin<Box<dyn Future<Output = Option<String>>>>;

/// An address known at once.
pub fn ready_address(url: Option<String>) -> StreamAddress {
    Box::pin(std::future::ready(url))
}

/// The stream with default options: see the module documentation. `url` gives the stream's
/// address for a starting point.
pub fn use_event_stream(
    url: impl Fn(u64) -> StreamAddress + 'static,
) -> UseEventStreamReturn<impl Fn(u64) + Copy + 'static, impl Fn() + Copy + 'static> {
    use_event_stream_with_options(url, UseEventStreamOptions::default())
}

/// [`use_event_stream`] with options. Nothing is opened until `open` is called.
pub fn use_event_stream_with_options(
    url: impl Fn(u64) -> StreamAddress + 'static,
    options: UseEventStreamOptions,
) -> UseEventStreamReturn<impl Fn(u64) + Copy + 'static, impl Fn() + Copy + 'static> {
    let hook = Hook {
        inner: StoredValue::new_local(Inner {
            connection: 0,
            source: None,
            held: Held::new(options.capacity),
            errors: 0,
            through: 0,
            flush_pending: false,
            flush_token: 0,
        }),
        state: RwSignal::new(StreamState::Closed),
        url: StoredValue::new_local(Rc::new(url)),
        options: StoredValue::new_local(options),
    };
    on_cleanup(move || hook.close());
    UseEventStreamReturn {
        ready_state: hook.state.into(),
        buffer: EventBuffer(hook.inner),
        open: move |after| hook.open(after),
        close: move || hook.close(),
    }
}

/// One connection's subscriptions: its events, the service's `reset` notice, and the `open` and
/// `error` notices (gloo-net hands any event type to a subscription; only `message` and `reset`
/// ones carry data).
type Subscriptions = [EventSourceSubscription; 4];

fn connect(url: &str) -> Option<(EventSource, Subscriptions)> {
    let mut source = EventSource::new(url).ok()?;
    let subscriptions = [
        source.subscribe("message").ok()?,
        source.subscribe("reset").ok()?,
        source.subscribe("open").ok()?,
        source.subscribe("error").ok()?,
    ];
    Some((source, subscriptions))
}

fn hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

impl Hook {
    /// Stops the current connection's reader, closes it and forgets what it held. Returns the
    /// new connection number, or `None` once the hook's owner is gone.
    fn reset(&self) -> Option<u64> {
        let source = self.inner.try_update_value(|i| {
            i.connection += 1;
            i.held.clear();
            i.source.take()
        })?;
        // Dropped outside the borrow: closing dispatches an `error` event synchronously, and
        // although the listeners only queue it, nothing should run while the state is borrowed.
        drop(source);
        self.inner.try_with_value(|i| i.connection)
    }

    fn close(&self) {
        if self.reset().is_some() {
            self.inner.try_update_value(|i| i.errors = 0);
            self.state.try_set(StreamState::Closed);
        }
    }

    /// Opens a connection after `after`, as asked by the consumer: errors start counting anew.
    fn open(&self, after: u64) {
        if self.reset().is_none() {
            return;
        }
        self.inner.update_value(|i| {
            i.errors = 0;
            i.through = after;
        });
        self.state.set(StreamState::Connecting);
        self.connect();
    }

    /// Asks for an address and connects to it, resuming after the last applied event.
    fn connect(&self) {
        let Some((connection, after)) = self.inner.try_with_value(|i| (i.connection, i.through))
        else {
            return;
        };
        let Some(address) = self.url.try_with_value(|url| url(after)) else {
            return;
        };
        let hook = *self;
        spawn_local(async move {
            let url = address.await;
            // Closed or reopened while the address was on its way.
            if !hook.current(connection) {
                return;
            }
            // No address (the service could not be reached for a ticket, say) counts as an
            // error; a refused token has signed the consumer out meanwhile.
            let Some((source, subscriptions)) = url.as_deref().and_then(connect) else {
                hook.retry();
                return;
            };
            hook.inner.update_value(|i| i.source = Some(source));
            let [messages, resets, opened, errors] = subscriptions;
            let notices = stream::select(resets, stream::select(opened, errors));
            let mut all = stream::select(messages, notices);
            hook.read(connection, &mut all).await;
            // Dropping the subscriptions here removes their listeners.
        });
    }

    fn current(&self, connection: u64) -> bool {
        self.inner
            .try_with_value(|i| i.connection == connection)
            .unwrap_or(false)
    }

    async fn read<S>(&self, connection: u64, all: &mut S)
    where
        S: Stream<Item = Result<(String, web_sys::MessageEvent), EventSourceError>> + Unpin,
    {
        while let Some(item) = all.next().await {
            if !self.current(connection) {
                return;
            }
            // An `Err` is gloo-net's own report of an error that closed the connection; the
            // `error` subscription saw the same event.
            if let Ok((kind, event)) = item {
                match kind.as_str() {
                    "open" => self.opened(),
                    "error" => self.errored(),
                    "reset" => self.was_reset(&event),
                    _ => self.received(&event),
                }
            }
        }
    }

    /// The connection's real state: notices from different subscriptions may be read out of
    /// order, so each is checked against it.
    fn source_state(&self) -> SourceState {
        self.inner
            .try_with_value(|i| i.source.as_ref().map(EventSource::state))
            .flatten()
            .unwrap_or(SourceState::Closed)
    }

    fn opened(&self) {
        if self.source_state() == SourceState::Open {
            self.inner.try_update_value(|i| i.errors = 0);
            self.state.try_set(StreamState::Open);
        }
    }

    fn errored(&self) {
        match self.source_state() {
            // A stale notice: the connection has opened again since.
            SourceState::Open => {}
            // Dropped (the browser would reconnect with the spent address) or refused.
            SourceState::Connecting | SourceState::Closed => self.retry(),
        }
    }

    /// The connection failed or dropped: closes it, hands over what it brought, and connects
    /// anew after a pause, or gives up past the limit of errors in a row.
    fn retry(&self) {
        // What was received before the failure is still good: hand it over first (nothing
        // reopens from there; the new connection below resumes after it).
        self.flush_now(false);
        let limit = self
            .options
            .try_with_value(|o| o.reconnect_limit)
            .unwrap_or(DEFAULT_RECONNECT_LIMIT);
        let Some(connection) = self.reset() else {
            return;
        };
        let errors = self
            .inner
            .try_update_value(|i| {
                i.errors += 1;
                i.errors
            })
            .unwrap_or(0);
        if errors >= limit {
            self.state.try_set(StreamState::Failed);
            return;
        }
        self.state.try_set(StreamState::Reconnecting);
        let hook = *self;
        set_timeout(
            move || {
                if hook.current(connection) {
                    hook.connect();
                }
            },
            pause_after(errors, js_sys::Math::random()),
        );
    }

    /// The service removed history this stream would have brought: the stream goes on after the
    /// head and the consumer reloads. The reset is a connection's first event, so whatever is
    /// held came after it and is handed over after the reload.
    fn was_reset(&self, message: &web_sys::MessageEvent) {
        let Some(reset) = message
            .data()
            .as_string()
            .and_then(|data| serde_json::from_str::<StreamReset>(&data).ok())
        else {
            return;
        };
        self.inner
            .try_update_value(|i| i.through = i.through.max(reset.head));
        if let Some(on_reset) = self.options.try_with_value(|o| Rc::clone(&o.on_reset)) {
            on_reset(reset);
        }
    }

    fn received(&self, message: &web_sys::MessageEvent) {
        let Some(data) = message.data().as_string() else {
            return;
        };
        // An event that does not parse is skipped; the next one then shows a gap, which
        // fetches it again.
        let Ok(event) = serde_json::from_str::<Event>(&data) else {
            return;
        };
        let offer = self.inner.try_update_value(|i| i.held.offer(event));
        if offer == Some(Offer::Overflowed) {
            // Stop the flood: the stream reopens after the hand-over.
            let source = self.inner.try_update_value(|i| {
                i.connection += 1;
                i.source.take()
            });
            drop(source);
        }
        self.schedule_flush();
    }

    fn schedule_flush(&self) {
        let token = self.inner.try_update_value(|i| {
            if i.flush_pending {
                None
            } else {
                i.flush_pending = true;
                Some(i.flush_token)
            }
        });
        let Some(Some(token)) = token else {
            return;
        };
        let hook = *self;
        if hidden() {
            set_timeout(move || hook.flush(token), HIDDEN_FLUSH);
        } else {
            request_animation_frame(move || hook.flush(token));
            set_timeout(move || hook.flush(token), FRAME_FALLBACK);
        }
    }

    fn flush(&self, token: u64) {
        let scheduled = self
            .inner
            .try_with_value(|i| i.flush_pending && i.flush_token == token)
            .unwrap_or(false);
        if scheduled {
            self.flush_now(true);
        }
    }

    /// Hands everything held to the consumer, and reopens the stream if it must (and `reopen`
    /// allows).
    fn flush_now(&self, reopen: bool) {
        let Some((events, overflowed)) = self.inner.try_update_value(|i| {
            i.flush_pending = false;
            i.flush_token += 1;
            i.held.take()
        }) else {
            return;
        };
        if events.is_empty() && !overflowed {
            return;
        }
        let Some(on_events) = self.options.try_with_value(|o| Rc::clone(&o.on_events)) else {
            return;
        };
        let applied = on_events(events);
        self.inner
            .try_update_value(|i| i.through = i.through.max(applied.through));
        if let Some(after) = resume_after(applied, overflowed).filter(|_| reopen) {
            self.open(after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{EndpointId, EndpointStatus, EventBody};

    fn event(seq: u64) -> Event {
        Event {
            seq,
            body: EventBody::Endpoint(EndpointStatus {
                endpoint_id: EndpointId::from_u128(1),
                name: "e".into(),
                online: true,
                last_heartbeat: None,
                report: None,
            }),
        }
    }

    #[test]
    fn a_full_buffer_refuses_events_instead_of_dropping_old_ones() {
        let mut held = Held::new(2);
        assert_eq!(held.offer(event(1)), Offer::Held);
        assert_eq!(held.offer(event(2)), Offer::Held);
        assert_eq!(held.offer(event(3)), Offer::Overflowed);
        let (events, overflowed) = held.take();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(overflowed, "the refusal is reported with the batch");
        assert!(held.is_empty());
        assert_eq!(held.offer(event(3)), Offer::Held, "room again after a take");
        assert!(!held.take().1);
    }

    #[test]
    fn pauses_double_up_to_a_bound_and_spread() {
        assert_eq!(pause_after(1, 0.5), FIRST_PAUSE);
        assert_eq!(pause_after(2, 0.5), FIRST_PAUSE * 2);
        assert_eq!(pause_after(40, 0.5), MAX_PAUSE);
        assert!(pause_after(1, 0.0) < pause_after(1, 1.0));
        assert!(pause_after(3, 1.0) <= Duration::from_secs_f64(1.2 * 1.25 + 1e-9));
    }

    #[test]
    fn the_stream_resumes_after_the_last_applied_event_on_a_gap_or_an_overflow() {
        let applied = Applied {
            through: 7,
            gap: false,
        };
        assert_eq!(resume_after(applied, false), None);
        assert_eq!(resume_after(applied, true), Some(7));
        let gap = Applied {
            through: 4,
            gap: true,
        };
        assert_eq!(resume_after(gap, false), Some(4));
    }
}

/// The hook in headless Chromium, reading streams served from blob URLs (which the browser
/// reads to the end and then, like any finished stream, reconnects to).
#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests {
    use std::cell::RefCell;

    use super::*;
    use lifeline_model::{EndpointId, EndpointStatus, EventBody};
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_browser);

    /// A stream of the events numbered `seqs`, served as `content_type`.
    fn blob_url(seqs: impl Iterator<Item = u64>, content_type: &str) -> String {
        blob_of(&events_text(seqs), content_type)
    }

    /// The events numbered `seqs` as the service writes them.
    fn events_text(seqs: impl Iterator<Item = u64>) -> String {
        let mut text = String::new();
        for seq in seqs {
            let event = Event {
                seq,
                body: EventBody::Endpoint(EndpointStatus {
                    endpoint_id: EndpointId::from_u128(1),
                    name: "e".into(),
                    online: true,
                    last_heartbeat: None,
                    report: None,
                }),
            };
            let json = serde_json::to_string(&event).expect("serializes");
            text.push_str(&format!("id: {seq}\ndata: {json}\n\n"));
        }
        text
    }

    /// A blob URL serving `text` as `content_type`.
    fn blob_of(text: &str, content_type: &str) -> String {
        let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
        let options = web_sys::BlobPropertyBag::new();
        options.set_type(content_type);
        let blob =
            web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).expect("blob");
        web_sys::Url::create_object_url_with_blob(&blob).expect("object URL")
    }

    async fn sleep(ms: i32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(w) = web_sys::window() {
                let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        for _ in 0..100 {
            if check() {
                return;
            }
            sleep(50).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// A consumer that applies events in sequence, as the dashboard's live picture does.
    fn consumer(applied: Rc<RefCell<Vec<u64>>>) -> impl Fn(Vec<Event>) -> Applied {
        move |events| {
            let mut applied = applied.borrow_mut();
            let mut last = applied.last().copied().unwrap_or(0);
            let mut gap = false;
            for event in events {
                if event.seq <= last {
                    continue;
                }
                if event.seq != last + 1 {
                    gap = true;
                    break;
                }
                last = event.seq;
                applied.push(last);
            }
            Applied { through: last, gap }
        }
    }

    #[wasm_bindgen_test]
    async fn events_are_handed_over_in_order_and_a_full_buffer_resumes_after_the_last_applied() {
        let owner = Owner::new();
        let applied = Rc::new(RefCell::new(Vec::new()));
        let asked = Rc::new(RefCell::new(Vec::new()));
        let stream = owner.with(|| {
            let asked = Rc::clone(&asked);
            use_event_stream_with_options(
                move |after| {
                    asked.borrow_mut().push(after);
                    ready_address(Some(blob_url(after + 1..=5, "text/event-stream")))
                },
                UseEventStreamOptions::default()
                    .capacity(2)
                    .on_events(consumer(Rc::clone(&applied))),
            )
        });
        (stream.open)(0);
        until("every event applied", || applied.borrow().len() == 5).await;
        assert_eq!(
            *applied.borrow(),
            [1, 2, 3, 4, 5],
            "each exactly once, in order"
        );
        // Two events fit; the third overflowed each time, and the stream resumed after the
        // last applied one.
        assert_eq!(asked.borrow()[..3], [0, 2, 4]);
        // The finished stream is not left to the browser, which would send the same address
        // (a spent ticket) again: the hook asks for a new one, after the last applied event.
        until("a new address after the end", || {
            asked.borrow().contains(&5)
        })
        .await;
        (stream.close)();
        assert_eq!(stream.ready_state.get_untracked(), StreamState::Closed);
        assert!(stream.buffer.is_empty());
        drop(owner);
    }

    #[wasm_bindgen_test]
    async fn a_hidden_tab_still_gets_its_events() {
        // Hide the page as far as the hook can tell.
        let document = web_sys::window()
            .and_then(|w| w.document())
            .expect("document");
        let descriptor = js_sys::Object::new();
        js_sys::Reflect::set(&descriptor, &"value".into(), &true.into()).expect("set");
        js_sys::Reflect::set(&descriptor, &"configurable".into(), &true.into()).expect("set");
        js_sys::Object::define_property(&document, &"hidden".into(), &descriptor);
        assert!(hidden());

        let owner = Owner::new();
        let applied = Rc::new(RefCell::new(Vec::new()));
        let stream = owner.with(|| {
            use_event_stream_with_options(
                move |after| ready_address(Some(blob_url(after + 1..=3, "text/event-stream"))),
                UseEventStreamOptions::default().on_events(consumer(Rc::clone(&applied))),
            )
        });
        (stream.open)(0);
        until("events applied", || applied.borrow().len() == 3).await;
        assert_eq!(*applied.borrow(), [1, 2, 3]);
        js_sys::Reflect::delete_property(&document, &"hidden".into()).expect("delete");
        assert!(!hidden());
        drop(owner);
    }

    #[wasm_bindgen_test]
    async fn a_reset_reloads_the_consumer_and_the_stream_goes_on_after_the_head() {
        let owner = Owner::new();
        let applied = Rc::new(RefCell::new(Vec::new()));
        let resets = Rc::new(RefCell::new(Vec::new()));
        let asked = Rc::new(RefCell::new(Vec::new()));
        let stream = owner.with(|| {
            let asked = Rc::clone(&asked);
            let (applied, resets) = (Rc::clone(&applied), Rc::clone(&resets));
            use_event_stream_with_options(
                move |after| {
                    asked.borrow_mut().push(after);
                    // Events 1 to 5 are gone: resuming from before them starts with a reset.
                    let text = if after < 5 {
                        let reset = StreamReset {
                            after,
                            purged_through: 4,
                            head: 5,
                        };
                        let json = serde_json::to_string(&reset).expect("serializes");
                        format!(
                            "event: reset\nid: 5\ndata: {json}\n\n{}",
                            events_text(6..=8)
                        )
                    } else {
                        events_text(after + 1..=8)
                    };
                    ready_address(Some(blob_of(&text, "text/event-stream")))
                },
                UseEventStreamOptions::default()
                    .on_events(consumer(Rc::clone(&applied)))
                    .on_reset(move |reset| {
                        // The consumer reloads: its picture is now as of the head.
                        applied.borrow_mut().push(reset.head);
                        resets.borrow_mut().push(reset);
                    }),
            )
        });
        (stream.open)(2);
        until("the events after the head applied", || {
            applied.borrow().ends_with(&[8])
        })
        .await;
        assert_eq!(
            *applied.borrow(),
            [5, 6, 7, 8],
            "the reload, then each event once"
        );
        assert_eq!(
            *resets.borrow(),
            [StreamReset {
                after: 2,
                purged_through: 4,
                head: 5
            }]
        );
        // The finished stream is opened again after what was applied, never from before the
        // removed events.
        until("a new address after the end", || {
            asked.borrow().contains(&8)
        })
        .await;
        assert!(
            asked.borrow().iter().skip(1).all(|&after| after >= 5),
            "{:?}",
            asked.borrow()
        );
        (stream.close)();
        drop(owner);
    }

    #[wasm_bindgen_test]
    async fn a_stream_the_browser_refuses_fails() {
        let owner = Owner::new();
        let stream = owner.with(|| {
            use_event_stream(move |after| {
                ready_address(Some(blob_url(after + 1..=3, "text/plain")))
            })
        });
        (stream.open)(0);
        until("failed", || {
            stream.ready_state.get_untracked() == StreamState::Failed
        })
        .await;
        drop(owner);
    }
}
