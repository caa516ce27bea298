//! Naming what went wrong with a cluster: [`ClusterError`], and [`classify`] for kube-rs's
//! failures. A leaf of the Kubernetes layer: every file that talks to a cluster uses it.

use std::time::Duration;

use crate::net::ConnectError;

/// Why a cluster could not be used. Messages name the cause, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The reason never quotes the URL's credentials.
    #[error("the server URL {0}")]
    InvalidServer(String),
    #[error("{} {reason}", part.describe())]
    BadCredential {
        part: CredentialPart,
        reason: String,
    },
    /// The outbound address policy refused every address of the server; nothing was sent.
    #[error("{0}")]
    AddressNotAllowed(String),
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
            ClusterError::BadCredential { part, .. } => part.reason(),
            ClusterError::AddressNotAllowed(_) => "ADDRESS_NOT_ALLOWED",
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

/// One credential field of a [`ClusterAccess`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialPart {
    CaCertificate,
    ClientCertificate,
    ClientKey,
    BearerToken,
}

impl CredentialPart {
    /// The field as a person knows it, in kubeconfig and API terms.
    pub fn describe(self) -> &'static str {
        match self {
            CredentialPart::CaCertificate => {
                "the CA certificate (certificate-authority-data, or ca_pem)"
            }
            CredentialPart::ClientCertificate => "the client certificate (client-certificate-data)",
            CredentialPart::ClientKey => "the client key (client-key-data)",
            CredentialPart::BearerToken => "the bearer token (token, or bearer_token)",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            CredentialPart::CaCertificate => "INVALID_CA_CERTIFICATE",
            CredentialPart::ClientCertificate | CredentialPart::ClientKey => {
                "INVALID_CLIENT_CERTIFICATE"
            }
            CredentialPart::BearerToken => "INVALID_BEARER_TOKEN",
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
    if let ::kube::Error::SerdeError(e) = &err {
        // serde_json's message can quote the answer; only the position is kept.
        return ClusterError::Other(format!(
            "the server's answer is not the Kubernetes object expected (line {}, column {})",
            e.line(),
            e.column()
        ));
    }
    let chain = error_chain(&err);
    // By type first: our connector's own errors, then TLS and socket errors.
    let causes = causes(&err);
    for cause in &causes {
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::NotAllowed(refused) => {
                    ClusterError::AddressNotAllowed(refused.to_string())
                }
                other => ClusterError::Unreachable(other.to_string()),
            };
        }
    }
    if causes
        .iter()
        .any(|cause| cause.downcast_ref::<rustls::Error>().is_some())
    {
        return ClusterError::Tls(chain);
    }
    if causes.iter().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    }) {
        return ClusterError::Unreachable(chain);
    }
    // Then by text, for errors whose types are private to the libraries.
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

/// `err` and its sources, looking inside `io::Error`s (whose `source()` skips the error they
/// wrap, such as rustls's).
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut found = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        found.push(e);
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
        if found.len() > 32 {
            break;
        }
    }
    found
}

/// "outer: inner: innermost", without repeating a message its source already says.
pub(super) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
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
