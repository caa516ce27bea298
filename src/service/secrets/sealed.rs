//! Sealing and opening secret rows for their owner (a cluster or a credential): the one place
//! that decides a row's associated data.

use crate::{
    crypto::{AAD_OWNER_BOUND, Keyring, Sealed, SecretBytes, SecretOwner, associated_data},
    store::SecretRow,
};

use crate::service::Result;

/// Encrypts `plaintext` into a new secret row `secret_id` that only `owner` can open.
pub fn seal_row(
    keyring: &Keyring,
    owner: SecretOwner<'_>,
    secret_id: &str,
    plaintext: &[u8],
    now: i64,
) -> Result<SecretRow> {
    let aad = associated_data(AAD_OWNER_BOUND, owner, secret_id)?;
    let sealed = keyring.seal(&aad, plaintext)?;
    Ok(SecretRow {
        id: secret_id.to_string(),
        key_id: sealed.key_id,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
        create_time: now,
        update_time: now,
        aad_version: AAD_OWNER_BOUND,
    })
}

/// Decrypts `row` as `owner`'s secret. `owner` must come from the row that points at the
/// secret, so a secret moved or pointed to from another owner does not open.
pub fn open_row(keyring: &Keyring, owner: SecretOwner<'_>, row: &SecretRow) -> Result<SecretBytes> {
    let aad = associated_data(row.aad_version, owner, &row.id)?;
    Ok(keyring.open(
        &aad,
        &Sealed {
            key_id: row.key_id.clone(),
            nonce: row.nonce.clone(),
            ciphertext: row.ciphertext.clone(),
        },
    )?)
}
