//! Adapters to the vendors' APIs: what every adapter shares at the top (the HTTP transport with
//! its throttling and retries, the vendor-neutral error, the credentials a call is made with),
//! each cloud's request signing once in `signing/` (Alibaba for ACK and ACR, Tencent for TKE and
//! TCR), and one folder per product behind one trait: `cluster/` for cluster lifecycle,
//! `registry/` for container registries.
//! Reads of nodes, workloads and logs never come through here: they come from Kubernetes.

pub mod cluster;
pub mod error;
pub mod registry;
pub mod signing;
pub mod transport;

use zeroize::Zeroizing;

pub use error::{ErrorClass, Result, VendorError};
pub use transport::{LimitKey, TransportSettings, VendorHttp};

/// The vendor credential a call is made with, opened from the credential vault.
#[derive(Clone)]
pub enum Credentials {
    AccessKey {
        id: String,
        secret: Zeroizing<String>,
    },
    ApiKey {
        key_id: String,
        token: Zeroizing<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::AccessKey { id, .. } => write!(f, "AccessKey({id}, <redacted>)"),
            Credentials::ApiKey { key_id, .. } => write!(f, "ApiKey({key_id}, <redacted>)"),
        }
    }
}

impl Credentials {
    /// The public half: vendors throttle per account, so the rate limiter keys on it.
    pub fn account(&self) -> &str {
        match self {
            Credentials::AccessKey { id, .. } => id,
            Credentials::ApiKey { key_id, .. } => key_id,
        }
    }
}

/// A kind of credential an adapter accepts (cluster and registry adapters alike), so a wrong
/// one is refused when the credential is stored and before any call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// No credential at all (an anonymous OCI registry). Never stored.
    Anonymous,
    /// An access key id and secret (cloud accounts).
    AccessKey,
    /// An API key or bearer token.
    ApiKey,
    UsernamePassword,
    /// A robot account's name and token.
    RobotToken,
}

impl CredentialKind {
    /// The stored name: the API's `CredentialType` without its `CREDENTIAL_TYPE_` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Anonymous => "ANONYMOUS",
            CredentialKind::AccessKey => "ACCESS_KEY",
            CredentialKind::ApiKey => "API_KEY",
            CredentialKind::UsernamePassword => "USERNAME_PASSWORD",
            CredentialKind::RobotToken => "ROBOT_TOKEN",
        }
    }
}

/// Who a call is made as, and where.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub credentials: Credentials,
    /// Vendor region, such as "cn-hangzhou"; empty for Rancher.
    pub region: String,
}

impl CallContext {
    pub fn limit_key(&self, vendor: &'static str) -> LimitKey {
        LimitKey {
            vendor,
            account: self.credentials.account().to_string(),
            region: self.region.clone(),
        }
    }
}

/// Percent-encoding as RFC 3986 wants it (and as Alibaba and Tencent sign): everything but
/// `A-Z a-z 0-9 - _ . ~`.
pub const RFC3986: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
