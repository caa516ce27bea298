//! Master key rotation: add a new key, then re-encrypt every secret under it. Readers never
//! stop: a process that meets the new key id re-reads the key file, and old keys stay in the
//! file so ciphertexts written meanwhile by a process that has not reloaded yet still open.

use crate::{
    crypto::{Keyring, Sealed},
    store::{SecretRow, Store, now_millis},
};

use super::Result;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub new_key_id: String,
    pub resealed: usize,
    /// Secrets that changed under us (re-sealed by someone else meanwhile); run again to catch.
    pub skipped: usize,
}

pub async fn rotate_master_key(store: &Store, keyring: &Keyring) -> Result<RotationReport> {
    let new_key_id = keyring.add_key()?;
    let mut report = RotationReport {
        new_key_id: new_key_id.clone(),
        resealed: 0,
        skipped: 0,
    };
    for id in store.secret_ids_not_under_key(&new_key_id).await? {
        let Some(row) = store.get_secret(&id).await? else {
            report.skipped += 1;
            continue;
        };
        let plain = keyring.open(
            &row.id,
            &Sealed {
                key_id: row.key_id.clone(),
                nonce: row.nonce.clone(),
                ciphertext: row.ciphertext.clone(),
            },
        )?;
        let sealed = keyring.seal(&row.id, plain.expose())?;
        let fresh = SecretRow {
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            update_time: now_millis(),
            ..row.clone()
        };
        if store.reseal_secret(&row.key_id, &fresh).await? {
            report.resealed += 1;
        } else {
            report.skipped += 1;
        }
    }
    tracing::info!(
        new_key = %report.new_key_id,
        resealed = report.resealed,
        skipped = report.skipped,
        "master key rotated"
    );
    Ok(report)
}
