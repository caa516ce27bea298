//! Rows as stored. Times are milliseconds since the Unix epoch; labels and warnings are JSON.

use diesel::prelude::*;

use super::schema::{clusters, secrets};

/// A cluster as stored: identity and how to reach it. Observed state lives elsewhere.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = clusters)]
pub struct ClusterRow {
    pub id: String,
    pub display_name: String,
    /// JSON object of label key → value.
    pub labels: String,
    pub provider: String,
    pub region: String,
    pub vendor_cluster_id: String,
    pub state: String,
    pub endpoint: String,
    pub kube_system_uid: Option<String>,
    pub credential_id: Option<String>,
    /// Encrypted access credentials (kubeconfig or token) in `secrets`.
    pub access_secret_id: Option<String>,
    /// Encoded `ClusterSpec`, for vendor-created clusters.
    pub spec: Option<Vec<u8>>,
    /// JSON array of permanent warnings, such as insecure TLS.
    pub warnings: String,
    pub last_operation_id: Option<String>,
    /// Incremented on every change; the etag derives from it.
    pub version: i64,
    pub create_time: i64,
    pub update_time: i64,
    /// How calls for callers reach the cluster: "builtin" or "impersonation".
    pub kube_access: String,
}

/// An encrypted secret. Plaintext never reaches the store.
#[derive(Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = secrets)]
pub struct SecretRow {
    pub id: String,
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub create_time: i64,
    pub update_time: i64,
    /// Which associated data sealed it (see `crypto::SecretOwner`).
    pub aad_version: i32,
}

impl std::fmt::Debug for SecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRow")
            .field("id", &self.id)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// A vendor or registry credential's metadata; the secret itself is in `secrets`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::credentials)]
pub struct CredentialRow {
    pub id: String,
    pub display_name: String,
    pub labels: String,
    pub kind: String,
    pub provider: String,
    /// Public identifier: access key id, API key name, username. Never the secret.
    pub principal: String,
    pub secret_id: String,
    pub create_time: i64,
    pub rotate_time: i64,
}

/// An API token. The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::api_tokens)]
pub struct ApiTokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    /// JSON array of cluster ids; empty means every cluster.
    pub cluster_ids: String,
    pub secret_hash: String,
    pub expire_time: Option<i64>,
    pub create_time: i64,
    pub created_by: String,
    pub last_used_time: Option<i64>,
    pub revoke_time: Option<i64>,
}

/// One audited call.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::audit_events)]
pub struct AuditRow {
    pub id: String,
    pub time: i64,
    pub token_name: String,
    pub method: String,
    pub cluster_id: String,
    pub target: String,
    pub result_code: String,
    pub request_id: String,
    pub peer_address: String,
    pub message: String,
    /// Calls this row stands for: 1, or a per-minute count of anonymous refusals.
    pub call_count: i64,
}
