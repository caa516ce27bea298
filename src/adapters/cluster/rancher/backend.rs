//! `ClusterProvider` for Rancher: maps norman cluster objects onto `VendorCluster`, the spec onto
//! the create body, and registration tokens onto `Registration`.

use std::{collections::HashSet, time::Duration};

use async_trait::async_trait;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::adapters::{
    CallContext, CredentialKind, ErrorClass, Result, VendorError, VendorHttp,
    cluster::{
        Capability, ClusterProvider, ClusterSpec, Registration, SpecViolation, SpecWarning,
        Submitted, VendorCluster, VendorClusterState,
    },
    transport::{Idempotency, LimitKey},
};

use super::{
    CREDENTIAL_KINDS, DEFAULT_PAGE_SIZE, DISPLAY_NAME, MAX_PAGES, REGISTRATION_POLL_FIRST,
    REGISTRATION_POLL_MAX, REGISTRATION_WAIT, VENDOR, action,
    auth::ApiKey,
    client::{self, Endpoint},
    spec,
};

/// Rancher v3 (norman) clusters. Node pools are not offered: the v3 NodePool type was removed in
/// Rancher v2.15, so the trait's `Unsupported` defaults answer for them.
pub struct RancherProvider {
    http: VendorHttp,
    endpoint: std::result::Result<Endpoint, String>,
    page_size: u32,
    registration_wait: Duration,
}

impl std::fmt::Debug for RancherProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RancherProvider")
            .field("endpoint", &self.endpoint)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl RancherProvider {
    /// `endpoint`: the Rancher server URL (`https://rancher.example.com`; the API is below
    /// `/v3`). Rancher has no default: with `None` every call fails with
    /// `InvalidConfiguration`, as does a URL that does not parse or is plain http to a
    /// non-loopback host.
    pub fn new(http: VendorHttp, endpoint: Option<String>) -> RancherProvider {
        let endpoint = match endpoint {
            Some(url) => Endpoint::parse(&url),
            None => Err("rancher_url is not configured: set the Rancher server URL".to_string()),
        };
        RancherProvider {
            http,
            endpoint,
            page_size: DEFAULT_PAGE_SIZE,
            registration_wait: REGISTRATION_WAIT,
        }
    }

    /// Clusters asked for per list page (`limit`).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// How long `register_cluster` waits for the registration command.
    pub fn with_registration_wait(mut self, wait: Duration) -> Self {
        self.registration_wait = wait;
        self
    }

    fn call(&self, ctx: &CallContext, operation: &'static str) -> Result<Call> {
        let endpoint = self
            .endpoint
            .clone()
            .map_err(|message| invalid(operation, message))?;
        let key = ApiKey::from_credentials(&ctx.credentials, operation)?;
        Ok(Call {
            endpoint,
            key,
            limit: ctx.limit_key(VENDOR),
        })
    }

    async fn send<B>(
        &self,
        call: &Call,
        operation: &'static str,
        idempotency: Idempotency,
        build: B,
    ) -> Result<crate::adapters::transport::RawResponse>
    where
        B: Fn(&Endpoint, &ApiKey) -> Result<http::Request<Vec<u8>>>,
    {
        client::send(
            &self.http,
            &call.limit,
            &call.key,
            operation,
            idempotency,
            || build(&call.endpoint, &call.key),
        )
        .await
    }

    /// Every cluster, following `pagination.next`; with `name`, filtered by name (by Rancher,
    /// and again here in case a server ignores the filter).
    async fn list(&self, call: &Call, name: Option<&str>) -> Result<Vec<ClusterObject>> {
        const OP: &str = action::LIST_CLUSTERS;
        let mut query = client::first_page_query(self.page_size, name);
        let mut followed = HashSet::new();
        let mut clusters = Vec::new();
        loop {
            let raw = self
                .send(call, OP, Idempotency::Idempotent, |e, k| {
                    client::list_clusters_request(e, k, &query)
                })
                .await?;
            let page: Collection<ClusterObject> = raw.json(VENDOR, OP)?;
            clusters.extend(
                page.data
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| name.is_none_or(|n| c.name == n)),
            );
            let next = page
                .pagination
                .and_then(|p| p.next)
                .as_deref()
                .and_then(client::next_page_query);
            match next {
                None => return Ok(clusters),
                Some(next) if followed.len() >= MAX_PAGES || !followed.insert(next.clone()) => {
                    return Err(VendorError::new(
                        ErrorClass::Unknown,
                        VENDOR,
                        OP,
                        "",
                        format!("Rancher's pagination does not end (next page {next:?} again)"),
                    ));
                }
                Some(next) => query = next,
            }
        }
    }

    async fn get(&self, call: &Call, cluster_id: &str) -> Result<ClusterObject> {
        const OP: &str = action::GET_CLUSTER;
        check_id(OP, cluster_id)?;
        let raw = self
            .send(call, OP, Idempotency::Idempotent, |e, k| {
                client::get_cluster_request(e, k, cluster_id)
            })
            .await?;
        raw.json(VENDOR, OP)
    }

    async fn registration_tokens(
        &self,
        call: &Call,
        cluster_id: &str,
    ) -> Result<Vec<RegistrationToken>> {
        const OP: &str = action::LIST_CLUSTER_REGISTRATION_TOKENS;
        let raw = self
            .send(call, OP, Idempotency::Idempotent, |e, k| {
                client::list_registration_tokens_request(e, k, cluster_id)
            })
            .await?;
        let tokens: Collection<RegistrationToken> = raw.json(VENDOR, OP)?;
        Ok(tokens
            .data
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.cluster_id.is_empty() || t.cluster_id == cluster_id)
            .collect())
    }
}

