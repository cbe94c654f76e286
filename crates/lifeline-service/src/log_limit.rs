//! A bounded log: at most so many lines per key (an endpoint) per interval, then one summary of
//! what was left out. Whatever an endpoint reports, the service's log stays readable and small;
//! the counters (such as the illegal reports in `/v1/stats`) still count every event.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What to do with one more line for a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it. `suppressed` lines were left out in the interval that just ended: say so first.
    Log { suppressed: u64 },
    /// Leave it out (it is counted for the next summary).
    Suppress,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// Per-key budgets of log lines.
#[derive(Debug)]
pub struct LogLimit<K> {
    per_interval: u32,
    interval: Duration,
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq> LogLimit<K> {
    pub fn new(per_interval: u32, interval: Duration) -> Self {
        Self {
            per_interval,
            interval,
            windows: HashMap::new(),
        }
    }

    /// Decides about one line for `key` at `now`.
    pub fn check(&mut self, key: K, now: Instant) -> Verdict {
        let window = self.windows.entry(key).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        let mut summary = 0;
        if now.duration_since(window.started) >= self.interval {
            summary = std::mem::take(&mut window.suppressed);
            window.started = now;
            window.logged = 0;
        }
        if window.logged < self.per_interval {
            window.logged += 1;
            Verdict::Log {
                suppressed: summary,
            }
        } else {
            window.suppressed += 1 + summary;
            Verdict::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_per_key_and_interval_with_a_summary() {
        let mut limit = LogLimit::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let verdicts: Vec<Verdict> = (0..100_000).map(|_| limit.check("a", t0)).collect();
        let logged = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Log { .. }))
            .count();
        assert_eq!(logged, 3);
        // Another key has its own budget.
        assert_eq!(limit.check("b", t0), Verdict::Log { suppressed: 0 });
        // The next interval starts with the summary of the last one.
        let later = t0 + Duration::from_secs(11);
        assert_eq!(limit.check("a", later), Verdict::Log { suppressed: 99_997 });
        assert_eq!(limit.check("a", later), Verdict::Log { suppressed: 0 });
    }
}
