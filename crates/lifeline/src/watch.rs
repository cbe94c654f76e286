//! `lifeline watch`: a live terminal view of tasks moving through the life cycle, fed by the
//! service's event stream. One bar per state with its count and the rate at which tasks enter
//! it; it ends when every watched task is finished.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeline_model::{Event, EventBody, State, StateCounts, TaskId};

use crate::client::{CliError, CliResult, Client};

/// Which tasks are watched.
enum Scope {
    /// One submission: its tasks, each with its state.
    Group(HashMap<TaskId, State>),
    /// Every task of these endpoints (all endpoints when empty), as counts, each endpoint's
    /// counts as of its own sequence number.
    Endpoints {
        since: HashMap<String, u64>,
        counts: StateCounts,
        failed_here: u64,
    },
}

impl Scope {
    fn counts(&self) -> StateCounts {
        match self {
            Scope::Group(tasks) => tasks.values().map(|s| (*s, 1)).collect(),
            Scope::Endpoints { counts, .. } => *counts,
        }
    }

    /// Applies a transition; returns whether it concerned a watched task.
    fn apply(&mut self, seq: u64, e: &lifeline_model::TransitionEvent) -> bool {
        match self {
            Scope::Group(tasks) => match tasks.get_mut(&e.task_id) {
                Some(state) => {
                    *state = e.to;
                    true
                }
                None => false,
            },
            Scope::Endpoints {
                since,
                counts,
                failed_here,
            } => {
                // "" holds the sequence of the all-endpoints statistics.
                let after = since
                    .get(&e.endpoint_id.to_string())
                    .or_else(|| since.get(""));
                if after.is_none_or(|after| seq <= *after) {
                    return false;
                }
                if let Some(from) = e.from {
                    counts.add(from, -1);
                }
                counts.add(e.to, 1);
                if e.to == State::Failed {
                    *failed_here += 1;
                }
                true
            }
        }
    }

    fn failed(&self) -> u64 {
        match self {
            Scope::Group(tasks) => tasks.values().filter(|s| **s == State::Failed).count() as u64,
            Scope::Endpoints { failed_here, .. } => *failed_here,
        }
    }
}

async fn group_tasks(client: &Client, group: &str) -> CliResult<HashMap<TaskId, State>> {
    let mut tasks = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/tasks?task_group_id={group}&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = client.get(&path).await?;
        for t in page["tasks"].as_array().into_iter().flatten() {
            if let (Some(id), Some(state)) = (t["task_id"].as_str(), t["state"].as_str())
                && let (Ok(id), Ok(state)) = (id.parse(), state.parse())
            {
                tasks.insert(id, state);
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(tasks),
        }
    }
}

/// The bars, one per state.
struct View {
    bars: Vec<ProgressBar>,
    /// Recent entries into each state, for the rates.
    entries: Vec<VecDeque<Instant>>,
    _multi: MultiProgress,
}

const RATE_WINDOW: Duration = Duration::from_secs(5);

impl View {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let style =
            ProgressStyle::with_template("{prefix:>20} [{bar:40.cyan/blue}] {pos:>8} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("█▉▊▋▌▍▎▏ ");
        let bars = State::ALL
            .iter()
            .map(|s| {
                let bar = multi.add(
                    ProgressBar::new(1)
                        .with_style(style.clone())
                        .with_prefix(s.wire()),
                );
                bar.set_message("");
                bar
            })
            .collect();
        Self {
            bars,
            entries: vec![VecDeque::new(); State::COUNT],
            _multi: multi,
        }
    }

    fn entered(&mut self, state: State) {
        self.entries[state.index()].push_back(Instant::now());
    }

