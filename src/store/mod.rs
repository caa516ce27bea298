//! Storage with diesel-async: SQLite (embedded default) or PostgreSQL, chosen by the URL.
//!
//! Every query is written once and compiled for both backends through [`with_conn!`]; the two
//! migration folders keep the column types compatible.

mod agents;
mod auth;
pub mod backup;
mod census;
mod change_counts;
mod cluster_leases;
mod clusters;
mod credentials;
mod migrate;
mod operations;
mod pull_secrets;
mod records;
mod registries;
pub mod schema;
mod secrets;

use std::{path::PathBuf, time::Duration};

use diesel::{ConnectionError, SqliteConnection};
use diesel_async::{
    AsyncPgConnection, SimpleAsyncConnection,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, deadpool},
    sync_connection_wrapper::SyncConnectionWrapper,
};
use futures::FutureExt;

pub use agents::{AgentCredentialRow, AgentRegistrationRow, Redemption};
pub use auth::AuditQuery;
pub use cluster_leases::{ClusterLeaseRow, ClusterStatusRow, ReplicaRow};
pub use clusters::{ClusterKey, ClusterOrder, ClusterPage, ClusterQuery};
pub use credentials::CredentialQuery;
pub use operations::{ACTIVE_STATES, OperationQuery, OperationRow};
pub use pull_secrets::PullSecretRow;
pub use records::{ApiTokenRow, AuditRow, ClusterRow, CredentialRow, SecretRow};
pub use registries::{CredentialUsers, RegistryPage, RegistryQuery, RegistryRow};

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Errors of the storage layer. Messages never contain the database URL or any stored value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported database URL scheme (use sqlite://PATH or postgres://...)")]
    UnsupportedUrl,
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("database migrations failed: {0}")]
    Migration(String),
    #[error("a row with the same {0} already exists")]
    AlreadyExists(String),
    #[error("row was changed concurrently")]
    Conflict,
    #[error("a list resumed after a key that does not fit its order")]
    BadKey,
    #[error("database query failed: {0}")]
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match err {
            D::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Error::AlreadyExists(info.constraint_name().unwrap_or("key").to_string())
            }
            other => Error::Query(other),
        }
    }
}

impl From<deadpool::PoolError> for Error {
    fn from(err: deadpool::PoolError) -> Self {
        Error::Pool(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(deadpool::Pool<SqliteConn>),
    Postgres(deadpool::Pool<AsyncPgConnection>),
}

/// The database: a pool of connections to SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    /// Where each store call's database time goes, once metrics are on (shared by clones).
    pub(crate) metrics: census::QueryMetrics,
    /// On SQLite, the connection that reads change counts on the calling thread.
    pub(crate) sqlite_counts: Option<std::sync::Arc<change_counts::SqliteCounts>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.kind())
            .finish()
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend the store uses.
/// The body is compiled once per backend.
macro_rules! with_conn {
    ($store:expr, $conn:ident => $body:expr) => {{
        let _timer = $store.metrics.timer($store.system_name());
        match &$store.backend {
            $crate::store::Backend::Sqlite(pool) => {
                let mut guard = pool.get().await?;
                let $conn: &mut $crate::store::SqliteConn = &mut guard;
                $body
            }
            $crate::store::Backend::Postgres(pool) => {
                let mut guard = pool.get().await?;
                let $conn: &mut diesel_async::AsyncPgConnection = &mut guard;
                $body
            }
        }
    }};
}
pub(crate) use with_conn;

/// A pooled SQLite connection inside a write transaction. If it is dropped before
/// [`SqliteTransaction::finished`] — the caller's future was cancelled mid-transaction, or a
/// statement failed on the way out — the connection is taken out of the pool and closed, which
/// rolls the transaction back and releases the write lock at once. Returned to the pool instead,
/// it would hold the database's write lock until it happened to be used again, and every other
/// writer (another process, `flotilla rotate-master-key`) would time out meanwhile.
pub(crate) struct SqliteTransaction {
    object: Option<deadpool::Object<SqliteConn>>,
}

impl SqliteTransaction {
    pub(crate) fn new(object: deadpool::Object<SqliteConn>) -> Self {
        SqliteTransaction {
            object: Some(object),
        }
    }

    pub(crate) fn conn(&mut self) -> &mut SqliteConn {
        self.object
            .as_mut()
            .expect("the connection is present until the transaction ends")
    }

