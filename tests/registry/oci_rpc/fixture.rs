//! The fixture: an in-process Flotilla server, a real registry per test (with its access log),
//! credentials made through CredentialService, and the outside views the tests check against —
//! registry rows read with `sqlite3` from the server's database file, the registry's own access
//! log, raw registry reads with the test support's pusher, and digests computed here.

use flotilla_test_support as support;

use std::time::Duration;

use flotilla::proto::{
    self as pb, credential_service_client::CredentialServiceClient,
    registry_service_client::RegistryServiceClient,
};
use sha2::Digest;
use support::{
    registry::{
        LoggedRequest, Pusher, RegistryAuth, RegistryKind, RegistryOptions, TestRegistry,
        push::RawAnswer,
    },
    server::{AuthedChannel, TestServer},
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub const USER: &str = "flotilla";
pub const PASSWORD: &str = "s3cret-pass";

pub type Client = RegistryServiceClient<AuthedChannel>;

/// A Flotilla server (the prober quiet: nothing logs in behind the tests' counts).
pub struct Server {
    pub server: TestServer,
}

impl Server {
    pub async fn start() -> Server {
        let server = TestServer::start_with(|s| {
            s.registries.probe_interval = Duration::from_secs(3600);
        })
        .await;
        Server { server }
    }

    pub async fn client(&self) -> Client {
        RegistryServiceClient::new(self.server.channel().await)
    }

    /// A USERNAME_PASSWORD credential, through CredentialService.
    pub async fn credential(&self, id: &str, username: &str, password: &str) {
        CredentialServiceClient::new(self.server.channel().await)
            .create_credential(pb::CreateCredentialRequest {
                credential_id: id.into(),
                provider: "oci".into(),
                secret: Some(pb::CredentialSecret {
                    secret: Some(pb::credential_secret::Secret::UsernamePassword(
                        pb::UsernamePasswordSecret {
                            username: username.into(),
                            password: password.into(),
                        },
                    )),
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("create credential {id}: {s:?}"));
    }

    /// Registry rows as `id|provider|endpoint|credential`, read with `sqlite3` from the
    /// server's database file (not through the server).
    pub fn registry_rows(&self) -> Vec<String> {
        support::db::sqlite(
            &self.server.settings.data_dir.join("flotilla.db"),
            "SELECT id || '|' || provider || '|' || endpoint || '|' || COALESCE(credential_id, '') \
             FROM registries ORDER BY id",
        )
    }

    /// Registers `registry` as `id`, with credential `credential` ("" for none).
    pub async fn create(
        &self,
        id: &str,
        registry: &TestRegistry,
        credential: &str,
    ) -> Result<pb::Registry, Status> {
        self.client()
            .await
            .create_registry(create_request(id, &registry.url, credential, ""))
            .await
            .map(|r| r.into_inner().registry.expect("registry in the answer"))
    }
}

pub fn create_request(
    id: &str,
    endpoint: &str,
    credential: &str,
    ca_pem: &str,
) -> pb::CreateRegistryRequest {
    pb::CreateRegistryRequest {
        registry: Some(pb::Registry {
            id: id.into(),
            provider: "oci".into(),
            endpoint: endpoint.into(),
            credential_id: credential.into(),
            ..Default::default()
        }),
        ca_pem: ca_pem.into(),
        validate_only: false,
    }
}

/// A registry with its access log on.
pub async fn registry(kind: RegistryKind, auth: RegistryAuth) -> TestRegistry {
    TestRegistry::start_with(
        kind,
        auth,
        RegistryOptions {
            access_log: true,
            ..Default::default()
        },
    )
    .await
}

/// The registry's access log once it has caught up with what was answered (it writes a line
/// after answering): read until two reads 100 ms apart agree.
pub async fn requests(registry: &TestRegistry) -> Vec<LoggedRequest> {
    let mut seen = registry.requests();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = registry.requests();
        if now == seen {
            return now;
        }
        seen = now;
    }
}

/// Requests that change something in the registry.
pub fn writes(requests: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    requests
        .iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .collect()
}

/// "sha256:<hex>" of `bytes`, computed here (not by the pusher or the server).
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A raw read of a manifest, from outside Flotilla.
pub async fn raw_manifest(pusher: &Pusher, repository: &str, reference: &str) -> RawAnswer {
    pusher
        .raw_get(
            &format!("/v2/{repository}/manifests/{reference}"),
            &[
                support::registry::push::OCI_MANIFEST,
                support::registry::push::OCI_INDEX,
                support::registry::push::DOCKER_MANIFEST,
            ],
        )
        .await
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// The BadRequest fields of a status.
pub fn fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Asserts `code` with ErrorInfo `reason`.
pub fn assert_refused(status: &Status, code: Code, why: &str, case: &str) {
    assert_eq!(status.code(), code, "{case}: {status:?}");
    assert_eq!(reason(status), why, "{case}: {status:?}");
}

/// Every tag of `repository` through ListTags at `page_size`, checking each page as a client
/// would rely on it: no more than asked, a token only when a non-empty page follows it, and the
/// same token giving the same page again. Returns the tags in the order received.
pub async fn walk_tags(
    client: &mut Client,
    registry_id: &str,
    repository: &str,
    page_size: i32,
) -> Vec<String> {
    let request = |token: &str| pb::ListTagsRequest {
        registry_id: registry_id.into(),
        repository: repository.into(),
        page_size,
        page_token: token.into(),
    };
    let mut all = Vec::new();
    let mut token = String::new();
    for page in 0.. {
        assert!(page < 20_000, "paging did not end");
        let answer = client
            .list_tags(request(&token))
            .await
            .unwrap_or_else(|s| panic!("{repository} page {page} at size {page_size}: {s:?}"))
            .into_inner();
        assert!(
            answer.tags.len() <= page_size as usize,
            "page {page}: {} tags at page size {page_size}",
            answer.tags.len()
        );
        if !token.is_empty() {
            assert!(
                !answer.tags.is_empty(),
                "size {page_size}: page {page} is empty although the previous page's token \
                 promised more (after {} tags)",
                all.len()
            );
        }
        if page % 5 == 1 {
            let again = client
                .list_tags(request(&token))
                .await
                .expect("the same token again")
                .into_inner();
            assert_eq!(
                (&again.tags, &again.next_page_token),
                (&answer.tags, &answer.next_page_token),
                "the same token gives the same page"
            );
        }
        all.extend(answer.tags);
        if answer.next_page_token.is_empty() {
            return all;
        }
        token = answer.next_page_token;
    }
    unreachable!()
}
