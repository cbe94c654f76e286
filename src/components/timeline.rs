//! The replay timeline under the diagram: the store's history as a throughput strip (from
//! `/v1/timeline`), and a slider over its events that shows the diagram and the task list as
//! they were right after the chosen one (`?at=` in the address). Play moves forward from there
//! at 1x, 10x or 100x; Live returns to now.
//!
//! The slider is the browser's own range input, so dragging, the arrow keys, Page Up and Down,
//! Home and End all work and assistive technology announces it; its value is an event's
//! sequence number and its spoken value says when that was.

use std::time::Duration;

use leptos::prelude::*;
use lifeline_model::api::TimelinePoint;

use crate::components::header::clock_time;
use crate::session::{Auth, Clock, Replay};
use crate::url_state::{Moment, ViewState};

/// Points asked for: about one per pixel column of the strip's bars on a laptop.
const POINTS: usize = 200;
/// Seconds between refreshes of the timeline (its head moves with every event).
const REFRESH_SECS: f64 = 5.0;
/// Play speeds: seconds of the past per second.
pub const SPEEDS: [u32; 3] = [1, 10, 100];
/// The strip's drawing width and height, in its own units (it stretches to the panel).
const STRIP_W: f64 = 1000.0;
const STRIP_H: f64 = 40.0;

/// Throughput between two consecutive points of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub from: u64,
    pub to: u64,
    /// Transitions per second between the two points.
    pub rate: f64,
}

/// The strip's bars: for each pair of consecutive points, the transitions between them over the
/// time between them (none when no time passed).
pub fn bars(points: &[TimelinePoint]) -> Vec<Bar> {
    points
        .windows(2)
        .map(|w| {
            let secs = w[1].at.as_secs_f64() - w[0].at.as_secs_f64();
            let moved = w[1].transitions.saturating_sub(w[0].transitions) as f64;
            Bar {
                from: w[0].seq,
                to: w[1].seq,
                rate: if secs > 0.0 { moved / secs } else { 0.0 },
            }
        })
        .collect()
}

/// When event `seq` happened, as near as the points tell: interpolated between the points
/// around it, or the nearest point's time beyond them.
pub fn time_at(points: &[TimelinePoint], seq: u64) -> Option<f64> {
    let after = points.iter().position(|p| p.seq >= seq);
    match after {
        Some(0) => points.first().map(|p| p.at.as_secs_f64()),
        Some(i) => {
            let (a, b) = (&points[i - 1], &points[i]);
            let share = (seq - a.seq) as f64 / (b.seq - a.seq).max(1) as f64;
            let (ta, tb) = (a.at.as_secs_f64(), b.at.as_secs_f64());
            Some(ta + (tb - ta) * share)
        }
        None => points.last().map(|p| p.at.as_secs_f64()),
    }
}

/// Where `seq` falls on the strip, from 0 to [`STRIP_W`], for a history of `first..=last`.
fn strip_x(seq: u64, first: u64, last: u64) -> f64 {
    let span = last.saturating_sub(first).max(1) as f64;
    (seq.saturating_sub(first) as f64 / span * STRIP_W).clamp(0.0, STRIP_W)
}

/// An epoch time in RFC 3339, for the address.
fn rfc3339(epoch_secs: f64) -> String {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(epoch_secs * 1000.0))
        .to_iso_string()
        .into()
}

