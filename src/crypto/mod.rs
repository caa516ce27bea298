//! Envelope encryption of stored secrets: AES-256-GCM with a random nonce per seal, the row id as
//! associated data (a ciphertext cannot be moved to another row), and a key id per ciphertext so
//! master keys can rotate.
//!
//! The keyring is a file (`--master-key-file`, or `<data-dir>/master.keys` generated on first
//! start, mode 0600) with one `<key-id> <base64 key>` per line; the last line encrypts, every
//! line decrypts. `FLOTILLA_MASTER_KEY` (base64 of 32 bytes) gives a single key with id `env`.
//! A reader that meets an unknown key id re-reads the file once, so `rotate-master-key` run by
//! another process never stops readers.

mod keyring;
mod secret;

pub use keyring::{KeySource, Keyring};
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
