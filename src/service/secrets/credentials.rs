//! Vendor and registry credentials: stored encrypted, listed as metadata only.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::service::{
    Error, Result, filter,
    paging::Page,
    secrets::sealed::{open_row, seal_row},
    validate,
};
use crate::{
    adapters::CredentialKind,
    crypto::{Keyring, SecretOwner},
    store::{CredentialQuery, CredentialRow, SecretRow, Store, now_millis},
};

/// The providers a credential can be for and the kinds each takes, in the order errors list
/// them. Each provider declares its kinds itself; the wiring collects them here, so this layer
/// names no vendor.
#[derive(Debug, Clone, Default)]
pub struct AcceptedCredentials {
    providers: Vec<(&'static str, &'static [CredentialKind])>,
}

impl AcceptedCredentials {
    /// Adds (or replaces) what `provider` takes.
    pub fn with(mut self, provider: &'static str, kinds: &'static [CredentialKind]) -> Self {
        match self.providers.iter_mut().find(|(id, _)| *id == provider) {
            Some(entry) => entry.1 = kinds,
            None => self.providers.push((provider, kinds)),
        }
        self
    }

    /// The kinds `provider` takes; `None` for a provider this server does not have.
    pub fn kinds(&self, provider: &str) -> Option<&'static [CredentialKind]> {
        self.providers
            .iter()
            .find(|(id, _)| *id == provider)
            .map(|(_, kinds)| *kinds)
    }

    fn providers(&self) -> Vec<&'static str> {
        self.providers.iter().map(|(id, _)| *id).collect()
    }
}

/// The secret part of a credential. Write-only through the API.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CredentialSecret {
    AccessKey {
        access_key_id: String,
        access_key_secret: Zeroizing<String>,
    },
    ApiKey {
        key_id: String,
        token: Zeroizing<String>,
    },
    UsernamePassword {
        username: String,
        password: Zeroizing<String>,
    },
    RobotToken {
        robot_name: String,
        token: Zeroizing<String>,
    },
}

impl std::fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialSecret::{}(<redacted>)", self.kind())
    }
}

impl CredentialSecret {
    /// The stored type name, as in `CredentialType` without its prefix.
    pub fn kind(&self) -> &'static str {
        self.credential_kind().as_str()
    }

    pub fn credential_kind(&self) -> CredentialKind {
        match self {
            CredentialSecret::AccessKey { .. } => CredentialKind::AccessKey,
            CredentialSecret::ApiKey { .. } => CredentialKind::ApiKey,
            CredentialSecret::UsernamePassword { .. } => CredentialKind::UsernamePassword,
            CredentialSecret::RobotToken { .. } => CredentialKind::RobotToken,
        }
    }

    /// The public half, shown in listings.
    fn principal(&self) -> &str {
        match self {
            CredentialSecret::AccessKey { access_key_id, .. } => access_key_id,
            CredentialSecret::ApiKey { key_id, .. } => key_id,
            CredentialSecret::UsernamePassword { username, .. } => username,
            CredentialSecret::RobotToken { robot_name, .. } => robot_name,
        }
    }

    fn check(&self, field: &str) -> Result<()> {
        let (public, secret, public_name, secret_name) = match self {
            CredentialSecret::AccessKey {
                access_key_id,
                access_key_secret,
            } => (
                access_key_id.as_str(),
                access_key_secret.as_str(),
                "access_key_id",
                "access_key_secret",
            ),
            CredentialSecret::ApiKey { key_id, token } => {
                (key_id.as_str(), token.as_str(), "key_id", "token")
            }
            CredentialSecret::UsernamePassword { username, password } => {
                (username.as_str(), password.as_str(), "username", "password")
            }
            CredentialSecret::RobotToken { robot_name, token } => {
                (robot_name.as_str(), token.as_str(), "robot_name", "token")
            }
        };
        let sub = match self {
            CredentialSecret::AccessKey { .. } => "access_key",
            CredentialSecret::ApiKey { .. } => "api_key",
            CredentialSecret::UsernamePassword { .. } => "username_password",
            CredentialSecret::RobotToken { .. } => "robot_token",
        };
        if public.trim().is_empty() {
            return Err(Error::invalid(
                format!("{field}.{sub}.{public_name}"),
                "is required",
            ));
        }
        if secret.is_empty() {
            return Err(Error::invalid(
                format!("{field}.{sub}.{secret_name}"),
                "is required",
            ));
        }
        if public.len() > 1024 || secret.len() > 64 * 1024 {
            return Err(Error::invalid(format!("{field}.{sub}"), "is too long"));
        }
        Ok(())
    }
}

/// A credential's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    pub kind: String,
    pub provider: String,
    pub principal: String,
    pub used_by: Vec<String>,
    pub create_millis: i64,
    pub rotate_millis: i64,
}

pub struct NewCredential {
    pub id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    pub provider: String,
    pub secret: Option<CredentialSecret>,
}

