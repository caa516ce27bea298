//! The agent's counters as a small JSON file, so a test (or an operator) can read from outside
//! how many requests went through the agent.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::kube::tunnel::forward::ForwardCounters;

/// Rewrites `path` (through a temporary file and a rename) whenever a counter changed, every
/// 100 ms at most.
pub async fn write_periodically(
    path: PathBuf,
    counters: Arc<ForwardCounters>,
    sessions: Arc<AtomicU64>,
) {
    let mut last = None;
    let tmp = path.with_extension("tmp");
    loop {
        let now = (
            counters.requests.load(Ordering::Relaxed),
            counters.response_bytes.load(Ordering::Relaxed),
            sessions.load(Ordering::Relaxed),
        );
        if last != Some(now) {
            let json = serde_json::json!({
                "forwarded_requests": now.0,
                "response_bytes": now.1,
                "sessions": now.2,
            });
            let written = tokio::fs::write(&tmp, json.to_string()).await.is_ok()
                && tokio::fs::rename(&tmp, &path).await.is_ok();
            if written {
                last = Some(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
