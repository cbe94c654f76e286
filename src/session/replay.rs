//! Replaying a moment of the past (`?at=`): the service's figures of that moment, read through
//! `/v1/stats` (counts per state right after it, edges over the minute before), in place of the
//! live picture. The live picture keeps following the stream meanwhile, so that going back to
//! now costs nothing.

use leptos::prelude::*;
use lifeline_model::api::StatsQuery;
use lifeline_model::{StateCounts, StatsSummary, Timestamp, edges};

use super::{Auth, LiveTasks};
use crate::api::{ApiError, endpoint_filter};
use crate::url_state::{Moment, ViewState};

/// The window before a replayed moment that its flows cover.
const FLOW_WINDOW: &str = "1m";

/// What the service said of the replayed moment: `None` while live or loading, an error in
/// words when it cannot be shown.
pub type Figures = Option<Result<StatsSummary, String>>;

/// The replayed moment's figures.
#[derive(Copy, Clone)]
pub struct Replay {
    figures: ReadSignal<Option<Figures>>,
    view: RwSignal<ViewState>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay").finish_non_exhaustive()
    }
}

/// Epoch seconds of a time as written in the address (the browser reads RFC 3339).
fn epoch_of(text: &str) -> Option<f64> {
    let ms = js_sys::Date::parse(text);
    ms.is_finite().then_some(ms / 1000.0)
}

/// Why a moment cannot be shown, in a sentence.
fn explain(error: &ApiError) -> String {
    match error {
        ApiError::Http { status: 410, .. } => {
            "That moment is past the retention: its events are gone.".to_owned()
        }
        other => other.to_string(),
    }
}

impl Replay {
    pub(super) fn new(auth: Auth, view: RwSignal<ViewState>) -> Self {
        let figures = crate::fetched::fetched(move || {
            let at = view.with(|v| v.at.clone());
            let endpoints = view.with(|v| v.endpoints.clone());
            let mine = auth.mine(view.with(|v| v.mine));
            let api = auth.api.get();
            async move {
                let (at, api, mine) = (at?, api?, mine?);
                let mut query = StatsQuery {
                    endpoint_id: endpoint_filter(&endpoints),
                    mine: mine.then_some(true),
                    window: Some(FLOW_WINDOW.to_owned()),
                    ..StatsQuery::default()
                };
                match &at {
                    Moment::Seq(seq) => query.at_seq = Some(*seq),
                    Moment::Time(text) => match epoch_of(text) {
                        Some(secs) => query.at = Some(Timestamp::from_secs_f64(secs)),
                        None => {
                            return Some(Err(format!(
                                "\"{text}\" is not a time: give an RFC 3339 time or an event's number."
                            )));
                        }
                    },
                }
                Some(api.stats_of(&query).await.map_err(|e| explain(&e)))
            }
        });
        Self { figures, view }
    }

    /// Whether the view replays a moment rather than showing now.
    pub fn active(&self) -> bool {
        self.view.with(|v| v.at.is_some())
    }

    /// The moment's figures (tracked): `None` while live or loading.
    pub fn figures(&self) -> Figures {
        if !self.active() {
            return None;
        }
        self.figures.get().flatten()
    }

    /// The replayed moment's time in epoch seconds (what the list's ages count to), once the
    /// service has said.
    pub fn time(&self) -> Option<f64> {
        self.figures()
            .and_then(Result::ok)
            .and_then(|s| s.at)
            .map(Timestamp::as_secs_f64)
    }

    /// The event the replayed moment is right after, once the service has said.
    pub fn seq(&self) -> Option<u64> {
        self.figures().and_then(Result::ok).map(|s| s.seq)
    }

    /// Transitions per second on every edge (in the order of [`lifeline_model::edges`]) over
    /// the minute before the moment.
    pub fn flows(&self) -> Vec<f64> {
        let Some(Ok(stats)) = self.figures() else {
            return Vec::new();
        };
        flows_of(&stats)
    }
}

/// Transitions per second on every edge (in the order of [`lifeline_model::edges`]) over the
/// statistics' window; nothing without a window.
pub fn flows_of(stats: &StatsSummary) -> Vec<f64> {
    let Some(window) = stats.window_secs.filter(|w| *w > 0.0) else {
        return Vec::new();
    };
    edges()
        .map(|e| {
            stats
                .edges
                .iter()
                .find(|c| c.from == e.from && c.to == e.to)
                .map_or(0.0, |c| c.count as f64 / window)
        })
        .collect()
}

/// The counts the views show: the replayed moment's, or the live ones; `None` until known.
pub fn use_shown_counts() -> Signal<Option<StateCounts>> {
    let live = expect_context::<LiveTasks>();
    let replay = expect_context::<Replay>();
    Signal::derive(move || {
        if replay.active() {
            replay.figures().and_then(Result::ok).map(|s| s.tasks)
        } else {
            live.with(|l| l.map(|l| l.counts))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{EdgeCount, State};

    #[test]
    fn flows_are_the_window_s_crossings_per_second_in_the_model_s_order_of_edges() {
        let stats = StatsSummary {
            edges: vec![EdgeCount {
                from: State::Running,
                to: State::Success,
                count: 30,
            }],
            window_secs: Some(60.0),
            ..StatsSummary::default()
        };
        let flows = flows_of(&stats);
        assert_eq!(flows.len(), edges().count());
        let at = edges()
            .position(|e| (e.from, e.to) == (State::Running, State::Success))
            .expect("an edge");
        assert_eq!(flows[at], 0.5);
        assert_eq!(flows.iter().sum::<f64>(), 0.5);
        let since_the_beginning = StatsSummary {
            window_secs: None,
            ..stats
        };
        assert!(flows_of(&since_the_beginning).is_empty());
    }
}
