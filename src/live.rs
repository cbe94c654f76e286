//! The dashboard's live picture of the tasks, kept without any DOM so that it can be tested
//! natively: counts per state (from `/v1/stats`, then every streamed transition), the loaded
//! tasks, the flow on every edge, throughput, and warnings about transitions the shared model
//! refuses.
//!
//! Every transition is checked with `lifeline_model` before it changes anything; an illegal or
//! out-of-order one becomes a [`Warning`] and is not applied.

use std::collections::{HashMap, HashSet, VecDeque};

use lifeline_model::{
    EndpointId, Event, EventBody, State, StateCounts, TaskId, TaskSummary, TaskView,
    TransitionEvent, TransitionRecord, edges, validate,
};

/// A task as the list shows it: the service's `/v1/tasks` rows.
pub type TaskRow = TaskSummary;

/// A transition that was not applied, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Warning {
    pub seq: u64,
    pub task_id: TaskId,
    pub message: String,
}

/// The stream skipped events: everything after `after` must be fetched again.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub after: u64,
    pub got: u64,
}

/// Seconds of history kept for edge flows.
pub const FLOW_WINDOW: usize = 10;
/// Throughput buckets (10 s each): five minutes.
pub const THROUGHPUT_BUCKETS: usize = 30;
pub const THROUGHPUT_BUCKET_SECS: f64 = 10.0;
const MAX_WARNINGS: usize = 50;
/// Most tasks kept in memory; beyond it the oldest are let go (in chunks, so that trimming
/// costs little per event), which keeps memory flat however long the stream runs.
pub const MAX_ROWS: usize = 200_000;
const TRIM_CHUNK: usize = MAX_ROWS / 10;

/// Per-edge transitions in the last [`FLOW_WINDOW`] seconds, in one-second buckets.
#[derive(Clone, Debug)]
struct Flows {
    /// `[edge][second % FLOW_WINDOW]` and the second each bucket holds.
    counts: Vec<[u32; FLOW_WINDOW]>,
    seconds: Vec<[i64; FLOW_WINDOW]>,
    index: HashMap<(State, State), usize>,
}

impl Flows {
    fn new() -> Self {
        let index: HashMap<(State, State), usize> = edges()
            .enumerate()
            .map(|(i, e)| ((e.from, e.to), i))
            .collect();
        let n = index.len();
        Self {
            counts: vec![[0; FLOW_WINDOW]; n],
            seconds: vec![[i64::MIN; FLOW_WINDOW]; n],
            index,
        }
    }

    fn record(&mut self, from: State, to: State, now: f64) {
        let Some(&i) = self.index.get(&(from, to)) else {
            return;
        };
        let second = now.floor() as i64;
        let slot = second.rem_euclid(FLOW_WINDOW as i64) as usize;
        if self.seconds[i][slot] != second {
            self.seconds[i][slot] = second;
            self.counts[i][slot] = 0;
        }
        self.counts[i][slot] += 1;
    }

    /// Transitions per second on the edge over the window ending at `now`.
    fn rate(&self, from: State, to: State, now: f64) -> f64 {
        let Some(&i) = self.index.get(&(from, to)) else {
            return 0.0;
        };
        let second = now.floor() as i64;
        let recent: u32 = (0..FLOW_WINDOW)
            .filter(|&s| {
                let at = self.seconds[i][s];
                at <= second && second.saturating_sub(at) < FLOW_WINDOW as i64
            })
            .map(|s| self.counts[i][s])
            .sum();
        f64::from(recent) / FLOW_WINDOW as f64
    }
}

