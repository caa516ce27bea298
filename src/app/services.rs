//! The service layer, wired: one instance of each use case, sharing the store and keys.

use std::sync::Arc;

use crate::{
    auth::{audit::AuditLog, layer::AuthState, rate::RateLimiter, tokens::Tokens},
    config::Settings,
    crypto::Keyring,
    kube::Timeouts,
    kube::watch_cache::WatchCaches,
    service::{
        access::ClusterAccessor,
        admin::Administration,
        clusters::connector::ClusterConnector,
        clusters::import::ClusterImporter,
        clusters::ownership::ClusterOwnership,
        clusters::status::{Prober, ProberSettings, StatusBoard},
        clusters::{ClusterCatalog, ForgetHook},
        lifecycle::Lifecycle,
        operations::OperationBook,
        operations::worker::OperationWorker,
        registries::{
            RegistryCatalog,
            connect::RegistryConnector,
            content::RegistryContent,
            deployments::DeploymentFinder,
            pull_secret_renewal::{PullSecretRenewal, PullSecretScheduler},
            pull_secrets::PullSecrets,
            status::{RegistryProber, RegistryProberSettings, RegistryStatusBoard},
        },
        secrets::credentials::CredentialVault,
        streams::StreamSessions,
        workloads::WorkloadQueries,
        workloads::logs::LogService,
        workloads::resources::ResourceService,
        workloads::workload_logs::WorkloadLogService,
    },
    store::Store,
};

pub struct Services {
    pub store: Store,
    pub board: Arc<StatusBoard>,
    pub connector: Arc<ClusterConnector>,
    pub catalog: Arc<ClusterCatalog>,
    pub importer: Arc<ClusterImporter>,
    pub vault: Arc<CredentialVault>,
    pub workloads: Arc<WorkloadQueries>,
    pub resources: Arc<ResourceService>,
    pub caches: Arc<WatchCaches>,
    pub logs: Arc<LogService>,
    pub workload_logs: Arc<WorkloadLogService>,
    /// Per-token stream caps and revocation of open streams.
    pub streams: Arc<StreamSessions>,
    pub tokens: Arc<Tokens>,
    pub audit: AuditLog,
    pub auth: Arc<AuthState>,
    pub lifecycle: Arc<Lifecycle>,
    pub operations: Arc<OperationBook>,
    pub worker: Arc<OperationWorker>,
    /// API tokens and the audit log, for the admin API.
    pub admin: Arc<Administration>,
    pub registry_connector: Arc<RegistryConnector>,
    pub registry_board: Arc<RegistryStatusBoard>,
    pub registries: Arc<RegistryCatalog>,
    pub registry_content: Arc<RegistryContent>,
    pub pull_secrets: Arc<PullSecrets>,
    /// The clusters this replica probes and caches (per-cluster leases in the database).
    pub ownership: Arc<ClusterOwnership>,
    /// Clusters imported by agent: registration tokens and agent credentials.
    pub agents: Arc<crate::service::clusters::agent::AgentRegistry>,
    /// Every metric family (recorded always; served only with --metrics-listen).
    pub metrics: crate::telemetry::metrics::Metrics,
}

