//! The overview: totals by state, throughput over the last minutes and time-in-state
//! percentiles, for the current endpoint filter, drawn as small SVG plots. The throughput
//! starts from the loaded tasks' finishing times (see `Live::count_recent_finishes`), so it
//! shows the recent past after a reload.

use leptos::prelude::*;
use lifeline_model::{State, StateCounts, StatsSummary, human_duration as seconds};

use crate::components::task_table::use_narrow;
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
    // The throughput chart: bars in a plot area with a count axis on the left and a time axis
    // below.
    // On a phone the chart is drawn narrower rather than scaled down, so its labels stay legible.
    let narrow = use_narrow();
    let w_of = move || if narrow.get() { 340.0_f64 } else { 600.0_f64 };
    let h = 170.0_f64;
    let (left, bottom, top) = (34.0_f64, 22.0_f64, 8.0_f64);
    let plot_h = h - bottom - top;
    let series = Memo::new(move |_| {
        clock.track();
        live.with(|l| l.map(|l| l.throughput(now_secs())).unwrap_or_default())
    });
    let finished = move || series.with(|s| s.iter().map(|(_, ok, bad)| ok + bad).sum::<u32>());
    let peak = move || {
        series
            .with(|s| s.iter().map(|(_, ok, bad)| ok + bad).max().unwrap_or(0))
            .max(1)
    };
    let bars = move || {
        let w = w_of();
        let peak = f64::from(peak());
        let bar = (w - left) / THROUGHPUT_BUCKETS as f64;
        series
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, (ago, ok, bad))| {
                let x = left + i as f64 * bar;
                let ok_h = f64::from(ok) / peak * plot_h;
                let bad_h = f64::from(bad) / peak * plot_h;
                let rate = f64::from(ok + bad) / THROUGHPUT_BUCKET_SECS;
                let base = top + plot_h;
                view! {
                    <g>
                        <rect class="bar-ok" x=x + 1.0 y=base - ok_h - bad_h width=bar - 2.0 height=ok_h/>
                        <rect class="bar-bad" x=x + 1.0 y=base - bad_h width=bar - 2.0 height=bad_h/>
                        <title>{format!("{ago:.0}–{:.0} s ago: {ok} succeeded, {bad} failed or cancelled ({rate:.1}/s)", ago + THROUGHPUT_BUCKET_SECS)}</title>
                    </g>
                }
            })
            .collect_view()
    };
    let axes = move || {
        let w = w_of();
        let narrow = narrow.get();
        let peak = peak();
        let base = top + plot_h;
        let ticks = if peak > 1 {
            vec![0, peak / 2, peak]
        } else {
            vec![0, 1]
        };
        let y_ticks = ticks
            .into_iter()
            .map(|n| {
                let y = base - f64::from(n) / f64::from(peak.max(1)) * plot_h;
                view! {
                    <line class="grid" x1=left x2=w y1=y y2=y/>
                    <text class="axis-label" x=left - 6.0 y=y + 4.0 text-anchor="end">{n}</text>
                }
            })
            .collect_view();
        let x_ticks = [
            (5.0, "5 min ago"),
            (4.0, "4"),
            (3.0, "3"),
            (2.0, "2"),
            (1.0, "1 min"),
            (0.0, "now"),
        ]
        .into_iter()
        .map(|(minutes, label)| {
            // On a phone only the ends and the last minute are named.
            let label = if narrow && (2.0..=4.0).contains(&minutes) {
                ""
            } else {
                label
            };
            let x = w - minutes * 60.0 / THROUGHPUT_BUCKET_SECS
                * ((w - left) / THROUGHPUT_BUCKETS as f64);
            let anchor = if minutes >= 5.0 {
                "start"
            } else if minutes == 0.0 {
                "end"
            } else {
                "middle"
            };
            view! {
                <line class="axis" x1=x x2=x y1=base y2=base + 4.0/>
                <text class="axis-label" x=x y=h - 4.0 text-anchor=anchor>{label}</text>
            }
        })
        .collect_view();
        view! {
            <g class="axes" aria-hidden="true">
                {y_ticks}
                <line class="axis" x1=left x2=left y1=top y2=base/>
                <line class="axis" x1=left x2=w y1=base y2=base/>
                {x_ticks}
            </g>
        }
    };
    let summary = move || match finished() {
        0 => "No tasks finished in the last five minutes.".to_owned(),
        n => {
            let (ok, bad) = series.with(|s| {
                s.iter()
                    .fold((0, 0), |(a, b), (_, ok, bad)| (a + ok, b + bad))
            });
            format!(
                "{n} {} finished in the last five minutes: {ok} succeeded, {bad} failed or were cancelled.",
                if n == 1 { "task" } else { "tasks" }
            )
        }
    };
    // Time in state as a table whose bars are plain HTML, so that it reflows and its text stays
    // legible on a phone.
    let dwell = move || {
        let stats = stats.get();
        let rows: Vec<_> = stats
            .dwell
            .iter()
            .filter(|d| d.count > 0)
            .cloned()
            .collect();
        let max = rows.iter().filter_map(|d| d.p99).fold(1e-6_f64, f64::max);
        // A logarithmic scale from 100 µs to the largest p99, in percent of the bar's width.
        let scale = move |s: f64| {
            ((s.max(1e-4) / 1e-4).log10() / (max.max(1e-3) / 1e-4).log10()).clamp(0.0, 1.0) * 100.0
        };
        rows.into_iter()
            .map(|d| {
                let label = d.state.wire();
                let p50 = d.p50.unwrap_or_default();
                let p90 = d.p90.unwrap_or_default();
                let p99 = d.p99.unwrap_or_default();
                view! {
                    <tr data-dwell=label title=format!("{label}: {} tasks left it; p50 {}, p90 {}, p99 {}", d.count, seconds(p50), seconds(p90), seconds(p99))>
                        <th scope="row" class="dwell-label">{label}</th>
                        <td class="dwell-bars" aria-hidden="true">
                            <span class="dwell-p99" style=format!("width: {:.1}%", scale(p99))></span>
                            <span class="dwell-p90" style=format!("width: {:.1}%", scale(p90))></span>
                            <span class="dwell-p50" style=format!("width: {:.1}%", scale(p50))></span>
                        </td>
                        <td class="dwell-value">{format!("{} / {} / {}", seconds(p50), seconds(p90), seconds(p99))}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <section class="panel" aria-labelledby="overview-title">
            <h2 id="overview-title">"Overview"</h2>
            <div class="totals">{totals}</div>
            <h3>"Finished tasks, last five minutes (10 s bars)"</h3>
            <p class="plot-summary" data-testid="throughput-summary">{summary}</p>
            <svg class="plot" viewBox=move || format!("0 0 {} {h}", w_of()) role="img" aria-label=summary data-finished=finished>
                {axes}
                {bars}
                <Show when=move || finished() == 0>
                    <text class="plot-empty" x=move || left + (w_of() - left) / 2.0 y=top + plot_h / 2.0 text-anchor="middle">
                        "No tasks finished in the last five minutes"
                    </text>
                </Show>
            </svg>
            <h3>"Time in each state before leaving it: p50 / p90 / p99"</h3>
            <table class="dwell">
                <thead class="sr-only"><tr><th>"State"</th><th>"Spread"</th><th>"p50 / p90 / p99"</th></tr></thead>
                <tbody>{dwell}</tbody>
            </table>
        </section>
    }
}
