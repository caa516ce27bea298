//! The command line: subcommands and their flags (each with its `FLOTILLA_…` variable).

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "flotilla",
    version,
    about = "One gRPC API for Kubernetes clusters across cloud vendors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC, grpc-web, reflection, health and the browser console on one port.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(CommonArgs),
    /// Add a new master key to the key file and re-encrypt every stored secret under it.
    /// Running servers keep working: they pick up the new key from the file.
    RotateMasterKey(CommonArgs),
    /// Create, list and revoke API tokens, directly on the database.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print (YAML) the ClusterRoleBindings that bind the groups flotilla:viewer,
    /// flotilla:operator and flotilla:admin to the ClusterRoles view, edit and admin, for
    /// clusters in impersonation mode: `flotilla rbac-manifest | kubectl apply -f -`.
    RbacManifest,
    /// Copy the embedded SQLite database to FILE while servers keep running (PostgreSQL:
    /// use pg_dump). Keep the master key file with it.
    Backup(BackupArgs),
    /// Replace the embedded SQLite database with a backup made by `flotilla backup`; the old
    /// one is kept aside. Stop every server on the database first.
    Restore(RestoreArgs),
    /// Run inside a cluster imported by agent: dial out to Flotilla and carry its requests to
    /// this cluster's API server.
    Agent(Box<AgentArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where to write the copy (created with mode 0600)
    pub file: PathBuf,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// A file written by `flotilla backup`
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        #[command(flatten)]
        common: CommonArgs,
        /// Unique name, shown in the audit log
        #[arg(long)]
        name: String,
        /// viewer, operator or admin
        #[arg(long)]
        role: String,
        /// Limit the token to this cluster (repeat for several)
        #[arg(long = "cluster", value_name = "CLUSTER_ID")]
        clusters: Vec<String>,
        /// Expire after this many days
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        common: CommonArgs,
        /// Include revoked tokens
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token by id or name.
    Revoke {
        #[command(flatten)]
        common: CommonArgs,
        /// Token id or name
        token: String,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// TOML config file; its keys are the long flag names with '_' for '-'.
    #[arg(long, env = "FLOTILLA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and generated keys [default: ./flotilla-data]
    #[arg(long, env = "FLOTILLA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER:PASSWORD@HOST/DB [default: SQLite file in the data dir]
    #[arg(
        long,
        env = "FLOTILLA_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log format [default: human]
    #[arg(long, env = "FLOTILLA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter in tracing's EnvFilter syntax [default: info]
    #[arg(long, env = "FLOTILLA_LOG", value_name = "FILTER")]
    pub log_filter: Option<String>,
    /// Master key file (one `<id> <base64 key>` per line; the last encrypts)
    /// [default: <data-dir>/master.keys, generated on first start]
    #[arg(long, env = "FLOTILLA_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address to listen on [default: 127.0.0.1:50051]
    #[arg(long, env = "FLOTILLA_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Browser origins allowed to call over grpc-web (comma-separated). None by default.
    #[arg(
        long,
        env = "FLOTILLA_CORS_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allowed_origins: Vec<String>,
    /// Seconds between cluster probes [default: 30]
    #[arg(long, env = "FLOTILLA_PROBE_INTERVAL", value_name = "SECONDS")]
    pub probe_interval: Option<u64>,
    /// Import every context of this kubeconfig at start-up (skipping clusters already present)
    #[arg(long, env = "FLOTILLA_IMPORT_KUBECONFIG", value_name = "PATH")]
    pub import_kubeconfig: Vec<PathBuf>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key
    #[arg(long, env = "FLOTILLA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert
    #[arg(long, env = "FLOTILLA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS)
    #[arg(long, env = "FLOTILLA_CLIENT_CA", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Allow listening on a non-loopback address without TLS (tokens then cross the network in
    /// clear text)
    #[arg(long, env = "FLOTILLA_INSECURE_LISTEN")]
    pub insecure_listen: bool,
    /// Requests per second each API token may make on average (0: unlimited) [default: 50]
    #[arg(long, env = "FLOTILLA_RATE_LIMIT", value_name = "PER_SECOND")]
    pub rate_limit: Option<f64>,
    /// Base URL of Alibaba Cloud ACK instead of https://cs.<region>.aliyuncs.com (a proxy, or
    /// a simulator in tests)
    #[arg(long, env = "FLOTILLA_ACK_ENDPOINT", value_name = "URL")]
    pub ack_endpoint: Option<String>,
    /// Base URL of Tencent Cloud TKE instead of https://tke.tencentcloudapi.com
    #[arg(long, env = "FLOTILLA_TKE_ENDPOINT", value_name = "URL")]
    pub tke_endpoint: Option<String>,
    /// URL of the Rancher server, such as https://rancher.example.com
    #[arg(long, env = "FLOTILLA_RANCHER_URL", value_name = "URL")]
    pub rancher_url: Option<String>,
    /// CA bundle (PEM) that signs the Rancher server's certificate, when not a public CA
    #[arg(long, env = "FLOTILLA_RANCHER_CA_FILE", value_name = "FILE")]
    pub rancher_ca_file: Option<PathBuf>,
    /// Most requests per second to one vendor account in one region [default: 10]
    #[arg(long, env = "FLOTILLA_VENDOR_RATE_LIMIT", value_name = "PER_SECOND")]
    pub vendor_rate_limit: Option<u32>,
    /// Milliseconds between polls of a vendor-side operation [default: 5000]
    #[arg(long, env = "FLOTILLA_OPERATION_POLL_INTERVAL_MS", value_name = "MS")]
    pub operation_poll_interval_ms: Option<u64>,
    /// Seconds a server replica holds an operation before another may take it over [default: 30]
    #[arg(long, env = "FLOTILLA_OPERATION_LEASE_SECONDS", value_name = "SECONDS")]
    pub operation_lease_seconds: Option<u64>,
    /// Refuse outbound connections to these CIDRs too (comma-separated), on top of link-local,
    /// unspecified, multicast and Flotilla's own address
    #[arg(
        long,
        env = "FLOTILLA_OUTBOUND_DENY",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub outbound_deny: Vec<String>,
    /// Allow outbound connections to these CIDRs even when denied (comma-separated)
    #[arg(
        long,
        env = "FLOTILLA_OUTBOUND_ALLOW",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub outbound_allow: Vec<String>,
    /// Calls without a valid API token each client address may make per second on average,
    /// checked before the token is looked up (0: unlimited) [default: 10, bursts of 50]
    #[arg(long, env = "FLOTILLA_PEER_RATE_LIMIT", value_name = "PER_SECOND")]
    pub peer_rate_limit: Option<f64>,
    /// Days audit events are kept before they are deleted (0: forever) [default: 90]
    #[arg(long, env = "FLOTILLA_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<u64>,
    /// Seconds between logins of the registry prober to each registry [default: 60]
    #[arg(long, env = "FLOTILLA_REGISTRY_PROBE_INTERVAL", value_name = "SECONDS")]
    pub registry_probe_interval: Option<u64>,
    /// Serve the browser console at / on the API port; --console=false turns it off
    /// [default: true]
    #[arg(
        long,
        env = "FLOTILLA_CONSOLE",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub console: Option<bool>,
    /// Seconds a replica holds a cluster (probing, watch caches, event hubs) before another
    /// may take it over; renewed every third of it [default: 15]
    #[arg(long, env = "FLOTILLA_CLUSTER_LEASE", value_name = "SECONDS")]
    pub cluster_lease: Option<u64>,
    /// Serve Prometheus metrics at GET /metrics on this address (such as 127.0.0.1:9464); off
    /// unless given
    #[arg(long, env = "FLOTILLA_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Milliseconds without a word from a cluster's agent before its tunnel closes and the
    /// cluster turns unreachable; pinged every third of it [default: 15000]
    #[arg(long, env = "FLOTILLA_AGENT_KEEPALIVE_MS", value_name = "MILLISECONDS")]
    pub agent_keepalive_ms: Option<u64>,
    /// Send traces to this OTLP/gRPC collector (such as http://127.0.0.1:4317); off unless given
    /// here or in OTEL_EXPORTER_OTLP_ENDPOINT
    #[arg(long, env = "FLOTILLA_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The agent's command line.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Flotilla's gRPC URL, such as https://flotilla.example.com:50051
    #[arg(long, env = "FLOTILLA_AGENT_SERVER", value_name = "URL")]
    pub server: String,
    /// File holding the one-time registration token (exchanged once for the agent credential)
    #[arg(long, env = "FLOTILLA_AGENT_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust only this CA (PEM) for Flotilla's certificate instead of the system roots
    #[arg(long, env = "FLOTILLA_AGENT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The agent's namespace (its Secret keeps the agent credential)
    #[arg(
        long,
        env = "FLOTILLA_AGENT_NAMESPACE",
        default_value = "flotilla-agent"
    )]
    pub namespace: String,
    /// Reach the API server with this kubeconfig instead of the in-cluster ServiceAccount
    /// (running outside the cluster)
    #[arg(long, env = "FLOTILLA_AGENT_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Keep the agent credential in this file (mode 0600) instead of the agent's Secret
    #[arg(long, env = "FLOTILLA_AGENT_CREDENTIAL_FILE", value_name = "FILE")]
    pub credential_file: Option<PathBuf>,
    /// Write what the agent forwarded (JSON: requests, bytes, sessions) to this file
    #[arg(long, env = "FLOTILLA_AGENT_COUNTERS_FILE", value_name = "FILE")]
    pub counters_file: Option<PathBuf>,
    /// Reconnect when Flotilla has sent nothing (not even a ping) for this many seconds
    #[arg(long, env = "FLOTILLA_AGENT_SERVER_TIMEOUT", default_value_t = 45)]
    pub server_timeout: u64,
    /// Log filter (tracing's EnvFilter syntax)
    #[arg(long, env = "FLOTILLA_LOG", default_value = "info")]
    pub log_filter: String,
}
