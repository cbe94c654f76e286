//! The dashboard's live picture of the tasks, kept without any DOM so that it can be tested
//! natively: counts per state (from `/v1/stats`, then every streamed transition), the flow on
//! every edge, throughput, and warnings about transitions the shared model refuses. It holds no
//! task rows: the list's rows are a window ([`crate::window`]), so this costs the same with ten
//! tasks stored or ten million.
//!
//! Every transition is checked with `lifeline_model` before it changes anything; an illegal one
//! becomes a [`Warning`] and is not applied.

use std::collections::{HashMap, HashSet, VecDeque};

use lifeline_model::{
    EndpointId, Event, EventBody, State, StateCounts, TaskGroupId, TaskId, TaskSummary,
    TransitionEvent, edges, validate,
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
    /// Events of other endpoints are ignored; `None` shows every endpoint.
    endpoints: Option<HashSet<EndpointId>>,
    /// Narrowed to a submission: its id and its tasks (a task's first event names its group,
    /// so tasks stored later join as they arrive).
    group: Option<(TaskGroupId, HashSet<TaskId>)>,
    flows: Flows,
    /// Finished tasks per bucket, newest last: (bucket start, success, failed or cancelled).
    throughput: VecDeque<(i64, u32, u32)>,
    pub warnings: VecDeque<Warning>,
}

impl Live {
    /// Starts from statistics consistent at `seq`.
    pub fn new(seq: u64, counts: StateCounts, endpoints: Option<HashSet<EndpointId>>) -> Self {
        Self {
            seq,
            counts,
            endpoints,
            group: None,
            flows: Flows::new(),
            throughput: VecDeque::new(),
            warnings: VecDeque::new(),
        }
    }

    /// Only the transitions of a submission's tasks count from now on.
    pub fn narrowed_to(mut self, group: TaskGroupId, members: HashSet<TaskId>) -> Self {
        self.group = Some((group, members));
        self
    }

    fn shown(&self, endpoint: EndpointId) -> bool {
        self.endpoints
            .as_ref()
            .is_none_or(|set| set.contains(&endpoint))
    }

    /// Whether a transition is of the submission shown (always, when none is); a task whose
    /// first event names that submission joins it.
    fn admits(&mut self, t: &TransitionEvent) -> bool {
        let Some((group, members)) = self.group.as_mut() else {
            return true;
        };
        if t.task_group_id == Some(*group) {
            members.insert(t.task_id);
        }
        members.contains(&t.task_id)
    }

