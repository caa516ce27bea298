//! The master keys and the AEAD operations that use them.

use std::{
    io::{Read, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::RwLock,
};

use aes_gcm::{
    Aes256Gcm, Key, KeyInit, Nonce,
    aead::{Aead, OsRng, Payload, rand_core::RngCore},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use zeroize::Zeroizing;

use super::{Error, Result, Sealed, SecretBytes};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const FILE_HEADER: &str = "# Flotilla master keys: `<key-id> <base64 key>` per line. The last key \
encrypts; every key decrypts.\n# Keep this file secret (mode 0600) and backed up: without it the \
stored credentials are lost.\n";

/// Where the master keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// A keyring file; created with one new key when `create` is set and it does not exist.
    File { path: PathBuf, create: bool },
    /// One key given directly (base64 of 32 bytes), such as `FLOTILLA_MASTER_KEY`.
    Value(Zeroizing<String>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File { path, create } => f
                .debug_struct("File")
                .field("path", path)
                .field("create", create)
                .finish(),
            KeySource::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

struct Keys {
    /// In file order; the last one encrypts.
    entries: Vec<(String, Zeroizing<[u8; KEY_LEN]>)>,
}

impl Keys {
    fn find(&self, id: &str) -> Option<&Zeroizing<[u8; KEY_LEN]>> {
        self.entries
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, key)| key)
    }
}

/// The master keys.
pub struct Keyring {
    source: KeySource,
    keys: RwLock<Keys>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("source", &self.source)
            .field("current", &self.current_key_id())
            .finish()
    }
}

impl Keyring {
    pub fn load(source: KeySource) -> Result<Keyring> {
        let keys = match &source {
            KeySource::File { path, create } => {
                if *create && !path.exists() {
                    create_file(path)?;
                }
                read_file(path)?
            }
            KeySource::Value(value) => Keys {
                entries: vec![(
                    "env".to_string(),
                    decode_key(value).ok_or(Error::BadEnvKey)?,
                )],
            },
        };
        Ok(Keyring {
            source,
            keys: RwLock::new(keys),
        })
    }

    /// The id of the key new secrets are sealed with.
    pub fn current_key_id(&self) -> String {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.entries
            .last()
            .map(|(id, _)| id.clone())
            .unwrap_or_default()
    }

    /// Encrypts `plaintext` under the current key, bound to `aad` (the row id).
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Sealed> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let (key_id, key) = keys.entries.last().ok_or(Error::Encrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_slice()));
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::Encrypt)?;
        Ok(Sealed {
            key_id: key_id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts a sealed secret. An unknown key id makes the keyring re-read its file once.
    pub fn open(&self, aad: &str, sealed: &Sealed) -> Result<SecretBytes> {
        let known = {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            keys.find(&sealed.key_id).is_some()
        };
        if !known {
            self.reload()?;
        }
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let key = keys
            .find(&sealed.key_id)
            .ok_or_else(|| Error::UnknownKey(sealed.key_id.clone()))?;
        if sealed.nonce.len() != NONCE_LEN {
            return Err(Error::Decrypt);
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_slice()));
        cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map(SecretBytes::new)
            .map_err(|_| Error::Decrypt)
    }

    /// Re-reads the key file (a no-op for a fixed key).
    pub fn reload(&self) -> Result<()> {
        if let KeySource::File { path, .. } = &self.source {
            let fresh = read_file(path)?;
            *self.keys.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        }
        Ok(())
    }

    /// Appends a new key to the key file; it becomes the current key (here and, after their
    /// next reload, in every process that reads the file). Returns its id.
    pub fn add_key(&self) -> Result<String> {
        let KeySource::File { path, .. } = &self.source else {
            return Err(Error::NotRotatable);
        };
        let id = new_key_id();
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(key.as_mut_slice());
        let mut text = read_private(path)?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{id} {}\n", STANDARD.encode(key.as_slice())));
        write_private(path, text.as_bytes())?;
        self.reload()?;
        Ok(id)
    }

    /// Where the lock that serialises rotations lives: beside the key file, since the key file
    /// itself is replaced (renamed over) on every change and a lock on it would be lost.
    pub fn rotation_lock_path(&self) -> Result<PathBuf> {
        let KeySource::File { path, .. } = &self.source else {
            return Err(Error::NotRotatable);
        };
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        Ok(path.with_file_name(name))
    }

    /// Ids of every key, oldest first.
    pub fn key_ids(&self) -> Vec<String> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.entries.iter().map(|(id, _)| id.clone()).collect()
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn new_key_id() -> String {
    let mut suffix = [0u8; 3];
    OsRng.fill_bytes(&mut suffix);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!(
        "k{secs}-{:02x}{:02x}{:02x}",
        suffix[0], suffix[1], suffix[2]
    )
}

fn decode_key(text: &str) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let bytes = Zeroizing::new(STANDARD.decode(text.trim()).ok()?);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return None;
    }
    key.copy_from_slice(&bytes);
    Some(key)
}

fn create_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    OsRng.fill_bytes(key.as_mut_slice());
    let text = Zeroizing::new(format!(
        "{FILE_HEADER}{} {}\n",
        new_key_id(),
        STANDARD.encode(key.as_slice())
    ));
    // `create_new` (O_EXCL) never follows a symlink, dangling or not.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| io(path, source))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| io(path, source))
}

