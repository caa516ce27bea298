//! Logging in to a registry the way a container runtime (docker, containerd, CRI-O) does with
//! the credentials of a pull secret, to prove from outside what a credential really allows:
//!
//! 1. `GET /v2/` without credentials: 200 (an open registry), or 401 with a challenge;
//! 2. for a `Bearer realm="…",service="…"` challenge, `GET <realm>?service=…&scope=repository:
//!    <name>:pull` (`pull,push` to push) with the credentials as HTTP basic auth (none when the
//!    username is empty: an anonymous pull), and the token from the answer; for a `Basic`
//!    challenge, basic auth on every request;
//! 3. the registry call itself with that authorization.
//!
//! A token realm grants what the credential holds, not what was asked; the registry then
//! refuses what the token does not carry. So a refusal may come from the realm (a credential
//! that does not hold: 401) or from the registry (a token without the action: 401 or 403), and
//! [`Refused`] says which. Independent of the code under test: plain HTTP with `reqwest`.

use base64::Engine;
use serde_json::{Value, json};

use super::{
    archive::{tar, tar_gz},
    push::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, challenge_params, digest_of},
};

/// What a runtime accepts for a manifest.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Which step refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `GET /v2/` answered neither 200 nor 401 with a challenge.
    Ping,
    /// The token realm refused the credentials.
    Realm,
    /// The registry refused the request the token was for.
    Registry,
}

/// A refusal, with the HTTP status and what the refusing side said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub stage: Stage,
    pub status: u16,
    /// The refusing answer's body (the registry's `{"errors": […]}`), for assertion messages.
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused by the {:?} with {}: {}",
            self.stage, self.status, self.message
        )
    }
}

impl std::error::Error for Refused {}

/// Logs in to the registry at `base` (`http://host:port`) as `username`/`password` (an empty
/// username: anonymously) and pulls `repository:reference` (a tag or a digest) as a runtime
/// does: ping, token for `pull`, manifest. Returns the manifest's digest (checked against its
/// bytes).
pub async fn pull_like_a_runtime(
    base: &str,
    username: &str,
    password: &str,
    repository: &str,
    reference: &str,
) -> Result<String, Refused> {
    let session = Session::open(base, username, password, repository, "pull").await?;
    let answer = session
        .send(
            reqwest::Method::GET,
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("accept", ACCEPT)],
            None,
        )
        .await;
    if answer.status != 200 {
        return Err(answer.refused(Stage::Registry));
    }
    let digest = digest_of(&answer.body);
    if let Some(sent) = answer.header("docker-content-digest")
        && sent != digest
    {
        return Err(Refused {
            stage: Stage::Registry,
            status: answer.status,
            message: format!("Docker-Content-Digest {sent} is not the bytes' {digest}"),
        });
    }
    Ok(digest)
}

/// Tries to push a small image (config, one layer, an OCI manifest) to `repository:tag` as a
/// runtime's `push` does: ping, token for `pull,push`, blob uploads, manifest. Returns the
/// manifest's digest, or the first refusal (a pull-only credential is refused at the first
/// upload).
pub async fn try_push(
    base: &str,
    username: &str,
    password: &str,
    repository: &str,
    tag: &str,
) -> Result<String, Refused> {
    let session = Session::open(base, username, password, repository, "pull,push").await?;
    let content = format!("pushed to {repository}:{tag}");
    let layer = tar_gz(&[("hello.txt", content.as_bytes())]);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest_of(&tar(&[("hello.txt", content.as_bytes())]))]},
    }))
    .expect("config json");
    let config_digest = session.upload(repository, &config).await?;
    let layer_digest = session.upload(repository, &layer).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer.len()}],
    }))
    .expect("manifest json");
    let answer = session
        .send(
            reqwest::Method::PUT,
            &format!("/v2/{repository}/manifests/{tag}"),
            &[("content-type", OCI_MANIFEST)],
            Some(manifest.clone()),
        )
        .await;
    if answer.status != 201 {
        return Err(answer.refused(Stage::Registry));
    }
    Ok(digest_of(&manifest))
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn refused(&self, stage: Stage) -> Refused {
        Refused {
            stage,
            status: self.status,
            message: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

/// A logged-in client: the base URL and the authorization every request carries.
struct Session {
    base: String,
    client: reqwest::Client,
    authorization: Option<String>,
}

impl Session {
    /// Ping, then follow the challenge for `actions` on `repository`.
    async fn open(
        base: &str,
        username: &str,
        password: &str,
        repository: &str,
        actions: &str,
    ) -> Result<Session, Refused> {
        let mut session = Session {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            authorization: None,
        };
        let ping = session.send(reqwest::Method::GET, "/v2/", &[], None).await;
        let basic = (!username.is_empty()).then(|| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )
        });
        let challenge = ping
            .header("www-authenticate")
            .unwrap_or_default()
            .to_string();
        session.authorization = match ping.status {
            200 => None,
            401 if challenge.starts_with("Basic") => basic,
            401 if challenge.starts_with("Bearer") => {
                let params = challenge_params(&challenge);
                let Some(realm) = params.get("realm") else {
                    return Err(ping.refused(Stage::Ping));
                };
                let scope = format!("repository:{repository}:{actions}");
                let mut request = session.client.get(realm).query(&[
                    (
                        "service",
                        params.get("service").cloned().unwrap_or_default(),
                    ),
                    ("scope", scope),
                ]);
                if let Some(basic) = &basic {
                    request = request.header("authorization", basic);
                }
                let response = request.send().await.map_err(|e| Refused {
                    stage: Stage::Realm,
                    status: 0,
                    message: e.to_string(),
                })?;
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                if status != 200 {
                    return Err(Refused {
                        stage: Stage::Realm,
                        status,
                        message: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
                let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
                let token = answer["token"]
                    .as_str()
                    .or(answer["access_token"].as_str())
                    .unwrap_or_default();
                Some(format!("Bearer {token}"))
            }
            _ => return Err(ping.refused(Stage::Ping)),
        };
        Ok(session)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let mut request = self.client.request(method, &url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.bytes().await.unwrap_or_default().to_vec();
                Answer {
                    status,
                    headers,
                    body,
                }
            }
            Err(err) => Answer {
                status: 0,
                headers: Default::default(),
                body: err.to_string().into_bytes(),
            },
        }
    }

    /// A monolithic blob upload: POST for a location, PUT with the digest.
    async fn upload(&self, repository: &str, bytes: &[u8]) -> Result<String, Refused> {
        let digest = digest_of(bytes);
        let start = self
            .send(
                reqwest::Method::POST,
                &format!("/v2/{repository}/blobs/uploads/"),
                &[],
                None,
            )
            .await;
        if start.status != 202 {
            return Err(start.refused(Stage::Registry));
        }
        let location = start.header("location").unwrap_or_default();
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = self
            .send(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={digest}"),
                &[("content-type", "application/octet-stream")],
                Some(bytes.to_vec()),
            )
            .await;
        if put.status != 201 {
            return Err(put.refused(Stage::Registry));
        }
        Ok(digest)
    }
}
