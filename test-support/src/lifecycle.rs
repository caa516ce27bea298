//! Helpers for lifecycle tests: vendor credentials, cluster specs and waiting on operations.

use std::time::Duration;

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient,
    credential_service_client::CredentialServiceClient,
    operation_service_client::OperationServiceClient,
};
use tonic::transport::Channel;

use super::server::{AuthedChannel, TestServer};

/// Stores a vendor credential; returns its id.
pub async fn create_credential(
    channel: AuthedChannel,
    id: &str,
    provider: &str,
    key: (&str, &str),
) -> String {
    use pb::credential_secret::Secret;
    let secret = if provider == "rancher" {
        Secret::ApiKey(pb::ApiKeySecret {
            key_id: key.0.into(),
            token: key.1.into(),
        })
    } else {
        Secret::AccessKey(pb::AccessKeySecret {
            access_key_id: key.0.into(),
            access_key_secret: key.1.into(),
        })
    };
    CredentialServiceClient::new(channel)
        .create_credential(pb::CreateCredentialRequest {
            credential_id: id.into(),
            display_name: format!("{provider} test key"),
            provider: provider.into(),
            secret: Some(pb::CredentialSecret {
                secret: Some(secret),
            }),
            ..Default::default()
        })
        .await
        .expect("create credential")
        .into_inner()
        .credential
        .expect("credential")
        .id
}

/// A small cluster spec for `provider` with one node pool.
pub fn cluster_spec(provider: &str, credential_id: &str, version: &str) -> pb::ClusterSpec {
    use pb::cluster_spec::ProviderConfig;
    let (region, config) = match provider {
        "ack" => (
            "cn-hangzhou",
            Some(ProviderConfig::Ack(pb::AckClusterConfig {
                cluster_type: "ManagedKubernetes".into(),
                cluster_spec: "ack.pro.small".into(),
                ..Default::default()
            })),
        ),
        "tke" => (
            "ap-guangzhou",
            Some(ProviderConfig::Tke(pb::TkeClusterConfig {
                cluster_type: "MANAGED_CLUSTER".into(),
                ..Default::default()
            })),
        ),
        _ => (
            "",
            Some(ProviderConfig::Rancher(pb::RancherClusterConfig {
                rancher_cluster_id: String::new(),
                driver_config: Some(prost_types::Struct {
                    fields: [(
                        "rke2Config".to_string(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::StructValue(
                                prost_types::Struct {
                                    fields: [(
                                        "kubernetesVersion".to_string(),
                                        prost_types::Value {
                                            kind: Some(prost_types::value::Kind::StringValue(
                                                version.to_string(),
                                            )),
                                        },
                                    )]
                                    .into(),
                                },
                            )),
                        },
                    )]
                    .into(),
                }),
            })),
        ),
    };
    pb::ClusterSpec {
        display_name: format!("{provider} e2e"),
        kubernetes_version: version.into(),
        region: region.into(),
        credential_id: credential_id.into(),
        network: Some(pb::ClusterNetwork {
            vpc_id: "vpc-test".into(),
            node_subnet_ids: vec!["vsw-test".into()],
            pod_cidr: "172.20.0.0/16".into(),
            service_cidr: "172.21.0.0/20".into(),
            ..Default::default()
        }),
        node_pools: if provider == "rancher" {
            Vec::new()
        } else {
            vec![pb::NodePoolSpec {
                name: "default".into(),
                instance_types: vec!["small".into()],
                desired_size: 1,
                max_size: 3,
                ..Default::default()
            }]
        },
        provider_config: config,
        ..Default::default()
    }
}

