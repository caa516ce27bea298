//! A small pusher that puts real content into a registry through its HTTP API — blobs by
//! monolithic upload (POST, then PUT with the digest), manifests by PUT — logged in with basic
//! credentials or the token flow. It is our own, independent of the adapter under test, so tests
//! can use it (and [`Pusher::raw_get`]) as the outside view of the registry.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::archive::tar_gz;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const COSIGN_SIGNATURE_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SPDX_ARTIFACT: &str = "application/spdx+json";

/// "sha256:…" of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// What a push produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub digest: String,
    pub media_type: String,
    /// Manifest bytes plus every blob (or child manifest) it references.
    pub total_size: u64,
    pub manifest: Vec<u8>,
}

/// A raw registry answer.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

pub struct Pusher {
    base: String,
    client: reqwest::Client,
    credentials: Option<(String, String)>,
    /// Bearer tokens by scope.
    tokens: std::sync::Mutex<HashMap<String, String>>,
}

impl Pusher {
    pub fn new(base: &str, credentials: Option<(String, String)>) -> Pusher {
        Pusher {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            credentials,
            tokens: Default::default(),
        }
    }

    /// For a [`super::TestRegistry`], with its own credentials (and its CA, with TLS).
    pub fn for_registry(registry: &super::TestRegistry) -> Pusher {
        Pusher {
            client: registry.http_client(),
            ..Pusher::new(&registry.url, registry.auth.credentials())
        }
    }

    fn basic(&self) -> Option<String> {
        self.credentials.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    /// Sends a request, answering a Basic or Bearer challenge once.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> RawAnswer {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let mut authorization: Option<String> = None;
        for attempt in 0..2 {
            let mut request = self.client.request(method.clone(), &url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(auth) = &authorization {
                request = request.header("authorization", auth);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request.send().await.expect("registry request");
            let status = response.status().as_u16();
            let response_headers = response.headers().clone();
            let bytes = response.bytes().await.expect("registry body").to_vec();
            if status != 401 || attempt == 1 {
                return RawAnswer {
                    status,
                    headers: response_headers,
                    body: bytes,
                };
            }
            let challenge = response_headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            authorization = if challenge.starts_with("Bearer") {
                Some(format!("Bearer {}", self.token(&challenge).await))
            } else {
                self.basic()
            };
        }
        unreachable!("two attempts at most")
    }

    async fn token(&self, challenge: &str) -> String {
        let params = challenge_params(challenge);
        let scope = params.get("scope").cloned().unwrap_or_default();
        if let Some(token) = self.tokens.lock().expect("tokens").get(&scope) {
            return token.clone();
        }
        let realm = params.get("realm").expect("challenge has a realm");
        let mut request = self.client.get(realm).query(&[(
            "service",
            params.get("service").cloned().unwrap_or_default(),
        )]);
        if !scope.is_empty() {
            request = request.query(&[("scope", &scope)]);
        }
        if let Some(basic) = self.basic() {
            request = request.header("authorization", basic);
        }
        let body = request
            .send()
            .await
            .expect("token request")
            .bytes()
            .await
            .expect("token answer");
        let answer: Value = serde_json::from_slice(&body).expect("token answer json");
        let token = answer["token"].as_str().expect("token").to_string();
        self.tokens
            .lock()
            .expect("tokens")
            .insert(scope, token.clone());
        token
    }

    /// GET a path (such as `/v2/team/app/manifests/v1`) with auth, as an outside check.
    pub async fn raw_get(&self, path: &str, accept: &[&str]) -> RawAnswer {
        let accept = accept.join(", ");
        let headers: Vec<(&str, &str)> = if accept.is_empty() {
            Vec::new()
        } else {
            vec![("accept", accept.as_str())]
        };
        self.raw(reqwest::Method::GET, path, &headers, None).await
    }

    /// Uploads a blob (POST for an upload URL, then one PUT with the whole body).
    pub async fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = digest_of(bytes);
        let start = self
            .raw(
                reqwest::Method::POST,
                &format!("/v2/{repository}/blobs/uploads/"),
                &[],
                None,
            )
            .await;
        assert_eq!(
            start.status,
            202,
            "start upload: {}",
            String::from_utf8_lossy(&start.body)
        );
        let location = start.headers["location"].to_str().expect("location");
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = self
            .raw(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={digest}"),
                &[("content-type", "application/octet-stream")],
                Some(bytes.to_vec()),
            )
            .await;
        assert_eq!(
            put.status,
            201,
            "finish upload: {}",
            String::from_utf8_lossy(&put.body)
        );
        digest
    }

    /// PUTs a manifest under `reference` (a tag or its digest); returns its digest.
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> String {
        let answer = self
            .raw(
                reqwest::Method::PUT,
                &format!("/v2/{repository}/manifests/{reference}"),
                &[("content-type", media_type)],
                Some(manifest.to_vec()),
            )
            .await;
        assert_eq!(
            answer.status,
            201,
            "put manifest {repository}:{reference}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        digest_of(manifest)
    }

    /// A config blob and a layer blob (one file), then a manifest of the given media type with
    /// `extra` fields (artifactType, subject, annotations) merged in.
    async fn push_manifest_with(
        &self,
        repository: &str,
        reference: Option<&str>,
        media_type: &str,
        config: (&str, Vec<u8>),
        layer: (&str, Vec<u8>),
        extra: Value,
    ) -> Pushed {
        let config_digest = self.push_blob(repository, &config.1).await;
        let layer_digest = self.push_blob(repository, &layer.1).await;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config.0, "digest": config_digest, "size": config.1.len()},
            "layers": [{"mediaType": layer.0, "digest": layer_digest, "size": layer.1.len()}],
        });
        if let (Some(target), Some(extra)) = (manifest.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        let bytes = serde_json::to_vec(&manifest).expect("manifest json");
        let digest = digest_of(&bytes);
        self.push_manifest(repository, reference.unwrap_or(&digest), media_type, &bytes)
            .await;
        Pushed {
            digest,
            media_type: media_type.to_string(),
            total_size: (bytes.len() + config.1.len() + layer.1.len()) as u64,
            manifest: bytes,
        }
    }

