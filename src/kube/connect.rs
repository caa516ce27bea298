//! Building a kube-rs client from a [`ClusterAccess`], probing a cluster, and naming failures.

use std::{sync::Arc, time::Duration};

use ::kube::{Api, Client, Config, api::ListParams, client::ConfigExt, config::AuthInfo};
use base64::{Engine, engine::general_purpose::STANDARD};
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::{Namespace, Node};
use secrecy::SecretString;
use tower::ServiceBuilder;

use super::{
    access::{ClusterAccess, Credentials},
    credential_check,
    error::{ClusterError, CredentialPart, classify, error_chain},
    response_guard::ResponseGuardLayer,
};
use crate::net::{CheckedConnector, OutboundPolicy};

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

/// A kube-rs client for `access`. Nothing is sent yet: every credential field is checked
/// first, and connections go only where `outbound` allows (checked on each connect).
///
/// The stack is ours rather than kube-rs's default: the checked connector instead of
/// hyper-util's, the [`ResponseGuardLayer`] so a non-Kubernetes server's body never becomes a
/// message, and no kube-rs trace layer (it logs every refused connection or bad certificate —
/// a caller's mistake — at ERROR). TLS is kube-rs's own rustls configuration, verified as
/// before.
pub fn client(
    access: &ClusterAccess,
    timeouts: Timeouts,
    outbound: &Arc<OutboundPolicy>,
    impersonate: Option<&super::impersonation::Impersonation>,
    observe: Option<crate::telemetry::kube_requests::KubeRequestLayer>,
) -> Result<Client, ClusterError> {
    let url = server_url(access)?;
    credential_check::check(access)?;
    let mut config = Config::new(url);
    config.accept_invalid_certs = access.insecure_skip_tls_verify;
    config.tls_server_name = access.tls_server_name.clone();
    config.default_retry = false;
    if let Some(pem) = &access.ca_pem {
        config.root_cert = Some(credential_check::ca_certificates(pem)?);
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
    let https = config
        .rustls_https_connector_with_connector(CheckedConnector::new(outbound.clone()))
        .map_err(classify_build)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(Some(timeouts.connect));
    connector.set_read_timeout(Some(timeouts.request));
    connector.set_write_timeout(Some(timeouts.request));
    let http: hyper_util::client::legacy::Client<_, ::kube::client::Body> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        // Outermost, so the time measured is the caller's, auth and connecting included.
        .option_layer(observe)
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(classify_build)?)
        .layer(config.extra_headers_layer().map_err(classify_build)?)
        .layer(ResponseGuardLayer)
        .service(http);
    Ok(Client::new(service, config.default_namespace))
}

/// The server URL, if it is one Flotilla may use: https (or http when TLS is explicitly
/// skipped), and no `user:password@` (never echoed back: it is a credential).
pub fn server_url(access: &ClusterAccess) -> Result<http::Uri, ClusterError> {
    let url: http::Uri = access
        .server
        .parse()
        .map_err(|_| ClusterError::InvalidServer("is not a valid URL".into()))?;
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(ClusterError::InvalidServer(
            "carries user:password@; Flotilla never sends credentials in URLs (give a token \
             or a client certificate instead)"
                .into(),
        ));
    }
    if url.host().is_none_or(str::is_empty) {
        return Err(ClusterError::InvalidServer("has no host".into()));
    }
    match url.scheme_str() {
        Some("https") => Ok(url),
        Some("http") if access.insecure_skip_tls_verify => Ok(url),
        _ => Err(ClusterError::InvalidServer(format!(
            "{:?} is not an https URL",
            access.server
        ))),
    }
}

/// Names a failure to build the client from checked input (kube-rs's config types).
fn classify_build(err: ::kube::Error) -> ClusterError {
    use ::kube::client::RustlsTlsError as TlsError;
    match &err {
        ::kube::Error::RustlsTls(tls_err) => match tls_err {
            TlsError::AddRootCertificate(_) => ClusterError::BadCredential {
                part: CredentialPart::CaCertificate,
                reason: "is not a usable CA certificate".into(),
            },
            TlsError::InvalidServerName(_) => ClusterError::InvalidServer(
                "names a host that is not a valid TLS server name".into(),
            ),
            TlsError::MissingCertificate => ClusterError::BadCredential {
                part: CredentialPart::ClientCertificate,
                reason: "has no certificate".into(),
            },
            _ => ClusterError::BadCredential {
                part: CredentialPart::ClientKey,
                reason: "is not a usable private key".into(),
            },
        },
        _ => ClusterError::Other(error_chain(&err)),
    }
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
