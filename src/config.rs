//! Command line, environment and config file. Precedence: flag, then `FLOTILLA_…` environment
//! variable, then the TOML file given by `--config`, then the built-in default.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_DATA_DIR: &str = "./flotilla-data";

mod cli;
pub use cli::*;

/// The config file. Unknown keys are an error, so a typo does not silently fall back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_format: Option<LogFormat>,
    log_filter: Option<String>,
    cors_allowed_origins: Option<Vec<String>>,
    shutdown_timeout_seconds: Option<u64>,
    master_key_file: Option<PathBuf>,
    probe_interval_seconds: Option<u64>,
    probe_concurrency: Option<usize>,
    import_kubeconfig: Option<Vec<PathBuf>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    insecure_listen: Option<bool>,
    rate_limit_per_second: Option<f64>,
    rate_limit_burst: Option<f64>,
    max_log_pods: Option<usize>,
    ack_endpoint: Option<String>,
    tke_endpoint: Option<String>,
    rancher_url: Option<String>,
    rancher_ca_file: Option<PathBuf>,
    vendor_rate_limit: Option<u32>,
    vendor_timeout_seconds: Option<u64>,
    operation_poll_interval_ms: Option<u64>,
    operation_lease_seconds: Option<u64>,
    operation_workers: Option<usize>,
    operation_retry_hours: Option<u64>,
    outbound_deny: Option<Vec<String>>,
    outbound_allow: Option<Vec<String>>,
    health_check_interval_seconds: Option<u64>,
    watch_cache_idle_seconds: Option<u64>,
    max_streams_per_token: Option<usize>,
    max_event_watches_per_token: Option<usize>,
    peer_rate_limit_per_second: Option<f64>,
    peer_rate_limit_burst: Option<f64>,
    audit_retention_days: Option<u64>,
    registry_probe_interval_seconds: Option<u64>,
    console: Option<bool>,
    cluster_lease_seconds: Option<u64>,
    metrics_listen: Option<SocketAddr>,
    otlp_endpoint: Option<String>,
}

/// Everything the server needs, resolved.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub cors_allowed_origins: Vec<String>,
    /// How long in-flight calls may take to finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// The master key file; `None` with no `master_key` means `<data-dir>/master.keys`.
    pub master_key_file: Option<PathBuf>,
    /// A master key given directly (`FLOTILLA_MASTER_KEY`, base64 of 32 bytes).
    pub master_key: Option<zeroize::Zeroizing<String>>,
    pub probe_interval: Duration,
    pub probe_concurrency: usize,
    pub import_kubeconfig: Vec<PathBuf>,
    /// Most pods one StreamWorkloadLogs request follows.
    pub max_log_pods: usize,
    /// The first admin token's secret (`FLOTILLA_BOOTSTRAP_TOKEN`), used on an empty database.
    pub bootstrap_token: Option<zeroize::Zeroizing<String>>,
    pub tls: Option<TlsFiles>,
    pub insecure_listen: bool,
    /// Per-token request budget; `None`: unlimited.
    pub rate_limit: Option<crate::auth::rate::RateLimit>,
    /// Vendor endpoints and etiquette.
    pub vendors: VendorSettings,
    /// How the operation worker runs.
    pub operations: OperationSettings,
    /// Where outbound connections to caller-supplied addresses may go.
    pub outbound: crate::net::OutboundSettings,
    /// How often the database is checked for grpc.health.v1 (NOT_SERVING while unreachable).
    pub health_check_interval: Duration,
    /// A cluster's watch caches stop after this long without a query.
    pub watch_cache_idle: Duration,
    /// Open streams one token may hold (logs, events, operation watches); 0: no cap.
    pub stream_limits: crate::service::streams::StreamLimits,
    /// Calls without a valid token per client address, checked before authentication; `None`:
    /// unlimited.
    pub peer_rate_limit: Option<crate::auth::rate::RateLimit>,
    /// How long audit events are kept; `None`: forever.
    pub audit_retention: Option<Duration>,
    /// Registry checks and the registry providers offered.
    pub registries: RegistrySettings,
    /// Whether GET / on the API port serves the browser console.
    pub console: bool,
    /// How long a replica holds a cluster's lease (probing, watch caches, event hubs) without
    /// renewing it; another replica takes the cluster over within two of these.
    pub cluster_lease: Duration,
    /// Where GET /metrics is served; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The OTLP/gRPC collector traces go to; `None`: no traces.
    pub otlp_endpoint: Option<String>,
    /// How long an agent may stay silent before its tunnel closes (issue #19).
    pub agent_keepalive: Duration,
}

