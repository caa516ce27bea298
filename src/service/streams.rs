//! What every long stream shares: a cap on the streams one token holds open, an end (with
//! UNAUTHENTICATED) soon after the token is revoked or expires, and bounds measured in bytes
//! (batches and buffers) so that a stream's memory does not grow with what it carries.
//!
//! Flotilla's own work ([`Scope::is_server`]) is never capped and never revoked.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{FutureExt, Stream, StreamExt, future::BoxFuture};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::service::{Error, Result, access::Scope};

/// How often a token with open streams is checked again. With the check itself this keeps the
/// end of a revoked token's streams well within 5 s.
pub const TOKEN_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Whether a token may still be used.
pub trait TokenCheck: Send + Sync {
    /// `Ok(Some(why))`: revoked, expired or deleted, with a message for the caller.
    /// `Err`: it could not be told (the database is away); streams go on.
    fn still_valid<'a>(&'a self, token_id: &'a str) -> BoxFuture<'a, Result<Option<String>>>;
}

impl TokenCheck for crate::auth::tokens::Tokens {
    fn still_valid<'a>(&'a self, token_id: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        async move {
            use crate::auth::tokens::AuthError;
            match self.check_active(token_id).await {
                Ok(()) => Ok(None),
                Err(AuthError::Unavailable(why)) => Err(Error::Unavailable {
                    reason: "TOKENS_UNAVAILABLE",
                    message: why,
                    retry_after: None,
                }),
                Err(other) => Ok(Some(other.to_string())),
            }
        }
        .boxed()
    }
}

/// Per-token caps. 0 means no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Open streams of every kind (`max_streams_per_token`).
    pub streams_per_token: usize,
    /// Open WatchEvents streams (`max_event_watches_per_token`); each may hold an upstream watch.
    pub event_watches_per_token: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            streams_per_token: 32,
            event_watches_per_token: 8,
        }
    }
}

/// What a stream is, for the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Logs,
    Events,
    Operation,
}

#[derive(Default)]
struct TokenStreams {
    open: usize,
    events: usize,
    /// Cancelled when the token stops being valid; `revoked_because` says why.
    revoked: CancellationToken,
    revoked_because: Arc<Mutex<String>>,
    /// Stops the token's checker when its last stream closes.
    stop_checking: CancellationToken,
}

/// Every caller's open streams.
pub struct StreamSessions {
    limits: StreamLimits,
    tokens: Arc<dyn TokenCheck>,
    check_every: Duration,
    open: Mutex<HashMap<String, TokenStreams>>,
}

/// One open stream. While it lives it counts against its token's caps.
pub struct StreamPermit {
    sessions: Option<Arc<StreamSessions>>,
    token_id: String,
    kind: StreamKind,
    revoked: CancellationToken,
    revoked_because: Arc<Mutex<String>>,
}

impl StreamSessions {
    pub fn new(limits: StreamLimits, tokens: Arc<dyn TokenCheck>) -> Arc<StreamSessions> {
        Self::with_check_interval(limits, tokens, TOKEN_CHECK_EVERY)
    }

    pub fn with_check_interval(
        limits: StreamLimits,
        tokens: Arc<dyn TokenCheck>,
        check_every: Duration,
    ) -> Arc<StreamSessions> {
        Arc::new(StreamSessions {
            limits,
            tokens,
            check_every,
            open: Mutex::default(),
        })
    }

