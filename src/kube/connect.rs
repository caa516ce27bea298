//! Building a kube-rs client from a [`ClusterAccess`], probing a cluster, and naming failures.

use std::time::Duration;

use ::kube::{Api, Client, Config, api::ListParams, config::AuthInfo};
use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::api::core::v1::{Namespace, Node};
use secrecy::SecretString;

use super::access::{ClusterAccess, Credentials};

/// How long one connection attempt and one request may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(4),
            request: Duration::from_secs(8),
        }
    }
}

/// Why a cluster could not be used. Messages name the cause, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("server URL {0:?} is not a valid https URL")]
    InvalidServer(String),
    #[error("the CA certificate is not valid PEM: {0}")]
    BadCa(String),
    #[error("the client certificate or key is not valid PEM")]
    BadClientCertificate,
    #[error("cannot reach the API server: {0}")]
    Unreachable(String),
    #[error("TLS verification of the API server failed: {0}")]
    Tls(String),
    #[error("the API server rejected the credentials (401 Unauthorized): {0}")]
    Unauthorized(String),
    #[error("the credentials lack permission (403 Forbidden): {0}")]
    Forbidden(String),
    #[error("the API server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        message: String,
        /// The object already exists (rather than a resourceVersion conflict).
        already_exists: bool,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        /// (field, message) pairs from the API server's status causes.
        causes: Vec<(String, String)>,
    },
    #[error("the API server answered {code}: {message}")]
    Api {
        code: u16,
        message: String,
        retry_after_seconds: Option<u32>,
    },
    #[error("{0}")]
    Other(String),
}

impl ClusterError {
    /// Stable code for clients (google.rpc.ErrorInfo reason).
    pub fn reason(&self) -> &'static str {
        match self {
            ClusterError::InvalidServer(_) => "INVALID_SERVER_URL",
            ClusterError::BadCa(_) => "INVALID_CA_CERTIFICATE",
            ClusterError::BadClientCertificate => "INVALID_CLIENT_CERTIFICATE",
            ClusterError::Unreachable(_) => "CLUSTER_UNREACHABLE",
            ClusterError::Tls(_) => "TLS_VERIFICATION_FAILED",
            ClusterError::Unauthorized(_) => "CLUSTER_CREDENTIALS_REJECTED",
            ClusterError::Forbidden(_) => "CLUSTER_PERMISSION_DENIED",
            ClusterError::Timeout(_) => "CLUSTER_TIMEOUT",
            ClusterError::NotFound(_) => "NOT_FOUND",
            ClusterError::Conflict { .. } => "CONFLICT",
            ClusterError::Invalid { .. } => "INVALID",
            ClusterError::Api { .. } => "CLUSTER_API_ERROR",
            ClusterError::Other(_) => "CLUSTER_ERROR",
        }
    }
}

/// A kube-rs client for `access`, acting as `impersonate` when given. Nothing is sent yet.
pub fn client(
    access: &ClusterAccess,
    timeouts: Timeouts,
    impersonate: Option<&super::impersonation::Impersonation>,
) -> Result<Client, ClusterError> {
    let url: http::Uri = access
        .server
        .parse()
        .map_err(|_| ClusterError::InvalidServer(access.server.clone()))?;
    match url.scheme_str() {
        Some("https") => {}
        Some("http") if access.insecure_skip_tls_verify => {}
        _ => return Err(ClusterError::InvalidServer(access.server.clone())),
    }
    let mut config = Config::new(url);
    config.connect_timeout = Some(timeouts.connect);
    config.read_timeout = Some(timeouts.request);
    config.write_timeout = Some(timeouts.request);
    config.accept_invalid_certs = access.insecure_skip_tls_verify;
    config.tls_server_name = access.tls_server_name.clone();
    config.default_retry = false;
    if let Some(pem) = &access.ca_pem {
        config.root_cert = Some(pem_certificates(pem)?);
    }
    config.auth_info = match &access.credentials {
        Credentials::Token { token } => AuthInfo {
            token: Some(SecretString::from(token.as_str())),
            ..AuthInfo::default()
        },
        Credentials::ClientCertificate {
            certificate_pem,
            key_pem,
        } => AuthInfo {
            client_certificate_data: Some(STANDARD.encode(certificate_pem)),
            client_key_data: Some(SecretString::from(STANDARD.encode(key_pem.as_bytes()))),
            ..AuthInfo::default()
        },
        Credentials::Basic { username, password } => AuthInfo {
            username: Some(username.clone()),
            password: Some(SecretString::from(password.as_str())),
            ..AuthInfo::default()
        },
    };
    if let Some(who) = impersonate {
        config.auth_info.impersonate = Some(who.user.clone());
        config.auth_info.impersonate_groups = Some(vec![who.group.clone()]);
    }
    Client::try_from(config).map_err(|err| match classify(err) {
        ClusterError::Other(message)
            if message.contains("key") || message.contains("certificate") =>
        {
            ClusterError::BadClientCertificate
        }
        other => other,
    })
}