/// How registries are checked, and which providers this server offers beyond the built-in
/// adapters (embedding and tests add their own `RegistryProvider`s here).
#[derive(Clone)]
pub struct RegistrySettings {
    /// Between two logins of the registry prober to every registry.
    pub probe_interval: Duration,
    /// Registries checked at once.
    pub probe_concurrency: usize,
    /// How long "what is deployed where" waits for a cluster's pod cache to sync before it
    /// reports the cluster as unreachable.
    pub deployments_sync_wait: Duration,
    /// Providers added to the built-in ones (same id: this one wins).
    pub extra_providers: crate::adapters::registry::RegistryProviders,
    /// Issuing and renewing the credentials of pull secrets.
    pub pull_secrets: crate::service::registries::pull_secrets::PullSecretSettings,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            probe_interval: Duration::from_secs(60),
            probe_concurrency: 8,
            deployments_sync_wait: Duration::from_secs(10),
            extra_providers: Default::default(),
            pull_secrets: Default::default(),
        }
    }
}

/// Where the vendors are and how politely to call them: the shared transport, and each
/// adapter's own settings (declared in its folder's `config.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VendorSettings {
    pub transport: crate::adapters::TransportSettings,
    pub ack: crate::adapters::cluster::ack::Config,
    pub tke: crate::adapters::cluster::tke::Config,
    pub rancher: crate::adapters::cluster::rancher::Config,
}

/// The durable operation worker.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationSettings {
    /// Between polls of a vendor-side change.
    pub poll_interval: Duration,
    /// How long a claimed operation stays with one replica without a renewal.
    pub lease: Duration,
    /// Operations one replica works on at once.
    pub workers: usize,
    /// How long a failing operation keeps being retried (Gardener's 12 h default).
    pub retry_window: Duration,
}

impl Default for OperationSettings {
    fn default() -> Self {
        OperationSettings {
            poll_interval: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            workers: 8,
            retry_window: Duration::from_secs(12 * 3600),
        }
    }
}

