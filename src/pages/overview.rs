//! The overview: totals by state, throughput over the last minutes and time-in-state
//! percentiles, for the current endpoint filter, drawn as small SVG plots.

use leptos::prelude::*;
use lifeline_model::{State, StateCounts, StatsSummary, human_duration as seconds};

use crate::live::{THROUGHPUT_BUCKET_SECS, THROUGHPUT_BUCKETS};
use crate::session::{Clock, LiveTasks, now_secs};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let live = expect_context::<LiveTasks>();
    let clock = expect_context::<Clock>();
    let stats = expect_context::<Signal<StatsSummary>>();
    let counts = move || live.with(|l| l.map(|l| l.counts).unwrap_or_else(StateCounts::default));
    let totals = move || {
        let c = counts();
        State::ALL
            .into_iter()
            .map(|s| {
                view! {
                    <div class=format!("total state-{}", s.wire()) data-total=s.wire()>
                        <span class="total-count">{c.get(s)}</span>
                        <span class="total-label">{s.label()}</span>
                    </div>
                }
            })
            .collect_view()
    };
    let (w, h) = (600.0_f64, 140.0_f64);
    let bars = move || {
        clock.track();
        let series = live.with(|l| l.map(|l| l.throughput(now_secs())).unwrap_or_default());
        let peak = series
            .iter()
            .map(|(_, ok, bad)| ok + bad)
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let bar = w / THROUGHPUT_BUCKETS as f64;
        series
            .into_iter()
            .enumerate()
            .map(|(i, (ago, ok, bad))| {
                let x = i as f64 * bar;
                let ok_h = f64::from(ok) / peak * (h - 20.0);
                let bad_h = f64::from(bad) / peak * (h - 20.0);
                let rate = f64::from(ok + bad) / THROUGHPUT_BUCKET_SECS;
                view! {
                    <g>
                        <rect class="bar-ok" x=x + 1.0 y=h - ok_h - bad_h width=bar - 2.0 height=ok_h/>
                        <rect class="bar-bad" x=x + 1.0 y=h - bad_h width=bar - 2.0 height=bad_h/>
                        <title>{format!("{ago:.0}–{:.0} s ago: {ok} succeeded, {bad} failed or cancelled ({rate:.1}/s)", ago + THROUGHPUT_BUCKET_SECS)}</title>
                    </g>
                }
            })
            .collect_view()
    };
    let dwell = move || {
        let stats = stats.get();
        let rows: Vec<_> = stats
            .dwell
            .iter()
            .filter(|d| d.count > 0)
            .cloned()
            .collect();
        let max = rows.iter().filter_map(|d| d.p99).fold(1e-6_f64, f64::max);
        // A logarithmic scale from 100 µs to the largest p99.
        let scale = move |s: f64| {
            ((s.max(1e-4) / 1e-4).log10() / (max.max(1e-3) / 1e-4).log10()).clamp(0.0, 1.0) * 380.0
        };
        rows.into_iter()
            .enumerate()
            .map(|(i, d)| {
                let y = i as f64 * 26.0;
                let label = d.state.wire();
                let p50 = d.p50.unwrap_or_default();
                let p90 = d.p90.unwrap_or_default();
                let p99 = d.p99.unwrap_or_default();
                view! {
                    <g data-dwell=label>
                        <text class="dwell-label" x="0" y=y + 15.0>{label}</text>
                        <rect class="dwell-p99" x="150" y=y + 4.0 width=scale(p99) height="14"/>
                        <rect class="dwell-p90" x="150" y=y + 4.0 width=scale(p90) height="14"/>
                        <rect class="dwell-p50" x="150" y=y + 4.0 width=scale(p50) height="14"/>
                        <text class="dwell-value" x="540" y=y + 15.0>{format!("{} / {} / {}", seconds(p50), seconds(p90), seconds(p99))}</text>
                        <title>{format!("{label}: {} tasks left it; p50 {}, p90 {}, p99 {}", d.count, seconds(p50), seconds(p90), seconds(p99))}</title>
                    </g>
                }
            })
            .collect_view()
    };
    let dwell_height = move || stats.with(|s| s.dwell.len().max(1) as f64 * 26.0);
    view! {
        <section class="panel" aria-labelledby="overview-title">
            <h2 id="overview-title">"Overview"</h2>
            <div class="totals">{totals}</div>
            <h3>"Finished tasks, last five minutes (10 s bars)"</h3>
            <svg class="plot" viewBox=format!("0 0 {w} {h}") role="img" aria-label="Throughput over the last five minutes">{bars}</svg>
            <h3>"Time in each state before leaving it: p50 / p90 / p99"</h3>
            <svg class="plot" viewBox=move || format!("0 0 760 {}", dwell_height()) role="img" aria-label="Time-in-state percentiles">{dwell}</svg>
        </section>
    }
}