#[component]
pub fn Timeline() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let view_state = expect_context::<RwSignal<ViewState>>();
    let replay = expect_context::<Replay>();
    let clock = expect_context::<Clock>();
    let refresh = Memo::new(move |_| (clock.get() / REFRESH_SECS).floor() as u64);
    let timeline = crate::fetched::fetched(move || {
        // Read, not only tracked: a memo nobody has read follows nothing.
        let _period = refresh.get();
        let api = auth.api.get();
        let endpoints = view_state.with(|v| v.endpoints.clone());
        let mine = auth.mine(view_state.with(|v| v.mine));
        async move {
            let (api, mine) = (api?, mine?);
            api.timeline(&endpoints, mine, POINTS).await.ok()
        }
    });
    let points = Memo::new(move |_| {
        timeline
            .get()
            .flatten()
            .map(|t| t.points)
            .unwrap_or_default()
    });
    let head = move || points.with(|p| p.last().map_or(0, |p| p.seq));
    // The event shown: the replayed one (as asked, until the service says), or the head.
    let shown_seq = move || {
        replay
            .seq()
            .or_else(|| {
                view_state.with(|v| match v.at {
                    Some(Moment::Seq(seq)) => Some(seq),
                    _ => None,
                })
            })
            .unwrap_or_else(head)
    };
    let shown_time = move || {
        replay
            .figures()
            .and_then(Result::ok)
            .and_then(|s| s.at)
            .map(|t| t.as_secs_f64())
            .or_else(|| points.with(|p| time_at(p, shown_seq())))
    };
    let moment_text = move || {
        let when = shown_time().map(clock_time);
        match (replay.active(), when) {
            (false, _) => "Now".to_owned(),
            (true, Some(when)) => format!("Event {} at {when}", shown_seq()),
            (true, None) => format!("Event {}", shown_seq()),
        }
    };

    // Playing: a position in the past that moves `speed` seconds a second.
    let playing = RwSignal::new(None::<u32>);
    let position = StoredValue::new(0.0_f64);
    let play = move |speed: u32| {
        if playing.get_untracked().is_none() {
            let start = if replay.active() {
                shown_time()
            } else {
                points.with(|p| p.first().map(|p| p.at.as_secs_f64()))
            };
            let Some(start) = start else {
                return;
            };
            position.set_value(start);
        }
        playing.set(Some(speed));
    };
    let go_live = move || {
        playing.set(None);
        view_state.update(|v| v.at = None);
    };
    let ticker = set_interval_with_handle(
        move || {
            let Some(speed) = playing.get_untracked() else {
                return;
            };
            let next = position.get_value() + f64::from(speed);
            let end = points.with_untracked(|p| p.last().map(|p| p.at.as_secs_f64()));
            if end.is_none_or(|end| next >= end) {
                go_live();
                return;
            }
            position.set_value(next);
            view_state.update(|v| v.at = Some(Moment::Time(rfc3339(next))));
        },
        Duration::from_secs(1),
    );
    on_cleanup(move || {
        if let Ok(t) = ticker {
            t.clear();
        }
    });

    let strip = move || {
        points.with(|p| {
            let (first, last) = (1, p.last().map_or(1, |p| p.seq));
            let bars = bars(p);
            let peak = bars.iter().map(|b| b.rate).fold(0.0_f64, f64::max);
            let drawn = bars
                .iter()
                .filter(|b| b.rate > 0.0)
                .map(|b| {
                    let x = strip_x(b.from, first, last);
                    let w = (strip_x(b.to, first, last) - x).max(1.0);
                    let h = (b.rate / peak * (STRIP_H - 4.0)).max(1.0);
                    view! { <rect class="strip-bar" x=x y=STRIP_H - h width=w height=h/> }
                })
                .collect_view();
            let summary = if peak > 0.0 {
                format!("Transitions per second over the stored history, up to {peak:.1}/s")
            } else {
                "Transitions per second over the stored history".to_owned()
            };
            (drawn, summary)
        })
    };
    let marker = move || {
        let last = head().max(1);
        strip_x(shown_seq(), 1, last)
    };
    let error = move || replay.figures().and_then(Result::err);

    view! {
        <div class="timeline" class:replaying=move || replay.active() data-testid="timeline">
            <div class="timeline-head">
                <label for="replay-slider">"Replay"</label>
                <span class="replay-moment" data-testid="replay-moment" data-seq=move || replay.active().then(shown_seq)>
                    {moment_text}
                </span>
                <div class="replay-controls" role="group" aria-label="Play the past">
                    {SPEEDS.into_iter().map(|speed| {
                        let pressed = move || playing.get() == Some(speed);
                        view! {
                            <button data-play=speed aria-pressed=move || pressed().to_string()
                                on:click=move |_| play(speed)>
                                {format!("Play {speed}×")}
                            </button>
                        }
                    }).collect_view()}
                    <button data-testid="pause" disabled=move || playing.get().is_none()
                        on:click=move |_| playing.set(None)>"Pause"</button>
                    <button data-testid="live" disabled=move || !replay.active()
                        on:click=move |_| go_live()>"Live"</button>
                </div>
            </div>
            {move || {
                let (drawn, summary) = strip();
                view! {
                    <svg class="throughput-strip" viewBox=format!("0 0 {STRIP_W} {STRIP_H}") preserveAspectRatio="none"
                        role="img" aria-label=summary>
                        {drawn}
                        <line class="strip-marker" x1=marker x2=marker y1="0" y2=STRIP_H/>
                    </svg>
                }
            }}
            <input id="replay-slider" type="range" min="1" max=move || head().max(1).to_string() step="1"
                // After `max`, and again whenever it grows: the browser clamps a value past it.
                prop:value=move || {
                    head();
                    shown_seq().to_string()
                }
                aria-valuetext=moment_text
                on:input=move |ev| {
                    if let Ok(seq) = event_target_value(&ev).parse::<u64>() {
                        playing.set(None);
                        view_state.update(|v| v.at = Some(Moment::Seq(seq)));
                    }
                }/>
            {move || error().map(|e| view! { <p class="replay-error" role="status">{e}</p> })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::Timestamp;

    fn point(seq: u64, secs: i64, transitions: u64) -> TimelinePoint {
        TimelinePoint {
            seq,
            at: Timestamp::from_micros(secs * 1_000_000),
            transitions,
        }
    }

    #[test]
    fn throughput_is_transitions_over_time_between_points() {
        let points = [point(10, 100, 50), point(30, 110, 150), point(31, 110, 151)];
        assert_eq!(
            bars(&points),
            [
                Bar {
                    from: 10,
                    to: 30,
                    rate: 10.0
                },
                Bar {
                    from: 30,
                    to: 31,
                    rate: 0.0
                }
            ]
        );
        assert!(bars(&points[..1]).is_empty());
    }

    #[test]
    fn an_event_s_time_is_read_between_the_points_around_it() {
        let points = [point(10, 100, 0), point(30, 120, 0)];
        assert_eq!(time_at(&points, 20), Some(110.0));
        assert_eq!(time_at(&points, 5), Some(100.0));
        assert_eq!(time_at(&points, 99), Some(120.0));
        assert_eq!(time_at(&[], 1), None);
    }

    #[test]
    fn the_strip_spans_the_history() {
        assert_eq!(strip_x(1, 1, 101), 0.0);
        assert_eq!(strip_x(51, 1, 101), STRIP_W / 2.0);
        assert_eq!(strip_x(500, 1, 101), STRIP_W);
    }
}