    /// Committed or rolled back: the connection may go back to the pool.
    pub(crate) fn finished(mut self) {
        drop(self.object.take());
    }
}

impl Drop for SqliteTransaction {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            drop(deadpool::Object::take(object));
        }
    }
}

/// Runs `$body` in a write transaction. On SQLite it begins `IMMEDIATE`, taking the write lock
/// up front: a deferred transaction that reads and then writes fails at once with "database is
/// locked" when another connection wrote in between, and no busy timeout can help it.
macro_rules! write_transaction {
    ($store:expr, $conn:ident => $body:expr) => {{
        let _timer = $store.metrics.timer($store.system_name());
        match &$store.backend {
            $crate::store::Backend::Sqlite(pool) => {
                use diesel_async::SimpleAsyncConnection as _;
                let mut guard = $crate::store::SqliteTransaction::new(pool.get().await?);
                let $conn: &mut $crate::store::SqliteConn = guard.conn();
                if let Err(err) = $conn.batch_execute("BEGIN IMMEDIATE").await {
                    // A caller cancelled mid-transaction on this pooled connection: finish
                    // that one off, then begin ours.
                    if !err.to_string().contains("within a transaction") {
                        return Err(err.into());
                    }
                    $conn.batch_execute("ROLLBACK").await?;
                    $conn.batch_execute("BEGIN IMMEDIATE").await?;
                }
                let result: $crate::store::Result<_> = async { $body }.await;
                match &result {
                    Ok(_) => $conn.batch_execute("COMMIT").await?,
                    Err(_) => {
                        let _ = $conn.batch_execute("ROLLBACK").await;
                    }
                }
                guard.finished();
                result
            }
            $crate::store::Backend::Postgres(pool) => {
                use diesel_async::AsyncConnection as _;
                let mut guard = pool.get().await?;
                let conn: &mut diesel_async::AsyncPgConnection = &mut guard;
                conn.transaction::<_, $crate::store::Error, _>(async move |$conn| $body)
                    .await
            }
        }
    }};
}
pub(crate) use write_transaction;

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://…`) and applies every pending
    /// migration. A SQLite file and its directory are created when missing.
    pub async fn open(url: &str) -> Result<Store> {
        let store = if let Some(path) = sqlite_path(url) {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            migrate::sqlite(path.clone()).await?;
            Store {
                backend: Backend::Sqlite(sqlite_pool(&path)?),
                metrics: Default::default(),
                sqlite_counts: Some(std::sync::Arc::new(change_counts::SqliteCounts::new(&path))),
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            migrate::postgres(url.to_string()).await?;
            Store {
                backend: Backend::Postgres(postgres_pool(url)?),
                metrics: Default::default(),
                sqlite_counts: None,
            }
        } else {
            return Err(Error::UnsupportedUrl);
        };
        store.ping().await?;
        Ok(store)
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Checks that a connection can be had and answers.
    pub async fn ping(&self) -> Result<()> {
        with_conn!(self, conn => conn.batch_execute("SELECT 1").await.map_err(Error::from))
    }
}

/// `sqlite://PATH`, `sqlite:PATH` → PATH.
/// The file of a `sqlite://` URL; none for any other URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(PathBuf::from)
}

fn sqlite_pool(path: &std::path::Path) -> Result<deadpool::Pool<SqliteConn>> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    // The default check runs `SELECT 1` (a hop to a blocking thread) every time a connection
    // leaves the pool; a SQLite connection is a file handle in this process and cannot drop
    // the way a network connection can, and a broken one is still noticed and replaced.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| {
        let url = url.to_string();
        async move {
            let mut conn = <SqliteConn as diesel_async::AsyncConnection>::establish(&url).await?;
            // WAL lets readers run beside the single writer; busy_timeout makes a writer wait
            // for the lock instead of failing at once.
            conn.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .await
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path.to_string_lossy(), config);
    deadpool::Pool::builder(manager)
        .max_size(8)
        .wait_timeout(Some(Duration::from_secs(30)))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Pool(e.to_string()))
}

fn postgres_pool(url: &str) -> Result<deadpool::Pool<AsyncPgConnection>> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    deadpool::Pool::builder(manager)
        .max_size(16)
        .wait_timeout(Some(Duration::from_secs(30)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Pool(e.to_string()))
}

/// Milliseconds since the Unix epoch, the unit of every time column.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
