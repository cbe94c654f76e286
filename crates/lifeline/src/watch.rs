//! `lifeline watch`: a live terminal view of tasks moving through the life cycle, fed by the
//! service's event stream. One bar per state with its count and the rate at which tasks enter
//! it; it ends when every watched task is finished.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeline_client::Client;
use lifeline_model::api::{EventsQuery, StatsQuery, TaskListQuery};
use lifeline_model::{EndpointId, EventBody, State, StateCounts, TaskGroupId, TaskId};

use crate::client::{CliError, CliResult, endpoint_id};

/// Which tasks are watched.
enum Scope {
    /// One submission: its tasks, each with its state.
    Group(HashMap<TaskId, State>),
    /// Every task of these endpoints (all endpoints when empty), as counts, each endpoint's
    /// counts as of its own sequence number.
    Endpoints {
        since: HashMap<Option<EndpointId>, u64>,
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
                // `None` holds the sequence of the all-endpoints statistics.
                let after = since.get(&Some(e.endpoint_id)).or_else(|| since.get(&None));
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

async fn group_tasks(client: &Client, group: TaskGroupId) -> CliResult<HashMap<TaskId, State>> {
    let mut tasks = HashMap::new();
    let mut query = TaskListQuery {
        task_group_id: Some(group.to_string()),
        limit: Some(1000),
        ..TaskListQuery::default()
    };
    loop {
        let page = client.tasks(&query).await?;
        tasks.extend(page.tasks.iter().map(|t| (t.task_id, t.state)));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
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
        ids.insert(endpoint_id(client, e).await?);
    }
    // Start from a sequence number no newer than the snapshot, so no transition is missed;
    // applying one twice is harmless for a group (states are set, not counted).
    let (mut scope, seq) = match group {
        Some(group) => {
            let group: TaskGroupId = group
                .parse()
                .map_err(|e: lifeline_model::IdError| CliError::usage(e.to_string()))?;
            let seq = client.health().await?.seq;
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
            let scopes: Vec<Option<EndpointId>> = if ids.is_empty() {
                vec![None]
            } else {
                ids.iter().copied().map(Some).collect()
            };
            for id in scopes {
                let query = StatsQuery {
                    endpoint_id: id.map(|id| id.to_string()),
                    ..StatsQuery::default()
                };
                let stats = client.stats(&query).await?;
                counts.merge(&stats.tasks);
                since.insert(id, stats.seq);
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
    let only = match ids.iter().collect::<Vec<_>>().as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    };
    let mut events = client.events(EventsQuery {
        endpoint_id: only,
        after: Some(seq),
        ..EventsQuery::default()
    });
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while scope.counts().pending() > 0 {
        tokio::select! {
            event = events.next() => {
                let event = event?;
                if let EventBody::Transition(t) = &event.body
                    && scope.apply(event.seq, t)
                {
                    view.entered(t.to);
                }
            }
            _ = tick.tick() => view.draw(&scope.counts()),
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
