//! Where the agent keeps its credential: in its Secret (in the cluster) or in a file (local
//! runs). The one-time registration token is exchanged only when no credential is kept yet.

use std::path::{Path, PathBuf};

use ::kube::api::{Patch, PatchParams};
use anyhow::Context;
use k8s_openapi::api::core::v1::Secret;
use tonic::transport::Channel;
use zeroize::Zeroizing;

use super::AgentArgs;
use crate::{
    proto::{self as pb, agent_service_client::AgentServiceClient},
    service::clusters::agent_manifest::AGENT_NAME,
};

const CREDENTIAL_KEY: &str = "agent-credential";
const CLUSTER_KEY: &str = "cluster-id";

/// The cluster id and agent credential, as kept.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    cluster_id: String,
    agent_credential: Zeroizing<String>,
}

pub struct CredentialStore {
    file: Option<PathBuf>,
    secrets: ::kube::Api<Secret>,
}

impl CredentialStore {
    pub fn new(args: &AgentArgs, client: ::kube::Client) -> CredentialStore {
        CredentialStore {
            file: args.credential_file.clone(),
            secrets: ::kube::Api::namespaced(client, &args.namespace),
        }
    }

    /// The kept credential, or a new one from exchanging the registration token (kept at once).
    pub async fn credential(
        &self,
        channel: &Channel,
        kube_system_uid: &str,
        token_file: Option<&Path>,
    ) -> anyhow::Result<(String, Zeroizing<String>)> {
        if let Some(kept) = self.load().await? {
            return Ok((kept.cluster_id, kept.agent_credential));
        }
        let path = token_file.context(
            "no agent credential is kept yet and no --token-file was given to register with",
        )?;
        let token = Zeroizing::new(
            tokio::fs::read_to_string(path)
                .await
                .with_context(|| format!("reading the registration token {}", path.display()))?,
        );
        let mut request = tonic::Request::new(pb::RegisterAgentRequest {
            kube_system_uid: kube_system_uid.to_string(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
        });
        let bearer = format!("Bearer {}", token.trim())
            .parse()
            .context("the registration token is not a valid header value")?;
        request.metadata_mut().insert("authorization", bearer);
        let answer = AgentServiceClient::new(channel.clone())
            .register_agent(request)
            .await
            .map_err(|status| {
                anyhow::anyhow!("registering: {}: {}", status.code(), status.message())
            })?
            .into_inner();
        let kept = Kept {
            cluster_id: answer.cluster_id,
            agent_credential: Zeroizing::new(answer.agent_credential),
        };
        self.save(&kept).await?;
        tracing::info!(cluster = %kept.cluster_id, "registered with Flotilla");
        Ok((kept.cluster_id, kept.agent_credential))
    }

    async fn load(&self) -> anyhow::Result<Option<Kept>> {
        if let Some(path) = &self.file {
            return match tokio::fs::read(path).await {
                Ok(bytes) => Ok(Some(
                    serde_json::from_slice(&bytes).context("the credential file does not parse")?,
                )),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err).context("reading the credential file"),
            };
        }
        let Some(secret) = self
            .secrets
            .get_opt(AGENT_NAME)
            .await
            .context("reading the agent's Secret")?
        else {
            return Ok(None);
        };
        let data = secret.data.unwrap_or_default();
        let text = |key: &str| {
            data.get(key)
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
        };
        Ok(match (text(CLUSTER_KEY), text(CREDENTIAL_KEY)) {
            (Some(cluster_id), Some(credential)) if !credential.is_empty() => Some(Kept {
                cluster_id,
                agent_credential: Zeroizing::new(credential),
            }),
            _ => None,
        })
    }

    async fn save(&self, kept: &Kept) -> anyhow::Result<()> {
        if let Some(path) = &self.file {
            let json = Zeroizing::new(serde_json::to_vec(kept)?);
            write_private(path, &json).context("writing the credential file")?;
            return Ok(());
        }
        let patch = serde_json::json!({
            "stringData": {CLUSTER_KEY: kept.cluster_id, CREDENTIAL_KEY: kept.agent_credential.as_str()}
        });
        self.secrets
            .patch(AGENT_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .context("keeping the agent credential in the agent's Secret")?;
        Ok(())
    }
}

/// Writes `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
