//! Registries beside the clusters: which ones Flotilla knows and how to reach them
//! ([`RegistryCatalog`]), what the prober last saw of each ([`status`]), and what is in them
//! ([`content`]): namespaces, repositories, artifacts, tags, charts, and where an artifact runs
//! ([`deployments`]). Every call to a registry goes through the provider's adapter
//! (`adapters::registry`); registries are not Kubernetes objects.

pub mod connect;
pub mod content;
pub mod cursor;
pub mod deployments;
pub mod names;
pub mod pull_secret_renewal;
pub mod pull_secrets;
pub mod status;

use std::{collections::BTreeMap, sync::Arc};

use crate::adapters::{
    ErrorClass, VendorError,
    registry::{LoginInfo, RegistryCapability, RegistryClient, RegistryProvider, TargetViolation},
};
use crate::service::{
    Error, Result, clusters::Warning, filter, paging::Page, validate, vendor_errors,
};
use crate::store::{RegistryQuery, RegistryRow, Store, now_millis};

use connect::{RegistryConnector, target_of};

/// The adapter's value types, as the layers above see them (the API converts these).
pub use crate::adapters::registry::{
    Artifact, ArtifactKind, Chart, ChartVersion, CredentialKind, Namespace, Repository,
};
use status::RegistryStatusBoard;

/// What the prober last saw of a registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryStatus {
    pub reachable: bool,
    pub unreachable_reason: String,
    pub last_check_millis: Option<i64>,
    pub api_version: String,
    pub credential_expire_millis: Option<i64>,
    pub warnings: Vec<Warning>,
}

/// A registry as the service layer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    pub id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    pub provider: String,
    pub endpoint: String,
    pub region: String,
    pub vendor_instance_id: String,
    /// Empty for an anonymous registry.
    pub credential_id: String,
    pub status: RegistryStatus,
    pub create_millis: i64,
    pub update_millis: i64,
}

impl TryFrom<RegistryRow> for Registry {
    type Error = Error;

    fn try_from(row: RegistryRow) -> Result<Registry> {
        Ok(Registry {
            labels: serde_json::from_str(&row.labels)
                .map_err(|_| Error::Internal(format!("registry {}: bad labels", row.id)))?,
            id: row.id,
            display_name: row.display_name,
            provider: row.provider,
            endpoint: row.endpoint,
            region: row.region,
            vendor_instance_id: row.vendor_instance_id,
            credential_id: row.credential_id.unwrap_or_default(),
            status: RegistryStatus::default(),
            create_millis: row.create_time,
            update_millis: row.update_time,
        })
    }
}

/// A registry to register, as received.
#[derive(Debug, Clone, Default)]
pub struct NewRegistry {
    pub id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    pub provider: String,
    pub endpoint: String,
    pub region: String,
    pub vendor_instance_id: String,
    pub credential_id: String,
    pub ca_pem: String,
    pub validate_only: bool,
}

/// Changes to a registry, as the field mask says.
#[derive(Debug, Clone, Default)]
pub struct UpdateRegistry {
    pub id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    pub credential_id: String,
    /// Field-mask paths: "display_name", "labels", "credential_id".
    pub paths: Vec<String>,
    pub validate_only: bool,
}

/// A list request, as received.
#[derive(Debug, Clone, Default)]
pub struct ListRegistries {
    pub page_size: i32,
    pub page_token: String,
    pub filter: String,
}

/// One page of registries.
#[derive(Debug, Clone)]
pub struct RegistryList {
    pub registries: Vec<Registry>,
    pub next_page_token: String,
    pub total_size: i32,
}

/// A provider this server offers.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub id: &'static str,
    pub display_name: &'static str,
    pub capability: RegistryCapability,
    pub credential_kinds: &'static [crate::adapters::registry::CredentialKind],
}

/// The registries this server knows, with what the prober last saw of each.
pub struct RegistryCatalog {
    store: Store,
    connector: Arc<RegistryConnector>,
    board: Arc<RegistryStatusBoard>,
}