pub struct CredentialList {
    pub credentials: Vec<Credential>,
    pub next_page_token: String,
    pub total_size: i32,
}

pub struct CredentialVault {
    store: Store,
    keyring: Arc<Keyring>,
    accepted: AcceptedCredentials,
}

impl CredentialVault {
    pub fn new(store: Store, keyring: Arc<Keyring>, accepted: AcceptedCredentials) -> Self {
        CredentialVault {
            store,
            keyring,
            accepted,
        }
    }

    pub async fn create(&self, new: NewCredential) -> Result<Credential> {
        validate::id("credential_id", &new.id)?;
        validate::display_name("display_name", &new.display_name)?;
        validate::labels("labels", &new.labels)?;
        let Some(allowed) = self.accepted.kinds(&new.provider) else {
            return Err(Error::invalid(
                "provider",
                format!(
                    "{:?} is not one of {}",
                    new.provider,
                    self.accepted.providers().join(", ")
                ),
            ));
        };
        let secret = new
            .secret
            .ok_or_else(|| Error::invalid("secret", "is required"))?;
        secret.check("secret")?;
        if !allowed.contains(&secret.credential_kind()) {
            let names: Vec<&str> = allowed.iter().map(|kind| kind.as_str()).collect();
            return Err(Error::invalid(
                "secret",
                format!(
                    "provider {:?} takes {} credentials, not {}",
                    new.provider,
                    names.join(" or "),
                    secret.kind()
                ),
            ));
        }
        if self.store.get_credential(&new.id).await?.is_some() {
            return Err(Error::AlreadyExists {
                reason: "CREDENTIAL_ID_TAKEN",
                message: format!("a credential with id {:?} already exists", new.id),
            });
        }
        let now = now_millis();
        let secret_row = self.seal(&new.id, &secret, now)?;
        let row = CredentialRow {
            display_name: if new.display_name.is_empty() {
                new.id.clone()
            } else {
                new.display_name
            },
            id: new.id,
            labels: serde_json::to_string(&new.labels)
                .map_err(|e| Error::Internal(e.to_string()))?,
            kind: secret.kind().into(),
            provider: new.provider,
            principal: secret.principal().into(),
            secret_id: secret_row.id.clone(),
            create_time: now,
            rotate_time: now,
        };
        self.store
            .insert_credential_with_secret(&secret_row, &row)
            .await?;
        self.get(&row.id).await
    }

    pub async fn get(&self, id: &str) -> Result<Credential> {
        let row = self.row(id).await?;
        let used_by = self.used_by(id).await?;
        to_credential(row, used_by)
    }

    pub async fn list(
        &self,
        page_size: i32,
        page_token: &str,
        filter_text: &str,
    ) -> Result<CredentialList> {
        let (query, labels) = parse_filter(filter_text)?;
        let page = Page::parse(page_size, page_token, &format!("credentials|{filter_text}"))?;
        let mut rows = self.store.list_credentials(&query).await?;
        rows.retain(|row| {
            let have: BTreeMap<String, String> =
                serde_json::from_str(&row.labels).unwrap_or_default();
            labels.iter().all(|(k, v)| match (have.get(k), v) {
                (Some(actual), Some(wanted)) => actual == wanted,
                (Some(_), None) => true,
                (None, _) => false,
            })
        });
        let total = rows.len() as i64;
        let mut credentials = Vec::new();
        for row in rows
            .into_iter()
            .skip(page.offset as usize)
            .take(page.size as usize)
        {
            let used_by = self.used_by(&row.id).await?;
            credentials.push(to_credential(row, used_by)?);
        }
        Ok(CredentialList {
            next_page_token: page.next_token(credentials.len(), total),
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
            credentials,
        })
    }

