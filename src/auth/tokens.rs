//! API tokens: issued once, stored as a hash, checked on every call (with a short cache).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aes_gcm::aead::{OsRng, rand_core::RngCore};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Principal, Role};
use crate::{
    service::{Error, Result, validate},
    store::{ApiTokenRow, Store, now_millis},
};

/// How long a verified token is trusted before the database is asked again. Revocation through
/// this server is immediate; through another process (the CLI, another replica) it takes at
/// most this long.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
const TOUCH_EVERY_MILLIS: i64 = 60_000;
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap-admin";

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no API token: send `authorization: Bearer <token>`")]
    Missing,
    #[error("the authorization header must be `Bearer <token>`")]
    Malformed,
    #[error("the API token is not valid")]
    Unknown,
    #[error("the API token {0:?} has expired")]
    Expired(String),
    #[error("the API token {0:?} has been revoked")]
    Revoked(String),
    #[error("tokens cannot be checked right now: {0}")]
    Unavailable(String),
}

/// A freshly issued token. The secret exists only here; it is never stored or shown again.
pub struct IssuedToken {
    pub token: ApiTokenRow,
    pub secret: Zeroizing<String>,
}

pub struct Tokens {
    store: Store,
    /// Verified tokens by secret digest: when read, and what was read. Keyed by the raw digest
    /// and shared behind an `Arc`, so a cached call allocates nothing for the lookup.
    cache: Mutex<HashMap<Digest32, (Instant, Arc<CachedToken>)>>,
    touched: Mutex<HashMap<String, i64>>,
}

type Digest32 = [u8; 32];

/// A token row as the cache keeps it, and the principal it stands for.
struct CachedToken {
    row: ApiTokenRow,
    principal: Option<Principal>,
}

fn digest(secret: &str) -> Digest32 {
    Sha256::digest(secret.as_bytes()).into()
}

/// The stored form of a secret: its SHA-256 digest in lowercase hex.
pub fn hash(secret: &str) -> String {
    hex::encode(digest(secret))
}

fn new_secret() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut_slice());
    Zeroizing::new(format!("flt_{}", URL_SAFE_NO_PAD.encode(bytes.as_slice())))
}

impl Tokens {
    pub fn new(store: Store) -> Tokens {
        Tokens {
            store,
            cache: Mutex::default(),
            touched: Mutex::default(),
        }
    }

    /// Creates a token; the secret is returned once.
    pub async fn issue(
        &self,
        name: &str,
        role: Role,
        clusters: Vec<String>,
        expire_millis: Option<i64>,
        created_by: &str,
    ) -> Result<IssuedToken> {
        self.insert(
            name,
            role,
            clusters,
            expire_millis,
            created_by,
            new_secret(),
        )
        .await
    }

    async fn insert(
        &self,
        name: &str,
        role: Role,
        clusters: Vec<String>,
        expire_millis: Option<i64>,
        created_by: &str,
        secret: Zeroizing<String>,
    ) -> Result<IssuedToken> {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(Error::invalid("name", "must be 1-128 printable characters"));
        }
        if looks_like_token_id(name) {
            return Err(Error::invalid(
                "name",
                "must not look like a token id (`tok-` and 12 hex digits): revoking by name \
                 would be ambiguous",
            ));
        }
        for (i, id) in clusters.iter().enumerate() {
            validate::id(&format!("cluster_ids[{i}]"), id)?;
        }
        let now = now_millis();
        if expire_millis.is_some_and(|t| t <= now) {
            return Err(Error::invalid("expire_time", "is in the past"));
        }
        let row = ApiTokenRow {
            id: format!(
                "{TOKEN_ID_PREFIX}{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            name: name.to_string(),
            role: role.as_str().to_string(),
            cluster_ids: serde_json::to_string(&clusters).unwrap_or_else(|_| "[]".into()),
            secret_hash: hash(&secret),
            expire_time: expire_millis,
            create_time: now,
            created_by: created_by.to_string(),
            last_used_time: None,
            revoke_time: None,
        };
        self.store
            .insert_token(&row)
            .await
            .map_err(|err| match err {
                crate::store::Error::AlreadyExists(_) => Error::AlreadyExists {
                    reason: "TOKEN_NAME_TAKEN",
                    message: format!("a token named {name:?} already exists"),
                },
                other => other.into(),
            })?;
        tracing::info!(token = %row.name, role = %row.role, "API token created");
        Ok(IssuedToken { token: row, secret })
    }