    fn draw(&mut self, counts: &StateCounts) {
        let total = counts.total().max(1);
        let now = Instant::now();
        for (i, state) in State::ALL.iter().enumerate() {
            let recent = &mut self.entries[i];
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > RATE_WINDOW)
            {
                recent.pop_front();
            }
            let bar = &self.bars[i];
            bar.set_length(total);
            bar.set_position(counts.get(*state));
            bar.set_message(format!(
                "{:>8.1}/s",
                recent.len() as f64 / RATE_WINDOW.as_secs_f64()
            ));
        }
    }

    fn finish(&self) {
        for bar in &self.bars {
            bar.abandon();
        }
    }
}

/// `lifeline watch`.
pub(crate) async fn watch(
    client: &Client,
    endpoints: &[String],
    group: Option<&str>,
) -> CliResult<()> {
    let mut ids = HashSet::new();
    for e in endpoints {
        ids.insert(client.endpoint_id(e).await?);
    }
    // Start from a sequence number no newer than the snapshot, so no transition is missed;
    // applying one twice is harmless for a group (states are set, not counted).
    let (mut scope, mut seq) = match group {
        Some(group) => {
            let seq = client.get("/healthz").await?["seq"].as_u64().unwrap_or(0);
            let tasks = group_tasks(client, group).await?;
            if tasks.is_empty() {
                return Err(CliError::usage(format!(
                    "no task belongs to task group {group}"
                )));
            }
            (Scope::Group(tasks), seq)
        }
        None => {
            let mut counts = StateCounts::default();
            let mut since = HashMap::new();
            let queries: Vec<(String, String)> = if ids.is_empty() {
                vec![(String::new(), "/v1/stats".into())]
            } else {
                ids.iter()
                    .map(|id| (id.clone(), format!("/v1/stats?endpoint_id={id}")))
                    .collect()
            };
            for (id, path) in queries {
                let stats = client.get(&path).await?;
                let part: StateCounts =
                    serde_json::from_value(stats["tasks"].clone()).unwrap_or_default();
                counts.merge(&part);
                since.insert(id, stats["seq"].as_u64().unwrap_or(0));
            }
            let seq = since.values().copied().min().unwrap_or(0);
            (
                Scope::Endpoints {
                    since,
                    counts,
                    failed_here: 0,
                },
                seq,
            )
        }
    };
    let mut view = View::new();
    view.draw(&scope.counts());
    let filter = match ids.iter().collect::<Vec<_>>().as_slice() {
        [one] => format!("&endpoint_id={one}"),
        _ => String::new(),
    };
    let started = Instant::now();
    while scope.counts().pending() > 0 {
        let url = format!("{}/v1/events?after={seq}{filter}", client.url);
        let response = client
            .http()
            .get(&url)
            .bearer_auth(client.token())
            .send()
            .await
            .map_err(|e| client.unreachable(e))?;
        if response.status() == 401 {
            return Err(CliError {
                code: crate::client::exit::UNAUTHORIZED,
                message: "the service refused the token; check --token or LIFELINE_TOKEN".into(),
            });
        }
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                chunk = body.next() => {
                    let Some(Ok(chunk)) = chunk else { break };
                    buffer.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = buffer.find("\n\n") {
                        let block: String = buffer.drain(..end + 2).collect();
                        let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
                        let Ok(event) = serde_json::from_str::<Event>(data.trim_start()) else { continue };
                        seq = seq.max(event.seq);
                        if let EventBody::Transition(t) = &event.body
                            && scope.apply(event.seq, t)
                        {
                            view.entered(t.to);
                        }
                    }
                    if scope.counts().pending() == 0 {
                        break;
                    }
                }
                _ = tick.tick() => view.draw(&scope.counts()),
            }
        }
    }
    view.draw(&scope.counts());
    view.finish();
    let counts = scope.counts();
    println!(
        "all finished in {}: {} success, {} failed, {} cancelled",
        lifeline_model::human_duration(started.elapsed().as_secs_f64()),
        counts.get(State::Success),
        counts.get(State::Failed),
        counts.get(State::Cancelled)
    );
    match scope.failed() {
        0 => Ok(()),
        n => Err(CliError::failed(format!("{n} of the watched tasks failed"))),
    }
}