    /// Counts a new stream for the caller, or refuses it with RESOURCE_EXHAUSTED naming the cap.
    pub fn open(self: &Arc<Self>, scope: &Scope, kind: StreamKind) -> Result<StreamPermit> {
        if scope.is_server() {
            return Ok(StreamPermit {
                sessions: None,
                token_id: String::new(),
                kind,
                revoked: CancellationToken::new(),
                revoked_because: Arc::default(),
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let first = !open.contains_key(&scope.token_id);
        let entry = open.entry(scope.token_id.clone()).or_default();
        if entry.revoked.is_cancelled() {
            let why = entry
                .revoked_because
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(Error::Unauthenticated(why));
        }
        let limits = self.limits;
        if limits.streams_per_token > 0 && entry.open >= limits.streams_per_token {
            return Err(Error::ResourceExhausted {
                reason: "TOO_MANY_STREAMS",
                message: format!(
                    "token {:?} already has {} streams open, the most max_streams_per_token \
                     ({}) allows; close one first",
                    scope.name, entry.open, limits.streams_per_token
                ),
            });
        }
        if kind == StreamKind::Events
            && limits.event_watches_per_token > 0
            && entry.events >= limits.event_watches_per_token
        {
            return Err(Error::ResourceExhausted {
                reason: "TOO_MANY_EVENT_WATCHES",
                message: format!(
                    "token {:?} already has {} WatchEvents streams open, the most \
                     max_event_watches_per_token ({}) allows; close one first",
                    scope.name, entry.events, limits.event_watches_per_token
                ),
            });
        }
        entry.open += 1;
        if kind == StreamKind::Events {
            entry.events += 1;
        }
        let permit = StreamPermit {
            sessions: Some(self.clone()),
            token_id: scope.token_id.clone(),
            kind,
            // A child per stream: each stream waits on its own token (no lock shared by all of
            // a caller's streams on every message), and revoking the caller's ends them all.
            revoked: entry.revoked.child_token(),
            revoked_because: entry.revoked_because.clone(),
        };
        if first {
            tokio::spawn(check_token(
                self.tokens.clone(),
                scope.token_id.clone(),
                self.check_every,
                entry.revoked.clone(),
                entry.revoked_because.clone(),
                entry.stop_checking.clone(),
            ));
        }
        Ok(permit)
    }

    /// Streams open now for a token (for tests and metrics).
    pub fn open_for(&self, token_id: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(token_id).map_or(0, |t| t.open)
    }

    fn close(&self, token_id: &str, kind: StreamKind) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = open.get_mut(token_id) {
            entry.open = entry.open.saturating_sub(1);
            if kind == StreamKind::Events {
                entry.events = entry.events.saturating_sub(1);
            }
            if entry.open == 0 {
                entry.stop_checking.cancel();
                open.remove(token_id);
            }
        }
    }
}

/// One checker per token with open streams, however many streams it has.
async fn check_token(
    tokens: Arc<dyn TokenCheck>,
    token_id: String,
    every: Duration,
    revoked: CancellationToken,
    because: Arc<Mutex<String>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match tokens.still_valid(&token_id).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                *because.lock().unwrap_or_else(|p| p.into_inner()) = why;
                revoked.cancel();
                return;
            }
            // A database blip must not cut every stream; the next check decides.
            Err(err) => tracing::debug!(%err, "token check failed; streams go on"),
        }
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Some(sessions) = self.sessions.take() {
            sessions.close(&self.token_id, self.kind);
        }
    }
}

impl StreamPermit {
    /// Resolves once the token is no longer valid (never for the server's own streams).
    pub async fn revoked(&self) -> Error {
        self.revoked.cancelled().await;
        let why = self
            .revoked_because
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Error::Unauthenticated(format!("{why}; the stream was closed"))
    }

    /// `stream`, holding this permit while it runs, ended with UNAUTHENTICATED once the
    /// token stops being valid (dropping `stream`, and so its upstream request, at once).
    pub fn guard<T: Send + 'static>(
        self,
        stream: impl Stream<Item = Result<T>> + Send + 'static,
    ) -> impl Stream<Item = Result<T>> + Send + 'static {
        async_stream::stream! {
            let permit = self;
            futures::pin_mut!(stream);
            // One wait for the whole stream, not a new one (registered and dropped) per message.
            let revoked = permit.revoked();
            futures::pin_mut!(revoked);
            loop {
                let next = tokio::select! {
                    biased;
                    err = &mut revoked => {
                        yield Err(err);
                        return;
                    }
                    next = stream.next() => next,
                };
                match next {
                    Some(item) => yield item,
                    None => return,
                }
            }
        }
    }
}

/// Most bytes of log content in one message (the gRPC default limit is 4 MiB; browsers and
/// proxies like smaller ones).
pub const BATCH_BYTES: usize = 1024 * 1024;