    /// The caller behind a bearer token.
    pub async fn authenticate(&self, secret: &str) -> std::result::Result<Principal, AuthError> {
        let digest = digest(secret);
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&digest)
                .filter(|(at, _)| at.elapsed() < CACHE_TTL)
                .map(|(_, token)| token.clone())
        };
        let token = match cached {
            Some(token) => token,
            None => {
                let row = self
                    .store
                    .token_by_hash(&hex::encode(digest))
                    .await
                    .map_err(|e| AuthError::Unavailable(e.to_string()))?
                    .ok_or(AuthError::Unknown)?;
                let token = Arc::new(CachedToken {
                    principal: principal(&row),
                    row,
                });
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(digest, (Instant::now(), token.clone()));
                token
            }
        };
        let row = &token.row;
        let now = now_millis();
        if row.revoke_time.is_some() {
            return Err(AuthError::Revoked(row.name.clone()));
        }
        if row.expire_time.is_some_and(|t| t <= now) {
            return Err(AuthError::Expired(row.name.clone()));
        }
        self.touch(&row.id, now);
        token.principal.clone().ok_or(AuthError::Unknown)
    }

    /// Records last use, at most once a minute per token, off the request path.
    fn touch(&self, id: &str, now: i64) {
        {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            if touched
                .get(id)
                .is_some_and(|t| now - t < TOUCH_EVERY_MILLIS)
            {
                return;
            }
            touched.insert(id.to_string(), now);
        }
        let store = self.store.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            if let Err(err) = store.touch_token(&id, now).await {
                tracing::debug!(%err, "recording token use failed");
            }
        });
    }

    /// Whether the token with this id may still be used (exists, not revoked, not expired),
    /// read from the database each time: open streams call it about once a second per token,
    /// so a revocation by any process (the CLI, another replica) ends them within seconds.
    pub async fn check_active(&self, token_id: &str) -> std::result::Result<(), AuthError> {
        let unavailable = |e: crate::store::Error| AuthError::Unavailable(e.to_string());
        let row = self
            .store
            .token_by_id(token_id)
            .await
            .map_err(unavailable)?;
        let row = row.ok_or(AuthError::Unknown)?;
        if row.revoke_time.is_some() {
            return Err(AuthError::Revoked(row.name));
        }
        if row.expire_time.is_some_and(|t| t <= now_millis()) {
            return Err(AuthError::Expired(row.name));
        }
        Ok(())
    }

    pub async fn list(&self, show_revoked: bool) -> Result<Vec<ApiTokenRow>> {
        Ok(self.store.list_tokens(show_revoked).await?)
    }

    /// Revokes by id or name; effective at once on this server. A key that is one token's id
    /// and another token's name is refused as ambiguous: revoking must never hit a token the
    /// caller did not mean.
    pub async fn revoke(&self, id_or_name: &str) -> Result<ApiTokenRow> {
        if id_or_name.is_empty() {
            return Err(Error::invalid("token_id", "is required"));
        }
        let by_id = self.store.token_by_id(id_or_name).await?;
        let by_name = self.store.token_by_name(id_or_name).await?;
        let row = match (by_id, by_name) {
            (Some(a), Some(b)) if a.id != b.id => {
                return Err(Error::invalid(
                    "token_id",
                    format!(
                        "{id_or_name:?} is the id of token {:?} and the name of token {:?} \
                         (id {}); give the id of the token to revoke",
                        a.name, b.name, b.id
                    ),
                ));
            }
            (Some(row), _) | (None, Some(row)) => row,
            (None, None) => {
                return Err(Error::NotFound {
                    kind: "API token",
                    id: id_or_name.to_string(),
                });
            }
        };
        self.store.revoke_token(&row.id, now_millis()).await?;
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(&row.secret_hash, &mut digest).is_ok() {
            self.cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&digest);
        }
        tracing::info!(token = %row.name, "API token revoked");
        self.store
            .token_by_id(&row.id)
            .await?
            .ok_or_else(|| Error::Internal("revoked token vanished".into()))
    }

    /// On a database without tokens, creates the first admin token: from `env_secret`
    /// (`FLOTILLA_BOOTSTRAP_TOKEN`) if given, else a new one written to `<data-dir>/admin-token`
    /// (mode 0600). Returns where it was written, if it was.
    pub async fn bootstrap(
        &self,
        data_dir: &Path,
        env_secret: Option<&str>,
    ) -> anyhow::Result<Option<PathBuf>> {
        if self.store.count_tokens().await? > 0 {
            return Ok(None);
        }
        match env_secret {
            Some(secret) => {
                if let Err(why) = check_bootstrap_secret(secret) {
                    anyhow::bail!(
                        "FLOTILLA_BOOTSTRAP_TOKEN is too weak: {why}. It needs 32 random bytes, \
                         such as the output of `openssl rand -base64 32` or `openssl rand -hex 32`"
                    );
                }
                if self
                    .insert_bootstrap(Zeroizing::new(secret.to_string()))
                    .await?
                {
                    tracing::info!("bootstrap admin token taken from FLOTILLA_BOOTSTRAP_TOKEN");
                }
                Ok(None)
            }
            None => {
                // The file first: a token whose secret could not be written would lock the
                // operator out (the database then has a token, so none is made again).
                let secret = new_secret();
                let path = data_dir.join("admin-token");
                write_private(&path, secret.as_bytes())?;
                if !self.insert_bootstrap(secret).await? {
                    // This file's secret is no token, so it goes.
                    let _ = std::fs::remove_file(&path);
                    return Ok(None);
                }
                tracing::warn!(
                    path = %path.display(),
                    "first start: an admin API token was written to this file; keep it safe"
                );
                Ok(Some(path))
            }
        }
    }

    /// Stores the bootstrap admin token with `secret`. False when another replica, starting
    /// on the same new database, stored one first.
    async fn insert_bootstrap(&self, secret: Zeroizing<String>) -> anyhow::Result<bool> {
        let inserted = self
            .insert(
                BOOTSTRAP_TOKEN_NAME,
                Role::Admin,
                vec![],
                None,
                "bootstrap",
                secret,
            )
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(Error::AlreadyExists { .. }) => {
                tracing::info!("bootstrap admin token made by another replica");
                Ok(false)
            }
            Err(err) => anyhow::bail!("{err}"),
        }
    }
}

