//! `flotilla.v1.AgentService`: the in-cluster agent's calls. The auth layer lets these through
//! without an API token; each handler checks the agent's own secret (registration token or
//! agent credential) from the `authorization` header.

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::pb::{self, agent_service_server::AgentService};
use crate::service::{Error, clusters::agent::AgentRegistry};

pub struct AgentApi {
    agents: Arc<AgentRegistry>,
}

impl AgentApi {
    pub fn new(agents: Arc<AgentRegistry>) -> Self {
        AgentApi { agents }
    }
}

/// The bearer secret of a call, or UNAUTHENTICATED.
fn bearer<T>(request: &Request<T>) -> Result<String, Status> {
    let value = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Status::from(Error::Unauthenticated(
                "no agent secret: send `authorization: Bearer <token>`".into(),
            ))
        })?;
    match value.split_once(' ') {
        Some((scheme, secret))
            if scheme.eq_ignore_ascii_case("bearer") && !secret.trim().is_empty() =>
        {
            Ok(secret.trim().to_string())
        }
        _ => Err(Error::Unauthenticated(
            "the authorization header must be `Bearer <token>`".into(),
        )
        .into()),
    }
}

type TunnelStream = Pin<Box<dyn Stream<Item = Result<pb::OpenTunnelResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn register_agent(
        &self,
        request: Request<pb::RegisterAgentRequest>,
    ) -> Result<Response<pb::RegisterAgentResponse>, Status> {
        let token = zeroize::Zeroizing::new(bearer(&request)?);
        let (cluster_id, credential) = self
            .agents
            .register(&token, &request.get_ref().kube_system_uid)
            .await?;
        Ok(Response::new(pb::RegisterAgentResponse {
            cluster_id,
            agent_credential: credential.to_string(),
        }))
    }

    async fn open_tunnel(
        &self,
        request: Request<Streaming<pb::OpenTunnelRequest>>,
    ) -> Result<Response<TunnelStream>, Status> {
        let credential = zeroize::Zeroizing::new(bearer(&request)?);
        let identity = self.agents.authenticate(&credential).await?;
        let mut frames = request.into_inner();
        let hello = match frames.next().await {
            Some(Ok(pb::OpenTunnelRequest {
                frame: Some(pb::open_tunnel_request::Frame::Hello(hello)),
            })) => hello,
            Some(Err(status)) => return Err(status),
            _ => {
                return Err(Error::invalid("frame", "the first message must be a hello").into());
            }
        };
        AgentRegistry::check_hello(&identity, &hello.cluster_id, &hello.kube_system_uid)?;
        let (tunnel, outbound) = self.agents.open_tunnel(&identity)?;
        tokio::spawn(tunnel.clone().keep_alive());
        // Frames from the agent go to the tunnel until either side ends.
        let inbound = tunnel.clone();
        let agents = self.agents.clone();
        tokio::spawn(async move {
            let reason = loop {
                tokio::select! {
                    () = inbound.closed() => break "the tunnel closed".to_string(),
                    frame = frames.next() => match frame {
                        Some(Ok(pb::OpenTunnelRequest {
                            frame: Some(pb::open_tunnel_request::Frame::Tunnel(frame)),
                        })) => inbound.receive(frame),
                        Some(Ok(_)) => {}
                        Some(Err(status)) => {
                            break format!("the agent's stream failed: {}", status.message());
                        }
                        None => break "the agent closed its stream".to_string(),
                    },
                }
            };
            agents.close_tunnel(&inbound, &reason);
        });
        let outbound_tunnel = tunnel;
        let frames = async_stream::stream! {
            let mut outbound = outbound;
            loop {
                tokio::select! {
                    biased;
                    frame = outbound.recv() => match frame {
                        Some(frame) => yield Ok(pb::OpenTunnelResponse {
                            frame: Some(pb::open_tunnel_response::Frame::Tunnel(frame)),
                        }),
                        None => break,
                    },
                    () = outbound_tunnel.closed() => {
                        let reason = outbound_tunnel
                            .close_reason()
                            .unwrap_or_else(|| "the tunnel closed".into());
                        yield Err(Status::unavailable(reason));
                        break;
                    }
                }
            }
        };
        Ok(Response::new(Box::pin(frames)))
    }
}