/// Replaces the file atomically with owner-only permissions.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|source| io(&tmp, source))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| io(&tmp, source))?;
    std::fs::rename(&tmp, path).map_err(|source| io(path, source))
}

/// An exclusive lock held while a rotation adds a key and re-seals secrets, so that two
/// rotations at once cannot both read the file, each add a key, and lose one of them (with the
/// secrets already re-sealed under it). Released when dropped.
pub struct RotationLock {
    _file: std::fs::File,
}

impl RotationLock {
    /// Waits for the lock (blocking: call it off the async runtime).
    pub fn acquire(path: &Path) -> Result<RotationLock> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| io(path, source))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|source| io(path, source))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!(lock = %path.display(), "another key rotation is running; waiting");
                file.lock().map_err(|source| io(path, source))?;
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io(path, source)),
        }
        Ok(RotationLock { _file: file })
    }
}

/// Reads an owner-only file without following a symlink; a file others can read is refused.
fn read_private(path: &Path) -> Result<Zeroizing<String>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| io(path, source))?;
    let meta = file.metadata().map_err(|source| io(path, source))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::InsecureKeyFile {
            path: path.to_path_buf(),
        });
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text)
        .map_err(|source| io(path, source))?;
    Ok(text)
}

fn read_file(path: &Path) -> Result<Keys> {
    let text = read_private(path)?;
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || Error::BadKeyLine {
            path: path.to_path_buf(),
            line: index + 1,
        };
        let (id, value) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let key = decode_key(value).ok_or_else(bad)?;
        entries.push((id.to_string(), key));
    }
    if entries.is_empty() {
        return Err(Error::NoKeys {
            path: path.to_path_buf(),
        });
    }
    Ok(Keys { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_ring(dir: &Path) -> Keyring {
        Keyring::load(KeySource::File {
            path: dir.join("master.keys"),
            create: true,
        })
        .unwrap()
    }

    #[test]
    fn seal_open_round_trip_bound_to_row() {
        let dir = tempfile::tempdir().unwrap();
        let ring = file_ring(dir.path());
        let mode = std::fs::metadata(dir.path().join("master.keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = ring.seal("row-1", b"kubeconfig-marker").unwrap();
        assert!(
            !sealed.ciphertext.windows(6).any(|w| w == b"marker"),
            "ciphertext must not contain the plaintext"
        );
        assert_eq!(
            ring.open("row-1", &sealed).unwrap().expose(),
            b"kubeconfig-marker"
        );
        assert!(matches!(ring.open("row-2", &sealed), Err(Error::Decrypt)));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(ring.open("row-1", &tampered), Err(Error::Decrypt)));
        assert_ne!(
            ring.seal("row-1", b"x").unwrap().nonce,
            ring.seal("row-1", b"x").unwrap().nonce
        );
    }

    #[test]
    fn rotation_by_another_process_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let reader = file_ring(dir.path());
        let old = reader.seal("r", b"old").unwrap();
        // Another process adds a key and re-encrypts.
        let rotator = file_ring(dir.path());
        let new_id = rotator.add_key().unwrap();
        let new = rotator.seal("r", b"new").unwrap();
        assert_eq!(new.key_id, new_id);
        assert_eq!(reader.open("r", &new).unwrap().expose(), b"new");
        assert_eq!(reader.open("r", &old).unwrap().expose(), b"old");
        assert_eq!(reader.current_key_id(), new_id);
        assert_eq!(reader.key_ids().len(), 2);
    }

    #[test]
    fn bad_sources_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "k1 not-base64\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let load = || {
            Keyring::load(KeySource::File {
                path: path.clone(),
                create: false,
            })
        };
        assert!(matches!(load(), Err(Error::BadKeyLine { line: 1, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(), Err(Error::InsecureKeyFile { .. })));
        assert!(matches!(
            Keyring::load(KeySource::Value(Zeroizing::new("c2hvcnQ=".into()))),
            Err(Error::BadEnvKey)
        ));
        let env =
            Keyring::load(KeySource::Value(Zeroizing::new(STANDARD.encode([7u8; 32])))).unwrap();
        assert_eq!(env.current_key_id(), "env");
        assert!(matches!(env.add_key(), Err(Error::NotRotatable)));
        assert!(!format!("{:?}", KeySource::Value(Zeroizing::new("abc".into()))).contains("abc"));
    }

    #[test]
    fn key_files_are_not_read_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = file_ring(dir.path());
        let link = dir.path().join("link.keys");
        std::os::unix::fs::symlink(dir.path().join("master.keys"), &link).unwrap();
        let err = Keyring::load(KeySource::File {
            path: link.clone(),
            create: true,
        })
        .unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        // A dangling link is not followed to create a file either.
        let dangling = dir.path().join("dangling.keys");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(
            Keyring::load(KeySource::File {
                path: dangling,
                create: true,
            })
            .is_err()
        );
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(real.key_ids().len(), 1);
    }

    #[test]
    fn rotations_are_serialised_by_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let ring = file_ring(dir.path());
        let lock_path = ring.rotation_lock_path().unwrap();
        assert_eq!(lock_path, dir.path().join("master.keys.lock"));
        let held = RotationLock::acquire(&lock_path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _second = RotationLock::acquire(&lock_path).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "a second rotation waits while the first holds the lock"
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the second rotation proceeds once the first is done");
        waiter.join().unwrap();
        let mode = std::fs::metadata(dir.path().join("master.keys.lock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