    /// An image for `platform` ("linux/amd64") with one layer holding `content`; untagged when
    /// `tag` is `None`. OCI media types.
    pub async fn push_image(
        &self,
        repository: &str,
        tag: Option<&str>,
        platform: &str,
        content: &str,
    ) -> Pushed {
        self.push_image_as(repository, tag, platform, content, false)
            .await
    }

    /// The same with Docker schema 2 media types.
    pub async fn push_docker_image(&self, repository: &str, tag: &str, content: &str) -> Pushed {
        self.push_image_as(repository, Some(tag), "linux/amd64", content, true)
            .await
    }

    async fn push_image_as(
        &self,
        repository: &str,
        tag: Option<&str>,
        platform: &str,
        content: &str,
        docker: bool,
    ) -> Pushed {
        let (os, arch) = platform.split_once('/').unwrap_or(("linux", platform));
        let layer = tar_gz(&[("hello.txt", content.as_bytes())]);
        let config = serde_json::to_vec(&json!({
            "architecture": arch,
            "os": os,
            "created": "2026-01-02T03:04:05Z",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(&super::archive::tar(&[("hello.txt", content.as_bytes())]))]},
        }))
        .expect("config json");
        let (manifest_type, config_type, layer_type) = if docker {
            (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
        } else {
            (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
        };
        self.push_manifest_with(
            repository,
            tag,
            manifest_type,
            (config_type, config),
            (layer_type, layer),
            json!({}),
        )
        .await
    }

    /// One image per platform (untagged), then an index of them under `tag`.
    pub async fn push_index(&self, repository: &str, tag: &str, platforms: &[&str]) -> Pushed {
        let mut manifests = Vec::new();
        let mut total = 0u64;
        for platform in platforms {
            let image = self
                .push_image(repository, None, platform, &format!("{tag} on {platform}"))
                .await;
            let (os, arch) = platform.split_once('/').unwrap_or(("linux", platform));
            let (arch, variant) = match arch.split_once('/') {
                Some((a, v)) => (a, Some(v)),
                None => (arch, None),
            };
            let mut platform = json!({"os": os, "architecture": arch});
            if let Some(variant) = variant {
                platform["variant"] = json!(variant);
            }
            total += image.manifest.len() as u64;
            manifests.push(json!({
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": image.manifest.len(),
                "platform": platform,
            }));
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        }))
        .expect("index json");
        let digest = self.push_manifest(repository, tag, OCI_INDEX, &index).await;
        Pushed {
            digest,
            media_type: OCI_INDEX.into(),
            total_size: index.len() as u64 + total,
            manifest: index,
        }
    }

    /// A Helm chart as `helm push` stores it: the Chart.yaml as JSON in a Helm config blob, the
    /// chart archive (`<name>/Chart.yaml`) as the one layer, tagged with the version.
    pub async fn push_chart(
        &self,
        repository: &str,
        name: &str,
        version: &str,
        app_version: &str,
        description: &str,
    ) -> Pushed {
        let chart_yaml = format!(
            "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"{app_version}\"\ndescription: {description}\ntype: application\n"
        );
        let archive = tar_gz(&[(&format!("{name}/Chart.yaml"), chart_yaml.as_bytes())]);
        let config = serde_json::to_vec(&json!({
            "apiVersion": "v2",
            "name": name,
            "version": version,
            "appVersion": app_version,
            "description": description,
            "type": "application",
        }))
        .expect("chart config");
        // Helm turns '+' (semver build metadata) into '_' in tags.
        let tag = version.replace('+', "_");
        self.push_manifest_with(
            repository,
            Some(&tag),
            OCI_MANIFEST,
            (HELM_CONFIG, config),
            (HELM_CHART_LAYER, archive),
            json!({"annotations": {"org.opencontainers.image.title": name, "org.opencontainers.image.version": version}}),
        )
        .await
    }

    /// A cosign-style signature of `subject`: tagged `sha256-<hex>.sig`.
    pub async fn push_signature(&self, repository: &str, subject: &Pushed) -> Pushed {
        let payload = serde_json::to_vec(&json!({
            "critical": {"image": {"docker-manifest-digest": subject.digest}, "type": "cosign container image signature"},
        }))
        .expect("payload");
        let tag = format!("{}.sig", subject.digest.replace(':', "-"));
        self.push_manifest_with(
            repository,
            Some(&tag),
            OCI_MANIFEST,
            (OCI_CONFIG, b"{}".to_vec()),
            (COSIGN_SIGNATURE_LAYER, payload),
            json!({"annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}),
        )
        .await
    }

    /// An SBOM as an OCI 1.1 artifact (artifactType, empty config, `subject`) pushed by digest,
    /// then listed in the referrers tag-schema fallback: an index tagged `sha256-<hex>` (the
    /// registry has no referrers API). Returns the SBOM; the index replaces any earlier one.
    pub async fn push_sbom(&self, repository: &str, subject: &Pushed) -> Pushed {
        let sbom = serde_json::to_vec(&json!({"spdxVersion": "SPDX-2.3", "name": subject.digest}))
            .expect("sbom");
        let pushed = self
            .push_manifest_with(
                repository,
                None,
                OCI_MANIFEST,
                (OCI_EMPTY, b"{}".to_vec()),
                (SPDX_ARTIFACT, sbom),
                json!({
                    "artifactType": SPDX_ARTIFACT,
                    "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.manifest.len()},
                }),
            )
            .await;
        let referrers = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": pushed.digest,
                "size": pushed.manifest.len(),
                "artifactType": SPDX_ARTIFACT,
            }],
        }))
        .expect("referrers index");
        let tag = subject.digest.replace(':', "-");
        self.push_manifest(repository, &tag, OCI_INDEX, &referrers)
            .await;
        pushed
    }

    /// Tags an existing manifest again (PUT of the same bytes under another tag).
    pub async fn tag(&self, repository: &str, tag: &str, pushed: &Pushed) {
        self.push_manifest(repository, tag, &pushed.media_type, &pushed.manifest)
            .await;
    }
}

/// `Bearer realm="…",service="…",scope="…"` → its parameters.
pub fn challenge_params(challenge: &str) -> HashMap<String, String> {
    let rest = challenge
        .split_once(' ')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_string(), value);
    }
    params
}
