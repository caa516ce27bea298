//! Master key rotation: add a new key, then re-encrypt every secret under it. Readers never
//! stop: a process that meets the new key id re-reads the key file, and old keys stay in the
//! file so ciphertexts written meanwhile by a process that has not reloaded yet still open.
//! Rotations are serialised by a lock file beside the key file.
//!
//! Re-sealing also binds rows written before secrets were bound to their owner
//! (`crypto::AAD_ROW_ID`) to the cluster or credential that points at them; servers do that for
//! such rows at start, too.

use std::collections::HashMap;

use crate::{
    crypto::{AAD_OWNER_BOUND, Keyring, RotationLock, SecretOwner},
    store::{SecretRow, Store, now_millis},
};

use crate::service::{
    Error, Result,
    secrets::sealed::{open_row, seal_row},
};

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub new_key_id: String,
    pub resealed: usize,
    /// Secrets that changed under us (re-sealed by someone else meanwhile); run again to catch.
    pub skipped: usize,
    /// Secrets that did not open for the owner pointing at them (tampered with, or moved
    /// between owners): left as they are and logged by id.
    pub failed: usize,
    /// Secrets nothing points at: left as they are.
    pub unowned: usize,
}

/// Counts of one re-sealing pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealCounts {
    pub resealed: usize,
    pub skipped: usize,
    pub failed: usize,
    pub unowned: usize,
}

pub async fn rotate_master_key(store: &Store, keyring: &Keyring) -> Result<RotationReport> {
    let lock_path = keyring.rotation_lock_path()?;
    let _lock = tokio::task::spawn_blocking(move || RotationLock::acquire(&lock_path))
        .await
        .map_err(|e| Error::Internal(format!("waiting for the rotation lock: {e}")))??;
    // Another rotation may have finished while we waited.
    keyring.reload()?;
    let new_key_id = keyring.add_key()?;
    let ids = store
        .secret_ids_to_reseal(&new_key_id, AAD_OWNER_BOUND)
        .await?;
    let counts = reseal(store, keyring, ids).await?;
    let report = RotationReport {
        new_key_id,
        resealed: counts.resealed,
        skipped: counts.skipped,
        failed: counts.failed,
        unowned: counts.unowned,
    };
    tracing::info!(
        new_key = %report.new_key_id,
        resealed = report.resealed,
        skipped = report.skipped,
        failed = report.failed,
        unowned = report.unowned,
        "master key rotated"
    );
    Ok(report)
}

/// Re-seals rows still sealed with the row id alone, binding them to their owners (at start).
pub async fn bind_legacy_secrets(store: &Store, keyring: &Keyring) -> Result<ResealCounts> {
    let ids = store.secret_ids_below_aad_version(AAD_OWNER_BOUND).await?;
    if ids.is_empty() {
        return Ok(ResealCounts::default());
    }
    let counts = reseal(store, keyring, ids).await?;
    tracing::info!(
        resealed = counts.resealed,
        skipped = counts.skipped,
        failed = counts.failed,
        unowned = counts.unowned,
        "secrets bound to their owners"
    );
    Ok(counts)
}

/// Opens each secret as its owner and seals it again under the current key, bound to the owner.
async fn reseal(store: &Store, keyring: &Keyring, ids: Vec<String>) -> Result<ResealCounts> {
    let mut counts = ResealCounts::default();
    let owners: HashMap<String, (&'static str, String)> = store
        .secret_owners()
        .await?
        .into_iter()
        .map(|(secret, kind, id)| (secret, (kind, id)))
        .collect();
    for id in ids {
        let Some((kind, owner_id)) = owners.get(&id) else {
            counts.unowned += 1;
            continue;
        };
        let owner = match *kind {
            "cluster" => SecretOwner::Cluster(owner_id),
            _ => SecretOwner::Credential(owner_id),
        };
        let Some(row) = store.get_secret(&id).await? else {
            counts.skipped += 1;
            continue;
        };
        let plain = match open_row(keyring, owner, &row) {
            Ok(plain) => plain,
            Err(err) => {
                tracing::error!(
                    secret = %id,
                    owner = %format!("{}:{}", owner.kind(), owner.id()),
                    error = %err,
                    "a secret does not open for the owner that points at it; left as it is"
                );
                counts.failed += 1;
                continue;
            }
        };
        let fresh = SecretRow {
            create_time: row.create_time,
            ..seal_row(keyring, owner, &row.id, plain.expose(), now_millis())?
        };
        if store.reseal_secret(&row, &fresh).await? {
            counts.resealed += 1;
        } else {
            counts.skipped += 1;
        }
    }
    Ok(counts)
}
