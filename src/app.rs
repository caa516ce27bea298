//! Wiring: the only place that knows every concrete type. Builds the store and services and
//! serves gRPC, grpc-web, reflection and health on one port.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use http::{HeaderName, Method};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::ServingStatus;
use tower::layer::util::{Identity, Stack};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    api::{self, pb},
    config::{Settings, redact_url},
    crypto::{KeySource, Keyring},
    kube::Timeouts,
    service::{
        clusters::ClusterCatalog,
        connector::ClusterConnector,
        credentials::CredentialVault,
        import::ClusterImporter,
        status::{Prober, ProberSettings, StatusBoard},
    },
    store::{BackendKind, Store},
};

type MissingMessageLayer = tower::util::MapResponseLayer<
    fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body>,
>;

/// The HTTP layers around every service, outermost last.
type Layers =
    Stack<MissingMessageLayer, Stack<tonic_web::GrpcWebLayer, Stack<CorsLayer, Identity>>>;

/// Largest request message accepted (ApplyManifests takes up to 4 MiB of YAML).
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// A server that is listening. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// A token that, when cancelled, starts a graceful shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets in-flight calls finish (bounded), and waits for the server to end.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the server has stopped (after its shutdown token is cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// Opens the database (creating and migrating it when needed) and starts serving.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    create_data_dir(&settings.data_dir)?;
    let store = Store::open(&settings.database_url)
        .await
        .with_context(|| format!("opening {}", redact_url(&settings.database_url)))?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;

    let shutdown = CancellationToken::new();
    let keyring = Arc::new(open_keyring(&settings, store.kind())?);
    let services = Services::new(&settings, store, keyring);
    for path in &settings.import_kubeconfig {
        for line in services.importer.import_file(path).await {
            tracing::info!(kubeconfig = %path.display(), "{line}");
        }
    }
    tokio::spawn(services.prober(&settings).run(shutdown.child_token()));
    let server = build(&settings, &services).await?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let token = shutdown.clone();
    let grace = settings.shutdown_timeout;
    let task = tokio::spawn(async move {
        let serving = server.router.serve_with_incoming_shutdown(incoming, {
            let token = token.clone();
            async move { token.cancelled().await }
        });
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => return result.context("server failed"),
            () = token.cancelled() => {}
        }
        for name in api::SERVICE_NAMES.iter().chain(std::iter::once(&"")) {
            server
                .health
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down: no new connections"
        );
        match tokio::time::timeout(grace, &mut serving).await {
            Ok(result) => result.context("server failed"),
            Err(_) => {
                tracing::warn!("in-flight calls did not finish in time; closing them");
                Ok(())
            }
        }
    });
    tracing::info!(%addr, database = %redact_url(&settings.database_url), "flotilla serving");
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}

struct Built {
    router: tonic::transport::server::Router<Layers>,
    health: tonic_health::server::HealthReporter,
}

/// The service layer, wired.
struct Services {
    store: Store,
    board: Arc<StatusBoard>,
    connector: Arc<ClusterConnector>,
    catalog: Arc<ClusterCatalog>,
    importer: Arc<ClusterImporter>,
    vault: Arc<CredentialVault>,
}

impl Services {
    fn new(_settings: &Settings, store: Store, keyring: Arc<Keyring>) -> Services {
        let board = Arc::new(StatusBoard::default());
        let connector = Arc::new(ClusterConnector::new(
            store.clone(),
            keyring.clone(),
            Timeouts::default(),
        ));
        let catalog = Arc::new(ClusterCatalog::new(
            store.clone(),
            board.clone(),
            connector.clone(),
        ));
        let importer = Arc::new(ClusterImporter::new(
            store.clone(),
            connector.clone(),
            board.clone(),
        ));
        let vault = Arc::new(CredentialVault::new(store.clone(), keyring));
        Services {
            vault,
            store,
            board,
            connector,
            catalog,
            importer,
        }
    }