    /// Replaces the secret; it must be of the same type.
    pub async fn rotate(&self, id: &str, secret: Option<CredentialSecret>) -> Result<Credential> {
        let row = self.row(id).await?;
        let secret = secret.ok_or_else(|| Error::invalid("secret", "is required"))?;
        secret.check("secret")?;
        if secret.kind() != row.kind {
            return Err(Error::invalid(
                "secret",
                format!(
                    "credential {id:?} holds a {} secret; rotate it with the same type",
                    row.kind
                ),
            ));
        }
        let secret_row = self.seal(id, &secret, now_millis())?;
        self.store
            .rotate_credential_secret(id, secret.principal(), &secret_row)
            .await?;
        tracing::info!(credential = %id, "credential rotated");
        self.get(id).await
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        if id.is_empty() {
            return Err(Error::invalid("credential_id", "is required"));
        }
        match self.store.delete_credential_unless_used(id).await? {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::NotFound {
                kind: "credential",
                id: id.to_string(),
            }),
            Err(users) => {
                let mut named = Vec::new();
                if !users.clusters.is_empty() {
                    named.push(format!("cluster(s) {}", users.clusters.join(", ")));
                }
                if !users.registries.is_empty() {
                    named.push(format!("registr(ies) {}", users.registries.join(", ")));
                }
                Err(Error::FailedPrecondition {
                    reason: "CREDENTIAL_IN_USE",
                    message: format!(
                        "credential {id:?} is used by {}; change or delete them first",
                        named.join(" and ")
                    ),
                })
            }
        }
    }

    /// The secret, for adapters that sign vendor requests.
    pub async fn open_secret(&self, id: &str) -> Result<CredentialSecret> {
        let row = self.row(id).await?;
        let secret = self
            .store
            .get_secret(&row.secret_id)
            .await?
            .ok_or_else(|| Error::Internal(format!("secret of credential {id} missing")))?;
        let plain = open_row(&self.keyring, SecretOwner::Credential(id), &secret)?;
        serde_json::from_slice(plain.expose())
            .map_err(|_| Error::Internal(format!("secret of credential {id} does not parse")))
    }

    /// The secret as a vendor adapter takes it; registry-only kinds are refused.
    pub async fn vendor_credentials(&self, id: &str) -> Result<crate::adapters::Credentials> {
        use crate::adapters::Credentials;
        match self.open_secret(id).await? {
            CredentialSecret::AccessKey {
                access_key_id,
                access_key_secret,
            } => Ok(Credentials::AccessKey {
                id: access_key_id,
                secret: access_key_secret,
            }),
            CredentialSecret::ApiKey { key_id, token } => Ok(Credentials::ApiKey { key_id, token }),
            other => Err(Error::FailedPrecondition {
                reason: "CREDENTIAL_KIND",
                message: format!(
                    "credential {id:?} holds a {} secret; cluster vendors need an access key or \
                     an API key",
                    other.kind()
                ),
            }),
        }
    }

    /// What uses a credential: "clusters/<id>" and "registries/<id>".
    async fn used_by(&self, id: &str) -> Result<Vec<String>> {
        let clusters = self.store.clusters_using_credential(id).await?;
        let registries = self.store.registries_using_credential(id).await?;
        Ok(clusters
            .into_iter()
            .map(|c| format!("clusters/{c}"))
            .chain(registries.into_iter().map(|r| format!("registries/{r}")))
            .collect())
    }

    async fn row(&self, id: &str) -> Result<CredentialRow> {
        if id.is_empty() {
            return Err(Error::invalid("credential_id", "is required"));
        }
        self.store
            .get_credential(id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "credential",
                id: id.to_string(),
            })
    }

    /// Seals `secret` into a new row bound to credential `credential_id`.
    fn seal(&self, credential_id: &str, secret: &CredentialSecret, now: i64) -> Result<SecretRow> {
        let id = format!("sec-{}", uuid::Uuid::new_v4().simple());
        let plain =
            Zeroizing::new(serde_json::to_vec(secret).map_err(|e| Error::Internal(e.to_string()))?);
        seal_row(
            &self.keyring,
            SecretOwner::Credential(credential_id),
            &id,
            &plain,
            now,
        )
    }
}

fn to_credential(row: CredentialRow, used_by: Vec<String>) -> Result<Credential> {
    Ok(Credential {
        labels: serde_json::from_str(&row.labels)
            .map_err(|_| Error::Internal(format!("credential {}: bad labels", row.id)))?,
        id: row.id,
        display_name: row.display_name,
        kind: row.kind,
        provider: row.provider,
        principal: row.principal,
        used_by,
        create_millis: row.create_time,
        rotate_millis: row.rotate_time,
    })
}

/// Label tests of a credentials filter: key and wanted value (`None`: present).
type LabelTests = Vec<(String, Option<String>)>;

/// The store query and label tests of a `ListCredentials` filter.
pub(crate) fn parse_filter(filter_text: &str) -> Result<(CredentialQuery, LabelTests)> {
    let mut query = CredentialQuery::default();
    let mut labels = Vec::new();
    for term in filter::parse(filter_text)? {
        match term {
            filter::Term::Equals { field, value } => match field.as_str() {
                "provider" => query.provider = Some(value),
                "type" => {
                    query.kind = Some(
                        value
                            .to_ascii_uppercase()
                            .trim_start_matches("CREDENTIAL_TYPE_")
                            .to_string(),
                    )
                }
                other => match other.strip_prefix("labels.") {
                    Some(key) if !key.is_empty() => labels.push((key.to_string(), Some(value))),
                    _ => {
                        return Err(Error::invalid(
                            "filter",
                            format!(
                                "cannot filter on {other:?}; use provider, type or labels.<key>"
                            ),
                        ));
                    }
                },
            },
            filter::Term::Present { field } => match field.strip_prefix("labels.") {
                Some(key) if !key.is_empty() => labels.push((key.to_string(), None)),
                _ => return Err(Error::invalid("filter", format!("cannot test {field:?}"))),
            },
        }
    }
    Ok((query, labels))
}
