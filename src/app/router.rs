//! Every service behind the HTTP layers: the console, CORS, grpc-web, auth, and the
//! missing-message fix.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use http::{HeaderName, Method};
use tonic::transport::Server;
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::layer::util::{Identity, Stack};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::{agent_manifest::AgentManifestLayer, console::ConsoleLayer, services::Services};
use crate::{
    api,
    auth::layer::AuthLayer,
    config::Settings,
    proto as pb,
    telemetry::rpc::{MethodCatalog, RpcLayer},
};

type MissingMessageLayer = tower::util::MapResponseLayer<
    fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body>,
>;

/// The HTTP layers around every service, outermost last.
type Layers = Stack<
    MissingMessageLayer,
    Stack<
        AuthLayer,
        Stack<
            RpcLayer,
            Stack<
                tonic_web::GrpcWebLayer,
                Stack<CorsLayer, Stack<ConsoleLayer, Stack<AgentManifestLayer, Identity>>>,
            >,
        >,
    >,
>;

/// Largest request message accepted (ApplyManifests takes up to 4 MiB of YAML).
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

pub struct Built {
    pub router: tonic::transport::server::Router<Layers>,
    pub health: HealthReporter,
}

pub async fn build(
    settings: &Settings,
    services: &Services,
    server: Server,
) -> anyhow::Result<Built> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in crate::proto::SERVICE_NAMES
        .iter()
        .chain(std::iter::once(&""))
    {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building reflection v1")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building reflection v1alpha")?;

    macro_rules! limited {
        ($server:ty, $api:expr) => {
            <$server>::new($api)
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(64 * 1024 * 1024)
        };
    }

    let server = server
        // grpc-web clients speak HTTP/1.1; gRPC clients HTTP/2. One port serves both.
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)));
    let router = server
        // Outermost: agent manifests at their unguessable URLs (the token is the credential).
        .layer(AgentManifestLayer::new(services.agents.clone()))
        // The console's GET and HEAD never reach authentication or a service.
        .layer(ConsoleLayer::new(settings.console))
        .layer(cors_layer(&settings.cors_allowed_origins)?)
        .layer(tonic_web::GrpcWebLayer::new())
        // Inside grpc-web's translation: both protocols are measured and traced alike, auth
        // denials included.
        .layer(RpcLayer::new(
            services.metrics.clone(),
            Arc::new(MethodCatalog::from_descriptor_sets(&[
                pb::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
            ])),
        ))
        .layer(AuthLayer::new(services.auth.clone()))
        .layer(MissingMessageLayer::new(
            api::status::missing_message_is_invalid,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(limited!(
            pb::cluster_service_server::ClusterServiceServer<_>,
            api::cluster::ClusterApi::new(
                services.catalog.clone(),
                services.importer.clone(),
                services.lifecycle.clone(),
                services.agents.clone()
            )
        ))
        .add_service(limited!(
            pb::node_service_server::NodeServiceServer<_>,
            api::node::NodeApi::new(
                services.workloads.clone(),
                services.lifecycle.clone(),
                services.streams.clone()
            )
        ))
        .add_service(limited!(
            pb::workload_service_server::WorkloadServiceServer<_>,
            api::workload::WorkloadApi::new(services.workloads.clone(), services.resources.clone())
        ))
        .add_service(limited!(
            pb::registry_service_server::RegistryServiceServer<_>,
            api::registry::RegistryApi::new(
                services.registries.clone(),
                services.registry_content.clone(),
                services.pull_secrets.clone()
            )
        ))
        .add_service(limited!(
            pb::log_stream_server::LogStreamServer<_>,
            api::logs::LogStreamApi::new(services.logs.clone(), services.workload_logs.clone())
        ))
        .add_service(limited!(
            pb::operation_service_server::OperationServiceServer<_>,
            api::operation::OperationApi::new(
                services.operations.clone(),
                settings.operations.retry_window,
                services.streams.clone()
            )
        ))
        .add_service(limited!(
            pb::credential_service_server::CredentialServiceServer<_>,
            api::credential::CredentialApi::new(services.vault.clone())
        ))
        .add_service(limited!(
            pb::admin_service_server::AdminServiceServer<_>,
            api::admin::AdminApi::new(services.admin.clone())
        ))
        .add_service(limited!(
            pb::agent_service_server::AgentServiceServer<_>,
            api::agent::AgentApi::new(services.agents.clone())
        ));
    Ok(Built { router, health })
}

/// CORS for browser consoles on other origins. An empty list allows none (no wildcard ever).
fn cors_layer(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let origins = origins
        .iter()
        .map(|o| o.parse().with_context(|| format!("CORS origin {o:?}")))
        .collect::<anyhow::Result<Vec<http::HeaderValue>>>()?;
    let header = |name: &'static str| HeaderName::from_static(name);
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header("content-type"),
            header("authorization"),
            header("x-grpc-web"),
            header("x-user-agent"),
            header("x-request-id"),
            header("grpc-timeout"),
        ])
        .expose_headers([
            header("grpc-status"),
            header("grpc-message"),
            header("grpc-status-details-bin"),
            header("x-request-id"),
        ])
        .max_age(Duration::from_secs(24 * 60 * 60)))
}