/// Everything the dashboard shows, for one endpoint filter.
#[derive(Clone, Debug)]
pub struct Live {
    /// The last event applied (or skipped as filtered out).
    pub seq: u64,
    pub counts: StateCounts,
    /// Loaded tasks, oldest first.
    tasks: Vec<TaskRow>,
    index: HashMap<TaskId, usize>,
    /// The state each task left last, when the dashboard saw it move (for edge filters).
    came_from: HashMap<TaskId, State>,
    /// Events of other endpoints are ignored; `None` shows every endpoint.
    endpoints: Option<HashSet<EndpointId>>,
    flows: Flows,
    /// Finished tasks per bucket, newest last: (bucket start, success, failed or cancelled).
    throughput: VecDeque<(i64, u32, u32)>,
    pub warnings: VecDeque<Warning>,
}

impl Live {
    /// Starts from statistics consistent at `seq` and a newest-first page of tasks.
    pub fn new(
        seq: u64,
        counts: StateCounts,
        newest_first: Vec<TaskRow>,
        endpoints: Option<HashSet<EndpointId>>,
    ) -> Self {
        let mut live = Self {
            seq,
            counts,
            tasks: Vec::new(),
            index: HashMap::new(),
            came_from: HashMap::new(),
            endpoints,
            flows: Flows::new(),
            throughput: VecDeque::new(),
            warnings: VecDeque::new(),
        };
        live.add_older(newest_first);
        live
    }

    /// Adds a further newest-first page of older tasks (already known ones are skipped).
    pub fn add_older(&mut self, newest_first: Vec<TaskRow>) {
        let fresh: Vec<TaskRow> = newest_first
            .into_iter()
            .filter(|t| !self.index.contains_key(&t.task_id))
            .collect();
        if fresh.is_empty() {
            return;
        }
        let mut older: Vec<TaskRow> = fresh.into_iter().rev().collect();
        older.append(&mut self.tasks);
        self.tasks = older;
        self.reindex();
    }

