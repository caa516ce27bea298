//! Envelope encryption of stored secrets: AES-256-GCM with a random nonce per seal, the owner and
//! the row as associated data (`<owner kind>:<owner id>:<row id>`, such as
//! `cluster:prod:sec-…`: a ciphertext cannot be moved to another row, nor another row pointed at
//! it), and a key id per ciphertext so master keys can rotate. Rows sealed before owners were
//! bound (associated data = the row id, [`AAD_ROW_ID`]) still open and are re-sealed at start.
//!
//! The keyring is a file (`--master-key-file`, or `<data-dir>/master.keys` generated on first
//! start, mode 0600) with one `<key-id> <base64 key>` per line; the last line encrypts, every
//! line decrypts. `FLOTILLA_MASTER_KEY` (base64 of 32 bytes) gives a single key with id `env`.
//! A reader that meets an unknown key id re-reads the file once, so `rotate-master-key` run by
//! another process never stops readers.

mod keyring;
mod secret;

pub use keyring::{KeySource, Keyring, RotationLock};
pub use secret::SecretBytes;

/// A sealed secret, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("master key file {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("master key file {path}, line {line}: expected `<key-id> <base64 of 32 bytes>`")]
    BadKeyLine {
        path: std::path::PathBuf,
        line: usize,
    },
    #[error("master key file {path} holds no key")]
    NoKeys { path: std::path::PathBuf },
    #[error("FLOTILLA_MASTER_KEY must be the base64 encoding of 32 random bytes")]
    BadEnvKey,
    #[error("master key file {path} is readable by others; chmod 600 it")]
    InsecureKeyFile { path: std::path::PathBuf },
    #[error("no master key with id {0:?}; was the key file replaced or a key removed?")]
    UnknownKey(String),
    #[error("a secret did not decrypt (wrong key or tampered ciphertext)")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
    #[error("only a key file can be rotated; FLOTILLA_MASTER_KEY is a single fixed key")]
    NotRotatable,
    #[error("a secret row has associated data version {0}, which this version does not know")]
    UnknownAadVersion(i32),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Associated data version of rows sealed before owners were bound: the row id alone.
pub const AAD_ROW_ID: i32 = 1;
/// Associated data version `<owner kind>:<owner id>:<row id>`.
pub const AAD_OWNER_BOUND: i32 = 2;

/// What a stored secret belongs to. The owner is always taken from the row that points at the
/// secret (a cluster's `access_secret_id`, a credential's `secret_id`), never from the secret row
/// itself, so pointing one owner at another owner's secret makes it fail to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOwner<'a> {
    Cluster(&'a str),
    Credential(&'a str),
}

impl SecretOwner<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            SecretOwner::Cluster(_) => "cluster",
            SecretOwner::Credential(_) => "credential",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            SecretOwner::Cluster(id) | SecretOwner::Credential(id) => id,
        }
    }
}

/// The associated data a secret row is sealed with, by version.
pub fn associated_data(version: i32, owner: SecretOwner<'_>, secret_id: &str) -> Result<String> {
    match version {
        AAD_ROW_ID => Ok(secret_id.to_string()),
        AAD_OWNER_BOUND => Ok(format!("{}:{}:{secret_id}", owner.kind(), owner.id())),
        other => Err(Error::UnknownAadVersion(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associated_data_names_owner_and_row() {
        assert_eq!(
            associated_data(AAD_OWNER_BOUND, SecretOwner::Cluster("prod"), "sec-1").unwrap(),
            "cluster:prod:sec-1"
        );
        assert_eq!(
            associated_data(AAD_OWNER_BOUND, SecretOwner::Credential("ali"), "sec-2").unwrap(),
            "credential:ali:sec-2"
        );
        assert_eq!(
            associated_data(AAD_ROW_ID, SecretOwner::Cluster("prod"), "sec-1").unwrap(),
            "sec-1"
        );
        assert!(matches!(
            associated_data(3, SecretOwner::Cluster("x"), "s"),
            Err(Error::UnknownAadVersion(3))
        ));
    }
}
