//! `flotilla agent`: runs inside a cluster Flotilla cannot reach, dials out to Flotilla and
//! carries Flotilla's requests to this cluster's API server (issue #19).
//!
//! On start it proves which cluster it is in (the kube-system namespace UID), exchanges the
//! one-time registration token for the cluster's agent credential once (kept in the agent's
//! Secret, or in `--credential-file` for local runs), then keeps one `OpenTunnel` stream open,
//! reconnecting with backoff forever. Each tunneled request goes to the API server with the
//! agent's own credentials (its ServiceAccount in the cluster, or `--kubeconfig`).

mod counters;
mod credential;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use tokio::sync::mpsc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub use crate::config::AgentArgs;

use crate::{
    kube::tunnel::forward::{ForwardCounters, Forwarder},
    proto::{self as pb, agent_service_client::AgentServiceClient},
};

/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs the agent until the process is stopped.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::telemetry::init(crate::config::LogFormat::Human, &args.log_filter)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube = kube_client(&args).await?;
    let kube_system_uid = kube_system_uid(&kube).await?;
    let channel = channel(&args).await?;
    let counters = Arc::new(ForwardCounters::default());
    let sessions = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(path) = &args.counters_file {
        tokio::spawn(counters::write_periodically(
            path.clone(),
            counters.clone(),
            sessions.clone(),
        ));
    }
    let store = credential::CredentialStore::new(&args, kube.clone());
    let mut backoff = Duration::from_millis(500);
    loop {
        let outcome = async {
            let (cluster_id, secret) = store
                .credential(&channel, &kube_system_uid, args.token_file.as_deref())
                .await?;
            session(
                &channel,
                &kube,
                &counters,
                &sessions,
                &cluster_id,
                &secret,
                &kube_system_uid,
                Duration::from_secs(args.server_timeout.max(1)),
            )
            .await
        }
        .await;
        match outcome {
            Ok(lasted) => {
                tracing::info!("the tunnel closed; reconnecting");
                if lasted > MAX_BACKOFF {
                    backoff = Duration::from_millis(500);
                }
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "connecting to Flotilla failed")
            }
        }
        let wait = backoff.mul_f64(0.8 + fastrand::f64() * 0.4);
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The agent's client for its own API server.
async fn kube_client(args: &AgentArgs) -> anyhow::Result<::kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = ::kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            ::kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .context("using the kubeconfig")?
        }
        None => ::kube::Config::incluster().context(
            "not running in a cluster (no ServiceAccount); give --kubeconfig to run outside one",
        )?,
    };
    ::kube::Client::try_from(config).context("building the Kubernetes client")
}

/// The UID of kube-system: which cluster this is.
async fn kube_system_uid(client: &::kube::Client) -> anyhow::Result<String> {
    let namespaces: ::kube::Api<Namespace> = ::kube::Api::all(client.clone());
    let namespace = namespaces
        .get("kube-system")
        .await
        .context("reading the kube-system namespace (the cluster's identity)")?;
    namespace
        .metadata
        .uid
        .context("the kube-system namespace has no UID")
}

/// A lazily connecting channel to Flotilla: TLS verified against the system roots, or only
/// against `--ca-file` when given; HTTP/2 keep-alives notice a dead connection.
async fn channel(args: &AgentArgs) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(args.server.clone())
        .context("--server is not a valid URL")?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    if args.server.starts_with("https://") {
        let tls = match &args.ca_file {
            Some(path) => {
                let pem = tokio::fs::read(path)
                    .await
                    .with_context(|| format!("reading --ca-file {}", path.display()))?;
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint
            .tls_config(tls)
            .context("configuring TLS to Flotilla")?;
    } else if args.ca_file.is_some() {
        anyhow::bail!("--ca-file needs an https:// --server");
    } else {
        tracing::warn!("the server URL is not https: the tunnel is not encrypted");
    }
    Ok(endpoint.connect_lazy())
}

/// One tunnel session; returns how long it lasted once Flotilla ends it or goes silent.
#[allow(clippy::too_many_arguments)]
async fn session(
    channel: &Channel,
    kube: &::kube::Client,
    counters: &Arc<ForwardCounters>,
    sessions: &Arc<std::sync::atomic::AtomicU64>,
    cluster_id: &str,
    secret: &str,
    kube_system_uid: &str,
    server_timeout: Duration,
) -> anyhow::Result<Duration> {
    let (outbound, frames) = mpsc::unbounded_channel::<pb::TunnelFrame>();
    let hello = pb::OpenTunnelRequest {
        frame: Some(pb::open_tunnel_request::Frame::Hello(pb::AgentHello {
            cluster_id: cluster_id.to_string(),
            kube_system_uid: kube_system_uid.to_string(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
        })),
    };
    let requests = futures::stream::once(async move { hello }).chain(
        tokio_stream::wrappers::UnboundedReceiverStream::new(frames).map(|frame| {
            pb::OpenTunnelRequest {
                frame: Some(pb::open_tunnel_request::Frame::Tunnel(frame)),
            }
        }),
    );
    let mut request = tonic::Request::new(requests);
    let bearer = format!("Bearer {secret}")
        .parse()
        .context("the agent credential is not a valid header value")?;
    request.metadata_mut().insert("authorization", bearer);
    let started = std::time::Instant::now();
    let mut inbound = AgentServiceClient::new(channel.clone())
        .open_tunnel(request)
        .await
        .map_err(|status| anyhow::anyhow!("{}: {}", status.code(), status.message()))?
        .into_inner();
    sessions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(cluster = %cluster_id, "tunnel open");
    let forwarder = Forwarder::new(kube.clone(), outbound, counters.clone());
    let result = loop {
        match tokio::time::timeout(server_timeout, inbound.next()).await {
            Err(_) => {
                break Err(anyhow::anyhow!(
                    "Flotilla sent nothing for {server_timeout:?}"
                ));
            }
            Ok(None) => break Ok(started.elapsed()),
            Ok(Some(Err(status))) => {
                tracing::info!(code = %status.code(), message = %status.message(),
                    "Flotilla ended the tunnel");
                break Ok(started.elapsed());
            }
            Ok(Some(Ok(pb::OpenTunnelResponse {
                frame: Some(pb::open_tunnel_response::Frame::Tunnel(frame)),
            }))) => forwarder.receive(frame),
            Ok(Some(Ok(_))) => {}
        }
    };
    forwarder.shutdown();
    result
}
