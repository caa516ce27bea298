//! Counts of writes, kept by triggers in the database (migration `change_counts`), for caches of
//! what a table holds: whatever was read at count N is still what the table holds while the
//! count is N. Every writer bumps it, not only this process: another replica, the `sqlite3` or
//! `psql` tool, a restored dump.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use diesel::{Connection, QueryDsl, SqliteConnection, connection::SimpleConnection};
use diesel_async::RunQueryDsl;

use super::{Error, Result, Store, schema::change_counts, with_conn};

/// How long a count read on SQLite waits for a lock before it gives up (and its caller reads
/// without a cache). A reader of a WAL database waits only while a crashed writer's log is being
/// recovered.
const SQLITE_BUSY: Duration = Duration::from_millis(20);

/// Reads counts from a SQLite database on a connection of its own, on the calling thread: one
/// row of a table that stays in the page cache, a few microseconds, where a hop to a blocking
/// thread and back costs tens. The connection only reads, so it never waits for the write lock.
pub(crate) struct SqliteCounts {
    path: PathBuf,
    /// Opened on first use, and again after a failure.
    conn: Mutex<Option<SqliteConnection>>,
}

impl SqliteCounts {
    pub(crate) fn new(path: &Path) -> SqliteCounts {
        SqliteCounts {
            path: path.to_path_buf(),
            conn: Mutex::new(None),
        }
    }

    fn read(&self, name: &str) -> Result<i64> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let mut conn = SqliteConnection::establish(&self.path.to_string_lossy())
                .map_err(|e| Error::Connect(e.to_string()))?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA query_only = ON;",
                SQLITE_BUSY.as_millis()
            ))?;
            *slot = Some(conn);
        }
        let conn = slot.as_mut().expect("opened above");
        let query = change_counts::table.find(name).select(change_counts::count);
        let count: diesel::QueryResult<i64> = diesel::RunQueryDsl::first(query, conn);
        if count.is_err() {
            // A connection that failed is not trusted again.
            *slot = None;
        }
        Ok(count?)
    }
}

impl Store {
    /// How many times the clusters table has been written, as its triggers count. A page of
    /// clusters read after this returned N holds the table as it is while this still returns N.
    pub async fn clusters_change_count(&self) -> Result<i64> {
        // Set exactly when the store is on SQLite.
        if let Some(counts) = &self.sqlite_counts {
            return counts.read("clusters");
        }
        with_conn!(self, conn => {
            Ok(change_counts::table
                .find("clusters")
                .select(change_counts::count)
                .first::<i64>(conn)
                .await?)
        })
    }
}
