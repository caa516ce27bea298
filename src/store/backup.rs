//! Online backup and restore of the embedded SQLite database (docs/production/backups.md).
//!
//! A backup is `VACUUM INTO` on a connection of its own: SQLite runs it inside one read
//! transaction, so with the server's WAL journal it copies a consistent snapshot while the
//! server keeps writing (writers are not blocked; the copy never holds half a transaction).
//! The copy is written to a hidden file beside the target, checked with `integrity_check`,
//! synced, and only then linked (or, with `force`, renamed) into place: a failed or
//! interrupted backup never leaves a file that looks complete.
//!
//! A server holds a shared lock on `<database>.lock` while it serves; a restore takes it
//! exclusively, so it refuses while a server runs on the database and a server refuses to
//! start during a restore.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use diesel::migration::MigrationSource;
use diesel::{
    Connection, QueryableByName, RunQueryDsl, SqliteConnection, connection::SimpleConnection,
    sql_types::Text,
};

/// Why a backup or restore did not happen. Messages name files, never contents.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no database at {0}")]
    NoDatabase(PathBuf),
    #[error("{0} exists; give --force to replace it")]
    TargetExists(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {message}")]
    Sqlite { path: PathBuf, message: String },
    #[error("{path} is not a sound SQLite database: integrity_check says {report}")]
    Corrupt { path: PathBuf, report: String },
    #[error("{path} is not a Flotilla database: {why}")]
    NotFlotilla { path: PathBuf, why: String },
    #[error(
        "{path} was written by a newer Flotilla (migrations {unknown} are unknown to this \
         one): restore it with that version"
    )]
    Newer { path: PathBuf, unknown: String },
    #[error(
        "a server is running on {0} (it holds {0}.lock): stop every server on this database \
         before restoring"
    )]
    ServerRunning(PathBuf),
    #[error("a restore of {0} is in progress ({0}.lock is held): wait for it to finish")]
    RestoreRunning(PathBuf),
}

type Result<T, E = BackupError> = std::result::Result<T, E>;

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sqlite_at(path: &Path) -> impl FnOnce(diesel::result::Error) -> BackupError + '_ {
    move |err| BackupError::Sqlite {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub bytes: u64,
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreReport {
    /// Where the database that was replaced now is (none when there was none).
    pub previous: Option<PathBuf>,
    /// Master key ids the restored secrets are sealed under.
    pub key_ids: Vec<String>,
    /// Migrations the restored copy lacks; the next start applies them.
    pub pending_migrations: usize,
}

/// The lock file of a database.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    database.with_file_name(name)
}

fn open_lock(database: &Path) -> Result<File> {
    let path = lock_path(database);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io_at(&path))
}

/// Held by a serving server: restores refuse while it lives.
pub struct ServingLock {
    _file: File,
}

/// Takes the shared serving lock of `database`; fails while a restore holds it.
pub fn lock_for_serving(database: &Path) -> Result<ServingLock> {
    let file = open_lock(database)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(ServingLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(BackupError::RestoreRunning(database.to_path_buf()))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(BackupError::Io {
            path: lock_path(database),
            source,
        }),
    }
}

/// Copies `database` to `target` while a server may be writing to it. Blocking: run it on a
/// blocking thread.
pub fn backup(database: &Path, target: &Path, force: bool) -> Result<BackupReport> {
    if !database.is_file() {
        return Err(BackupError::NoDatabase(database.to_path_buf()));
    }
    if target.exists() && !force {
        return Err(BackupError::TargetExists(target.to_path_buf()));
    }
    let partial = hidden_beside(target, "partial");
    // Created empty with owner-only permissions: VACUUM INTO writes into an empty file as it
    // finds it, so the copy is never readable by others, not even for a moment.
    create_private(&partial)?;
    let written = (|| {
        let mut conn = connect(database)?;
        conn.batch_execute("PRAGMA busy_timeout = 10000;")
            .map_err(sqlite_at(database))?;
        diesel::sql_query("VACUUM INTO ?")
            .bind::<Text, _>(partial.to_string_lossy())
            .execute(&mut conn)
            .map_err(sqlite_at(database))?;
        drop(conn);
        check_integrity(&partial)?;
        File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(io_at(&partial))?;
        publish(&partial, target, force)
    })();
    let _ = std::fs::remove_file(&partial);
    written?;
    sync_dir(target);
    let bytes = std::fs::metadata(target).map_err(io_at(target))?.len();
    Ok(BackupReport { bytes })
}