    /// Notes a transition that was not applied.
    pub fn warn(&mut self, seq: u64, task_id: TaskId, message: String) {
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
    /// and throughput. Says whether it was a transition of a shown endpoint that the model
    /// accepted (the list's rows take those). Fails with a [`Gap`] if events were skipped; the
    /// caller then fetches everything after [`Live::seq`] again.
    pub fn apply(&mut self, event: &Event, now: f64) -> Result<bool, Gap> {
        if event.seq <= self.seq {
            return Ok(false);
        }
        if event.seq != self.seq + 1 {
            return Err(Gap {
                after: self.seq,
                got: event.seq,
            });
        }
        self.seq = event.seq;
        Ok(match &event.body {
            EventBody::Transition(t) if self.shown(t.endpoint_id) && self.admits(t) => {
                self.transition(event.seq, t, now)
            }
            EventBody::Transition(_) => false,
            // Endpoint changes are the endpoint list's (see `session::endpoints`).
            EventBody::Endpoint(_) => false,
        })
    }

    /// Counts a transition the model accepts; says whether it did.
    fn transition(&mut self, seq: u64, t: &TransitionEvent, now: f64) -> bool {
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
                return false;
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
                        return false;
                    }
                    Err(error) => {
                        self.warn(seq, t.task_id, error.to_string());
                        return false;
                    }
                }
            }
        }
        if t.to.is_terminal() {
            self.finished(t.to, now);
        }
        true
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

    /// Rebuilds the last five minutes of finished tasks from the newest finished tasks' rows: a
    /// finished task's `since` is when it finished. So the throughput chart shows the recent past
    /// right after a load, not only what finished while the page watched; the stream then adds
    /// to it.
    pub fn count_recent_finishes(&mut self, finished: &[TaskRow], now: f64) {
        let current = (now / THROUGHPUT_BUCKET_SECS).floor() as i64;
        let oldest = current - THROUGHPUT_BUCKETS as i64 + 1;
        let mut buckets: std::collections::BTreeMap<i64, (u32, u32)> = Default::default();
        for t in finished.iter().filter(|t| t.state.is_terminal()) {
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

    /// Polling's update: exact counts as of `seq`.
    pub fn refresh(&mut self, seq: u64, counts: StateCounts) {
        self.seq = seq;
        self.counts = counts;
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
        let mut live = Live::new(0, StateCounts::default(), None);
        received_and_dispatched(&mut live, 1, 1);
        assert_eq!(live.counts.get(DispatchedToEp), 1);
        assert_eq!(live.counts.get(Received), 0);
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
        let mut live = Live::new(0, StateCounts::default(), None);
        received_and_dispatched(&mut live, 1, 1);
        live.apply(
            &event(3, 1, Some(DispatchedToEp), Success, Actor::Worker, 1),
            100.0,
        )
        .expect("in order");
        assert_eq!(live.counts.get(Success), 0);
        assert_eq!(live.warnings.len(), 1);
        assert!(
            live.warnings[0].message.contains("no such transition"),
            "{:?}",
            live.warnings
        );
    }

    #[test]
    fn a_skipped_sequence_number_is_a_gap() {
        let mut live = Live::new(10, StateCounts::default(), None);
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
    fn other_endpoints_are_filtered_out() {
        let other = EndpointId::from_u128(8);
        let mut live = Live::new(
            0,
            StateCounts::default(),
            Some([other].into_iter().collect()),
        );
        let shown = live
            .apply(&event(1, 1, None, Received, Actor::WebService, 1), 1.0)
            .expect("in order");
        assert!(!shown, "not for the list either");
        assert_eq!(live.counts.total(), 0);
        assert_eq!(live.seq, 1);
    }

    #[test]
    fn narrowed_to_a_submission_only_its_tasks_count() {
        // Task 1 was known to be the group's; task 2 joins by its first event (group 5, see
        // `event`); task 3's first event names no group here, so it stays out.
        let group = TaskGroupId::from_u128(5);
        let counts: StateCounts = [(Received, 1)].into_iter().collect();
        let mut live = Live::new(0, counts, None).narrowed_to(group, [id(1)].into_iter().collect());
        live.apply(
            &event(1, 1, Some(Received), DispatchedToEp, Actor::Forwarder, 1),
            1.0,
        )
        .expect("in order");
        assert!(
            live.apply(&event(2, 2, None, Received, Actor::WebService, 1), 1.0)
                .expect("in order")
        );
        let mut other = event(3, 3, None, Received, Actor::WebService, 1);
        if let EventBody::Transition(t) = &mut other.body {
            t.task_group_id = Some(TaskGroupId::from_u128(6));
        }
        assert!(!live.apply(&other, 1.0).expect("in order"));
        assert_eq!(
            live.counts.get(DispatchedToEp),
            1,
            "task 1: {:?}",
            live.counts
        );
        assert_eq!(
            live.counts.get(Received),
            1,
            "task 2, not task 3: {:?}",
            live.counts
        );
    }

    #[test]
    fn retries_and_throughput() {
        let mut live = Live::new(0, StateCounts::default(), None);
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
        let mut live = Live::new(0, StateCounts::default(), None);
        live.count_recent_finishes(&rows, now);
        let series = live.throughput(now);
        assert_eq!(series.last(), Some(&(0.0, 1, 1)));
        let total: u32 = series.iter().map(|(_, ok, bad)| ok + bad).sum();
        assert_eq!(total, 3);
        assert_eq!(series[series.len() - 7], (60.0, 1, 0));
    }
}
