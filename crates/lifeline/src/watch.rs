//! `lifeline watch`: a live terminal view of tasks moving through the life cycle, fed by the
//! service's event stream. A header says what is watched, how many tasks, how many finished and
//! for how long; then one bar per state with its count and the rate at which tasks enter it. It
//! ends when every watched task is finished, and lists the ones that failed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeline_client::Client;
use lifeline_model::api::{EventsQuery, StatsQuery, TaskListQuery};
use lifeline_model::{EndpointId, EventBody, State, StateCounts, TaskGroupId, TaskId};

use crate::client::{CliError, CliResult, endpoint_id, parse_id};

/// Which tasks are watched.
enum Scope {
    /// One submission: its tasks, each with its state.
    Group(HashMap<TaskId, State>),
    /// The tasks of these endpoints (all endpoints when empty) unfinished when watching began,
    /// and every task submitted since. Counts of unfinished states are the service's, each
    /// endpoint's as of its own sequence number; finished states count only what finished
    /// since, so tasks of earlier runs stay out.
    Endpoints {
        since: HashMap<Option<EndpointId>, u64>,
        counts: StateCounts,
        /// The watched tasks that failed, in the order they failed.
        failed: Vec<TaskId>,
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
                failed,
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
                    failed.push(e.task_id);
                }
                true
            }
        }
    }

    /// The watched tasks that failed: the one source of every failure count `watch` prints.
    fn failed(&self) -> Vec<TaskId> {
        match self {
            Scope::Group(tasks) => {
                let mut failed: Vec<TaskId> = tasks
                    .iter()
                    .filter(|(_, s)| **s == State::Failed)
                    .map(|(id, _)| *id)
                    .collect();
                failed.sort();
                failed
            }
            Scope::Endpoints { failed, .. } => failed.clone(),
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

/// The header line and the bars, one per state.
struct View {
    header: ProgressBar,
    bars: Vec<ProgressBar>,
    /// Recent entries into each state, for the rates.
    entries: Vec<VecDeque<Instant>>,
    started: Instant,
    _multi: MultiProgress,
}

const RATE_WINDOW: Duration = Duration::from_secs(5);

impl View {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let header = multi.add(ProgressBar::new(1).with_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        ));
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
            header,
            bars,
            entries: vec![VecDeque::new(); State::COUNT],
            started: Instant::now(),
            _multi: multi,
        }
    }

    fn entered(&mut self, state: State) {
        self.entries[state.index()].push_back(Instant::now());
    }

    fn draw(&mut self, counts: &StateCounts) {
        let total = counts.total();
        self.header.set_message(format!(
            "{total} tasks watched, {} finished ({} failed), {} elapsed",
            total - counts.pending(),
            counts.get(State::Failed),
            clock(self.started.elapsed())
        ));
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
            bar.set_length(total.max(1));
            bar.set_position(counts.get(*state));
            bar.set_message(format!(
                "{:>8.1}/s",
                recent.len() as f64 / RATE_WINDOW.as_secs_f64()
            ));
        }
    }

    fn finish(&self) {
        self.header.abandon();
        for bar in &self.bars {
            bar.abandon();
        }
    }
}

/// Elapsed time as a clock: `0:07`, `12:03`, `1:02:03`.
fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}

/// `lifeline watch`.
pub(crate) async fn watch(
    client: &Client,
    endpoints: &[String],
    group: Option<&str>,
) -> CliResult<()> {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for e in endpoints {
        let id = endpoint_id(client, e).await?;
        if !ids.contains(&id) {
            ids.push(id);
            names.push(e.as_str());
        }
    }
    // Start from a sequence number no newer than the snapshot, so no transition is missed;
    // applying one twice is harmless for a group (states are set, not counted).
    let (mut scope, seq) = match group {
        Some(group) => {
            let group: TaskGroupId = parse_id(group)?;
            let seq = client.health().await?.seq;
            let tasks = group_tasks(client, group).await?;
            if tasks.is_empty() {
                return Err(CliError::usage(format!(
                    "no task belongs to task group {group}"
                )));
            }
            let unfinished = tasks.values().filter(|s| s.is_pending()).count();
            println!(
                "Watching the {} tasks of task group {group} ({unfinished} unfinished) until all are finished.",
                tasks.len()
            );
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
            // What finished before watching began is not watched.
            for state in State::ALL.into_iter().filter(|s| s.is_terminal()) {
                counts.set(state, 0);
            }
            let place = match names.as_slice() {
                [] => "on any endpoint".to_owned(),
                _ => format!("on {}", names.join(", ")),
            };
            let unfinished = counts.pending();
            if unfinished == 0 {
                println!(
                    "Nothing to watch: no task {place} is unfinished (submit some, then watch again)."
                );
                return Ok(());
            }
            println!(
                "Watching {unfinished} unfinished tasks {place}, and any submitted there from now on, until all are finished."
            );
            let seq = since.values().copied().min().unwrap_or(0);
            (
                Scope::Endpoints {
                    since,
                    counts,
                    failed: Vec::new(),
                },
                seq,
            )
        }
    };
    let mut view = View::new();
    view.draw(&scope.counts());
    let only = match ids.as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    };
    let mut events = client.events(EventsQuery {
        endpoint_id: only,
        after: Some(seq),
        ..EventsQuery::default()
    });
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
    let failed = scope.failed();
    let counts = scope.counts();
    view.draw(&counts);
    view.finish();
    println!(
        "All {} watched tasks finished in {}: {} success, {} failed, {} cancelled.",
        counts.total(),
        clock(view.started.elapsed()),
        counts.get(State::Success),
        failed.len(),
        counts.get(State::Cancelled)
    );
    if failed.is_empty() {
        return Ok(());
    }
    println!("Failed tasks (`lifeline status ID` shows why):");
    for id in &failed {
        println!("  {id}");
    }
    Err(CliError::failed(format!(
        "{} of the {} watched tasks failed",
        failed.len(),
        counts.total()
    )))
}
