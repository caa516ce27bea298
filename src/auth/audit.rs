//! The audit log: every mutating call and every denied call, written in batches off the
//! request path. Secrets never enter it: rows hold names, ids, codes and short messages only.
//!
//! Calls refused before a token was accepted (no token, an unknown, expired or revoked one, or
//! the per-address limit) are not written one by one: anyone can make them, as fast as they like.
//! They are counted per client address and wall-clock minute, and each count is one row (id
//! `anon-<minute>-<address>`, `call_count` the number of calls) that later counts are added to,
//! so an address costs at most one row a minute. The tally in memory is bounded too.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{AuditRow, Store, now_millis};

/// What a handler knows about the target of a call, for the audit row. The auth layer puts an
/// empty note into every request; handlers fill it with [`note`].
#[derive(Debug, Clone, Default)]
pub struct AuditNote(Arc<Mutex<(String, String)>>);

impl AuditNote {
    pub fn get(&self) -> (String, String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Records the cluster and object a call acts on.
pub fn note<T>(request: &tonic::Request<T>, cluster_id: &str, target: &str) {
    if let Some(slot) = request.extensions().get::<AuditNote>() {
        *slot.0.lock().unwrap_or_else(|p| p.into_inner()) =
            (cluster_id.to_string(), target.to_string());
    }
}

enum Message {
    Event(Box<AuditRow>),
    Flush(oneshot::Sender<()>),
}

/// Sends audit rows to a background writer.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Message>,
    anonymous: Arc<Mutex<AnonymousTally>>,
}

/// How often counted anonymous refusals are added to their rows.
const TALLY_WRITE_EVERY: Duration = Duration::from_secs(5);
/// Most (address, minute) counts kept between writes; further addresses are counted together
/// under [`OTHER_ADDRESSES`].
const TALLY_CAPACITY: usize = 10_000;
pub const OTHER_ADDRESSES: &str = "<other addresses>";

/// Refusals of callers without an accepted token, by (minute, address), not yet written.
#[derive(Default)]
struct AnonymousTally {
    counts: HashMap<(i64, String), AuditRow>,
}

impl AnonymousTally {
    fn add(&mut self, address: &str, event: AuditEvent, now: i64) {
        let minute = now.div_euclid(60_000);
        let mut key = (minute, address.to_string());
        if !self.counts.contains_key(&key) && self.counts.len() >= TALLY_CAPACITY {
            key.1 = OTHER_ADDRESSES.to_string();
        }
        if let Some(row) = self.counts.get_mut(&key) {
            row.call_count += 1;
            return;
        }
        let row = AuditRow {
            id: format!("anon-{minute}-{}", key.1),
            time: minute * 60_000,
            token_name: event.token_name,
            method: event.method,
            cluster_id: String::new(),
            target: String::new(),
            result_code: event.result_code,
            request_id: event.request_id,
            peer_address: key.1.clone(),
            message: format!(
                "calls refused before a token was accepted, from this address in this minute \
                 (call_count says how many); the first: {}",
                event.message.chars().take(400).collect::<String>()
            ),
            call_count: 1,
        };
        self.counts.insert(key, row);
    }

    fn take(&mut self) -> Vec<AuditRow> {
        self.counts.drain().map(|(_, row)| row).collect()
    }
}

/// One audit event, before it gets an id and a time.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub token_name: String,
    pub method: String,
    pub cluster_id: String,
    pub target: String,
    pub result_code: String,
    pub request_id: String,
    pub peer_address: String,
    pub message: String,
}

impl AuditLog {
    /// Starts the writer; it stops when every `AuditLog` is dropped, after writing what it has.
    pub fn start(store: Store) -> AuditLog {
        let (sender, receiver) = mpsc::channel(10_000);
        let anonymous = Arc::new(Mutex::new(AnonymousTally::default()));
        tokio::spawn(write_loop(store, receiver, anonymous.clone()));
        AuditLog { sender, anonymous }
    }

    /// Events queued and not yet written, and how many the queue holds (for metrics).
    pub fn queue_depth(&self) -> (usize, usize) {
        let capacity = self.sender.max_capacity();
        (capacity - self.sender.capacity(), capacity)
    }

    /// Counts a call refused before a token was accepted, from `address` (the client's IP
    /// address or network, never its port). `event` describes the call; only the first call of
    /// an address in a minute is kept in detail.
    pub fn count_anonymous(&self, address: &str, event: AuditEvent) {
        self.anonymous
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(address, event, now_millis());
    }