/// Batches of whatever is ready now: at most `max_items` and, unless one item alone is larger,
/// at most `max_bytes` as measured by `size`. Waits only for the first item of a batch.
pub fn ready_batches<T, S>(
    stream: S,
    max_items: usize,
    max_bytes: usize,
    size: fn(&T) -> usize,
) -> impl Stream<Item = Vec<T>> + Send
where
    T: Send,
    S: Stream<Item = T> + Send,
{
    async_stream::stream! {
        futures::pin_mut!(stream);
        let mut held: Option<T> = None;
        let mut ended = false;
        while !ended {
            let first = match held.take() {
                Some(item) => item,
                None => match stream.next().await {
                    Some(item) => item,
                    None => break,
                },
            };
            let mut bytes = size(&first);
            let mut batch = vec![first];
            while batch.len() < max_items {
                match stream.next().now_or_never() {
                    Some(Some(item)) => {
                        let more = size(&item);
                        if bytes + more > max_bytes {
                            held = Some(item);
                            break;
                        }
                        bytes += more;
                        batch.push(item);
                    }
                    Some(None) => {
                        ended = true;
                        break;
                    }
                    None => break,
                }
            }
            yield batch;
        }
        if let Some(item) = held {
            yield vec![item];
        }
    }
}

/// A channel bounded by the bytes it holds (and, loosely, by count): a sender waits while
/// the items queued add up to `budget` bytes.
pub fn byte_channel<T>(budget: usize, size: fn(&T) -> usize) -> (ByteSender<T>, ByteReceiver<T>) {
    let (sender, receiver) = mpsc::channel(4096);
    let budget = budget.clamp(1, u32::MAX as usize);
    let bytes = Arc::new(Semaphore::new(budget));
    (
        ByteSender {
            sender,
            bytes,
            budget,
            size,
        },
        ByteReceiver { receiver },
    )
}

pub struct ByteSender<T> {
    sender: mpsc::Sender<(T, OwnedSemaphorePermit)>,
    bytes: Arc<Semaphore>,
    budget: usize,
    size: fn(&T) -> usize,
}

impl<T> Clone for ByteSender<T> {
    fn clone(&self) -> Self {
        ByteSender {
            sender: self.sender.clone(),
            bytes: self.bytes.clone(),
            budget: self.budget,
            size: self.size,
        }
    }
}

/// The receiver went away.
#[derive(Debug)]
pub struct Closed;

impl<T> ByteSender<T> {
    /// Waits for room, then queues `item`.
    pub async fn send(&self, item: T) -> std::result::Result<(), Closed> {
        // One item larger than the whole budget still goes, alone.
        let cost = (self.size)(&item).clamp(1, self.budget) as u32;
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| Closed)?;
        self.sender.send((item, permit)).await.map_err(|_| Closed)
    }

    /// Queues `item` only if there is room now.
    pub fn try_send(&self, item: T) -> std::result::Result<(), Closed> {
        let cost = (self.size)(&item).clamp(1, self.budget) as u32;
        let permit = self
            .bytes
            .clone()
            .try_acquire_many_owned(cost)
            .map_err(|_| Closed)?;
        self.sender.try_send((item, permit)).map_err(|_| Closed)
    }
}

pub struct ByteReceiver<T> {
    receiver: mpsc::Receiver<(T, OwnedSemaphorePermit)>,
}

