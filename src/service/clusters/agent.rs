//! Import by agent (issue #19): a cluster Flotilla cannot reach runs `flotilla agent`, which
//! dials out. This module creates such clusters with a one-time registration token, exchanges
//! the token for the cluster's agent credential, and checks the credential on every connect.
//! Both secrets are stored only as hashes (the same SHA-256 as API tokens); neither is logged.

use std::collections::BTreeMap;

use aes_gcm::aead::{OsRng, rand_core::RngCore};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::{
    Cluster, ClusterState, PROVIDER_IMPORTED,
    agent_manifest::{AgentManifest, manifest_url},
};
use crate::{
    auth::tokens::hash,
    service::{Error, Result, access::kube::KubeAccess, validate},
    store::{AgentCredentialRow, AgentRegistrationRow, ClusterRow, Redemption, Store, now_millis},
};

pub const DEFAULT_NAMESPACE: &str = "flotilla-agent";
pub const DEFAULT_CLUSTER_ROLE: &str = "cluster-admin";
pub const DEFAULT_IMAGE: &str = "ghcr.io/flotilla/flotilla:latest";
pub const DEFAULT_TTL_SECONDS: i64 = 3600;
const MIN_TTL_SECONDS: i64 = 60;
const MAX_TTL_SECONDS: i64 = 7 * 24 * 3600;
const REGISTRATION_PREFIX: &str = "flt_reg_";
const CREDENTIAL_PREFIX: &str = "flt_agent_";

/// A CreateAgentRegistration request, as received.
#[derive(Debug, Clone, Default)]
pub struct CreateAgentRegistration {
    pub cluster_id: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    pub server_url: String,
    pub namespace: String,
    pub cluster_role: String,
    pub image: String,
    pub ttl_seconds: i64,
}

/// A new cluster waiting for its agent. The token exists only here.
pub struct AgentRegistration {
    pub cluster: Cluster,
    pub registration_token: Zeroizing<String>,
    pub expire_millis: i64,
    pub manifest: Zeroizing<String>,
    /// Where the same manifest is served until the token is used or expires (it holds the
    /// token, so it is as secret as the token).
    pub manifest_url: Zeroizing<String>,
}

/// The cluster an agent credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub cluster_id: String,
    pub kube_system_uid: String,
}

/// A connected agent's tunnel, as the transport hands frames in and out.
pub use crate::kube::tunnel::Tunnel as AgentTunnel;
/// The frames Flotilla sends an agent.
pub type TunnelFrames = tokio::sync::mpsc::UnboundedReceiver<crate::proto::TunnelFrame>;

/// Registration tokens, agent credentials and (when served) the live tunnels.
pub struct AgentRegistry {
    store: Store,
    tunnels: Option<std::sync::Arc<crate::kube::tunnel::TunnelRegistry>>,
}

fn new_secret(prefix: &str) -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut_slice());
    Zeroizing::new(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(bytes.as_slice())
    ))
}

/// Whether `value` looks like a secret [`new_secret`] made with `prefix` (the prefix and 43
/// base64url characters).
fn is_secret_shaped(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn refused(what: &str) -> Error {
    // One message for unknown, used and expired: a caller holding a stolen token learns nothing.
    Error::Unauthenticated(format!(
        "the {what} is not valid (unknown, used or expired)"
    ))
}

/// A Kubernetes name (DNS-1123 label) for namespaces and roles given in requests.
fn kube_name(field: &str, value: &str) -> Result<()> {
    let ok = (1..=63).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{value:?} is not a Kubernetes name (1-63 lowercase letters, digits and '-')"),
        ))
    }
}

/// A ClusterRole name: DNS subdomain characters plus ':' (as in `system:aggregate-to-view`).
fn role_name(field: &str, value: &str) -> Result<()> {
    let ok = (1..=253).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{value:?} is not a ClusterRole name"),
        ))
    }
}

