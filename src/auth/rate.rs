//! Request budgets: a token bucket per key (an API token, or a client address), refilled
//! continuously. The set of keys is bounded: anonymous callers choose their own addresses, so a
//! full table first drops buckets that have refilled completely (forgetting them loses nothing),
//! and when every bucket is still busy, new keys share one overflow bucket instead of growing the
//! table.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// `per_second` requests per second on average, bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// Most keys a limiter tracks one by one.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// The bucket new keys share while the table is full of busy buckets.
const OVERFLOW_KEY: &str = "<overflow>";
/// A full table is swept for idle buckets at most this often, so a flood of new keys does not
/// make every call scan the table.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct RateLimiter {
    limit: Option<RateLimit>,
    capacity: usize,
    buckets: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    map: HashMap<String, Bucket>,
    last_sweep: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, limit: RateLimit) {
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * limit.per_second)
            .min(limit.burst);
        self.at = now;
    }

    fn wait(&self, limit: RateLimit) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / limit.per_second).max(0.001))
    }
}

impl RateLimiter {
    /// `None`: unlimited.
    pub fn new(limit: Option<RateLimit>) -> Self {
        Self::with_capacity(limit, DEFAULT_CAPACITY)
    }

    pub fn with_capacity(limit: Option<RateLimit>, capacity: usize) -> Self {
        RateLimiter {
            limit,
            capacity: capacity.max(1),
            buckets: Mutex::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.limit.is_some()
    }

    /// Takes one request from `key`'s budget, or says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.with_bucket(key, |bucket, limit| {
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                Ok(())
            } else {
                Err(bucket.wait(limit))
            }
        })
    }

    /// Whether `key` has a request left, without taking it.
    pub fn peek(&self, key: &str) -> Result<(), Duration> {
        self.with_bucket(key, |bucket, limit| {
            if bucket.tokens >= 1.0 {
                Ok(())
            } else {
                Err(bucket.wait(limit))
            }
        })
    }

    /// Takes one request from `key`'s budget, whether or not one was left.
    pub fn charge(&self, key: &str) {
        let _ = self.with_bucket(key, |bucket, _| {
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            Ok(())
        });
    }

    /// How many keys are tracked one by one (tests check the bound).
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    fn with_bucket(
        &self,
        key: &str,
        act: impl FnOnce(&mut Bucket, RateLimit) -> Result<(), Duration>,
    ) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = key;
        if !buckets.map.contains_key(key) && buckets.map.len() >= self.capacity {
            buckets.sweep(now, limit);
            if buckets.map.len() >= self.capacity {
                key = OVERFLOW_KEY;
            }
        }
        let bucket = buckets.map.entry(key.to_string()).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        bucket.refill(now, limit);
        act(bucket, limit)
    }
}

impl Buckets {
    /// Drops buckets that have refilled completely: a fresh bucket is the same.
    fn sweep(&mut self, now: Instant, limit: RateLimit) {
        if self
            .last_sweep
            .is_some_and(|at| now.duration_since(at) < SWEEP_EVERY)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.map.retain(|_, bucket| {
            bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * limit.per_second
                < limit.burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new(Some(RateLimit {
            per_second: 10.0,
            burst: 3.0,
        }));
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(limiter.check("b").is_ok(), "budgets are per token");
        assert!(RateLimiter::new(None).check("a").is_ok());
    }

    #[test]
    fn peek_does_not_spend_and_charge_does() {
        let limiter = RateLimiter::new(Some(RateLimit {
            per_second: 0.001,
            burst: 2.0,
        }));
        for _ in 0..10 {
            assert!(limiter.peek("p").is_ok());
        }
        limiter.charge("p");
        assert!(limiter.peek("p").is_ok());
        limiter.charge("p");
        assert!(limiter.peek("p").is_err());
        limiter.charge("p");
        assert!(limiter.peek("p").is_err());
        assert!(limiter.peek("q").is_ok(), "another key has its own budget");
    }

    #[test]
    fn the_table_stays_bounded_and_busy_keys_keep_their_state() {
        let limiter = RateLimiter::with_capacity(
            Some(RateLimit {
                per_second: 0.001,
                burst: 1.0,
            }),
            100,
        );
        limiter.charge("attacker");
        // A flood of fresh keys, each spending its budget.
        for i in 0..10_000 {
            limiter.charge(&format!("10.0.{}.{}", i / 256, i % 256));
        }
        assert!(limiter.tracked() <= 101, "{} tracked", limiter.tracked());
        assert!(
            limiter.peek("attacker").is_err(),
            "a busy key is not forgotten by the flood"
        );
        assert!(
            limiter.peek("never-seen").is_err(),
            "while the table is full of busy keys, new keys share the spent overflow bucket"
        );
    }

    #[test]
    fn idle_buckets_make_room() {
        let limiter = RateLimiter::with_capacity(
            Some(RateLimit {
                per_second: 1000.0,
                burst: 1.0,
            }),
            10,
        );
        for i in 0..10 {
            limiter.charge(&format!("k{i}"));
        }
        std::thread::sleep(Duration::from_millis(20));
        // All ten have refilled, so a new key gets a bucket of its own.
        limiter.charge("new");
        assert!(limiter.tracked() <= 10);
        let buckets = limiter.buckets.lock().unwrap();
        assert!(buckets.map.contains_key("new"));
        assert!(!buckets.map.contains_key(OVERFLOW_KEY));
    }
}
