//! Reaching one registry: its stored row and credential become a [`RegistryTarget`], the
//! provider opens a [`RegistryClient`] for it. Clients are kept per registry and rebuilt when
//! the registry or its credential changes (a rotated secret is picked up on the next call).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::adapters::{
    Credentials,
    registry::{
        CredentialKind, RegistryClient, RegistryCredentials, RegistryProvider, RegistryProviders,
        RegistryTarget,
    },
};
use crate::service::{
    Error, Result,
    registries::vendor_error,
    secrets::credentials::{CredentialSecret, CredentialVault},
};
use crate::store::{RegistryRow, Store};

/// What a cached client was built from; a different key means the client is stale.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientKey {
    version: i64,
    credential_id: Option<String>,
    credential_rotated: i64,
}

/// Clients by registry id, with what each was built from.
type Clients = HashMap<String, (ClientKey, Arc<dyn RegistryClient>)>;

pub struct RegistryConnector {
    store: Store,
    vault: Arc<CredentialVault>,
    providers: RegistryProviders,
    clients: Mutex<Clients>,
}

impl RegistryConnector {
    pub fn new(store: Store, vault: Arc<CredentialVault>, providers: RegistryProviders) -> Self {
        RegistryConnector {
            store,
            vault,
            providers,
            clients: Mutex::default(),
        }
    }

    pub fn providers(&self) -> &RegistryProviders {
        &self.providers
    }

    /// The provider named `id`; an unknown one is INVALID_ARGUMENT on `field`.
    pub fn provider(&self, field: &str, id: &str) -> Result<Arc<dyn RegistryProvider>> {
        if id.is_empty() {
            return Err(Error::invalid(
                field,
                format!("is required: one of {}", self.known().join(", ")),
            ));
        }
        self.providers.get(id).ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "unknown registry provider {id:?}; this server supports {}",
                    self.known().join(", ")
                ),
            )
        })
    }

    fn known(&self) -> Vec<&'static str> {
        self.providers.all().map(|p| p.id()).collect()
    }

    /// The stored registry `id`; NOT_FOUND when there is none.
    pub async fn row(&self, id: &str) -> Result<RegistryRow> {
        if id.is_empty() {
            return Err(Error::invalid("registry_id", "is required"));
        }
        self.store
            .get_registry(id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "registry",
                id: id.to_string(),
            })
    }

    /// The client of a stored registry, reused while neither it nor its credential changed.
    pub async fn client(
        &self,
        row: &RegistryRow,
    ) -> Result<(Arc<dyn RegistryProvider>, Arc<dyn RegistryClient>)> {
        let provider =
            self.providers
                .get(&row.provider)
                .ok_or_else(|| Error::FailedPrecondition {
                    reason: "PROVIDER_NOT_CONFIGURED",
                    message: format!(
                        "registry {:?} is of provider {:?}, which this server does not offer",
                        row.id, row.provider
                    ),
                })?;
        let credential_rotated = match &row.credential_id {
            Some(id) => self.vault.get(id).await?.rotate_millis,
            None => 0,
        };
        let key = ClientKey {
            version: row.version,
            credential_id: row.credential_id.clone(),
            credential_rotated,
        };
        if let Some((cached_key, client)) = self.lock().get(&row.id)
            && *cached_key == key
        {
            return Ok((provider, client.clone()));
        }
        let credentials = self
            .credentials(
                provider.as_ref(),
                "registry.credential_id",
                row.credential_id.as_deref(),
            )
            .await?;
        let target = target_of(row, credentials);
        let client = provider
            .open(target)
            .map_err(|e| vendor_error(e, "registry.endpoint"))?;
        self.lock().insert(row.id.clone(), (key, client.clone()));
        Ok((provider, client))
    }

    /// Drops the cached client of a registry (forgotten, or changed).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clients> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens credential `id` (none: anonymous) as the provider takes it. A credential that does
    /// not exist, or of a kind the provider does not accept, is INVALID_ARGUMENT on `field`.
    pub async fn credentials(
        &self,
        provider: &dyn RegistryProvider,
        field: &str,
        id: Option<&str>,
    ) -> Result<RegistryCredentials> {
        let accepted = provider.credential_kinds();
        let takes = || {
            accepted
                .iter()
                .map(|k| kind_name(*k))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            if accepted.contains(&CredentialKind::Anonymous) {
                return Ok(RegistryCredentials::Anonymous);
            }
            return Err(Error::invalid(
                field,
                format!(
                    "is required: provider {:?} takes {} credentials (create one with \
                     CredentialService)",
                    provider.id(),
                    takes()
                ),
            ));
        };
        let secret = match self.vault.open_secret(id).await {
            Ok(secret) => secret,
            Err(Error::NotFound { .. }) => {
                return Err(Error::invalid(
                    field,
                    format!("credential {id:?} does not exist"),
                ));
            }
            Err(other) => return Err(other),
        };
        let kind = match &secret {
            CredentialSecret::UsernamePassword { .. } => CredentialKind::UsernamePassword,
            CredentialSecret::RobotToken { .. } => CredentialKind::RobotToken,
            CredentialSecret::AccessKey { .. } => CredentialKind::AccessKey,
            CredentialSecret::ApiKey { .. } => CredentialKind::ApiKey,
        };
        if !accepted.contains(&kind) {
            return Err(Error::invalid(
                field,
                format!(
                    "credential {id:?} holds {} credentials; provider {:?} takes {}",
                    kind_name(kind),
                    provider.id(),
                    takes()
                ),
            ));
        }
        match secret {
            CredentialSecret::UsernamePassword { username, password } => {
                Ok(RegistryCredentials::UsernamePassword { username, password })
            }
            // A robot account logs in like a user: its name and token.
            CredentialSecret::RobotToken { robot_name, token } => {
                Ok(RegistryCredentials::UsernamePassword {
                    username: robot_name,
                    password: token,
                })
            }
            CredentialSecret::AccessKey {
                access_key_id,
                access_key_secret,
            } => Ok(RegistryCredentials::Cloud(Credentials::AccessKey {
                id: access_key_id,
                secret: access_key_secret,
            })),
            CredentialSecret::ApiKey { key_id, token } => {
                Ok(RegistryCredentials::Cloud(Credentials::ApiKey {
                    key_id,
                    token,
                }))
            }
        }
    }
}

/// Where a stored registry is and what it logs in with.
pub fn target_of(row: &RegistryRow, credentials: RegistryCredentials) -> RegistryTarget {
    RegistryTarget {
        endpoint: row.endpoint.clone(),
        region: row.region.clone(),
        instance_id: row.vendor_instance_id.clone(),
        ca_pem: row.ca_pem.as_ref().map(|pem| pem.as_bytes().to_vec()),
        credentials,
    }
}

pub fn kind_name(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Anonymous => "anonymous (no credential)",
        CredentialKind::UsernamePassword => "username/password",
        CredentialKind::RobotToken => "robot token",
        CredentialKind::AccessKey => "access key",
        CredentialKind::ApiKey => "API key",
    }
}