struct Call {
    endpoint: Endpoint,
    key: ApiKey,
    limit: LimitKey,
}

#[async_trait]
impl ClusterProvider for RancherProvider {
    fn id(&self) -> &'static str {
        VENDOR
    }

    fn display_name(&self) -> &'static str {
        DISPLAY_NAME
    }

    fn capability(&self) -> Capability {
        Capability {
            create_cluster: true,
            delete_cluster: true,
            upgrade_cluster: true,
            fetch_kubeconfig: true,
            list_vendor_clusters: true,
            register_cluster: true,
            ..Capability::default()
        }
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        CREDENTIAL_KINDS
    }

    fn check_spec(
        &self,
        spec: &ClusterSpec,
    ) -> std::result::Result<Vec<SpecWarning>, SpecViolation> {
        spec::check(spec)
    }

    async fn find_cluster_by_name(
        &self,
        ctx: &CallContext,
        name: &str,
    ) -> Result<Option<VendorCluster>> {
        let call = self.call(ctx, action::LIST_CLUSTERS)?;
        let found = self.list(&call, Some(name)).await?;
        // Duplicates are possible (Rancher does not make names unique): the first one wins. A
        // cluster being removed is not found, so a create retried by name never adopts it.
        Ok(found
            .into_iter()
            .find(|c| c.state != "removing")
            .map(ClusterObject::into_vendor))
    }

    async fn list_clusters(&self, ctx: &CallContext) -> Result<Vec<VendorCluster>> {
        let call = self.call(ctx, action::LIST_CLUSTERS)?;
        let clusters = self.list(&call, None).await?;
        Ok(clusters
            .into_iter()
            .map(ClusterObject::into_vendor)
            .collect())
    }

    async fn create_cluster(
        &self,
        ctx: &CallContext,
        name: &str,
        spec: &ClusterSpec,
    ) -> Result<Submitted> {
        const OP: &str = action::CREATE_CLUSTER;
        let call = self.call(ctx, OP)?;
        let body = spec::create_body(name, spec).map_err(|message| invalid(OP, message))?;
        let raw = self
            .send(&call, OP, Idempotency::NotIdempotent, |e, k| {
                client::create_cluster_request(e, k, &body)
            })
            .await?;
        let created: ClusterObject = raw.json(VENDOR, OP)?;
        Ok(Submitted {
            object_id: created.id,
            ..Submitted::default()
        })
    }

    async fn get_cluster(&self, ctx: &CallContext, cluster_id: &str) -> Result<VendorCluster> {
        let call = self.call(ctx, action::GET_CLUSTER)?;
        Ok(self.get(&call, cluster_id).await?.into_vendor())
    }

    async fn fetch_kubeconfig(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
    ) -> Result<Zeroizing<String>> {
        const OP: &str = action::GENERATE_KUBECONFIG;
        let call = self.call(ctx, OP)?;
        check_id(OP, cluster_id)?;
        // Each call makes Rancher mint a kubeconfig token, so a retry makes a spare one at most.
        let raw = self
            .send(&call, OP, Idempotency::Idempotent, |e, k| {
                client::generate_kubeconfig_request(e, k, cluster_id)
            })
            .await?;
        let output: KubeconfigOutput = raw.json(VENDOR, OP)?;
        let config = Zeroizing::new(output.config);
        if config.trim().is_empty() {
            return Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                OP,
                "",
                format!("Rancher returned an empty kubeconfig for cluster {cluster_id}"),
            )
            .with_status(raw.status));
        }
        Ok(config)
    }

    async fn upgrade_cluster(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        kubernetes_version: &str,
    ) -> Result<Submitted> {
        const OP: &str = action::UPDATE_CLUSTER;
        let call = self.call(ctx, OP)?;
        if kubernetes_version.trim().is_empty() {
            return Err(invalid(OP, "the Kubernetes version to upgrade to is empty"));
        }
        let cluster = self.get(&call, cluster_id).await?;
        let (kind, mut config) = cluster.driver_config().ok_or_else(|| {
            invalid(
                OP,
                format!(
                    "Rancher cannot upgrade imported cluster {cluster_id}: it has neither \
                     rke2Config nor k3sConfig; upgrade Kubernetes where the cluster runs"
                ),
            )
        })?;
        config.insert("kubernetesVersion".into(), kubernetes_version.into());
        // Only the driver config is sent: a PUT of the whole object could undo a change someone
        // else made since the GET.
        let body = Value::Object(Map::from_iter([(kind.to_string(), Value::Object(config))]));
        self.send(&call, OP, Idempotency::Idempotent, |e, k| {
            client::update_cluster_request(e, k, cluster_id, &body)
        })
        .await?;
        Ok(Submitted {
            object_id: cluster_id.to_string(),
            ..Submitted::default()
        })
    }

    async fn delete_cluster(&self, ctx: &CallContext, cluster_id: &str) -> Result<Submitted> {
        const OP: &str = action::DELETE_CLUSTER;
        let call = self.call(ctx, OP)?;
        check_id(OP, cluster_id)?;
        self.send(&call, OP, Idempotency::Idempotent, |e, k| {
            client::delete_cluster_request(e, k, cluster_id)
        })
        .await?;
        Ok(Submitted {
            object_id: cluster_id.to_string(),
            ..Submitted::default()
        })
    }

    /// Creates an imported cluster named `name` (or adopts the imported cluster of that name a
    /// previous attempt made), makes a registration token for it unless it has one, and waits
    /// (bounded) until Rancher's controller has filled in the commands.
    async fn register_cluster(&self, ctx: &CallContext, name: &str) -> Result<Registration> {
        const OP: &str = action::CREATE_CLUSTER;
        let call = self.call(ctx, OP)?;
        let existing = self.list(&call, Some(name)).await?;
        let (cluster_id, fresh) = match existing.into_iter().find(|c| c.state != "removing") {
            Some(cluster) if cluster.driver_config().is_some() => {
                return Err(invalid(
                    OP,
                    format!(
                        "a Rancher cluster named {name:?} already exists ({}) and is not an \
                         imported cluster",
                        cluster.id
                    ),
                ));
            }
            Some(cluster) => (cluster.id, false),
            None => {
                let body = serde_json::json!({"type": "cluster", "name": name});
                let raw = self
                    .send(&call, OP, Idempotency::NotIdempotent, |e, k| {
                        client::create_cluster_request(e, k, &body)
                    })
                    .await?;
                (raw.json::<ClusterObject>(VENDOR, OP)?.id, true)
            }
        };
        if fresh
            || self
                .registration_tokens(&call, &cluster_id)
                .await?
                .is_empty()
        {
            const TOKEN_OP: &str = action::CREATE_CLUSTER_REGISTRATION_TOKEN;
            self.send(&call, TOKEN_OP, Idempotency::NotIdempotent, |e, k| {
                client::create_registration_token_request(e, k, &cluster_id)
            })
            .await?;
        }
        let deadline = tokio::time::Instant::now() + self.registration_wait;
        let mut delay = REGISTRATION_POLL_FIRST;
        loop {
            let tokens = self.registration_tokens(&call, &cluster_id).await?;
            if let Some(token) = tokens.into_iter().find(RegistrationToken::is_filled) {
                return Ok(Registration {
                    vendor_cluster_id: cluster_id,
                    manifest_url: token.manifest_url,
                    command: token.command,
                    insecure_command: token.insecure_command,
                });
            }
            if tokio::time::Instant::now() + delay > deadline {
                return Err(VendorError::new(
                    ErrorClass::Timeout,
                    VENDOR,
                    action::LIST_CLUSTER_REGISTRATION_TOKENS,
                    "",
                    format!(
                        "Rancher did not fill in the registration command of cluster \
                         {cluster_id} within {:?}",
                        self.registration_wait
                    ),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(REGISTRATION_POLL_MAX);
        }
    }

    /// A spec naming `rancher_cluster_id` brings in a cluster Rancher already has.
    fn adopted_cluster(&self, spec: &ClusterSpec) -> Option<String> {
        match &spec.provider_config {
            Some(crate::proto::cluster_spec::ProviderConfig::Rancher(rancher))
                if !rancher.rancher_cluster_id.is_empty() =>
            {
                Some(rancher.rancher_cluster_id.clone())
            }
            _ => None,
        }
    }
}

fn invalid(operation: &'static str, message: impl Into<String>) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        "",
        message,
    )
}

fn check_id(operation: &'static str, cluster_id: &str) -> Result<()> {
    if cluster_id.trim().is_empty() {
        return Err(invalid(operation, "the Rancher cluster id is empty"));
    }
    Ok(())
}

/// Tolerates `null` where a value is expected (norman renders some empty fields as null).
fn nullable<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Collection<T> {
    #[serde(default)]
    data: Option<Vec<T>>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterObject {
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    state: String,
    #[serde(default, deserialize_with = "nullable")]
    conditions: Vec<Condition>,
    #[serde(default)]
    version: Option<VersionInfo>,
    #[serde(default, deserialize_with = "nullable")]
    driver: String,
    #[serde(default)]
    rke2_config: Option<Value>,
    #[serde(default)]
    k3s_config: Option<Value>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    #[serde(default, deserialize_with = "nullable")]
    git_version: String,
}

impl ClusterObject {
    /// The driver config that holds the Kubernetes version (`rke2Config` or `k3sConfig`,
    /// whichever the cluster has; the one `driver` names if it has both).
    fn driver_config(&self) -> Option<(&'static str, Map<String, Value>)> {
        let rke2 = self.rke2_config.as_ref().and_then(Value::as_object);
        let k3s = self.k3s_config.as_ref().and_then(Value::as_object);
        match (rke2, k3s) {
            (Some(_), Some(k3s)) if self.driver == "k3s" => Some(("k3sConfig", k3s.clone())),
            (Some(rke2), _) => Some(("rke2Config", rke2.clone())),
            (None, Some(k3s)) => Some(("k3sConfig", k3s.clone())),
            (None, None) => None,
        }
    }

    fn ready(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status.eq_ignore_ascii_case("true"))
    }

    fn into_vendor(self) -> VendorCluster {
        let state = cluster_state(&self.state, self.ready());
        let running = self
            .version
            .as_ref()
            .map(|v| v.git_version.clone())
            .unwrap_or_default();
        let kubernetes_version = if running.is_empty() {
            self.driver_config()
                .and_then(|(_, c)| c.get("kubernetesVersion")?.as_str().map(str::to_string))
                .unwrap_or_default()
        } else {
            running
        };
        VendorCluster {
            id: self.id,
            name: self.name,
            state,
            raw_state: self.state,
            kubernetes_version,
            region: String::new(),
        }
    }
}

/// Rancher's state strings. Only `active` is confirmed (and gated on the Ready condition); the
/// intermediate names are UNCONFIRMED (vendor-apis.md §10), and unknown ones stay `Other`.
fn cluster_state(state: &str, ready: bool) -> VendorClusterState {
    match state {
        "active" if ready => VendorClusterState::Running,
        "provisioning" | "pending" | "waiting" => VendorClusterState::Creating,
        "updating" | "upgrading" => VendorClusterState::Updating,
        "removing" => VendorClusterState::Deleting,
        "removed" => VendorClusterState::Deleted,
        "error" => VendorClusterState::Failed,
        _ => VendorClusterState::Other,
    }
}

#[derive(Deserialize)]
struct KubeconfigOutput {
    #[serde(default, deserialize_with = "nullable")]
    config: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationToken {
    #[serde(default, deserialize_with = "nullable")]
    cluster_id: String,
    #[serde(default, deserialize_with = "nullable")]
    manifest_url: String,
    #[serde(default, deserialize_with = "nullable")]
    command: String,
    #[serde(default, deserialize_with = "nullable")]
    insecure_command: String,
}

impl RegistrationToken {
    fn is_filled(&self) -> bool {
        !self.manifest_url.is_empty() && !self.command.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapters::{Credentials, TransportSettings};

    fn cluster(body: Value) -> ClusterObject {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn states_and_versions() {
        let ready = json!([{"type": "Ready", "status": "True"}]);
        for (state, conditions, expected) in [
            ("active", ready.clone(), VendorClusterState::Running),
            ("active", json!([]), VendorClusterState::Other),
            ("provisioning", json!(null), VendorClusterState::Creating),
            ("pending", json!([]), VendorClusterState::Creating),
            ("waiting", json!([]), VendorClusterState::Creating),
            ("updating", ready.clone(), VendorClusterState::Updating),
            ("upgrading", ready.clone(), VendorClusterState::Updating),
            ("removing", json!([]), VendorClusterState::Deleting),
            ("error", json!([]), VendorClusterState::Failed),
            ("unavailable", json!([]), VendorClusterState::Other),
        ] {
            let c = cluster(
                json!({"id": "c-abcde", "name": "a", "state": state, "conditions": conditions}),
            );
            let v = c.into_vendor();
            assert_eq!(v.state, expected, "{state}");
            assert_eq!(v.raw_state, state);
        }
        // The running version wins; before there is one, the driver config's.
        let c = cluster(
            json!({"id": "c-1", "version": {"gitVersion": "v1.32.5+rke2r1"},
            "rke2Config": {"kubernetesVersion": "v1.33.1+rke2r1"}}),
        );
        assert_eq!(c.into_vendor().kubernetes_version, "v1.32.5+rke2r1");
        let c = cluster(json!({"id": "c-1", "version": null, "name": null,
            "rke2Config": {"kubernetesVersion": "v1.33.1+rke2r1"}}));
        assert_eq!(c.into_vendor().kubernetes_version, "v1.33.1+rke2r1");
    }

    #[test]
    fn the_driver_config_to_upgrade() {
        let c = cluster(json!({"id": "c-1", "driver": "imported", "rke2Config": null}));
        assert!(c.driver_config().is_none());
        let c = cluster(json!({"id": "c-1", "k3sConfig": {"kubernetesVersion": "v1.32.5+k3s1"}}));
        assert_eq!(c.driver_config().unwrap().0, "k3sConfig");
        let c = cluster(json!({"id": "c-1", "driver": "k3s", "rke2Config": {}, "k3sConfig": {}}));
        assert_eq!(c.driver_config().unwrap().0, "k3sConfig");
        let c = cluster(json!({"id": "c-1", "rke2Config": {"upgradeStrategy": {}}}));
        let (kind, config) = c.driver_config().unwrap();
        assert_eq!(
            (kind, config.contains_key("upgradeStrategy")),
            ("rke2Config", true)
        );
    }

    fn http() -> VendorHttp {
        VendorHttp::new(TransportSettings::default(), None).unwrap()
    }

    fn ctx(credentials: Credentials) -> CallContext {
        CallContext {
            credentials,
            region: String::new(),
        }
    }

    #[tokio::test]
    async fn without_a_url_every_call_is_invalid_configuration() {
        let provider = RancherProvider::new(http(), None);
        let ctx = ctx(Credentials::ApiKey {
            key_id: "token-ab12c".into(),
            token: Zeroizing::new("secret-secret".into()),
        });
        let err = provider.get_cluster(&ctx, "c-abcde").await.unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        assert!(err.message.contains("rancher_url"));
        let err = provider.list_clusters(&ctx).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        let provider = RancherProvider::new(http(), Some("http://rancher.example.com".into()));
        let err = provider.delete_cluster(&ctx, "c-abcde").await.unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        assert!(err.message.contains("https"));
    }

    #[tokio::test]
    async fn the_key_never_shows_in_errors_or_debug() {
        const SECRET: &str = "kq9x2vdmq8hvl7zsl9n8c5xw4ct7rz6mfz2b8qj4wx7gqtkcn2p6vh";
        let provider = RancherProvider::new(http(), Some("https://127.0.0.1:1".into()));
        let debug = format!("{provider:?}");
        assert!(debug.contains("127.0.0.1") && !debug.contains(SECRET));
        let wrong_kind = ctx(Credentials::AccessKey {
            id: "LTAI".into(),
            secret: Zeroizing::new(SECRET.into()),
        });
        let bad_header = ctx(Credentials::ApiKey {
            key_id: "token-ab12c".into(),
            token: Zeroizing::new(format!("{SECRET}\n")),
        });
        for ctx in [&wrong_kind, &bad_header] {
            assert!(!format!("{ctx:?}").contains(SECRET));
            let err = provider.get_cluster(ctx, "c-abcde").await.unwrap_err();
            assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err}");
            assert!(!format!("{err} {err:?}").contains(SECRET));
        }
    }

    #[test]
    fn a_spec_naming_an_existing_cluster_is_adopted_not_created() {
        use crate::proto::{RancherClusterConfig, cluster_spec::ProviderConfig};
        let provider = RancherProvider::new(http(), None);
        let spec = |config: Option<ProviderConfig>| ClusterSpec {
            provider_config: config,
            ..ClusterSpec::default()
        };
        let existing = spec(Some(ProviderConfig::Rancher(RancherClusterConfig {
            rancher_cluster_id: "c-m-abc12".into(),
            ..RancherClusterConfig::default()
        })));
        assert_eq!(
            provider.adopted_cluster(&existing).as_deref(),
            Some("c-m-abc12")
        );
        let new = spec(Some(ProviderConfig::Rancher(
            RancherClusterConfig::default(),
        )));
        assert_eq!(provider.adopted_cluster(&new), None);
        assert_eq!(provider.adopted_cluster(&spec(None)), None);
    }
}
