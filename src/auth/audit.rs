//! The audit log: every mutating call and every denied call, written in batches off the
//! request path. Secrets never enter it: rows hold names, ids, codes and short messages only.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

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
        tokio::spawn(write_loop(store, receiver));
        AuditLog { sender }
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

async fn write_loop(store: Store, mut receiver: mpsc::Receiver<Message>) {
    let mut batch: Vec<AuditRow> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let first = match receiver.recv().await {
            Some(message) => message,
            None => break,
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
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
    write(&store, &mut batch).await;
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
