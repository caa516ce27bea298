//! Wiring: the only place that knows every concrete type. Builds the store and services and
//! serves gRPC, grpc-web, reflection, health and the browser console on one port, with or without
//! TLS.

mod agent_manifest;
pub mod backup;
mod console;
mod health;
mod metrics;
mod providers;
mod router;
mod services;
mod tls;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};

use crate::{
    config::{Settings, redact_url},
    crypto::{KeySource, Keyring},
    store::{BackendKind, Store},
};
use services::Services;

/// A server that is listening. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where the first admin token was written, when this start created it.
    pub bootstrap_token_file: Option<std::path::PathBuf>,
    /// Where GET /metrics is served (`--metrics-listen`, with the real port), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// Stops only the operation worker (tests make its death observable with it).
    worker_stop: CancellationToken,
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

    /// Stops the operation worker's loops and nothing else, as a crashed worker would: for
    /// tests of the health checks.
    #[doc(hidden)]
    pub fn stop_operation_worker(&self) {
        self.worker_stop.cancel();
    }

    /// Waits until the server has stopped (after its shutdown token is cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// Opens the database (creating and migrating it when needed) and starts serving.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    if settings.tls.is_none() && !settings.listen.ip().is_loopback() && !settings.insecure_listen {
        anyhow::bail!(
            "refusing to listen on {} without TLS: API tokens would cross the network in clear \
             text. Give --tls-cert and --tls-key, or --insecure-listen if something in front \
             terminates TLS",
            settings.listen
        );
    }
    let tls_config = settings.tls.as_ref().map(tls::server_config).transpose()?;
    create_data_dir(&settings.data_dir)?;
    // Held while serving: `flotilla restore` refuses to replace a database in use.
    let serving_lock = crate::store::sqlite_path(&settings.database_url)
        .map(|db| crate::store::backup::lock_for_serving(&db))
        .transpose()?;
    let store = Store::open(&settings.database_url)
        .await
        .with_context(|| format!("opening {}", redact_url(&settings.database_url)))?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match settings.metrics_listen {
        Some(at) => Some(metrics::bind(at).await?),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let recorded = crate::telemetry::metrics::Metrics::new();

    let shutdown = CancellationToken::new();
    let keyring = Arc::new(open_keyring(&settings, store.kind())?);
    crate::service::secrets::rotation::bind_legacy_secrets(&store, &keyring)
        .await
        .map_err(|e| anyhow::anyhow!("binding stored secrets to their owners: {e}"))?;
    tokio::spawn(reload_keys(
        keyring.clone(),
        settings.probe_interval,
        shutdown.child_token(),
    ));
    // Checked on every outbound connection; knows the real port when listening on port 0.
    let outbound = Arc::new(settings.outbound.policy(addr));
    let mut vendors = settings.vendors.clone();
    vendors.transport.metrics = Some(recorded.clone());
    let providers = providers::build(&vendors, &settings.registries.extra_providers, &outbound)?;
    let services = Services::new(
        &settings,
        store,
        keyring,
        providers,
        outbound,
        shutdown.child_token(),
        recorded,
    );
    if let Some(listener) = metrics_listener {
        let sampler = metrics::Sampler::new(
            services.metrics.clone(),
            services.store.clone(),
            services.caches.clone(),
            services.audit.clone(),
        );
        tokio::spawn(metrics::serve(
            listener,
            Arc::new(sampler),
            shutdown.child_token(),
        ));
    }
    let bootstrap_token_file = services
        .tokens
        .bootstrap(
            &settings.data_dir,
            settings.bootstrap_token.as_ref().map(|t| t.as_str()),
        )
        .await?;
    for path in &settings.import_kubeconfig {
        for line in services.importer.import_file(path).await {
            tracing::info!(kubeconfig = %path.display(), "{line}");
        }
    }
    tokio::spawn(services.prober(&settings).run(shutdown.child_token()));
    tokio::spawn(
        services
            .registry_prober(&settings)
            .run(shutdown.child_token()),
    );
    tokio::spawn(
        services
            .pull_secret_scheduler(&settings)
            .run(shutdown.child_token()),
    );
    if let Some(keep) = settings.audit_retention {
        tokio::spawn(crate::auth::audit::enforce_retention(
            services.store.clone(),
            keep,
            shutdown.child_token(),
        ));
    }
    tokio::spawn(services.caches.clone().run_janitor(shutdown.child_token()));
    let worker_stop = shutdown.child_token();
    services.worker.clone().spawn(worker_stop.clone());
    let built = router::build(&settings, &services, Server::builder()).await?;
    health::announce_start(&built.health).await;
    tokio::spawn(health::watch(
        health::Watched {
            store: services.store.clone(),
            worker: services.worker.pulse(),
            worker_stall_after: services.worker.stall_limit(),
            interval: settings.health_check_interval,
        },
        built.health.clone(),
        shutdown.child_token(),
    ));
    let token = shutdown.clone();
    let grace = settings.shutdown_timeout;
    let tls = tls_config.is_some();
    let task = tokio::spawn(async move {
        let signal = {
            let token = token.clone();
            async move { token.cancelled().await }
        };
        let serving: std::pin::Pin<
            Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
        > = match tls_config {
            Some(config) => Box::pin(built.router.serve_with_incoming_shutdown(
                tls::incoming(listener, config, token.child_token()),
                signal,
            )),
            None => Box::pin(built.router.serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            )),
        };
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => return result.context("server failed"),
            () = token.cancelled() => {}
        }
        health::announce_draining(&built.health).await;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down: no new connections"
        );
        let result = match tokio::time::timeout(grace, &mut serving).await {
            Ok(result) => result.context("server failed"),
            Err(_) => {
                tracing::warn!("in-flight calls did not finish in time; closing them");
                Ok(())
            }
        };
        services.audit.flush().await;
        drop(serving_lock);
        result
    });
    tracing::info!(%addr, tls, database = %redact_url(&settings.database_url), metrics = ?metrics_addr, "flotilla serving");
    Ok(RunningServer {
        addr,
        bootstrap_token_file,
        metrics_addr,
        shutdown,
        task,
        worker_stop,
    })
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