    fn prober(&self, settings: &Settings) -> Prober {
        Prober {
            store: self.store.clone(),
            connector: self.connector.clone(),
            board: self.board.clone(),
            settings: ProberSettings {
                interval: settings.probe_interval,
                concurrency: settings.probe_concurrency,
            },
        }
    }
}

/// The master keys: `FLOTILLA_MASTER_KEY`, `--master-key-file`, or a file generated in the data
/// directory. Several replicas on one PostgreSQL must share keys, so with PostgreSQL a key is
/// never generated silently.
pub fn open_keyring(settings: &Settings, backend: BackendKind) -> anyhow::Result<Keyring> {
    let source = match (&settings.master_key, &settings.master_key_file) {
        (Some(value), _) => KeySource::Value(value.clone()),
        (None, Some(path)) => KeySource::File {
            path: path.clone(),
            create: true,
        },
        (None, None) => {
            let path = settings.data_dir.join("master.keys");
            if backend == BackendKind::Postgres && !path.exists() {
                anyhow::bail!(
                    "with PostgreSQL every replica must use the same master key: give \
                     --master-key-file (or FLOTILLA_MASTER_KEY)"
                );
            }
            KeySource::File { path, create: true }
        }
    };
    Ok(Keyring::load(source)?)
}

async fn build(settings: &Settings, services: &Services) -> anyhow::Result<Built> {
    let catalog = services.catalog.clone();
    let importer = services.importer.clone();

    let (health, health_service) = tonic_health::server::health_reporter();
    for name in api::SERVICE_NAMES.iter().chain(std::iter::once(&"")) {
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

    let router = Server::builder()
        // grpc-web clients speak HTTP/1.1; gRPC clients HTTP/2. One port serves both.
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(cors_layer(&settings.cors_allowed_origins)?)
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(MissingMessageLayer::new(
            api::status::missing_message_is_invalid,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(limited!(
            pb::cluster_service_server::ClusterServiceServer<_>,
            api::cluster::ClusterApi::new(catalog, importer)
        ))
        .add_service(limited!(
            pb::node_service_server::NodeServiceServer<_>,
            api::unimplemented::NodeApi
        ))
        .add_service(limited!(
            pb::workload_service_server::WorkloadServiceServer<_>,
            api::unimplemented::WorkloadApi
        ))
        .add_service(limited!(
            pb::registry_service_server::RegistryServiceServer<_>,
            api::unimplemented::RegistryApi
        ))
        .add_service(limited!(
            pb::log_stream_server::LogStreamServer<_>,
            api::unimplemented::LogStreamApi
        ))
        .add_service(limited!(
            pb::operation_service_server::OperationServiceServer<_>,
            api::unimplemented::OperationApi
        ))
        .add_service(limited!(
            pb::credential_service_server::CredentialServiceServer<_>,
            api::credential::CredentialApi::new(services.vault.clone())
        ))
        .add_service(limited!(
            pb::admin_service_server::AdminServiceServer<_>,
            api::unimplemented::AdminApi
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
            header("grpc-timeout"),
        ])
        .expose_headers([
            header("grpc-status"),
            header("grpc-message"),
            header("grpc-status-details-bin"),
        ])
        .max_age(Duration::from_secs(24 * 60 * 60)))
}

/// The data directory holds the database and, later, the master key: owner-only.
fn create_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Applies migrations and returns (for `flotilla migrate`).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    create_data_dir(&settings.data_dir)?;
    Store::open(&settings.database_url)
        .await
        .with_context(|| format!("migrating {}", redact_url(&settings.database_url)))?;
    Ok(())
}

/// `flotilla rotate-master-key`.
pub async fn rotate_master_key(
    settings: &Settings,
) -> anyhow::Result<crate::service::rotation::RotationReport> {
    let store = Store::open(&settings.database_url)
        .await
        .with_context(|| format!("opening {}", redact_url(&settings.database_url)))?;
    let keyring = open_keyring(settings, store.kind())?;
    crate::service::rotation::rotate_master_key(&store, &keyring)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}