/// DER certificates of a PEM bundle.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, ClusterError> {
    let mut ders = Vec::new();
    for item in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let item = item.map_err(|e| ClusterError::BadCa(e.to_string()))?;
        if item.label == "CERTIFICATE" {
            ders.push(item.contents);
        }
    }
    if ders.is_empty() {
        return Err(ClusterError::BadCa("no CERTIFICATE block found".into()));
    }
    Ok(ders)
}

/// What one probe of a cluster saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `gitVersion` from /version, such as `v1.37.2`.
    pub kubernetes_version: String,
    /// UID of the kube-system namespace: the cluster's identity.
    pub kube_system_uid: String,
    /// Node counts, when the credentials may list nodes.
    pub nodes: Option<NodeCounts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeCounts {
    pub total: i32,
    pub ready: i32,
}

/// Version, identity (an authorized read of the kube-system namespace) and node counts, all
/// within `limit`.
pub async fn probe(client: &Client, limit: Duration) -> Result<Probe, ClusterError> {
    tokio::time::timeout(limit, probe_unbounded(client))
        .await
        .map_err(|_| ClusterError::Timeout(limit))?
}

async fn probe_unbounded(client: &Client) -> Result<Probe, ClusterError> {
    let version = client.apiserver_version().await.map_err(classify)?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let kube_system = namespaces.get("kube-system").await.map_err(classify)?;
    let kube_system_uid = kube_system
        .metadata
        .uid
        .ok_or_else(|| ClusterError::Other("kube-system namespace has no uid".into()))?;
    let nodes = match count_nodes(client).await {
        Ok(counts) => Some(counts),
        Err(ClusterError::Forbidden(_)) => None,
        Err(other) => return Err(other),
    };
    Ok(Probe {
        kubernetes_version: version.git_version,
        kube_system_uid,
        nodes,
    })
}

async fn count_nodes(client: &Client) -> Result<NodeCounts, ClusterError> {
    let api: Api<Node> = Api::all(client.clone());
    let mut counts = NodeCounts { total: 0, ready: 0 };
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await.map_err(classify)?;
        for node in &page.items {
            counts.total += 1;
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            counts.ready += i32::from(ready);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(counts),
        }
    }
}

/// Names a kube-rs failure: TLS, unreachable, 401, 403, timeout or other.
pub fn classify(err: ::kube::Error) -> ClusterError {
    if let ::kube::Error::Api(status) = &err {
        let message = status.message.clone();
        let details = status.details.as_ref();
        return match status.code {
            401 => ClusterError::Unauthorized(message),
            403 => ClusterError::Forbidden(message),
            404 => ClusterError::NotFound(message),
            409 => ClusterError::Conflict {
                message,
                already_exists: status.reason == "AlreadyExists",
            },
            422 => ClusterError::Invalid {
                message,
                causes: details
                    .map(|d| {
                        d.causes
                            .iter()
                            .map(|c| (c.field.clone(), c.message.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            code => ClusterError::Api {
                code,
                message,
                retry_after_seconds: details.map(|d| d.retry_after_seconds).filter(|s| *s > 0),
            },
        };
    }
    let chain = error_chain(&err);
    let lower = chain.to_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        ClusterError::Tls(chain)
    } else if lower.contains("timed out")
        || lower.contains("timeout")
        || lower.contains("deadline")
        || lower.contains("connect")
        || lower.contains("refused")
        || lower.contains("dns")
        || lower.contains("unreachable")
        || lower.contains("reset")
        || lower.contains("closed")
        || lower.contains("broken pipe")
    {
        ClusterError::Unreachable(chain)
    } else {
        ClusterError::Other(chain)
    }
}

/// "outer: inner: innermost", without repeating a message its source already says.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}
