//! The operation worker's heartbeat, read by the health checks: whether its claim loops still
//! run and when one last made progress.
//!
//! A claim loop beats on every turn (claimed, idle or failed to claim: a database error is the
//! database's health, not the worker's) and the lease renewal beats while a claimed operation
//! runs, so a step that waits minutes on a vendor is not a stall. A loop that ends (panic or
//! stop) drops its [`LoopGuard`], which counts it out: unwinding runs `Drop`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// What the health checks see of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerHealth {
    /// At least one loop runs and one beat within the stall limit.
    Alive,
    /// Loops run but none beat for longer than the stall limit (a hung call).
    Stalled,
    /// Every loop it started has ended (or none was started): no operation advances here.
    Stopped,
}

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct WorkerPulse {
    inner: Arc<Inner>,
}

struct Inner {
    /// Beats are milliseconds since this instant (monotonic: a clock step is not a stall).
    origin: Instant,
    last_beat_ms: AtomicI64,
    running: AtomicUsize,
}

impl Default for WorkerPulse {
    fn default() -> Self {
        WorkerPulse {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                last_beat_ms: AtomicI64::new(0),
                running: AtomicUsize::new(0),
            }),
        }
    }
}

/// Counts one claim loop as running until dropped.
pub struct LoopGuard {
    pulse: WorkerPulse,
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        self.pulse.inner.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WorkerPulse {
    /// Called by a claim loop when it starts; hold the guard for the loop's life.
    pub fn enter_loop(&self) -> LoopGuard {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        self.beat();
        LoopGuard {
            pulse: self.clone(),
        }
    }

    /// Records progress now.
    pub fn beat(&self) {
        let now = self.elapsed_ms();
        self.inner.last_beat_ms.fetch_max(now, Ordering::AcqRel);
    }

    /// Claim loops running now.
    pub fn running_loops(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// The worker's state, a loop counting as stalled after `stall_after` without a beat.
    pub fn health(&self, stall_after: Duration) -> WorkerHealth {
        if self.running_loops() == 0 {
            return WorkerHealth::Stopped;
        }
        let silent_ms = self.elapsed_ms() - self.inner.last_beat_ms.load(Ordering::Acquire);
        if silent_ms > stall_after.as_millis() as i64 {
            WorkerHealth::Stalled
        } else {
            WorkerHealth::Alive
        }
    }

    fn elapsed_ms(&self) -> i64 {
        self.inner.origin.elapsed().as_millis() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_loop_started_is_stopped() {
        assert_eq!(
            WorkerPulse::default().health(Duration::from_secs(1)),
            WorkerHealth::Stopped
        );
    }

    #[tokio::test]
    async fn a_panicking_loop_is_counted_out() {
        let pulse = WorkerPulse::default();
        let steady = pulse.enter_loop();
        let panicking = {
            let pulse = pulse.clone();
            tokio::spawn(async move {
                let _guard = pulse.enter_loop();
                panic!("a bug in a step");
            })
        };
        assert!(panicking.await.is_err(), "the task panicked");
        assert_eq!(pulse.running_loops(), 1);
        assert_eq!(pulse.health(Duration::from_secs(60)), WorkerHealth::Alive);
        drop(steady);
        assert_eq!(pulse.health(Duration::from_secs(60)), WorkerHealth::Stopped);
    }

    #[test]
    fn silence_longer_than_the_limit_is_a_stall_and_a_beat_ends_it() {
        let pulse = WorkerPulse::default();
        let _guard = pulse.enter_loop();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            pulse.health(Duration::from_millis(10)),
            WorkerHealth::Stalled
        );
        assert_eq!(pulse.health(Duration::from_secs(10)), WorkerHealth::Alive);
        pulse.beat();
        assert_eq!(pulse.health(Duration::from_millis(10)), WorkerHealth::Alive);
    }
}
