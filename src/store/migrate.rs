//! Embedded migrations, applied on start. Diesel's migration harness is synchronous, so it runs
//! on a blocking thread: a plain `SqliteConnection`, or `AsyncConnectionWrapper` for PostgreSQL.

use std::path::PathBuf;

use diesel::{Connection, SqliteConnection};
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Error, Result};

pub(super) const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

pub(super) async fn sqlite(path: PathBuf) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())
            .map_err(|e| Error::Connect(e.to_string()))?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;",
        )
        .map_err(Error::from)?;
        conn.run_pending_migrations(SQLITE)
            .map(|_| ())
            .map_err(|e| Error::Migration(e.to_string()))
    })
    .await
    .map_err(|e| Error::Migration(e.to_string()))?
}

pub(super) async fn postgres(url: String) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|e| Error::Connect(e.to_string()))?;
        conn.run_pending_migrations(POSTGRES)
            .map(|_| ())
            .map_err(|e| Error::Migration(e.to_string()))
    })
    .await
    .map_err(|e| Error::Migration(e.to_string()))?
}
