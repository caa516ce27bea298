//! API tokens: issued once, stored as a hash, checked on every call (with a short cache).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
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
    /// Verified tokens by secret hash: when read, the row, and the principal it stands for.
    cache: Mutex<HashMap<String, CachedToken>>,
    touched: Mutex<HashMap<String, i64>>,
}

type CachedToken = (Instant, ApiTokenRow, Option<Principal>);

pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
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
        for (i, id) in clusters.iter().enumerate() {
            validate::id(&format!("cluster_ids[{i}]"), id)?;
        }
        let now = now_millis();
        if expire_millis.is_some_and(|t| t <= now) {
            return Err(Error::invalid("expire_time", "is in the past"));
        }
        let row = ApiTokenRow {
            id: format!("tok-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
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
        let hash = hash(secret);
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&hash)
                .filter(|(at, _, _)| at.elapsed() < CACHE_TTL)
                .map(|(_, row, principal)| (row.clone(), principal.clone()))
        };
        let (row, principal) = match cached {
            Some(found) => found,
            None => {
                let row = self
                    .store
                    .token_by_hash(&hash)
                    .await
                    .map_err(|e| AuthError::Unavailable(e.to_string()))?
                    .ok_or(AuthError::Unknown)?;
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() > 10_000 {
                    cache.clear();
                }
                let principal = principal(&row);
                cache.insert(hash, (Instant::now(), row.clone(), principal.clone()));
                (row, principal)
            }
        };
        let now = now_millis();
        if row.revoke_time.is_some() {
            return Err(AuthError::Revoked(row.name));
        }
        if row.expire_time.is_some_and(|t| t <= now) {
            return Err(AuthError::Expired(row.name));
        }
        self.touch(&row.id, now);
        principal.ok_or(AuthError::Unknown)
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
        let mut row = self
            .store
            .token_by_id_or_name(token_id)
            .await
            .map_err(unavailable)?;
        if row.as_ref().is_some_and(|r| r.id != token_id) {
            // Another token is *named* like this id: look the id up among all of them.
            row = self
                .store
                .list_tokens(true)
                .await
                .map_err(unavailable)?
                .into_iter()
                .find(|r| r.id == token_id);
        }
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

    /// Revokes by id or name; effective at once on this server.
    pub async fn revoke(&self, id_or_name: &str) -> Result<ApiTokenRow> {
        if id_or_name.is_empty() {
            return Err(Error::invalid("token_id", "is required"));
        }
        let row = self
            .store
            .token_by_id_or_name(id_or_name)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "API token",
                id: id_or_name.to_string(),
            })?;
        self.store.revoke_token(&row.id, now_millis()).await?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&row.secret_hash);
        tracing::info!(token = %row.name, "API token revoked");
        self.store
            .token_by_id_or_name(&row.id)
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
                if secret.len() < 24 {
                    anyhow::bail!("FLOTILLA_BOOTSTRAP_TOKEN must be at least 24 characters");
                }
                self.insert(
                    BOOTSTRAP_TOKEN_NAME,
                    Role::Admin,
                    vec![],
                    None,
                    "bootstrap",
                    Zeroizing::new(secret.to_string()),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                tracing::info!("bootstrap admin token taken from FLOTILLA_BOOTSTRAP_TOKEN");
                Ok(None)
            }
            None => {
                let issued = self
                    .issue(BOOTSTRAP_TOKEN_NAME, Role::Admin, vec![], None, "bootstrap")
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let path = data_dir.join("admin-token");
                write_private(&path, issued.secret.as_bytes())?;
                tracing::warn!(
                    path = %path.display(),
                    "first start: an admin API token was written to this file; keep it safe"
                );
                Ok(Some(path))
            }
        }
    }
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
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
    }
}