impl RegistryCatalog {
    pub fn new(
        store: Store,
        connector: Arc<RegistryConnector>,
        board: Arc<RegistryStatusBoard>,
    ) -> Self {
        RegistryCatalog {
            store,
            connector,
            board,
        }
    }

    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.connector
            .providers()
            .all()
            .map(|p| ProviderInfo {
                id: p.id(),
                display_name: p.display_name(),
                capability: p.capability(),
                credential_kinds: p.credential_kinds(),
            })
            .collect()
    }

    fn with_status(&self, row: RegistryRow) -> Result<Registry> {
        let mut registry = Registry::try_from(row)?;
        if let Some(status) = self.board.get(&registry.id) {
            registry.status = status;
        }
        Ok(registry)
    }

    /// Checks the definition, logs in, and only then stores it. A definition that breaks a
    /// rule is INVALID_ARGUMENT on its field before anything is sent; a registry that cannot be
    /// logged in to is refused with the adapter's reason; either way nothing is written.
    pub async fn create(&self, new: NewRegistry) -> Result<Registry> {
        validate::id("registry.id", &new.id)?;
        validate::display_name("registry.display_name", &new.display_name)?;
        validate::labels("registry.labels", &new.labels)?;
        let provider = self
            .connector
            .provider("registry.provider", &new.provider)?;
        let endpoint = names::endpoint("registry.endpoint", &new.endpoint)?;
        let ca_pem = names::ca_pem("ca_pem", &new.ca_pem)?;
        let credentials = self
            .connector
            .credentials(
                provider.as_ref(),
                "registry.credential_id",
                Some(new.credential_id.as_str()),
            )
            .await?;
        let now = now_millis();
        let row = RegistryRow {
            display_name: if new.display_name.is_empty() {
                new.id.clone()
            } else {
                new.display_name
            },
            id: new.id,
            labels: serde_json::to_string(&new.labels)
                .map_err(|e| Error::Internal(e.to_string()))?,
            provider: new.provider,
            endpoint,
            region: new.region,
            vendor_instance_id: new.vendor_instance_id,
            credential_id: Some(new.credential_id).filter(|c| !c.is_empty()),
            ca_pem,
            version: 1,
            create_time: now,
            update_time: now,
        };
        let target = target_of(&row, credentials);
        check_target(provider.as_ref(), &target)?;
        if self.store.get_registry(&row.id).await?.is_some() {
            return Err(Error::AlreadyExists {
                reason: "REGISTRY_ID_TAKEN",
                message: format!("a registry with id {:?} already exists", row.id),
            });
        }
        let client = provider
            .open(target)
            .map_err(|e| vendor_error(e, "registry.endpoint"))?;
        let info = login(client.as_ref(), &row.endpoint).await?;
        if new.validate_only {
            let mut registry = Registry::try_from(row)?;
            registry.status = status::observed(Ok(&info), &RegistryStatus::default());
            return Ok(registry);
        }
        self.store
            .insert_registry(&row)
            .await
            .map_err(|e| match e {
                crate::store::Error::AlreadyExists(_) => Error::AlreadyExists {
                    reason: "REGISTRY_ID_TAKEN",
                    message: format!("a registry with id {:?} already exists", row.id),
                },
                other => other.into(),
            })?;
        self.board.record(&row.id, Ok(&info));
        tracing::info!(registry = %row.id, provider = %row.provider, "registry created");
        self.with_status(row)
    }

    pub async fn get(&self, id: &str) -> Result<Registry> {
        let row = self.connector.row(id).await?;
        self.with_status(row)
    }

    pub async fn list(&self, request: &ListRegistries) -> Result<RegistryList> {
        let query = parse_filter(&request.filter)?;
        let page = Page::parse(
            request.page_size,
            &request.page_token,
            &format!("registries|{}", request.filter),
        )?;
        let found = self
            .store
            .list_registries(&query, page.offset, page.size)
            .await?;
        Ok(RegistryList {
            next_page_token: page.next_token(found.rows.len(), found.total),
            total_size: i32::try_from(found.total).unwrap_or(i32::MAX),
            registries: found
                .rows
                .into_iter()
                .map(|row| self.with_status(row))
                .collect::<Result<_>>()?,
        })
    }

    /// Changes what the field mask names. A new credential is checked (kind, then a login with
    /// it) before anything is stored.
    pub async fn update(&self, request: UpdateRegistry) -> Result<Registry> {
        if request.paths.is_empty() {
            return Err(Error::invalid(
                "update_mask",
                "is required: name the fields to change (display_name, labels, credential_id)",
            ));
        }
        let current = self.connector.row(&request.id).await?;
        let mut row = current.clone();
        let mut login_with = None;
        for path in &request.paths {
            match path.as_str() {
                "display_name" => {
                    validate::display_name("registry.display_name", &request.display_name)?;
                    row.display_name = if request.display_name.is_empty() {
                        row.id.clone()
                    } else {
                        request.display_name.clone()
                    };
                }
                "labels" => {
                    validate::labels("registry.labels", &request.labels)?;
                    row.labels = serde_json::to_string(&request.labels)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                }
                "credential_id" => {
                    let provider = self
                        .connector
                        .provider("registry.provider", &row.provider)?;
                    let credentials = self
                        .connector
                        .credentials(
                            provider.as_ref(),
                            "registry.credential_id",
                            Some(request.credential_id.as_str()),
                        )
                        .await?;
                    row.credential_id =
                        Some(request.credential_id.clone()).filter(|c| !c.is_empty());
                    login_with = Some((provider, credentials));
                }
                other => {
                    return Err(Error::invalid(
                        "update_mask",
                        format!(
                            "{other:?} cannot be changed; use display_name, labels or \
                             credential_id (to move a registry, delete it and create it again)"
                        ),
                    ));
                }
            }
        }
        let mut info = None;
        if let Some((provider, credentials)) = login_with {
            let client = provider
                .open(target_of(&row, credentials))
                .map_err(|e| vendor_error(e, "registry.endpoint"))?;
            info = Some(login(client.as_ref(), &row.endpoint).await?);
        }
        if request.validate_only {
            return self.with_status(row);
        }
        row.update_time = now_millis().max(current.update_time + 1);
        self.store.update_registry(&row, current.version).await?;
        self.connector.forget(&row.id);
        if let Some(info) = &info {
            self.board.record(&row.id, Ok(info));
        }
        self.get(&row.id).await
    }

    /// Forgets a registry. Nothing changes in the registry itself.
    pub async fn delete(&self, id: &str) -> Result<()> {
        if id.is_empty() {
            return Err(Error::invalid("registry_id", "is required"));
        }
        if !self.store.delete_registry(id).await? {
            return Err(Error::NotFound {
                kind: "registry",
                id: id.to_string(),
            });
        }
        self.connector.forget(id);
        self.board.remove(id);
        tracing::info!(registry = %id, "registry forgotten");
        Ok(())
    }
}

