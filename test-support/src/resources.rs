//! Shared setup for the generic-resource and apply tests: a server with the test control plane
//! imported, a namespace per test, CRD helpers.

use super::{kube as kenv, kubeconfigs, server::TestServer};
use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::{
    api::core::v1::ConfigMap,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::api::DeleteParams;
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub type Workloads = WorkloadServiceClient<super::server::AuthedChannel>;

pub const CLUSTER: &str = "dev";

/// A server with the test control plane imported as cluster "dev", and a fresh namespace.
pub struct Ctx {
    pub _server: TestServer,
    pub api: Workloads,
    pub kube: kube::Client,
    pub ns: kenv::TestNamespace,
}

impl Ctx {
    pub async fn start(prefix: &str) -> Ctx {
        let server = TestServer::start().await;
        let channel = server.channel().await;
        ClusterServiceClient::new(channel.clone())
            .import_cluster(pb::ImportClusterRequest {
                cluster_id: CLUSTER.into(),
                source: Some(pb::import_cluster_request::Source::Kubeconfig(
                    pb::KubeconfigSource {
                        kubeconfig: kubeconfigs::admin_kubeconfig().into(),
                        context: String::new(),
                    },
                )),
                ..Default::default()
            })
            .await
            .expect("import the test cluster");
        let kube = kenv::client().await;
        let ns = kenv::TestNamespace::create(&kube, prefix).await;
        Ctx {
            _server: server,
            api: WorkloadServiceClient::new(channel),
            kube,
            ns,
        }
    }

    pub fn ns(&self) -> String {
        self.ns.name().to_string()
    }

    pub async fn apply(&mut self, manifests: &str, dry_run: bool) -> Vec<pb::ApplyResult> {
        self.try_apply(manifests, dry_run, false)
            .await
            .expect("apply")
    }

    pub async fn try_apply(
        &mut self,
        manifests: &str,
        dry_run: bool,
        force_conflicts: bool,
    ) -> Result<Vec<pb::ApplyResult>, Status> {
        let request = pb::ApplyManifestsRequest {
            cluster_id: CLUSTER.into(),
            namespace: self.ns(),
            manifests: manifests.into(),
            dry_run,
            force_conflicts,
        };
        Ok(self
            .api
            .apply_manifests(request)
            .await?
            .into_inner()
            .results)
    }

    pub async fn list(
        &mut self,
        request: pb::ListResourcesRequest,
    ) -> Result<pb::ListResourcesResponse, Status> {
        let request = pb::ListResourcesRequest {
            cluster_id: CLUSTER.into(),
            ..request
        };
        Ok(self.api.list_resources(request).await?.into_inner())
    }

    /// GetResource of `[api_version, kind, namespace, name]`.
    pub async fn get(&mut self, key: [&str; 4]) -> Result<pb::Resource, Status> {
        let [api_version, kind, namespace, name] = key.map(String::from);
        let request = pb::GetResourceRequest {
            cluster_id: CLUSTER.into(),
            api_version,
            kind,
            namespace,
            name,
        };
        let response = self.api.get_resource(request).await?.into_inner();
        Ok(response.resource.expect("resource"))
    }

    /// DeleteResource of `[api_version, kind, namespace, name]`.
    pub async fn delete(
        &mut self,
        key: [&str; 4],
        propagation: pb::PropagationPolicy,
    ) -> Result<(), Status> {
        let [api_version, kind, namespace, name] = key.map(String::from);
        let request = pb::DeleteResourceRequest {
            cluster_id: CLUSTER.into(),
            api_version,
            kind,
            namespace,
            name,
            propagation_policy: propagation.into(),
        };
        self.api.delete_resource(request).await?;
        Ok(())
    }

    pub async fn has_config_map(&self, name: &str) -> bool {
        self.config_maps()
            .get_opt(name)
            .await
            .expect("get config map")
            .is_some()
    }

    pub fn config_maps(&self) -> kube::Api<ConfigMap> {
        self.ns.api()
    }

    pub async fn cleanup(self) {
        self.ns.cleanup().await;
    }
}

pub fn config_map(name: &str, extra: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra}")
}

pub fn query(api_version: &str, kind: &str, namespace: &str) -> pb::ListResourcesRequest {
    pb::ListResourcesRequest {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        ..Default::default()
    }
}

/// INVALID_ARGUMENT naming `field` in its BadRequest details.
pub fn assert_invalid(status: &Status, field: &str) {
    let named = status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first())
        .map(|v| v.field.clone())
        .unwrap_or_default();
    assert_eq!(
        (status.code(), named.as_str()),
        (Code::InvalidArgument, field),
        "{status:?}"
    );
}

pub fn outcome(result: &pb::ApplyResult) -> pb::ApplyOutcome {
    result.outcome()
}

pub fn all(results: &[pb::ApplyResult], expected: pb::ApplyOutcome) -> bool {
    results.iter().all(|r| r.outcome() == expected)
}

pub fn object(result: &pb::ApplyResult) -> pb::ObjectReference {
    result.object.clone().expect("object reference")
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{:x}{:x}",
        std::process::id() & 0xffff,
        nanos & 0xff_ffff
    )
}

/// A CRD named `<plural>.<group>` for namespaced kind `kind`, v1, any fields.
pub fn crd(group: &str, kind: &str, plural: &str, scope: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  scope: {scope}
  names:
    kind: {kind}
    plural: {plural}
    singular: {singular}
    listKind: {kind}List
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#,
        singular = kind.to_lowercase()
    )
}

/// Deletes a cluster-scoped CRD when dropped (tests that panic must not leave it behind).
pub struct CrdGuard {
    pub name: String,
    pub client: kube::Client,
    pub deleted: bool,
}

impl CrdGuard {
    pub async fn delete(mut self) {
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::default()).await;
        self.deleted = true;
    }
}

impl Drop for CrdGuard {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        let name = self.name.clone();
        let kubeconfig = kenv::env().kubeconfig().to_path_buf();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(client) = kenv::client_from_kubeconfig(&kubeconfig).await {
                    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client);
                    let _ = api.delete(&name, &DeleteParams::default()).await;
                }
            });
        })
        .join();
    }
}
