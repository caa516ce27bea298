//! How to reach one cluster's API server: normalized from a kubeconfig or a URL + token.
//! This is what gets encrypted and stored, never the uploaded kubeconfig itself (which may hold
//! other contexts).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Everything needed to connect to one API server.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClusterAccess {
    /// API server URL, such as `https://10.0.0.1:6443`.
    pub server: String,
    /// PEM CA bundle; `None` uses the system roots.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// Server name to verify instead of the URL's host.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Skip TLS verification. Only set when the importer explicitly allowed it.
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    pub credentials: Credentials,
}

/// How Flotilla authenticates to the API server.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credentials {
    /// A bearer token (ServiceAccount or user token).
    Token { token: Zeroizing<String> },
    /// A client certificate and its private key, PEM.
    ClientCertificate {
        certificate_pem: String,
        key_pem: Zeroizing<String>,
    },
    /// HTTP basic authentication (old clusters only).
    Basic {
        username: String,
        password: Zeroizing<String>,
    },
}

impl std::fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.credentials {
            Credentials::Token { .. } => "token",
            Credentials::ClientCertificate { .. } => "client certificate",
            Credentials::Basic { .. } => "basic",
        };
        f.debug_struct("ClusterAccess")
            .field("server", &self.server)
            .field("has_ca", &self.ca_pem.is_some())
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("credentials", &kind)
            .finish()
    }
}

impl ClusterAccess {
    /// Serialized for encryption at rest.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn from_json(bytes: &[u8]) -> Option<ClusterAccess> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_credentials_and_json_round_trips() {
        let access = ClusterAccess {
            server: "https://1.2.3.4".into(),
            ca_pem: None,
            tls_server_name: None,
            insecure_skip_tls_verify: false,
            credentials: Credentials::Token {
                token: Zeroizing::new("tok-SECRET".into()),
            },
        };
        assert!(!format!("{access:?}").contains("SECRET"));
        let back = ClusterAccess::from_json(&access.to_json()).unwrap();
        assert!(
            matches!(back.credentials, Credentials::Token { token } if token.as_str() == "tok-SECRET")
        );
    }
}