fn server_url(value: &str) -> Result<()> {
    let field = "server_url";
    if value.is_empty() {
        return Err(Error::invalid(
            field,
            "is required: the URL the agent dials",
        ));
    }
    let uri: http::Uri = value
        .parse()
        .map_err(|_| Error::invalid(field, format!("{value:?} is not a URL")))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
        return Err(Error::invalid(
            field,
            format!("{value:?} must be an https:// (or http://) URL with a host"),
        ));
    }
    Ok(())
}

fn image(value: &str) -> Result<()> {
    if value.is_empty()
        || value.len() > 512
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "image",
            "must be an image reference without spaces",
        ));
    }
    Ok(())
}

fn or_default<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
}

impl AgentRegistry {
    pub fn new(store: Store) -> AgentRegistry {
        AgentRegistry {
            store,
            tunnels: None,
        }
    }

    /// Tunnels opened by agents go into `tunnels` (where the cluster connector finds them).
    pub fn with_tunnels(
        mut self,
        tunnels: std::sync::Arc<crate::kube::tunnel::TunnelRegistry>,
    ) -> AgentRegistry {
        self.tunnels = Some(tunnels);
        self
    }

    /// Opens the tunnel of `identity`'s cluster (checked with [`AgentRegistry::check_hello`]
    /// first), replacing the one it had: the newest agent wins.
    pub fn open_tunnel(
        &self,
        identity: &AgentIdentity,
    ) -> Result<(std::sync::Arc<AgentTunnel>, TunnelFrames)> {
        let tunnels = self.tunnels.as_ref().ok_or_else(|| {
            Error::Unimplemented("this server does not serve agent tunnels".into())
        })?;
        tracing::info!(cluster = %identity.cluster_id, "agent tunnel opened");
        Ok(tunnels.attach(&identity.cluster_id))
    }

    /// The agent's stream ended: forgets its tunnel unless a newer one replaced it.
    pub fn close_tunnel(&self, tunnel: &std::sync::Arc<AgentTunnel>, reason: &str) {
        if let Some(tunnels) = &self.tunnels {
            tunnels.detach(tunnel, reason);
        }
    }

    /// Creates a cluster in state WAITING_FOR_AGENT with a registration token.
    pub async fn create(&self, request: CreateAgentRegistration) -> Result<AgentRegistration> {
        if !request.cluster_id.is_empty() {
            validate::id("cluster_id", &request.cluster_id)?;
        }
        validate::display_name("display_name", &request.display_name)?;
        validate::labels("labels", &request.labels)?;
        server_url(&request.server_url)?;
        let namespace = or_default(&request.namespace, DEFAULT_NAMESPACE);
        kube_name("namespace", namespace)?;
        let cluster_role = or_default(&request.cluster_role, DEFAULT_CLUSTER_ROLE);
        role_name("cluster_role", cluster_role)?;
        let image_ref = or_default(&request.image, DEFAULT_IMAGE);
        image(image_ref)?;
        let ttl_seconds = if request.ttl_seconds == 0 {
            DEFAULT_TTL_SECONDS
        } else {
            request.ttl_seconds
        };
        if !(MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl_seconds) {
            return Err(Error::invalid(
                "ttl_seconds",
                format!("must be {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS} seconds"),
            ));
        }

        let id = if request.cluster_id.is_empty() {
            self.free_id("agent-cluster").await?
        } else {
            request.cluster_id
        };
        let now = now_millis();
        let token = new_secret(REGISTRATION_PREFIX);
        let expire_millis = now + ttl_seconds * 1000;
        let row = ClusterRow {
            display_name: if request.display_name.is_empty() {
                id.clone()
            } else {
                request.display_name
            },
            id: id.clone(),
            labels: serde_json::to_string(&request.labels).unwrap_or_else(|_| "{}".into()),
            provider: PROVIDER_IMPORTED.into(),
            region: String::new(),
            vendor_cluster_id: String::new(),
            state: ClusterState::WaitingForAgent.as_str().into(),
            endpoint: String::new(),
            kube_system_uid: None,
            credential_id: None,
            access_secret_id: None,
            spec: None,
            warnings: "[]".into(),
            last_operation_id: None,
            version: 1,
            create_time: now,
            update_time: now,
            kube_access: KubeAccess::BuiltIn.as_str().into(),
        };
        let registration = AgentRegistrationRow {
            token_hash: hash(&token),
            cluster_id: id.clone(),
            create_time: now,
            expire_time: expire_millis,
            used_time: None,
            server_url: request.server_url.clone(),
            namespace: namespace.to_string(),
            cluster_role: cluster_role.to_string(),
            image: image_ref.to_string(),
        };
        self.store
            .insert_cluster_with_registration(&row, &registration)
            .await
            .map_err(|err| match err {
                crate::store::Error::AlreadyExists(_) => Error::AlreadyExists {
                    reason: "CLUSTER_ID_TAKEN",
                    message: format!("a cluster with id {id:?} already exists"),
                },
                other => other.into(),
            })?;
        tracing::info!(cluster = %id, "cluster waiting for its agent");
        let manifest = AgentManifest {
            cluster_id: &id,
            server_url: &request.server_url,
            namespace,
            cluster_role,
            image: image_ref,
            registration_token: &token,
        }
        .to_yaml();
        Ok(AgentRegistration {
            cluster: Cluster::try_from(row)?,
            manifest_url: Zeroizing::new(manifest_url(&request.server_url, &token)),
            registration_token: token,
            expire_millis,
            manifest: Zeroizing::new(manifest),
        })
    }

