//! Per-stream send credit: a sender takes what it may send and waits when nothing is left.

use std::sync::Mutex;

use tokio::sync::Notify;

/// Bytes a sender may still send on one stream.
pub struct Window {
    state: Mutex<WindowState>,
    changed: Notify,
}

struct WindowState {
    available: u64,
    closed: bool,
}

impl Window {
    pub fn new(initial: u32) -> Window {
        Window {
            state: Mutex::new(WindowState {
                available: u64::from(initial),
                closed: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The receiver consumed `bytes` more.
    pub fn grant(&self, bytes: u32) {
        self.lock().available += u64::from(bytes);
        self.changed.notify_waiters();
    }

    /// Wakes every waiter for good: the stream is gone.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_waiters();
    }

    /// Takes up to `max` bytes of credit, waiting while there is none; `None` once closed.
    pub async fn take(&self, max: usize) -> Option<usize> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so a grant between the look and the wait is not lost.
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed {
                    return None;
                }
                if state.available > 0 {
                    let n = state.available.min(max as u64);
                    state.available -= n;
                    return Some(n as usize);
                }
            }
            notified.await;
        }
    }
}