/// Re-reads the master key file every `interval`, so that after `flotilla rotate-master-key`
/// this server seals new secrets under the new key within one interval (it already opens
/// secrets under a key it has not seen: it re-reads the file when it meets one).
async fn reload_keys(
    keyring: Arc<Keyring>,
    interval: std::time::Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let before = keyring.current_key_id();
        match keyring.reload() {
            Ok(()) => {
                let now = keyring.current_key_id();
                if now != before {
                    tracing::info!(key = %now, "new master key picked up");
                }
            }
            Err(err) => tracing::warn!(error = %err, "re-reading the master key file failed"),
        }
    }
}

/// The data directory holds the database, keys and the first admin token: owner-only.
fn create_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting data directory {}", dir.display()))?;
    }
    // An existing directory is the operator's: say so rather than change it behind their back.
    if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            data_dir = %dir.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the data directory is open to other users; it holds the database, master keys and \
             the first admin token: chmod 700 it"
        );
    }
    Ok(())
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    create_data_dir(&settings.data_dir)?;
    Store::open(&settings.database_url)
        .await
        .with_context(|| format!("opening {}", redact_url(&settings.database_url)))
}

/// Applies migrations and returns (for `flotilla migrate`).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    open_store(settings).await.map(|_| ())
}

/// `flotilla rotate-master-key`.
pub async fn rotate_master_key(
    settings: &Settings,
) -> anyhow::Result<crate::service::secrets::rotation::RotationReport> {
    let store = open_store(settings).await?;
    let keyring = open_keyring(settings, store.kind())?;
    crate::service::secrets::rotation::rotate_master_key(&store, &keyring)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The token store, for `flotilla token …` working directly on the database.
pub async fn tokens(settings: &Settings) -> anyhow::Result<crate::auth::tokens::Tokens> {
    Ok(crate::auth::tokens::Tokens::new(
        open_store(settings).await?,
    ))
}