    /// The manifest of the registration whose token is `registration_token`, while the token
    /// can still be exchanged; `None` for an unknown, used or expired token (and for rows
    /// written before the manifest's inputs were kept).
    pub async fn manifest(&self, registration_token: &str) -> Result<Option<Zeroizing<String>>> {
        if !is_secret_shaped(registration_token, REGISTRATION_PREFIX) {
            return Ok(None); // not even shaped like a token: no database read
        }
        let Some(row) = self
            .store
            .find_open_agent_registration(&hash(registration_token), now_millis())
            .await?
        else {
            return Ok(None);
        };
        if row.server_url.is_empty() {
            return Ok(None);
        }
        tracing::info!(cluster = %row.cluster_id, "agent manifest served");
        Ok(Some(Zeroizing::new(
            AgentManifest {
                cluster_id: &row.cluster_id,
                server_url: &row.server_url,
                namespace: &row.namespace,
                cluster_role: &row.cluster_role,
                image: &row.image,
                registration_token,
            }
            .to_yaml(),
        )))
    }

    /// Exchanges a registration token for the cluster's agent credential (returned once).
    pub async fn register(
        &self,
        registration_token: &str,
        kube_system_uid: &str,
    ) -> Result<(String, Zeroizing<String>)> {
        if !registration_token.starts_with(REGISTRATION_PREFIX) {
            return Err(refused("registration token"));
        }
        if kube_system_uid.is_empty() || kube_system_uid.len() > 64 {
            return Err(Error::invalid(
                "kube_system_uid",
                "is required: the UID of the cluster's kube-system namespace",
            ));
        }
        let credential = new_secret(CREDENTIAL_PREFIX);
        let now = now_millis();
        let row = AgentCredentialRow {
            cluster_id: String::new(),
            credential_hash: hash(&credential),
            kube_system_uid: kube_system_uid.to_string(),
            create_time: now,
        };
        match self
            .store
            .redeem_agent_registration(
                &hash(registration_token),
                &row,
                ClusterState::Running.as_str(),
                now,
            )
            .await?
        {
            Redemption::Redeemed { cluster_id } => {
                tracing::info!(cluster = %cluster_id, "agent registered");
                Ok((cluster_id, credential))
            }
            Redemption::Unknown | Redemption::AlreadyUsed | Redemption::Expired => {
                Err(refused("registration token"))
            }
            Redemption::DuplicateCluster { existing_id } => Err(Error::AlreadyExists {
                reason: "CLUSTER_ALREADY_IMPORTED",
                message: format!(
                    "this cluster is already imported as {existing_id:?} (same kube-system \
                     namespace UID)"
                ),
            }),
        }
    }

