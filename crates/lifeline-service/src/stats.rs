//! Statistics per endpoint and owner, kept up to date transition by transition so that reading
//! them costs the same with ten tasks or ten million: tasks per state, transitions per edge and how
//! long tasks stay in each state. A user's figures are the sum over the pairs they may see.

use std::collections::HashMap;

use lifeline_model::{EndpointId, State, StateCounts};

use crate::users::UserId;
use serde::{Deserialize, Serialize};

/// Buckets per doubling of the dwell-time histogram: a bucket spans about 19 %.
const BUCKETS_PER_DOUBLING: f64 = 4.0;
/// Enough buckets for 2^40 µs, about twelve days; longer stays land in the last one.
const BUCKETS: usize = 161;

/// A log-scale histogram of durations in microseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_micros: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max_micros: 0,
        }
    }
}

impl Histogram {
    fn bucket(micros: u64) -> usize {
        if micros <= 1 {
            return 0;
        }
        let i = ((micros as f64).log2() * BUCKETS_PER_DOUBLING).ceil() as usize;
        i.min(BUCKETS - 1)
    }

    /// The upper bound of bucket `i`, in microseconds.
    fn upper(i: usize) -> f64 {
        (i as f64 / BUCKETS_PER_DOUBLING).exp2()
    }

    pub fn record(&mut self, micros: u64) {
        self.counts[Self::bucket(micros)] += 1;
        self.total += 1;
        self.max_micros = self.max_micros.max(micros);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The nonzero buckets as (bucket, count): the compact form checkpoints keep.
    pub fn sparse(&self) -> Vec<(u16, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i as u16, *n))
            .collect()
    }

    /// A histogram from [`Histogram::sparse`]'s buckets and the largest duration; buckets out of
    /// range are ignored.
    pub fn from_sparse(buckets: &[(u16, u64)], max_micros: u64) -> Self {
        let mut h = Histogram::default();
        for &(i, n) in buckets {
            if let Some(c) = h.counts.get_mut(usize::from(i)) {
                *c += n;
                h.total += n;
            }
        }
        h.max_micros = max_micros;
        h
    }

    pub fn max_micros(&self) -> u64 {
        self.max_micros
    }

    /// What was recorded after `earlier`, a snapshot of the same histogram taken before. The
    /// largest duration is bounded by the top nonzero bucket's upper bound.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut h = Histogram::default();
        for (i, (now, then)) in self.counts.iter().zip(&earlier.counts).enumerate() {
            let n = now.saturating_sub(*then);
            h.counts[i] = n;
            h.total += n;
            if n > 0 {
                h.max_micros = (Self::upper(i) as u64).min(self.max_micros);
            }
        }
        h
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    /// The `q`-quantile (0..=1) in seconds, to within a bucket's width; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let micros = Self::upper(i).min(self.max_micros as f64);
                return Some(micros / 1e6);
            }
        }
        Some(self.max_micros as f64 / 1e6)
    }
}

/// One endpoint's statistics (or, merged, several endpoints').
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub tasks: StateCounts,
    /// `edges[from][to]`: how many transitions took that edge.
    pub edges: [[u64; State::COUNT]; State::COUNT],
    /// Time spent in each state, recorded when the task leaves it.
    pub dwell: Vec<Histogram>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            tasks: StateCounts::default(),
            edges: [[0; State::COUNT]; State::COUNT],
            dwell: vec![Histogram::default(); State::COUNT],
        }
    }
}

impl Stats {
    pub fn merge(&mut self, other: &Stats) {
        self.tasks.merge(&other.tasks);
        for (row, other_row) in self.edges.iter_mut().zip(&other.edges) {
            for (a, b) in row.iter_mut().zip(other_row) {
                *a += b;
            }
        }
        for (a, b) in self.dwell.iter_mut().zip(&other.dwell) {
            a.merge(b);
        }
    }
}

/// The statistics of every endpoint, per owner of its tasks.
#[derive(Clone, Debug, Default)]
pub struct StatsBook {
    by_key: HashMap<(EndpointId, UserId), Stats>,
}

impl StatsBook {
    pub fn from_parts(parts: impl IntoIterator<Item = ((EndpointId, UserId), Stats)>) -> Self {
        Self {
            by_key: parts.into_iter().collect(),
        }
    }

    fn entry(&mut self, key: (EndpointId, UserId)) -> &mut Stats {
        self.by_key.entry(key).or_default()
    }

    /// A task entered the system in `received`.
    pub fn received(&mut self, key: (EndpointId, UserId)) {
        self.entry(key).tasks.add(State::Received, 1);
    }

    /// A task left `from` for `to` after `dwell_micros` there.
    pub fn moved(&mut self, key: (EndpointId, UserId), from: State, to: State, dwell_micros: u64) {
        self.shifted(key, from, to);
        self.entry(key).dwell[from.index()].record(dwell_micros);
    }

