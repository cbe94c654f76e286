//! Per-user quotas: how many of a user's tasks may wait unfinished, and how many submissions a
//! user may make per second (a token bucket that holds one second's worth). Over either, the
//! service answers `429` with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::users::UserId;

/// Unfinished tasks a user may have when admin set no other limit.
pub const DEFAULT_MAX_QUEUED: u64 = 1_000_000;
/// Submissions per second a user may make when admin set no other limit.
pub const DEFAULT_MAX_SUBMITS_PER_SEC: f64 = 1000.0;

/// A user's limits.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Limits {
    pub max_queued: u64,
    pub max_submits_per_sec: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_queued: DEFAULT_MAX_QUEUED,
            max_submits_per_sec: DEFAULT_MAX_SUBMITS_PER_SEC,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every user's limits and submission bucket. A std mutex: held for arithmetic only.
#[derive(Debug, Default)]
pub struct Quotas {
    limits: Mutex<HashMap<UserId, Limits>>,
    buckets: Mutex<HashMap<UserId, Bucket>>,
}

impl Quotas {
    pub fn set(&self, user: UserId, limits: Limits) {
        self.limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user, limits);
    }

    pub fn limits(&self, user: UserId) -> Limits {
        self.limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
            .copied()
            .unwrap_or_default()
    }

    /// Takes one submission from the user's bucket; `Err(seconds)` to wait when it is empty.
    pub fn take_submission(&self, user: UserId, now: Instant) -> Result<(), f64> {
        let rate = self.limits(user).max_submits_per_sec.max(0.001);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(user).or_insert(Bucket {
            tokens: rate.max(1.0),
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate.max(1.0));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - bucket.tokens) / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_holds_a_second_and_refills_at_the_rate() {
        let q = Quotas::default();
        let ada = UserId(2);
        q.set(
            ada,
            Limits {
                max_queued: 10,
                max_submits_per_sec: 2.0,
            },
        );
        let t0 = Instant::now();
        assert!(q.take_submission(ada, t0).is_ok());
        assert!(q.take_submission(ada, t0).is_ok());
        let wait = q.take_submission(ada, t0).expect_err("empty");
        assert!((0.4..=0.5).contains(&wait), "{wait}");
        assert!(
            q.take_submission(ada, t0 + Duration::from_millis(500))
                .is_ok()
        );
        assert_eq!(q.limits(UserId(3)), Limits::default());
    }
}
