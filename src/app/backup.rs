//! `flotilla backup` and `flotilla restore`: the embedded SQLite database only. PostgreSQL is
//! backed up with its own tools (docs/production/backups.md); a database is only half a
//! backup without the master key file that opens its secrets.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::{
    config::{Settings, redact_url},
    crypto::{KeySource, Keyring},
    store::{
        backup::{self, BackupReport, RestoreReport},
        sqlite_path,
    },
};

fn sqlite_file(settings: &Settings, what: &str) -> anyhow::Result<PathBuf> {
    sqlite_path(&settings.database_url).ok_or_else(|| {
        anyhow::anyhow!(
            "{} is not an embedded SQLite database: {what} PostgreSQL with its own tools \
             (pg_dump --format=custom / pg_restore, or continuous archiving), and keep the \
             master key file with the dump; see docs/production/backups.md",
            redact_url(&settings.database_url)
        )
    })
}

/// `flotilla backup FILE [--force]`.
pub async fn backup(
    settings: &Settings,
    target: &Path,
    force: bool,
) -> anyhow::Result<BackupReport> {
    let database = sqlite_file(settings, "back up")?;
    let target = target.to_path_buf();
    tokio::task::spawn_blocking(move || backup::backup(&database, &target, force))
        .await
        .context("backup task")?
        .map_err(anyhow::Error::from)
}

/// What `flotilla restore` found besides the restore itself.
pub struct Restored {
    pub report: RestoreReport,
    /// Where the master keys come from, for the message.
    pub key_source: String,
    /// Key ids the restored secrets need that the current master keys lack (none: all open).
    pub missing_keys: Option<Vec<String>>,
}

/// `flotilla restore FILE`.
pub async fn restore(settings: &Settings, file: &Path) -> anyhow::Result<Restored> {
    let database = sqlite_file(settings, "restore")?;
    super::create_data_dir(&settings.data_dir)?;
    let file = file.to_path_buf();
    let report = tokio::task::spawn_blocking(move || backup::restore(&file, &database))
        .await
        .context("restore task")?
        .map_err(anyhow::Error::from)?;
    let (key_source, keys) = current_keys(settings);
    let missing_keys = keys.map(|have| {
        report
            .key_ids
            .iter()
            .filter(|id| !have.contains(id))
            .cloned()
            .collect()
    });
    Ok(Restored {
        report,
        key_source,
        missing_keys,
    })
}

/// The key ids of the master keys a server started with these settings would use, without
/// creating a key file (a new key would open nothing that was restored).
fn current_keys(settings: &Settings) -> (String, Option<Vec<String>>) {
    let (label, source) = match (&settings.master_key, &settings.master_key_file) {
        (Some(value), _) => (
            "FLOTILLA_MASTER_KEY".to_string(),
            KeySource::Value(value.clone()),
        ),
        (None, path) => {
            let path = path
                .clone()
                .unwrap_or_else(|| settings.data_dir.join("master.keys"));
            (
                path.display().to_string(),
                KeySource::File {
                    path,
                    create: false,
                },
            )
        }
    };
    let keys = Keyring::load(source).ok().map(|k| k.key_ids());
    (label, keys)
}