    pub async fn record(&self, event: AuditEvent) {
        let row = AuditRow {
            id: uuid::Uuid::new_v4().simple().to_string(),
            time: now_millis(),
            token_name: event.token_name,
            method: event.method,
            cluster_id: event.cluster_id,
            target: event.target,
            result_code: event.result_code,
            request_id: event.request_id,
            peer_address: event.peer_address,
            message: event.message.chars().take(512).collect(),
            call_count: 1,
        };
        if self
            .sender
            .send(Message::Event(Box::new(row)))
            .await
            .is_err()
        {
            tracing::error!("audit writer is gone; an audit event was lost");
        }
    }

    /// Waits until everything recorded so far is in the database.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(
    store: Store,
    mut receiver: mpsc::Receiver<Message>,
    anonymous: Arc<Mutex<AnonymousTally>>,
) {
    let mut batch: Vec<AuditRow> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut tick = tokio::time::interval(TALLY_WRITE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            message = receiver.recv() => match message {
                Some(message) => message,
                None => break,
            },
            _ = tick.tick() => {
                write_counts(&store, &anonymous).await;
                continue;
            }
        };
        let mut next = Some(first);
        // Gather whatever else is already queued, up to a batch.
        while let Some(message) = next.take() {
            match message {
                Message::Event(row) => batch.push(*row),
                Message::Flush(done) => waiters.push(done),
            }
            if batch.len() >= 500 {
                break;
            }
            next = receiver.try_recv().ok();
        }
        write(&store, &mut batch).await;
        if !waiters.is_empty() {
            write_counts(&store, &anonymous).await;
        }
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
    write(&store, &mut batch).await;
    write_counts(&store, &anonymous).await;
}

/// Adds the counted anonymous refusals to their rows.
async fn write_counts(store: &Store, anonymous: &Mutex<AnonymousTally>) {
    let rows = anonymous.lock().unwrap_or_else(|p| p.into_inner()).take();
    if rows.is_empty() {
        return;
    }
    for attempt in 0..3 {
        match store.add_audit_counts(&rows).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(%err, attempt, "writing audit counts failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        }
    }
    let lost: i64 = rows.iter().map(|r| r.call_count).sum();
    tracing::error!(
        lost,
        "counts of refused anonymous calls could not be written"
    );
}

/// How often old audit rows are deleted.
const RETENTION_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Deletes audit rows older than `keep`, at start and then every hour, until shut down.
pub async fn enforce_retention(store: Store, keep: Duration, shutdown: CancellationToken) {
    let keep_millis = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    loop {
        let cutoff = now_millis().saturating_sub(keep_millis);
        match store.delete_audit_events_before(cutoff).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted audit events past their retention"),
            Err(err) => tracing::warn!(%err, "deleting old audit events failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RETENTION_SWEEP_EVERY) => {}
        }
    }
}

async fn write(store: &Store, batch: &mut Vec<AuditRow>) {
    if batch.is_empty() {
        return;
    }
    for attempt in 0..3 {
        match store.insert_audit_events(batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(err) => {
                tracing::warn!(%err, attempt, "writing the audit log failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        }
    }
    tracing::error!(lost = batch.len(), "audit events could not be written");
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(method: &str) -> AuditEvent {
        AuditEvent {
            method: method.into(),
            result_code: "UNAUTHENTICATED".into(),
            message: "the API token is not valid".into(),
            ..AuditEvent::default()
        }
    }

    #[test]
    fn anonymous_refusals_are_one_row_per_address_and_minute() {
        let mut tally = AnonymousTally::default();
        let minute = 29_000_000 * 60_000;
        for i in 0..1000 {
            tally.add("10.0.0.1", refused("/a"), minute + i);
        }
        tally.add("10.0.0.1", refused("/b"), minute + 60_000);
        tally.add("10.0.0.2", refused("/c"), minute + 59_999);
        let mut rows = tally.take();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        let summary: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.id.as_str(),
                    r.peer_address.as_str(),
                    r.method.as_str(),
                    r.call_count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("anon-29000000-10.0.0.1", "10.0.0.1", "/a", 1000),
                ("anon-29000000-10.0.0.2", "10.0.0.2", "/c", 1),
                ("anon-29000001-10.0.0.1", "10.0.0.1", "/b", 1),
            ]
        );
        assert_eq!(rows[0].time, minute);
        assert!(tally.take().is_empty(), "taking empties the tally");
    }

    #[test]
    fn the_tally_is_bounded() {
        let mut tally = AnonymousTally::default();
        for i in 0..(TALLY_CAPACITY + 5000) {
            tally.add(&format!("addr-{i}"), refused("/a"), 0);
        }
        assert_eq!(tally.counts.len(), TALLY_CAPACITY + 1);
        let rows = tally.take();
        let other = rows
            .iter()
            .find(|r| r.peer_address == OTHER_ADDRESSES)
            .expect("overflow row");
        assert_eq!(other.call_count, 5000);
        assert_eq!(
            rows.iter().map(|r| r.call_count).sum::<i64>(),
            (TALLY_CAPACITY + 5000) as i64
        );
    }
}