impl Services {
    pub fn new(
        settings: &Settings,
        store: Store,
        keyring: Arc<Keyring>,
        providers: super::providers::Providers,
        outbound: Arc<crate::net::OutboundPolicy>,
        shutdown: tokio_util::sync::CancellationToken,
        metrics: crate::telemetry::metrics::Metrics,
    ) -> Services {
        let super::providers::Providers {
            clusters: providers,
            registries: registry_providers,
            credentials: accepted_credentials,
        } = providers;
        let replica_id = ClusterOwnership::replica_name();
        let (board, status_sync) = StatusBoard::shared(store.clone(), replica_id.clone());
        tokio::spawn(status_sync.run(shutdown.clone()));
        store.observe_queries(metrics.clone());
        let tunnels = crate::kube::tunnel::TunnelRegistry::new(settings.agent_keepalive);
        let connector = Arc::new(
            ClusterConnector::new(
                store.clone(),
                keyring.clone(),
                Timeouts::default(),
                outbound,
            )
            .with_metrics(metrics.clone())
            .with_tunnels(tunnels.clone()),
        );
        let accessor = Arc::new(ClusterAccessor::new(store.clone(), connector.clone()));
        let caches = Arc::new(WatchCaches::new(
            settings.watch_cache_idle,
            crate::api::kube_convert::pod_wire,
        ));
        let ownership = Arc::new(
            ClusterOwnership::new(store.clone(), replica_id, settings.cluster_lease)
                .with_nudge(board.first_seen())
                .with_on_lost(vec![
                    {
                        let caches = caches.clone();
                        Arc::new(move |id: &str| caches.forget(id))
                    },
                    {
                        // Another replica took the lease: a newer agent of this cluster is
                        // attached there, so this (older) tunnel ends, as on one replica.
                        let tunnels = tunnels.clone();
                        Arc::new(move |id: &str| {
                            tunnels
                                .close_cluster(id, "replaced by a newer agent on another replica")
                        })
                    },
                ]),
        );
        tokio::spawn(ownership.clone().run(shutdown.clone()));
        tokio::spawn(crate::service::clusters::tunnels::follow_tunnels(
            store.clone(),
            connector.clone(),
            board.clone(),
            ownership.clone(),
            settings.probe_interval,
            shutdown.clone(),
        ));
        let workloads = Arc::new(
            WorkloadQueries::new(accessor.clone(), caches.clone())
                .with_owner_check(ownership.predicate()),
        );
        let tokens = Arc::new(Tokens::new(store.clone()));
        let streams = StreamSessions::new(settings.stream_limits, tokens.clone());
        let logs = Arc::new(
            LogService::new(accessor.clone(), shutdown.clone(), streams.clone())
                .with_owner_check(ownership.predicate()),
        );
        let workload_logs = Arc::new(WorkloadLogService::new(
            accessor.clone(),
            shutdown.clone(),
            settings.max_log_pods,
            streams.clone(),
        ));
        let resources = Arc::new(ResourceService::new(accessor.clone()));
        let forget_hooks: Vec<ForgetHook> = vec![
            {
                let caches = caches.clone();
                Arc::new(move |id: &str| caches.forget(id))
            },
            {
                let resources = resources.clone();
                Arc::new(move |id: &str| resources.forget_cluster(id))
            },
            {
                let metrics = metrics.clone();
                Arc::new(move |id: &str| metrics.forget_cluster(id))
            },
        ];
        let catalog = Arc::new(
            ClusterCatalog::new(store.clone(), board.clone(), connector.clone())
                .with_forget_hooks(forget_hooks.clone()),
        );
        let importer = Arc::new(
            ClusterImporter::new(store.clone(), connector.clone(), board.clone())
                .with_forget_hooks(forget_hooks),
        );
        let vault = Arc::new(CredentialVault::new(
            store.clone(),
            keyring,
            accepted_credentials,
        ));
        let audit = AuditLog::start(store.clone());
        let auth = Arc::new(AuthState {
            tokens: tokens.clone(),
            audit: audit.clone(),
            limiter: RateLimiter::new(settings.rate_limit),
            peer_limiter: RateLimiter::new(settings.peer_rate_limit),
        });
        let lifecycle = Arc::new(Lifecycle::new(
            store.clone(),
            providers.clone(),
            vault.clone(),
            workloads.clone(),
            settings.operations.retry_window,
        ));
        let operations =
            Arc::new(OperationBook::new(store.clone()).ending_watches_on(shutdown.clone()));
        let worker = Arc::new(OperationWorker::new(
            store.clone(),
            providers,
            vault.clone(),
            importer.clone(),
            catalog.clone(),
            workloads.clone(),
            settings.operations.clone(),
        ));
        let admin = Arc::new(Administration::new(
            tokens.clone(),
            audit.clone(),
            store.clone(),
        ));
        let registry_connector = Arc::new(RegistryConnector::new(
            store.clone(),
            vault.clone(),
            registry_providers,
        ));
        let registry_board = Arc::new(RegistryStatusBoard::default());
        let registries = Arc::new(RegistryCatalog::new(
            store.clone(),
            registry_connector.clone(),
            registry_board.clone(),
        ));
        let registry_content = Arc::new(RegistryContent::new(
            registry_connector.clone(),
            Arc::new(DeploymentFinder::new(
                store.clone(),
                accessor.clone(),
                caches.clone(),
                settings.registries.deployments_sync_wait,
            )),
        ));
        let pull_secrets = Arc::new(PullSecrets::new(
            store.clone(),
            registry_connector.clone(),
            accessor.clone(),
            settings.registries.pull_secrets.clone(),
        ));
        worker.serve_pull_secrets(Arc::new(PullSecretRenewal::new(
            pull_secrets.clone(),
            accessor,
        )));
        Services {
            agents: Arc::new(
                crate::service::clusters::agent::AgentRegistry::new(store.clone())
                    .with_tunnels(tunnels),
            ),
            ownership,
            metrics,
            pull_secrets,
            admin,
            registry_connector,
            registry_board,
            registries,
            registry_content,
            lifecycle,
            operations,
            worker,
            store,
            board,
            connector,
            catalog,
            importer,
            vault,
            workloads,
            resources,
            caches,
            logs,
            workload_logs,
            streams,
            tokens,
            audit,
            auth,
        }
    }

    /// Logs in to every registry every interval, recording what it saw.
    pub fn registry_prober(&self, settings: &Settings) -> RegistryProber {
        RegistryProber {
            store: self.store.clone(),
            connector: self.registry_connector.clone(),
            board: self.registry_board.clone(),
            settings: RegistryProberSettings {
                interval: settings.registries.probe_interval,
                concurrency: settings.registries.probe_concurrency,
            },
        }
    }

    /// Queues renewals of pull secrets that expire soon or whose registry credential changed.
    pub fn pull_secret_scheduler(&self, settings: &Settings) -> PullSecretScheduler {
        PullSecretScheduler {
            secrets: self.pull_secrets.clone(),
            retry_window: settings.operations.retry_window,
        }
    }

    pub fn prober(&self, settings: &Settings) -> Prober {
        Prober {
            store: self.store.clone(),
            connector: self.connector.clone(),
            board: self.board.clone(),
            settings: ProberSettings {
                interval: settings.probe_interval,
                concurrency: settings.probe_concurrency,
            },
            ownership: Some(self.ownership.clone()),
        }
    }
}