impl<T: Send + 'static> ByteReceiver<T> {
    /// The items; each frees its bytes as it is taken.
    pub fn into_stream(self) -> impl Stream<Item = T> + Send {
        tokio_stream::wrappers::ReceiverStream::new(self.receiver).map(|(item, _bytes)| item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;

    struct FixedTokens(Mutex<Option<String>>);

    impl TokenCheck for FixedTokens {
        fn still_valid<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
            let answer = self.0.lock().unwrap().clone();
            async move { Ok(answer) }.boxed()
        }
    }

    fn caller(token: &str) -> Scope {
        Principal {
            token_id: token.into(),
            ..Principal::unrestricted(token)
        }
    }

    #[tokio::test]
    async fn caps_count_per_token_and_free_on_drop() {
        let tokens = Arc::new(FixedTokens(Mutex::new(None)));
        let limits = StreamLimits {
            streams_per_token: 3,
            event_watches_per_token: 1,
        };
        let sessions = StreamSessions::new(limits, tokens);
        let a = caller("tok-a");
        let one = sessions.open(&a, StreamKind::Logs).expect("1");
        let events = sessions.open(&a, StreamKind::Events).expect("2");
        let err = sessions
            .open(&a, StreamKind::Events)
            .err()
            .expect("events cap");
        assert!(
            matches!(&err, Error::ResourceExhausted { message, .. } if message.contains("max_event_watches_per_token (1)")),
            "{err:?}"
        );
        let _three = sessions.open(&a, StreamKind::Operation).expect("3");
        let err = sessions.open(&a, StreamKind::Logs).err().expect("cap");
        assert!(
            matches!(&err, Error::ResourceExhausted { message, .. } if message.contains("max_streams_per_token (3)")),
            "{err:?}"
        );
        // Another token is not affected; the server never is.
        let _b = sessions
            .open(&caller("tok-b"), StreamKind::Logs)
            .expect("b");
        for _ in 0..10 {
            std::mem::forget(
                sessions
                    .open(&Principal::server(), StreamKind::Logs)
                    .expect("server"),
            );
        }
        drop(one);
        drop(events);
        assert_eq!(sessions.open_for("tok-a"), 1);
        let _again = sessions.open(&a, StreamKind::Events).expect("room again");
    }

    #[tokio::test]
    async fn a_revoked_token_ends_its_streams() {
        let tokens = Arc::new(FixedTokens(Mutex::new(None)));
        let sessions = StreamSessions::with_check_interval(
            StreamLimits::default(),
            tokens.clone(),
            Duration::from_millis(20),
        );
        let permit = sessions
            .open(&caller("tok-a"), StreamKind::Logs)
            .expect("open");
        let endless = futures::stream::pending::<Result<u32>>();
        let guarded = permit.guard(endless);
        futures::pin_mut!(guarded);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), guarded.next())
                .await
                .is_err(),
            "a valid token's stream goes on"
        );
        *tokens.0.lock().unwrap() = Some("the API token \"a\" has been revoked".into());
        let ended = tokio::time::timeout(Duration::from_secs(2), guarded.next())
            .await
            .expect("ends in time");
        assert!(
            matches!(&ended, Some(Err(Error::Unauthenticated(m))) if m.contains("revoked")),
            "{ended:?}"
        );
        assert!(guarded.next().await.is_none());
        assert_eq!(
            sessions.open_for("tok-a"),
            0,
            "the permit went with the stream"
        );
    }

    #[tokio::test]
    async fn batches_are_bounded_by_count_and_bytes() {
        let items: Vec<Vec<u8>> = (0..10).map(|_| vec![0u8; 400]).collect();
        let batches: Vec<Vec<Vec<u8>>> =
            ready_batches(futures::stream::iter(items), 4, 1000, |v: &Vec<u8>| v.len())
                .collect()
                .await;
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 2, 2, 2], "two of 400 bytes fit in 1000");
        let small: Vec<u8> = (0..10).collect();
        let batches: Vec<Vec<u8>> = ready_batches(futures::stream::iter(small), 4, 1000, |_| 1)
            .collect()
            .await;
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let big = vec![vec![0u8; 5000], vec![0u8; 1]];
        let batches: Vec<Vec<Vec<u8>>> =
            ready_batches(futures::stream::iter(big), 4, 1000, |v: &Vec<u8>| v.len())
                .collect()
                .await;
        assert_eq!(batches.len(), 2, "an item over the limit goes alone");
    }

    #[tokio::test]
    async fn byte_channel_holds_at_most_its_budget() {
        let (sender, receiver) = byte_channel::<Vec<u8>>(1000, |v| v.len());
        sender.send(vec![0; 600]).await.expect("fits");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), sender.send(vec![0; 600]))
                .await
                .is_err(),
            "a second 600 bytes waits"
        );
        assert!(sender.try_send(vec![0; 600]).is_err());
        let stream = receiver.into_stream();
        futures::pin_mut!(stream);
        assert_eq!(stream.next().await.map(|v| v.len()), Some(600));
        sender.send(vec![0; 600]).await.expect("room again");
    }
}