/// The provider's own rules on a definition: INVALID_ARGUMENT on each field it names.
fn check_target(
    provider: &dyn RegistryProvider,
    target: &crate::adapters::registry::RegistryTarget,
) -> Result<()> {
    let violations: Vec<TargetViolation> = provider.check_target(target);
    let mut fields: Vec<(String, String)> = violations
        .into_iter()
        .map(|v| (format!("registry.{}", v.field), v.description))
        .collect();
    match fields.len() {
        0 => Ok(()),
        1 => {
            let (field, reason) = fields.remove(0);
            Err(Error::InvalidArgument { field, reason })
        }
        _ => Err(Error::InvalidFields {
            message: format!(
                "the registry breaks {} rule(s) of provider {:?}: {}",
                fields.len(),
                provider.id(),
                fields
                    .iter()
                    .map(|(f, r)| format!("{f}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            violations: fields,
        }),
    }
}

/// Logs in, saying which registry refused and why.
async fn login(client: &dyn RegistryClient, endpoint: &str) -> Result<LoginInfo> {
    client.login().await.map_err(|err| {
        tracing::info!(%endpoint, error = %err, "registry login failed");
        match vendor_error(err, "registry.endpoint") {
            Error::FailedPrecondition { reason, message } => Error::FailedPrecondition {
                reason,
                message: format!("cannot log in to {endpoint}: {message}"),
            },
            Error::Unavailable {
                reason,
                message,
                retry_after,
            } => Error::Unavailable {
                reason,
                message: format!("cannot reach {endpoint}: {message}"),
                retry_after,
            },
            other => other,
        }
    })
}

/// A registry adapter's error in the service's terms; a configuration the vendor refuses is
/// INVALID_ARGUMENT on `field`.
pub fn vendor_error(err: VendorError, field: &str) -> Error {
    let class = err.class;
    match vendor_errors::to_service(err) {
        Error::InvalidArgument { reason, .. } if class == ErrorClass::InvalidConfiguration => {
            Error::InvalidArgument {
                field: field.to_string(),
                reason,
            }
        }
        other => other,
    }
}

pub(crate) fn parse_filter(text: &str) -> Result<RegistryQuery> {
    let mut query = RegistryQuery::default();
    let unknown = |field: &str| {
        Error::invalid(
            "filter",
            format!("cannot filter on {field:?}; use provider or labels.<key>"),
        )
    };
    for term in filter::parse(text)? {
        match term {
            filter::Term::Equals { field, value } => match field.as_str() {
                "provider" => query.provider = Some(value),
                other => match other.strip_prefix("labels.") {
                    Some(key) if !key.is_empty() => query.labels.push((key.into(), Some(value))),
                    _ => return Err(unknown(other)),
                },
            },
            filter::Term::Present { field } => match field.strip_prefix("labels.") {
                Some(key) if !key.is_empty() => query.labels.push((key.into(), None)),
                _ => return Err(unknown(&field)),
            },
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_maps_to_query() {
        let q =
            parse_filter(r#"provider = quay AND labels.team = "web" AND labels.env:*"#).unwrap();
        assert_eq!(q.provider.as_deref(), Some("quay"));
        assert_eq!(
            q.labels,
            vec![
                ("team".to_string(), Some("web".to_string())),
                ("env".to_string(), None)
            ]
        );
        assert!(matches!(
            parse_filter("region = x"),
            Err(Error::InvalidArgument { field, .. }) if field == "filter"
        ));
    }

    #[test]
    fn invalid_configuration_names_the_field() {
        let err = vendor_error(
            VendorError::new(
                ErrorClass::InvalidConfiguration,
                "oci",
                "Login",
                "",
                "not a registry",
            ),
            "registry.endpoint",
        );
        assert!(
            matches!(&err, Error::InvalidArgument { field, .. } if field == "registry.endpoint"),
            "{err:?}"
        );
        let unsupported = vendor_error(
            VendorError::unsupported("oci", "DeleteNamespace"),
            "registry.endpoint",
        );
        assert!(matches!(
            unsupported,
            Error::FailedPrecondition {
                reason: "UNSUPPORTED_BY_PROVIDER",
                ..
            }
        ));
    }
}