/// Writes an owner-only file: never through a symlink (`O_NOFOLLOW`), and mode 0600 even when
/// the file already existed with a wider mode.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt, os::unix::fs::PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| {
            anyhow::anyhow!("writing {} (a symlink is refused): {err}", path.display())
        })?;
    // `mode` applies only on creation; an existing file keeps its bits unless we fix them.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

const TOKEN_ID_PREFIX: &str = "tok-";

/// Whether `name` has the shape of a token id (`tok-` and 12 lowercase hex digits).
fn looks_like_token_id(name: &str) -> bool {
    name.strip_prefix(TOKEN_ID_PREFIX).is_some_and(|rest| {
        rest.len() == 12
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Longest token a caller may ask for, in days (100 years).
pub const MAX_EXPIRES_IN_DAYS: u64 = 36_500;

/// When a token issued at `now_millis` for `days` days expires, without overflow.
pub fn expire_after_days(now_millis: i64, days: u64) -> Result<i64> {
    if days == 0 || days > MAX_EXPIRES_IN_DAYS {
        return Err(Error::invalid(
            "expires_in_days",
            format!("must be between 1 and {MAX_EXPIRES_IN_DAYS} days"),
        ));
    }
    i64::try_from(days)
        .ok()
        .and_then(|d| d.checked_mul(24 * 3600 * 1000))
        .and_then(|ms| now_millis.checked_add(ms))
        .ok_or_else(|| Error::invalid("expires_in_days", "is too far in the future"))
}

/// A caller-supplied expiry (`google.protobuf.Timestamp` parts) in milliseconds since the epoch,
/// without overflow: anything before 1970 or after year 9999 is refused.
pub fn expire_from_timestamp(seconds: i64, nanos: i32) -> Result<i64> {
    // 9999-12-31T23:59:59Z, the end of the range `Timestamp` promises.
    const MAX_SECONDS: i64 = 253_402_300_799;
    if !(0..=MAX_SECONDS).contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
        return Err(Error::invalid(
            "expire_time",
            "must be a valid time between 1970 and 9999",
        ));
    }
    // In range by the check above: at most 253_402_300_799_999.
    Ok(seconds * 1000 + i64::from(nanos / 1_000_000))
}

/// Why a bootstrap secret is too weak, if it is. 32 random bytes are at least 43 characters in
/// base64 (64 in hex); shorter values cannot hold them, and values built from few distinct
/// characters, repeats or runs (`aaaa`, `abcabc`, `0123456`) are guessable whatever their length.
/// The thresholds are loose enough that real random output (base64 or hex) always passes.
pub fn check_bootstrap_secret(secret: &str) -> std::result::Result<(), String> {
    const MIN_LEN: usize = 43;
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < MIN_LEN {
        return Err(format!(
            "it has {} characters; at least {MIN_LEN} are needed",
            chars.len()
        ));
    }
    if chars.iter().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains whitespace or control characters".into());
    }
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 12 {
        return Err(format!(
            "it uses only {} distinct characters",
            distinct.len()
        ));
    }
    // Seven characters in a row that repeat or step by one (`aaaaaaa`, `abcdefg`, `7654321`).
    const RUN: usize = 7;
    for window in chars.windows(RUN) {
        let steps: Vec<i64> = window
            .windows(2)
            .map(|p| i64::from(u32::from(p[1])) - i64::from(u32::from(p[0])))
            .collect();
        if steps.iter().all(|s| *s == steps[0]) && steps[0].abs() <= 1 {
            // Never quote the value: part of a secret is still a secret.
            return Err(format!(
                "it contains {RUN} characters in a row that repeat or count up or down"
            ));
        }
    }
    // Any eight characters that occur twice: a pattern, not randomness.
    const REPEAT: usize = 8;
    let mut seen = std::collections::HashSet::new();
    for window in chars.windows(REPEAT) {
        if !seen.insert(window) {
            return Err(format!("it repeats a sequence of {REPEAT} characters"));
        }
    }
    Ok(())
}

/// The principal a stored token stands for.
pub fn principal(row: &ApiTokenRow) -> Option<Principal> {
    let clusters: Vec<String> = serde_json::from_str(&row.cluster_ids).ok()?;
    Some(Principal {
        token_id: row.id.clone(),
        name: row.name.clone(),
        role: Role::parse(&row.role)?,
        clusters: (!clusters.is_empty()).then_some(clusters),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(*a, *b);
        assert!(a.starts_with("flt_") && a.len() > 40);
        assert_eq!(hash("abc").len(), 64);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        for _ in 0..200 {
            check_bootstrap_secret(&new_secret()).expect("generated tokens are strong enough");
        }
        assert!(!looks_like_token_id(&new_secret()));
    }

    #[test]
    fn bootstrap_secret_needs_32_random_bytes() {
        // Real random output in the usual encodings passes, every time.
        for _ in 0..500 {
            let mut bytes = [0u8; 32];
            OsRng.fill_bytes(&mut bytes);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            check_bootstrap_secret(&hex).expect("hex of 32 bytes");
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            check_bootstrap_secret(&b64).expect("base64 of 32 bytes");
            check_bootstrap_secret(&URL_SAFE_NO_PAD.encode(bytes)).expect("base64url");
        }
        let refused = [
            "",
            "short-secret",
            // 42 characters of good-looking randomness: one short of 32 bytes in base64.
            "Qm9vdHN0cmFwIHRva2VuIGZvciB0ZXN0czogMTIzNA",
            &"a".repeat(64),
            &"ab".repeat(32),
            &"0123456789abcdef".repeat(4),
            "flt_test-admin-token-0123456789abcdefghijklmnopqrstuvwxyz",
            "correct horse battery staple correct horse battery staple",
            "Xk3pQ9vLm2RtY7wZs5NbHc8JdFg4KaE6Uq1iOo0Pu-zyxwvutsrq",
            "Xk3pQ9vLm2RtY7wZs5NbHc8JdFg4Xk3pQ9vLm2RtY7wZs5NbHc",
        ];
        for secret in refused {
            assert!(
                check_bootstrap_secret(secret).is_err(),
                "{secret:?} must be refused"
            );
        }
        check_bootstrap_secret("Xk3pQ9vLm2RtY7wZs5NbHc8JdFg4KaE6Uq1iOo0Pu_T").expect("43 chars");
    }

    #[test]
    fn token_lifetimes_never_overflow() {
        let now = 1_800_000_000_000;
        assert_eq!(expire_after_days(now, 1).unwrap(), now + 86_400_000);
        assert_eq!(
            expire_after_days(now, MAX_EXPIRES_IN_DAYS).unwrap(),
            now + 36_500 * 86_400_000
        );
        for days in [0, MAX_EXPIRES_IN_DAYS + 1, u64::from(u32::MAX), u64::MAX] {
            let err = expire_after_days(now, days).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { field, .. } if field == "expires_in_days"),
                "{days}: {err:?}"
            );
        }
        assert!(
            expire_after_days(i64::MAX - 1, 1).is_err(),
            "no wrap near i64::MAX"
        );
        assert_eq!(expire_from_timestamp(1, 500_000_000).unwrap(), 1_500);
        assert_eq!(
            expire_from_timestamp(253_402_300_799, 999_999_999).unwrap(),
            253_402_300_799_999
        );
        for (seconds, nanos) in [
            (i64::MAX, 0),
            (i64::MAX / 1000 + 1, 0),
            (253_402_300_800, 0),
            (-1, 0),
            (i64::MIN, 0),
            (1, -1),
            (1, 1_000_000_000),
        ] {
            let err = expire_from_timestamp(seconds, nanos).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { field, .. } if field == "expire_time"),
                "{seconds},{nanos}: {err:?}"
            );
        }
    }

    /// Replicas starting together on a new database: the one whose bootstrap insert comes
    /// second is told so (and goes on) instead of failing its start.
    #[tokio::test]
    async fn a_second_bootstrap_insert_yields_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("flotilla.db").display());
        let store = crate::store::Store::open(&url).await.unwrap();
        let first = Tokens::new(store.clone());
        let second = Tokens::new(store.clone());
        let secret = new_secret();
        assert!(first.insert_bootstrap(secret.clone()).await.unwrap());
        assert!(!second.insert_bootstrap(new_secret()).await.unwrap());
        assert_eq!(store.count_tokens().await.unwrap(), 1);
        assert!(
            first.bootstrap(dir.path(), None).await.unwrap().is_none(),
            "no second token and no file once one exists"
        );
        assert!(!dir.path().join("admin-token").exists());
    }

    #[test]
    fn names_that_look_like_ids_are_spotted() {
        assert!(looks_like_token_id("tok-0123456789ab"));
        assert!(!looks_like_token_id("tok-0123456789abc"));
        assert!(!looks_like_token_id("tok-0123456789AB"));
        assert!(!looks_like_token_id("ci-deployer"));
    }

    #[test]
    fn private_files_are_not_written_through_symlinks_and_get_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        let link = dir.path().join("admin-token");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(
            write_private(&link, b"secret").is_err(),
            "a symlink is refused"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");

        let existing = dir.path().join("existing");
        std::fs::write(&existing, "old").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&existing, b"new").unwrap();
        let meta = std::fs::metadata(&existing).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "new\n");
    }
}