    /// A task left `from` for `to`, after a stay nobody recorded (a log written before stays
    /// were).
    pub fn shifted(&mut self, key: (EndpointId, UserId), from: State, to: State) {
        let s = self.entry(key);
        s.tasks.shift(from, to);
        s.edges[from.index()][to.index()] += 1;
    }

    /// Every (endpoint, owner) pair and its statistics.
    pub fn iter(&self) -> impl Iterator<Item = (&(EndpointId, UserId), &Stats)> {
        self.by_key.iter()
    }

    /// The counts now, with the edges and stays recorded since `earlier` (a snapshot of this
    /// book taken before): the figures of a window.
    pub fn since(&self, earlier: &StatsBook) -> StatsBook {
        let by_key = self
            .by_key
            .iter()
            .map(|(key, now)| {
                let then = earlier.by_key.get(key);
                let mut s = Stats {
                    tasks: now.tasks,
                    ..Stats::default()
                };
                for (f, row) in now.edges.iter().enumerate() {
                    for (t, n) in row.iter().enumerate() {
                        s.edges[f][t] = n - then.map_or(0, |e| e.edges[f][t]).min(*n);
                    }
                }
                s.dwell = match then {
                    Some(then) => now
                        .dwell
                        .iter()
                        .zip(&then.dwell)
                        .map(|(a, b)| a.since(b))
                        .collect(),
                    None => now.dwell.clone(),
                };
                (*key, s)
            })
            .collect();
        StatsBook { by_key }
    }

    pub fn get(&self, key: (EndpointId, UserId)) -> Option<&Stats> {
        self.by_key.get(&key)
    }

    /// The statistics of the pairs `keep` accepts, together.
    pub fn sum(&self, keep: impl Fn(EndpointId, UserId) -> bool) -> Stats {
        let mut total = Stats::default();
        for ((endpoint, owner), s) in &self.by_key {
            if keep(*endpoint, *owner) {
                total.merge(s);
            }
        }
        total
    }

    /// The tasks of one endpoint by state, over every owner.
    pub fn counts_of(&self, endpoint: EndpointId) -> StateCounts {
        let mut counts = StateCounts::default();
        for ((e, _), s) in &self.by_key {
            if *e == endpoint {
                counts.merge(&s.tasks);
            }
        }
        counts
    }

    /// Tasks of `owner` not finished yet, over every endpoint.
    pub fn pending_of(&self, owner: UserId) -> u64 {
        self.by_key
            .iter()
            .filter(|((_, o), _)| *o == owner)
            .map(|(_, s)| s.tasks.pending())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = Histogram::default();
        for micros in 1..=1000u64 {
            h.record(micros * 1000);
        }
        let p50 = h.quantile(0.5).expect("not empty");
        assert!((0.5..0.5 * 1.19).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), Some(1.0));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn a_window_is_the_difference_of_two_snapshots() {
        let ep = EndpointId::from_u128(1);
        let key = (ep, UserId(1));
        let mut book = StatsBook::default();
        book.received(key);
        book.moved(key, State::Received, State::WaitingForEp, 1_000);
        let before = book.clone();
        book.received(key);
        book.moved(key, State::Received, State::WaitingForEp, 4_000_000);
        let window = book.since(&before);
        let s = window.sum(|_, _| true);
        assert_eq!(
            s.tasks.get(State::WaitingForEp),
            2,
            "counts are the present's"
        );
        assert_eq!(
            s.edges[State::Received.index()][State::WaitingForEp.index()],
            1
        );
        let dwell = &s.dwell[State::Received.index()];
        assert_eq!(dwell.count(), 1);
        assert!(
            dwell.quantile(0.5).is_some_and(|p| (4.0..4.8).contains(&p)),
            "{dwell:?}"
        );
        let h = &book.sum(|_, _| true).dwell[State::Received.index()];
        assert_eq!(&Histogram::from_sparse(&h.sparse(), h.max_micros()), h);
    }

    #[test]
    fn moves_shift_counts_and_count_edges() {
        let ep = EndpointId::from_u128(1);
        let (alice, bob) = (UserId(2), UserId(3));
        let mut book = StatsBook::default();
        book.received((ep, alice));
        book.moved((ep, alice), State::Received, State::WaitingForEp, 5);
        book.received((ep, bob));
        assert_eq!(book.pending_of(alice), 1);
        assert_eq!(
            book.sum(|_, owner| owner == bob).tasks.get(State::Received),
            1
        );
        let s = book.sum(|_, owner| owner == alice);
        assert_eq!(s.tasks.get(State::Received), 0);
        assert_eq!(s.tasks.get(State::WaitingForEp), 1);
        assert_eq!(
            s.edges[State::Received.index()][State::WaitingForEp.index()],
            1
        );
    }
}