    /// Rebuilds the id → position index after rows moved.
    fn reindex(&mut self) {
        self.index = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id, i))
            .collect();
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn task(&self, id: TaskId) -> Option<&TaskRow> {
        self.index.get(&id).map(|&i| &self.tasks[i])
    }

    /// The `i`-th task, newest first.
    pub fn newest(&self, i: usize) -> Option<&TaskRow> {
        self.tasks.len().checked_sub(i + 1).map(|j| &self.tasks[j])
    }

    /// Indices (newest first, as for [`Live::newest`]) of the tasks `keep` accepts.
    /// It also gets the state each task left last, if the dashboard saw it move.
    pub fn select(&self, keep: impl Fn(&TaskRow, Option<State>) -> bool) -> Vec<u32> {
        let n = self.tasks.len();
        (0..n)
            .filter(|&i| {
                let t = &self.tasks[n - 1 - i];
                keep(t, self.came_from.get(&t.task_id).copied())
            })
            .map(|i| i as u32)
            .collect()
    }

    fn shown(&self, endpoint: EndpointId) -> bool {
        self.endpoints
            .as_ref()
            .is_none_or(|set| set.contains(&endpoint))
    }

    fn warn(&mut self, seq: u64, task_id: TaskId, message: String) {
        if self.warnings.len() == MAX_WARNINGS {
            self.warnings.pop_front();
        }
        self.warnings.push_back(Warning {
            seq,
            task_id,
            message,
        });
    }

    /// Applies one event from the stream. `now` is the wall clock in epoch seconds, for flows
    /// and throughput. Fails with a [`Gap`] if events were skipped; the caller then fetches
    /// everything after [`Live::seq`] again.
    pub fn apply(&mut self, event: &Event, now: f64) -> Result<(), Gap> {
        if event.seq <= self.seq {
            return Ok(());
        }
        if event.seq != self.seq + 1 {
            return Err(Gap {
                after: self.seq,
                got: event.seq,
            });
        }
        self.seq = event.seq;
        match &event.body {
            EventBody::Transition(t) if self.shown(t.endpoint_id) => {
                self.transition(event.seq, t, now)
            }
            EventBody::Transition(_) => {}
            // Endpoint changes are the endpoint list's (see `session::endpoints`).
            EventBody::Endpoint(_) => {}
        }
        Ok(())
    }

    fn transition(&mut self, seq: u64, t: &TransitionEvent, now: f64) {
        // The counts: every transition, checked on its own against the model.
        match t.from {
            None if t.to == State::Received && t.attempt == 1 => {
                self.counts.add(State::Received, 1)
            }
            None => {
                self.warn(
                    seq,
                    t.task_id,
                    format!("a task cannot start in {} (attempt {})", t.to, t.attempt),
                );
                return;
            }
            Some(from) => {
                let before = lifeline_model::Edge::find(from, t.to)
                    .map_or(t.attempt, |e| e.attempt_before(t.attempt));
                match validate(from, t.to, t.actor, before, t.max_retries) {
                    Ok(accepted) if accepted.attempt == t.attempt => {
                        self.counts.shift(from, t.to);
                        self.flows.record(from, t.to, now);
                    }
                    Ok(accepted) => {
                        let message = format!(
                            "{from} → {}: attempt {} reported, the model gives {}",
                            t.to, t.attempt, accepted.attempt
                        );
                        self.warn(seq, t.task_id, message);
                        return;
                    }
                    Err(error) => {
                        self.warn(seq, t.task_id, error.to_string());
                        return;
                    }
                }
            }
        }
        if t.to.is_terminal() {
            self.finished(t.to, now);
        }
        // The task's row, if loaded.
        match self.index.get(&t.task_id).copied() {
            Some(i) => {
                let row = &mut self.tasks[i];
                if row.state == t.to && row.attempt == t.attempt {
                    return; // The row was loaded after this event.
                }
                if t.at < row.since {
                    return; // Older than what the row shows.
                }
                if Some(row.state) != t.from {
                    let message = format!(
                        "out of order: the task is {} (attempt {}) but the event moves it from {}",
                        row.state,
                        row.attempt,
                        t.from.map_or("nothing", State::wire)
                    );
                    self.warn(seq, t.task_id, message);
                    return;
                }
                let mut view = TaskView {
                    state: row.state,
                    attempt: row.attempt,
                    max_retries: row.max_retries,
                    since: row.since,
                };
                let record = TransitionRecord {
                    state: t.to,
                    actor: t.actor,
                    attempt: t.attempt,
                    at: t.at,
                    reason: None,
                };
                match view.apply(&record) {
                    Ok(_) => {
                        self.came_from.insert(t.task_id, row.state);
                        row.state = view.state;
                        row.attempt = view.attempt;
                        row.since = view.since;
                    }
                    Err(error) => self.warn(seq, t.task_id, error.to_string()),
                }
            }
            None if t.from.is_none() => {
                // A task's first event names its submission; without it there is no row to show.
                let Some(task_group_id) = t.task_group_id else {
                    return;
                };
                if self.tasks.len() >= MAX_ROWS + TRIM_CHUNK {
                    self.tasks.drain(..TRIM_CHUNK);
                    self.reindex();
                    let index = &self.index;
                    self.came_from.retain(|id, _| index.contains_key(id));
                }
                self.index.insert(t.task_id, self.tasks.len());
                self.tasks.push(TaskRow {
                    task_id: t.task_id,
                    task_group_id,
                    endpoint_id: t.endpoint_id,
                    function_id: t.function_id,
                    state: t.to,
                    attempt: t.attempt,
                    max_retries: t.max_retries,
                    created_at: t.at,
                    since: t.at,
                });
            }
            None => {}
        }
    }

    fn finished(&mut self, state: State, now: f64) {
        let bucket = (now / THROUGHPUT_BUCKET_SECS).floor() as i64;
        if self.throughput.back().is_none_or(|b| b.0 != bucket) {
            self.throughput.push_back((bucket, 0, 0));
            while self.throughput.len() > THROUGHPUT_BUCKETS {
                self.throughput.pop_front();
            }
        }
        if let Some(b) = self.throughput.back_mut() {
            if state == State::Success {
                b.1 += 1;
            } else {
                b.2 += 1;
            }
        }
    }

    /// Transitions per second on an edge, over the last [`FLOW_WINDOW`] seconds.
    pub fn flow(&self, from: State, to: State, now: f64) -> f64 {
        self.flows.rate(from, to, now)
    }

    /// Finished tasks per bucket over the last five minutes, oldest first:
    /// (seconds ago the bucket started, successes, failures and cancellations).
    pub fn throughput(&self, now: f64) -> Vec<(f64, u32, u32)> {
        let current = (now / THROUGHPUT_BUCKET_SECS).floor() as i64;
        (0..THROUGHPUT_BUCKETS as i64)
            .rev()
            .map(|back| {
                let bucket = current - back;
                let (ok, bad) = self
                    .throughput
                    .iter()
                    .find(|b| b.0 == bucket)
                    .map_or((0, 0), |b| (b.1, b.2));
                (back as f64 * THROUGHPUT_BUCKET_SECS, ok, bad)
            })
            .collect()
    }

    /// Rebuilds the last five minutes of finished tasks from the loaded rows: a finished task's
    /// `since` is when it finished. So the throughput chart shows the recent past right after a
    /// load, not only what finished while the page watched; the stream then adds to it.
    pub fn count_recent_finishes(&mut self, now: f64) {
        let current = (now / THROUGHPUT_BUCKET_SECS).floor() as i64;
        let oldest = current - THROUGHPUT_BUCKETS as i64 + 1;
        let mut buckets: std::collections::BTreeMap<i64, (u32, u32)> = Default::default();
        for t in self.tasks.iter().filter(|t| t.state.is_terminal()) {
            let bucket = (t.since.as_secs_f64() / THROUGHPUT_BUCKET_SECS).floor() as i64;
            if (oldest..=current).contains(&bucket) {
                let entry = buckets.entry(bucket).or_default();
                if t.state == State::Success {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
        self.throughput = buckets
            .into_iter()
            .map(|(bucket, (ok, bad))| (bucket, ok, bad))
            .collect();
    }

    /// Polling's update: exact counts as of `seq`, and the newest rows as they are now.
    pub fn refresh(&mut self, seq: u64, counts: StateCounts, newest_first: Vec<TaskRow>) {
        self.seq = seq;
        self.counts = counts;
        let mut fresh = Vec::new();
        for row in newest_first {
            match self.index.get(&row.task_id) {
                Some(&i) => self.tasks[i] = row,
                None => fresh.push(row),
            }
        }
        for row in fresh.into_iter().rev() {
            self.index.insert(row.task_id, self.tasks.len());
            self.tasks.push(row);
        }
    }

    /// Loaded tasks per endpoint that are not finished.
    pub fn pending_by_endpoint(&self) -> HashMap<EndpointId, u64> {
        let mut out = HashMap::new();
        for t in self.tasks.iter().filter(|t| t.state.is_pending()) {
            *out.entry(t.endpoint_id).or_insert(0) += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{Actor, FunctionId, TaskGroupId, Timestamp};

    fn id(n: u128) -> TaskId {
        TaskId::from_u128(n)
    }

    fn event(
        seq: u64,
        task: u128,
        from: Option<State>,
        to: State,
        actor: Actor,
        attempt: u32,
    ) -> Event {
        Event {
            seq,
            body: EventBody::Transition(TransitionEvent {
                task_id: id(task),
                task_group_id: from.is_none().then(|| TaskGroupId::from_u128(5)),
                endpoint_id: EndpointId::from_u128(7),
                function_id: FunctionId::from_u128(9),
                from,
                to,
                actor,
                attempt,
                max_retries: 1,
                at: Timestamp::from_micros(seq as i64 * 1000),
                reason: None,
            }),
        }
    }

    use State::*;

    fn received_and_dispatched(live: &mut Live, seq: u64, task: u128) {
        live.apply(
            &event(seq, task, None, Received, Actor::WebService, 1),
            100.0,
        )
        .expect("in order");
        live.apply(
            &event(
                seq + 1,
                task,
                Some(Received),
                DispatchedToEp,
                Actor::Forwarder,
                1,
            ),
            100.0,
        )
        .expect("in order");
    }

    #[test]
    fn events_move_counts_rows_and_flows() {
        let mut live = Live::new(0, StateCounts::default(), vec![], None);
        received_and_dispatched(&mut live, 1, 1);
        assert_eq!(live.counts.get(DispatchedToEp), 1);
        assert_eq!(live.counts.get(Received), 0);
        assert_eq!(live.task(id(1)).map(|t| t.state), Some(DispatchedToEp));
        assert_eq!(live.flow(Received, DispatchedToEp, 100.5), 0.1);
        assert_eq!(
            live.flow(Received, DispatchedToEp, 200.0),
            0.0,
            "the window moved on"
        );
        assert!(live.warnings.is_empty());
    }

    #[test]
    fn illegal_transitions_are_warned_about_not_applied() {
        let mut live = Live::new(0, StateCounts::default(), vec![], None);
        received_and_dispatched(&mut live, 1, 1);
        live.apply(
            &event(3, 1, Some(DispatchedToEp), Success, Actor::Worker, 1),
            100.0,
        )
        .expect("in order");
        assert_eq!(live.counts.get(Success), 0);
        assert_eq!(live.task(id(1)).map(|t| t.state), Some(DispatchedToEp));
        assert_eq!(live.warnings.len(), 1);
        assert!(
            live.warnings[0].message.contains("no such transition"),
            "{:?}",
            live.warnings
        );
        // Wrong attempt numbers are refused too: a requeue keeps the attempt.
        live.apply(
            &event(
                4,
                1,
                Some(DispatchedToEp),
                WaitingForEp,
                Actor::Forwarder,
                2,
            ),
            100.0,
        )
        .expect("in order");
        assert_eq!(live.warnings.len(), 2);
    }

    #[test]
    fn out_of_order_transitions_are_warned_about() {
        let mut live = Live::new(0, StateCounts::default(), vec![], None);
        received_and_dispatched(&mut live, 1, 1);
        // Legal on its own, but the task is not in waiting-for-nodes.
        live.apply(
            &event(
                3,
                1,
                Some(WaitingForNodes),
                WaitingForLaunch,
                Actor::Manager,
                1,
            ),
            100.0,
        )
        .expect("in order");
        assert_eq!(live.task(id(1)).map(|t| t.state), Some(DispatchedToEp));
        assert!(
            live.warnings
                .back()
                .expect("warning")
                .message
                .starts_with("out of order")
        );
    }

    #[test]
    fn a_skipped_sequence_number_is_a_gap() {
        let mut live = Live::new(10, StateCounts::default(), vec![], None);
        assert_eq!(
            live.apply(&event(12, 1, None, Received, Actor::WebService, 1), 1.0),
            Err(Gap { after: 10, got: 12 })
        );
        assert_eq!(live.seq, 10, "nothing applied");
        live.apply(&event(11, 1, None, Received, Actor::WebService, 1), 1.0)
            .expect("in order");
        live.apply(&event(11, 1, None, Received, Actor::WebService, 1), 1.0)
            .expect("a duplicate is ignored");
        assert_eq!(live.counts.get(Received), 1);
    }

    #[test]
    fn other_endpoints_are_filtered_out_and_lists_select_newest_first() {
        let other = EndpointId::from_u128(8);
        let mut live = Live::new(
            0,
            StateCounts::default(),
            vec![],
            Some([other].into_iter().collect()),
        );
        received_and_dispatched(&mut live, 1, 1);
        assert_eq!(live.counts.total(), 0);
        assert_eq!(live.seq, 2);

        let mut live = Live::new(0, StateCounts::default(), vec![], None);
        for n in 1..=3 {
            received_and_dispatched(&mut live, n * 2 - 1, u128::from(n));
        }
        assert_eq!(live.newest(0).map(|t| t.task_id), Some(id(3)));
        assert_eq!(live.select(|t, _| t.task_id != id(2)), vec![0, 2]);
    }

    #[test]
    fn the_oldest_rows_are_let_go_beyond_the_cap() {
        let mut live = Live::new(0, StateCounts::default(), vec![], None);
        let n = (MAX_ROWS + TRIM_CHUNK + 1) as u64;
        for seq in 1..=n {
            live.apply(
                &event(seq, u128::from(seq), None, Received, Actor::WebService, 1),
                1.0,
            )
            .expect("in order");
        }
        assert_eq!(live.len(), MAX_ROWS + 1);
        assert!(live.task(id(1)).is_none(), "the oldest went");
        assert_eq!(live.newest(0).map(|t| t.task_id), Some(id(u128::from(n))));
        assert_eq!(live.counts.get(Received), n, "counts keep counting");
    }

    #[test]
    fn retries_and_throughput() {
        let mut live = Live::new(0, StateCounts::default(), vec![], None);
        received_and_dispatched(&mut live, 1, 1);
        let steps = [
            (DispatchedToEp, WaitingForNodes, Actor::Endpoint, 1),
            (WaitingForNodes, WaitingForLaunch, Actor::Manager, 1),
            (WaitingForLaunch, Running, Actor::Worker, 1),
            (Running, WaitingForNodes, Actor::Endpoint, 2),
            (WaitingForNodes, WaitingForLaunch, Actor::Manager, 2),
            (WaitingForLaunch, Running, Actor::Worker, 2),
            (Running, Success, Actor::Worker, 2),
        ];
        for (i, (from, to, actor, attempt)) in steps.into_iter().enumerate() {
            live.apply(
                &event(3 + i as u64, 1, Some(from), to, actor, attempt),
                1000.0,
            )
            .expect("in order");
        }
        assert!(live.warnings.is_empty(), "{:?}", live.warnings);
        let row = live.task(id(1)).expect("row");
        assert_eq!((row.state, row.attempt), (Success, 2));
        assert_eq!(live.counts.get(Success), 1);
        let series = live.throughput(1005.0);
        assert_eq!(series.last(), Some(&(0.0, 1, 0)));
        assert_eq!(series.len(), THROUGHPUT_BUCKETS);
    }

    #[test]
    fn recent_finishes_come_from_the_loaded_rows() {
        let row = |n: u128, state: State, since: f64| TaskRow {
            task_id: id(n),
            task_group_id: TaskGroupId::from_u128(1),
            endpoint_id: EndpointId::from_u128(7),
            function_id: FunctionId::from_u128(9),
            state,
            attempt: 1,
            max_retries: 0,
            created_at: Timestamp::from_secs_f64(since - 1.0),
            since: Timestamp::from_secs_f64(since),
        };
        let now = 10_008.0;
        let rows = vec![
            row(1, Success, now - 5.0),
            row(2, Failed, now - 5.0),
            row(3, Success, now - 65.0),
            row(4, Running, now - 5.0),
            // Too old for the chart.
            row(5, Success, now - 400.0),
        ];
        let mut live = Live::new(0, StateCounts::default(), rows, None);
        live.count_recent_finishes(now);
        let series = live.throughput(now);
        assert_eq!(series.last(), Some(&(0.0, 1, 1)));
        let total: u32 = series.iter().map(|(_, ok, bad)| ok + bad).sum();
        assert_eq!(total, 3);
        assert_eq!(series[series.len() - 7], (60.0, 1, 0));
    }
}