/// Replaces `database` with the Flotilla database in `file`, keeping the old one aside.
/// Blocking: run it on a blocking thread.
pub fn restore(file: &Path, database: &Path) -> Result<RestoreReport> {
    let checked = check_backup(file)?;
    let lock = open_lock(database)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(BackupError::ServerRunning(database.to_path_buf()));
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(BackupError::Io {
                path: lock_path(database),
                source,
            });
        }
    }
    let incoming = hidden_beside(database, "restoring");
    let _ = std::fs::remove_file(&incoming);
    create_private(&incoming)?;
    let copied = (|| {
        let mut from = File::open(file).map_err(io_at(file))?;
        let mut to = OpenOptions::new()
            .write(true)
            .open(&incoming)
            .map_err(io_at(&incoming))?;
        io::copy(&mut from, &mut to).map_err(io_at(&incoming))?;
        to.sync_all().map_err(io_at(&incoming))?;
        check_integrity(&incoming)
    })();
    if let Err(err) = copied {
        let _ = std::fs::remove_file(&incoming);
        return Err(err);
    }
    let previous = if database.exists() {
        let aside = PathBuf::from(format!(
            "{}.before-restore-{}",
            database.display(),
            crate::store::now_millis()
        ));
        // The WAL belongs to the file it was written for: move it along, or the old copy
        // would lose its last transactions.
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", database.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                std::fs::rename(&from, &to).map_err(io_at(&from))?;
            }
        }
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&incoming, database).map_err(io_at(database))?;
    sync_dir(database);
    drop(lock);
    Ok(RestoreReport {
        previous,
        key_ids: checked.key_ids,
        pending_migrations: checked.pending_migrations,
    })
}

struct Checked {
    key_ids: Vec<String>,
    pending_migrations: usize,
}

#[derive(QueryableByName)]
struct OneText {
    #[diesel(sql_type = Text)]
    value: String,
}

/// Sound SQLite, with Flotilla's migrations table, no migration this binary does not know,
/// and the secrets table.
fn check_backup(file: &Path) -> Result<Checked> {
    if !file.is_file() {
        return Err(BackupError::NoDatabase(file.to_path_buf()));
    }
    check_integrity(file)?;
    let mut conn = connect_read_only(file)?;
    let not_flotilla = |why: &str| BackupError::NotFlotilla {
        path: file.to_path_buf(),
        why: why.to_string(),
    };
    let applied: Vec<String> =
        diesel::sql_query("SELECT version AS value FROM __diesel_schema_migrations")
            .load::<OneText>(&mut conn)
            .map_err(|_| not_flotilla("it has no migrations table"))?
            .into_iter()
            .map(|r| r.value)
            .collect();
    let known: Vec<String> =
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&super::migrate::SQLITE)
            .map_err(|e| BackupError::Sqlite {
                path: file.to_path_buf(),
                message: e.to_string(),
            })?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
    if !applied.iter().any(|v| known.contains(v)) {
        return Err(not_flotilla("none of its migrations is one of Flotilla's"));
    }
    let unknown: Vec<&str> = applied
        .iter()
        .filter(|v| !known.contains(v))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(BackupError::Newer {
            path: file.to_path_buf(),
            unknown: unknown.join(", "),
        });
    }
    let key_ids = diesel::sql_query("SELECT DISTINCT key_id AS value FROM secrets ORDER BY 1")
        .load::<OneText>(&mut conn)
        .map_err(|_| not_flotilla("it has no secrets table"))?
        .into_iter()
        .map(|r| r.value)
        .collect();
    Ok(Checked {
        key_ids,
        pending_migrations: known.len() - applied.len().min(known.len()),
    })
}

fn check_integrity(path: &Path) -> Result<()> {
    let mut conn = connect_read_only(path)?;
    let rows = diesel::sql_query("PRAGMA integrity_check")
        .load::<IntegrityRow>(&mut conn)
        .map_err(|e| BackupError::Corrupt {
            path: path.to_path_buf(),
            report: e.to_string(),
        })?;
    let report: Vec<String> = rows.into_iter().map(|r| r.integrity_check).collect();
    if report != ["ok"] {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            report: report.join("; "),
        });
    }
    Ok(())
}

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

fn connect(path: &Path) -> Result<SqliteConnection> {
    SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| BackupError::Sqlite {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Read-only, so checking a file never creates or changes it (nor a journal beside it).
fn connect_read_only(path: &Path) -> Result<SqliteConnection> {
    let uri = format!("file:{}?mode=ro", uri_path(path));
    SqliteConnection::establish(&uri).map_err(|e| BackupError::Sqlite {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A path as the path of a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

fn hidden_beside(path: &Path, what: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}

fn create_private(path: &Path) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_at(path))?;
    // The umask can only take bits away; make sure of 0600 whatever it is.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_at(path))
}

/// Puts the finished copy at `target`: a hard link never replaces a file that appeared
/// meanwhile; `force` renames over it.
fn publish(partial: &Path, target: &Path, force: bool) -> Result<()> {
    if force {
        return std::fs::rename(partial, target).map_err(io_at(target));
    }
    match std::fs::hard_link(partial, target) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            Err(BackupError::TargetExists(target.to_path_buf()))
        }
        Err(err) => Err(io_at(target)(err)),
    }
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_escape_what_a_uri_would_read_as_syntax() {
        assert_eq!(uri_path(Path::new("/a b/c?d#e%f")), "/a b/c%3fd%23e%25f");
    }

    #[test]
    fn the_lock_sits_beside_the_database() {
        assert_eq!(
            lock_path(Path::new("/data/flotilla.db")),
            PathBuf::from("/data/flotilla.db.lock")
        );
    }
}