/// Server TLS material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client CA for mutual TLS.
    pub client_ca: Option<PathBuf>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may hold a password.
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &redact_url(&self.database_url))
            .field("log_format", &self.log_format)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Defaults for tests and embedding: loopback on an ephemeral port, SQLite in `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            database_url: default_database_url(data_dir),
            log_format: LogFormat::Human,
            log_filter: "info".into(),
            cors_allowed_origins: Vec::new(),
            shutdown_timeout: Duration::from_secs(9),
            master_key_file: None,
            master_key: None,
            probe_interval: Duration::from_secs(30),
            probe_concurrency: 32,
            import_kubeconfig: Vec::new(),
            max_log_pods: 20,
            bootstrap_token: None,
            tls: None,
            insecure_listen: false,
            rate_limit: Some(crate::auth::rate::RateLimit {
                per_second: 50.0,
                burst: 100.0,
            }),
            vendors: VendorSettings::default(),
            operations: OperationSettings::default(),
            outbound: crate::net::OutboundSettings::default(),
            health_check_interval: Duration::from_secs(5),
            watch_cache_idle: Duration::from_secs(300),
            stream_limits: crate::service::streams::StreamLimits::default(),
            peer_rate_limit: Some(crate::auth::rate::RateLimit {
                per_second: 10.0,
                burst: 50.0,
            }),
            audit_retention: Some(Duration::from_secs(90 * 24 * 3600)),
            registries: RegistrySettings::default(),
            console: true,
            cluster_lease: Duration::from_secs(15),
            metrics_listen: None,
            otlp_endpoint: None,
            agent_keepalive: Duration::from_secs(15),
        }
    }

    pub fn resolve_serve(args: &ServeArgs) -> anyhow::Result<Settings> {
        let file = load_file(args.common.config.as_deref())?;
        let mut settings = Self::resolve_common(&args.common, &file)?;
        settings.listen = match (args.listen, file.listen) {
            (Some(addr), _) | (None, Some(addr)) => addr,
            (None, None) => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        settings.cors_allowed_origins = if args.cors_allowed_origins.is_empty() {
            file.cors_allowed_origins.clone().unwrap_or_default()
        } else {
            args.cors_allowed_origins.clone()
        };
        for origin in &settings.cors_allowed_origins {
            if origin == "*" {
                bail!("cors_allowed_origins: '*' is not allowed; list the console's origins");
            }
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!("cors_allowed_origins: {origin:?} must be an origin like https://host:port");
            }
        }
        if let Some(seconds) = file.shutdown_timeout_seconds {
            settings.shutdown_timeout = Duration::from_secs(seconds);
        }
        if let Some(seconds) = args.probe_interval.or(file.probe_interval_seconds) {
            if seconds == 0 {
                bail!("probe interval must be at least 1 second");
            }
            settings.probe_interval = Duration::from_secs(seconds);
        }
        if let Some(n) = file.probe_concurrency {
            settings.probe_concurrency = n.max(1);
        }
        if let Some(seconds) = args.cluster_lease.or(file.cluster_lease_seconds) {
            if seconds == 0 {
                bail!("cluster lease must be at least 1 second");
            }
            settings.cluster_lease = Duration::from_secs(seconds);
        }
        if let Some(ms) = args.agent_keepalive_ms {
            settings.agent_keepalive = Duration::from_millis(ms.max(100));
        }
        settings.import_kubeconfig = if args.import_kubeconfig.is_empty() {
            file.import_kubeconfig.clone().unwrap_or_default()
        } else {
            args.import_kubeconfig.clone()
        };
        let cert = args.tls_cert.clone().or_else(|| file.tls_cert.clone());
        let key = args.tls_key.clone().or_else(|| file.tls_key.clone());
        let client_ca = args.client_ca.clone().or_else(|| file.client_ca.clone());
        settings.tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None) if client_ca.is_none() => None,
            (None, None) => bail!("--client-ca needs --tls-cert and --tls-key"),
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        if let Some(n) = file.max_log_pods {
            settings.max_log_pods = n.max(1);
        }
        if let Some(n) = file.max_streams_per_token {
            settings.stream_limits.streams_per_token = n;
        }
        if let Some(n) = file.max_event_watches_per_token {
            settings.stream_limits.event_watches_per_token = n;
        }
        settings.insecure_listen = args.insecure_listen || file.insecure_listen.unwrap_or(false);
        let per_second = args.rate_limit.or(file.rate_limit_per_second);
        if let Some(per_second) = per_second {
            if !per_second.is_finite() || per_second < 0.0 {
                bail!("rate limit must be a positive number of requests per second (0: unlimited)");
            }
            settings.rate_limit = (per_second > 0.0).then(|| crate::auth::rate::RateLimit {
                per_second,
                burst: file.rate_limit_burst.unwrap_or(per_second * 2.0).max(1.0),
            });
        }
        resolve_vendors(args, &file, &mut settings)?;
        settings.outbound = resolve_outbound(args, &file)?;
        if let Some(seconds) = file.health_check_interval_seconds {
            settings.health_check_interval = Duration::from_secs(seconds.max(1));
        }
        if let Some(seconds) = file.watch_cache_idle_seconds {
            settings.watch_cache_idle = Duration::from_secs(seconds.max(1));
        }
        resolve_abuse_limits(args, &file, &mut settings)?;
        if let Some(seconds) = args
            .registry_probe_interval
            .or(file.registry_probe_interval_seconds)
        {
            if seconds == 0 {
                bail!("registry probe interval must be at least 1 second");
            }
            settings.registries.probe_interval = Duration::from_secs(seconds);
        }
        settings.console = args.console.or(file.console).unwrap_or(true);
        settings.metrics_listen = args.metrics_listen.or(file.metrics_listen);
        settings.otlp_endpoint = args
            .otlp_endpoint
            .clone()
            .or_else(|| file.otlp_endpoint.clone())
            .filter(|e| !e.trim().is_empty());
        Ok(settings)
    }

    pub fn resolve_common_only(args: &CommonArgs) -> anyhow::Result<Settings> {
        let file = load_file(args.config.as_deref())?;
        Self::resolve_common(args, &file)
    }

    fn resolve_common(args: &CommonArgs, file: &FileConfig) -> anyhow::Result<Settings> {
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let mut settings = Settings::for_data_dir(&data_dir);
        if let Some(url) = args
            .database_url
            .clone()
            .or_else(|| file.database_url.clone())
        {
            settings.database_url = url;
        }
        settings.log_format = args.log_format.or(file.log_format).unwrap_or_default();
        if let Some(filter) = args.log_filter.clone().or_else(|| file.log_filter.clone()) {
            settings.log_filter = filter;
        }
        settings.master_key_file = args
            .master_key_file
            .clone()
            .or_else(|| file.master_key_file.clone());
        // Read directly, not through clap, so the key can never show up in --help or errors.
        settings.bootstrap_token = std::env::var("FLOTILLA_BOOTSTRAP_TOKEN")
            .ok()
            .filter(|k| !k.is_empty())
            .map(zeroize::Zeroizing::new);
        settings.master_key = std::env::var("FLOTILLA_MASTER_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .map(zeroize::Zeroizing::new);
        Ok(settings)
    }
}

fn resolve_vendors(
    args: &ServeArgs,
    file: &FileConfig,
    settings: &mut Settings,
) -> anyhow::Result<()> {
    let pick = |flag: &Option<String>, key: &Option<String>| flag.clone().or_else(|| key.clone());
    let vendors = &mut settings.vendors;
    vendors.ack.endpoint = pick(&args.ack_endpoint, &file.ack_endpoint);
    vendors.tke.endpoint = pick(&args.tke_endpoint, &file.tke_endpoint);
    vendors.rancher.url = pick(&args.rancher_url, &file.rancher_url);
    for (name, url) in [
        ("ack_endpoint", &vendors.ack.endpoint),
        ("tke_endpoint", &vendors.tke.endpoint),
        ("rancher_url", &vendors.rancher.url),
    ] {
        if let Some(url) = url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!("{name}: {url:?} must be a URL like https://host[:port]");
        }
    }
    vendors.rancher.ca_file = args
        .rancher_ca_file
        .clone()
        .or_else(|| file.rancher_ca_file.clone());
    if let Some(limit) = args.vendor_rate_limit.or(file.vendor_rate_limit) {
        if limit == 0 {
            bail!("vendor rate limit must be at least 1 request per second");
        }
        vendors.transport.rate_per_second = limit;
    }
    if let Some(seconds) = file.vendor_timeout_seconds {
        vendors.transport.timeout = Duration::from_secs(seconds.max(1));
    }
    let ops = &mut settings.operations;
    if let Some(ms) = args
        .operation_poll_interval_ms
        .or(file.operation_poll_interval_ms)
    {
        ops.poll_interval = Duration::from_millis(ms.max(10));
    }
    if let Some(seconds) = args
        .operation_lease_seconds
        .or(file.operation_lease_seconds)
    {
        ops.lease = Duration::from_secs(seconds.max(1));
    }
    if let Some(n) = file.operation_workers {
        ops.workers = n.max(1);
    }
    if let Some(hours) = file.operation_retry_hours {
        ops.retry_window = Duration::from_secs(hours * 3600);
    }
    Ok(())
}

/// `--outbound-deny` / `--outbound-allow` (flag or environment), else the file's lists.
fn resolve_outbound(
    args: &ServeArgs,
    file: &FileConfig,
) -> anyhow::Result<crate::net::OutboundSettings> {
    let cidrs = |name: &str, flag: &Vec<String>, key: &Option<Vec<String>>| {
        let entries = if flag.is_empty() {
            key.clone().unwrap_or_default()
        } else {
            flag.clone()
        };
        crate::net::outbound::parse_cidrs(&entries.join(","))
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))
    };
    Ok(crate::net::OutboundSettings {
        deny: cidrs("outbound_deny", &args.outbound_deny, &file.outbound_deny)?,
        allow: cidrs("outbound_allow", &args.outbound_allow, &file.outbound_allow)?,
    })
}

/// The per-address limit and audit retention.
fn resolve_abuse_limits(
    args: &ServeArgs,
    file: &FileConfig,
    settings: &mut Settings,
) -> anyhow::Result<()> {
    if let Some(per_second) = args.peer_rate_limit.or(file.peer_rate_limit_per_second) {
        if !per_second.is_finite() || per_second < 0.0 {
            bail!("peer rate limit must be a positive number of calls per second (0: unlimited)");
        }
        settings.peer_rate_limit = (per_second > 0.0).then(|| crate::auth::rate::RateLimit {
            per_second,
            burst: file
                .peer_rate_limit_burst
                .unwrap_or(per_second * 5.0)
                .max(1.0),
        });
    }
    if let Some(days) = args.audit_retention_days.or(file.audit_retention_days) {
        // Beyond this a cutoff would overflow; nobody needs 10,000 years.
        if days > 3_650_000 {
            bail!("audit_retention_days must be at most 3650000 (0: keep forever)");
        }
        settings.audit_retention = (days > 0).then(|| Duration::from_secs(days * 24 * 3600));
    }
    Ok(())
}

fn load_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("flotilla.db").display())
}

/// The URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests;