    /// The cluster an agent credential belongs to.
    pub async fn authenticate(&self, credential: &str) -> Result<AgentIdentity> {
        if !credential.starts_with(CREDENTIAL_PREFIX) {
            return Err(refused("agent credential"));
        }
        let row = self
            .store
            .find_agent_credential(&hash(credential))
            .await?
            .ok_or_else(|| refused("agent credential"))?;
        Ok(AgentIdentity {
            cluster_id: row.cluster_id,
            kube_system_uid: row.kube_system_uid,
        })
    }

    /// Checks the agent's hello against its credential: an agent credential reaches only its
    /// own cluster's tunnel.
    pub fn check_hello(
        identity: &AgentIdentity,
        cluster_id: &str,
        kube_system_uid: &str,
    ) -> Result<()> {
        if identity.cluster_id != cluster_id {
            return Err(Error::PermissionDenied(format!(
                "this agent credential belongs to another cluster, not {cluster_id:?}"
            )));
        }
        if identity.kube_system_uid != kube_system_uid {
            return Err(Error::PermissionDenied(
                "the agent runs in a cluster other than the one it registered from \
                 (kube-system UID differs)"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn free_id(&self, base: &str) -> Result<String> {
        let taken = self.store.cluster_ids_with_prefix(base).await?;
        if !taken.iter().any(|t| t == base) {
            return Ok(base.to_string());
        }
        (2..10_000)
            .map(|n| format!("{base}-{n}"))
            .find(|candidate| !taken.contains(candidate))
            .ok_or_else(|| Error::Internal(format!("no free id for {base}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_must_name_the_credentials_cluster_and_uid() {
        let who = AgentIdentity {
            cluster_id: "a".into(),
            kube_system_uid: "uid-a".into(),
        };
        assert!(AgentRegistry::check_hello(&who, "a", "uid-a").is_ok());
        assert!(matches!(
            AgentRegistry::check_hello(&who, "b", "uid-a"),
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            AgentRegistry::check_hello(&who, "a", "uid-b"),
            Err(Error::PermissionDenied(_))
        ));
    }

    #[test]
    fn request_fields_are_checked() {
        assert!(server_url("https://flotilla.example:50051").is_ok());
        assert!(server_url("").is_err());
        assert!(server_url("flotilla.example").is_err());
        assert!(kube_name("namespace", "flotilla-agent").is_ok());
        assert!(kube_name("namespace", "Bad_NS").is_err());
        assert!(role_name("cluster_role", "system:aggregate-to-view").is_ok());
        assert!(role_name("cluster_role", "a b").is_err());
        assert!(image("a b").is_err());
    }

    #[test]
    fn secrets_are_distinct_and_prefixed() {
        let a = new_secret(REGISTRATION_PREFIX);
        let b = new_secret(REGISTRATION_PREFIX);
        assert_ne!(*a, *b);
        assert!(a.starts_with(REGISTRATION_PREFIX) && a.len() > 40);
        assert!(is_secret_shaped(&a, REGISTRATION_PREFIX));
        assert!(!is_secret_shaped(&a, CREDENTIAL_PREFIX));
        assert!(!is_secret_shaped(&a[..a.len() - 1], REGISTRATION_PREFIX));
        assert!(!is_secret_shaped(
            &format!("{}/", &a[..a.len() - 1]),
            REGISTRATION_PREFIX
        ));
    }
}