/// Follows WatchOperation until the operation ends; returns its last state. Panics after
/// `limit`.
pub async fn wait_operation(channel: AuthedChannel, id: &str, limit: Duration) -> pb::Operation {
    let mut client = OperationServiceClient::new(channel);
    let watch = async {
        let mut stream = client
            .watch_operation(pb::WatchOperationRequest {
                operation_id: id.into(),
            })
            .await
            .expect("watch operation")
            .into_inner();
        let mut last = None;
        while let Some(item) = stream.message().await.expect("watch stream") {
            last = item.operation;
        }
        last.expect("at least one operation message")
    };
    tokio::time::timeout(limit, watch)
        .await
        .unwrap_or_else(|_| panic!("operation {id} did not end within {limit:?}"))
}

/// Polls GetOperation (for servers that restart under the test) until it ends.
pub async fn poll_operation(channel: Channel, token: &str, id: &str) -> Option<pb::Operation> {
    let mut request = tonic::Request::new(pb::GetOperationRequest {
        operation_id: id.into(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    OperationServiceClient::new(channel)
        .get_operation(request)
        .await
        .ok()?
        .into_inner()
        .operation
}

pub fn state(op: &pb::Operation) -> pb::OperationState {
    pb::OperationState::try_from(op.state).unwrap_or(pb::OperationState::Unspecified)
}

pub async fn get_cluster(channel: AuthedChannel, id: &str) -> Result<pb::Cluster, tonic::Status> {
    ClusterServiceClient::new(channel)
        .get_cluster(pb::GetClusterRequest {
            cluster_id: id.into(),
        })
        .await
        .map(|r| r.into_inner().cluster.expect("cluster"))
}

pub const LIMIT: Duration = Duration::from_secs(90);

/// Shared by the three vendors: endpoints and identity of a simulator.
pub struct Vendor {
    pub provider: &'static str,
    pub endpoint: String,
    pub key: (String, String),
    pub control: super::sim::SimControl,
}

pub async fn server_for(vendor: &Vendor) -> TestServer {
    let endpoint = vendor.endpoint.clone();
    let provider = vendor.provider;
    TestServer::start_with(move |s| {
        match provider {
            "ack" => s.vendors.ack.endpoint = Some(endpoint),
            "tke" => s.vendors.tke.endpoint = Some(endpoint),
            _ => s.vendors.rancher.url = Some(endpoint),
        }
        s.operations.poll_interval = Duration::from_millis(100);
        s.vendors.transport.backoff_base = Duration::from_millis(20);
        s.vendors.transport.backoff_cap = Duration::from_millis(500);
    })
    .await
}

pub async fn create(
    server: &TestServer,
    provider: &str,
    id: &str,
    credential: &str,
    version: &str,
) -> (pb::Operation, pb::Cluster) {
    let response = ClusterServiceClient::new(server.channel().await)
        .create_cluster(pb::CreateClusterRequest {
            cluster_id: id.into(),
            provider: provider.into(),
            spec: Some(cluster_spec(provider, credential, version)),
            request_id: format!("create-{id}"),
            validate_only: false,
        })
        .await
        .expect("CreateCluster")
        .into_inner();
    (
        response.operation.expect("operation"),
        response.cluster.expect("cluster"),
    )
}

/// What `provider` declares it can do: its adapter's `ClusterProvider::capability()`, as
/// ListProviders reports it. The lifecycle suite runs what is declared and expects
/// UNSUPPORTED_BY_PROVIDER for the rest, so no test passes a flag by hand.
pub async fn capability(server: &TestServer, provider: &str) -> pb::ProviderCapability {
    ClusterServiceClient::new(server.channel().await)
        .list_providers(pb::ListProvidersRequest {})
        .await
        .expect("ListProviders")
        .into_inner()
        .providers
        .into_iter()
        .find(|p| p.id == provider)
        .unwrap_or_else(|| panic!("provider {provider} is not listed"))
        .capability
        .unwrap_or_else(|| panic!("provider {provider} declares no capability"))
}

pub fn assert_unsupported(err: &tonic::Status) {
    let details = tonic_types::StatusExt::get_error_details(err);
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "UNSUPPORTED_BY_PROVIDER", "{err:?}");
}
