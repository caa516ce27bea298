//! The `oci` registry adapter through the `RegistryClient` trait, against real registries started
//! per test: CNCF Distribution v3.1.2 anonymous, with htpasswd basic auth and with bearer tokens
//! from our own issuer, and Debian's docker-registry 2.8 (which ignores `n`/`last` on tag lists).
//! Content is pushed with the test support's own pusher; what the adapter says is checked against
//! what was pushed and against raw registry reads from outside the adapter.

use flotilla_test_support as support;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use flotilla::{
    adapters::{
        ErrorClass, TransportSettings,
        registry::{
            ArtifactKind, PageRequest, RegistryClient, RegistryCredentials, RegistryTarget,
            harbor::HarborSettings, oci::OciSettings, providers,
        },
    },
    net::{OutboundPolicy, OutboundSettings, outbound::parse_cidrs},
};
use support::registry::{Pusher, RegistryAuth, RegistryKind, TestRegistry, scenario::push_content};
use zeroize::Zeroizing;

const USER: &str = "flotilla";
const PASSWORD: &str = "s3cret-pass";

fn transport() -> TransportSettings {
    TransportSettings {
        rate_per_second: 100_000,
        timeout: Duration::from_secs(10),
        max_attempts: 2,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        ..Default::default()
    }
}

fn policy(deny: &str) -> Arc<OutboundPolicy> {
    Arc::new(
        OutboundSettings {
            deny: parse_cidrs(deny).unwrap(),
            allow: Vec::new(),
        }
        .policy("127.0.0.1:1".parse().unwrap()),
    )
}

fn open_with(
    endpoint: &str,
    credentials: RegistryCredentials,
    deny: &str,
) -> flotilla::adapters::Result<Arc<dyn RegistryClient>> {
    let providers = providers(
        transport(),
        policy(deny),
        OciSettings::default(),
        HarborSettings::default(),
    );
    let provider = providers.get("oci").expect("oci provider");
    provider.open(RegistryTarget {
        endpoint: endpoint.to_string(),
        region: String::new(),
        instance_id: String::new(),
        ca_pem: None,
        credentials,
    })
}

fn credentials_of(registry: &TestRegistry) -> RegistryCredentials {
    match registry.auth.credentials() {
        Some((username, password)) => RegistryCredentials::UsernamePassword {
            username,
            password: Zeroizing::new(password),
        },
        None => RegistryCredentials::Anonymous,
    }
}

fn open(registry: &TestRegistry) -> Arc<dyn RegistryClient> {
    open_with(&registry.url, credentials_of(registry), "").expect("open")
}

fn page(size: u32, cursor: Option<String>) -> PageRequest {
    PageRequest { size, cursor }
}

/// Every tag of `repository`, walking pages of `size`; asserts each page's bounds.
async fn walk_tags(client: &dyn RegistryClient, repository: &str, size: u32) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let listed = client
            .list_tags(repository, &page(size, cursor.clone()))
            .await
            .expect("list_tags");
        assert!(
            listed.items.len() <= size as usize,
            "page of {} > {size}",
            listed.items.len()
        );
        all.extend(listed.items);
        match listed.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("paging did not end");
}

/// Every trait method that applies to a plain registry, checked against what was pushed and
/// against raw reads.
async fn every_method(kind: RegistryKind, auth: RegistryAuth) {
    let registry = TestRegistry::start(kind, auth).await;
    let pusher = Pusher::for_registry(&registry);
    let content = push_content(&pusher).await;
    let client = open(&registry);

    let login = client.login().await.expect("login");
    assert_eq!(login.api_version, "registry/2.0");

    // Namespaces: first path components, with repository counts.
    let namespaces = client
        .list_namespaces(&page(2, None))
        .await
        .expect("namespaces");
    assert_eq!(namespaces.total, Some(3));
    let mut names: Vec<(String, Option<u64>)> = namespaces
        .items
        .iter()
        .map(|n| (n.name.clone(), n.repository_count))
        .collect();
    let rest = client
        .list_namespaces(&page(2, namespaces.next.clone()))
        .await
        .expect("namespaces page 2");
    assert_eq!(rest.next, None);
    names.extend(
        rest.items
            .iter()
            .map(|n| (n.name.clone(), n.repository_count)),
    );
    assert_eq!(
        names,
        vec![
            ("charts".to_string(), Some(1)),
            ("other".to_string(), Some(1)),
            ("team".to_string(), Some(2)),
        ]
    );

    // Repositories: all (paged by 3), and of one namespace.
    let first = client
        .list_repositories(None, &page(3, None))
        .await
        .expect("repositories");
    let second = client
        .list_repositories(None, &page(3, first.next.clone()))
        .await
        .expect("repositories page 2");
    let all: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(
        all,
        vec!["charts/nginx", "other/thing", "team/app", "team/web"]
    );
    assert_eq!(second.next, None);
    let team = client
        .list_repositories(Some("team"), &page(10, None))
        .await
        .expect("team repositories");
    assert_eq!(
        team.items
            .iter()
            .map(|r| (r.name.as_str(), r.namespace.as_str()))
            .collect::<Vec<_>>(),
        vec![("team/app", "team"), ("team/web", "team")]
    );

    // Tags, as pushed.
    let tags: BTreeSet<String> = walk_tags(client.as_ref(), "team/app", 100)
        .await
        .into_iter()
        .collect();
    let v1_hex = content.v1.digest.trim_start_matches("sha256:");
    let expected: BTreeSet<String> = [
        "latest".to_string(),
        "v1".into(),
        "v2-docker".into(),
        "multi".into(),
        format!("sha256-{v1_hex}.sig"),
        format!("sha256-{v1_hex}"),
    ]
    .into_iter()
    .collect();
    assert_eq!(tags, expected);

    // Artifacts: kinds, sizes, platforms, tags grouped by digest; the referrers fallback
    // index is shown as the SBOM it lists.
    let artifacts = client
        .list_artifacts("team/app", &page(100, None))
        .await
        .expect("artifacts")
        .items;
    let find = |digest: &str| {
        artifacts
            .iter()
            .find(|a| a.digest == digest)
            .unwrap_or_else(|| panic!("{digest} not listed in {artifacts:#?}"))
    };
    let v1 = find(&content.v1.digest);
    assert_eq!(v1.kind, ArtifactKind::Image);
    assert_eq!(v1.tags, vec!["latest", "v1"]);
    assert_eq!(v1.size_bytes, content.v1.total_size);
    assert_eq!(v1.media_type, support::registry::push::OCI_MANIFEST);
    let docker = find(&content.docker.digest);
    assert_eq!(docker.kind, ArtifactKind::Image);
    assert_eq!(docker.media_type, support::registry::push::DOCKER_MANIFEST);
    let multi = find(&content.multi.digest);
    assert_eq!(multi.kind, ArtifactKind::ImageIndex);
    assert_eq!(multi.platforms, vec!["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(multi.size_bytes, content.multi.total_size);
    let signature = find(&content.signature.digest);
    assert_eq!(signature.kind, ArtifactKind::Signature);
    let sbom = find(&content.sbom.digest);
    assert_eq!(sbom.kind, ArtifactKind::Sbom);
    assert_eq!(sbom.artifact_type, support::registry::push::SPDX_ARTIFACT);
    assert!(sbom.tags.is_empty());
    assert_eq!(artifacts.len(), 5, "{artifacts:#?}");

    // One artifact, by tag and by digest.
    let by_tag = client
        .get_artifact("team/app", "multi")
        .await
        .expect("by tag");
    assert_eq!(by_tag.digest, content.multi.digest);
    let by_digest = client
        .get_artifact("team/app", &content.v1.digest)
        .await
        .expect("by digest");
    assert_eq!(by_digest.kind, ArtifactKind::Image);
    let missing = client
        .get_artifact("team/app", "no-such-tag")
        .await
        .expect_err("missing");
    assert_eq!(missing.class, ErrorClass::VendorNotFound);

    // Helm charts.
    let charts = client
        .list_charts(None, &page(10, None))
        .await
        .expect("charts");
    assert_eq!(charts.items.len(), 1, "{:#?}", charts.items);
    let chart = &charts.items[0];
    assert_eq!(
        (chart.namespace.as_str(), chart.name.as_str()),
        ("charts", "nginx")
    );
    assert_eq!(chart.latest_version, "1.2.0");
    assert_eq!(chart.description, "A faster web server");
    assert_eq!(chart.version_count, Some(2));
    let in_team = client
        .list_charts(Some("team"), &page(10, None))
        .await
        .expect("team charts");
    assert!(in_team.items.is_empty());
    let versions = client
        .list_chart_versions("charts", "nginx", &page(10, None))
        .await
        .expect("chart versions")
        .items;
    let versions: Vec<(&str, &str, &str)> = versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                v.app_version.as_str(),
                v.digest.as_str(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            ("1.0.0", "1.25.0", content.chart_100.digest.as_str()),
            ("1.2.0", "1.27.1", content.chart_120.digest.as_str()),
        ]
    );

    // Deleting a tag: Distribution v3 untags; docker-registry 2.8 can only delete by digest,
    // which the adapter refuses rather than remove the other tags.
    let accept = [support::registry::push::OCI_MANIFEST];
    let deleted = client.delete_tag("team/app", "latest").await;
    let latest_after = pusher
        .raw_get("/v2/team/app/manifests/latest", &accept)
        .await;
    match kind {
        RegistryKind::Distribution => {
            deleted.expect("delete tag");
            assert_eq!(latest_after.status, 404, "tag gone");
        }
        RegistryKind::DockerRegistry => {
            assert_eq!(
                deleted.expect_err("unsupported").class,
                ErrorClass::Unsupported
            );
            assert_eq!(latest_after.status, 200, "nothing deleted");
        }
    }
    let v1_after = pusher.raw_get("/v2/team/app/manifests/v1", &accept).await;
    assert_eq!(v1_after.status, 200, "the other tag of the artifact stays");
    let missing_tag = client
        .delete_tag("team/app", "no-such-tag")
        .await
        .expect_err("missing tag");
    assert_eq!(missing_tag.class, ErrorClass::VendorNotFound);

    // Deleting an artifact by digest: gone for a raw read, and a second delete is not found.
    client
        .delete_artifact("team/app", &content.docker.digest)
        .await
        .expect("delete artifact");
    let raw = pusher
        .raw_get(
            &format!("/v2/team/app/manifests/{}", content.docker.digest),
            &[support::registry::push::DOCKER_MANIFEST],
        )
        .await;
    assert_eq!(raw.status, 404);
    let again = client
        .delete_artifact("team/app", &content.docker.digest)
        .await
        .expect_err("already deleted");
    assert_eq!(again.class, ErrorClass::VendorNotFound);
    let tags_after: BTreeSet<String> = walk_tags(client.as_ref(), "team/app", 100)
        .await
        .into_iter()
        .collect();
    assert!(!tags_after.contains("v2-docker"), "{tags_after:?}");

    // Bad input is refused before any call.
    let bad = client
        .list_tags("Team/App", &page(10, None))
        .await
        .expect_err("bad name");
    assert_eq!(bad.class, ErrorClass::InvalidConfiguration);
    assert!(bad.message.contains("Team/App"), "{}", bad.message);
    // What the trait does not offer for plain registries says so.
    let unsupported = client
        .create_namespace("new", false)
        .await
        .expect_err("unsupported");
    assert_eq!(unsupported.class, ErrorClass::Unsupported);
}

#[tokio::test]
async fn distribution_anonymous_every_method() {
    every_method(RegistryKind::Distribution, RegistryAuth::Anonymous).await;
}

#[tokio::test]
async fn distribution_basic_auth_every_method() {
    every_method(
        RegistryKind::Distribution,
        RegistryAuth::basic(USER, PASSWORD),
    )
    .await;
}

#[tokio::test]
async fn distribution_token_auth_every_method() {
    every_method(
        RegistryKind::Distribution,
        RegistryAuth::token(USER, PASSWORD),
    )
    .await;
}

#[tokio::test]
async fn docker_registry_2_8_every_method() {
    every_method(RegistryKind::DockerRegistry, RegistryAuth::Anonymous).await;
}

#[tokio::test]
async fn docker_registry_2_8_token_auth_every_method() {
    every_method(
        RegistryKind::DockerRegistry,
        RegistryAuth::token(USER, PASSWORD),
    )
    .await;
}

/// 1,200 tags pushed in an order that is not sorted; every page size walks all of them exactly
/// once, in order, on a registry that pages and on one that ignores `n`/`last`.
async fn paging_over_1200_tags(kind: RegistryKind) {
    let registry = TestRegistry::start(kind, RegistryAuth::Anonymous).await;
    let pusher = Pusher::for_registry(&registry);
    let image = pusher
        .push_image("big/tags", None, "linux/amd64", "tagged a lot")
        .await;
    let mut pushed = BTreeSet::new();
    for i in 0..1200u32 {
        // A scrambled order, mixed shapes (upper case, dots, dashes, digits first).
        let n = i.wrapping_mul(7919) % 1200;
        let tag = match n % 4 {
            0 => format!("v{n}"),
            1 => format!("{n}-rc.{}", n % 7),
            2 => format!("Release_{n:04}"),
            _ => format!("z.{n}"),
        };
        pusher.tag("big/tags", &tag, &image).await;
        pushed.insert(tag);
    }
    assert_eq!(pushed.len(), 1200);
    if kind == RegistryKind::DockerRegistry {
        // The quirk this guards against: the registry hands back everything, whatever `n` says.
        let raw = pusher.raw_get("/v2/big/tags/tags/list?n=5", &[]).await;
        let body: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
        assert!(
            body["tags"].as_array().unwrap().len() > 5,
            "docker-registry 2.8 honours n now?"
        );
    }
    let client = open(&registry);
    for size in [1u32, 7, 100, 1000] {
        let walked = walk_tags(client.as_ref(), "big/tags", size).await;
        let unique: BTreeSet<String> = walked.iter().cloned().collect();
        assert_eq!(unique.len(), walked.len(), "size {size}: a tag came twice");
        let skipped = pushed.difference(&unique).count();
        let invented = unique.difference(&pushed).count();
        assert_eq!(
            (skipped, invented),
            (0, 0),
            "size {size}: tags skipped, invented"
        );
        let mut sorted = walked.clone();
        sorted.sort();
        assert_eq!(walked, sorted, "size {size}: not in order");
    }
}

#[tokio::test]
async fn distribution_pages_1200_tags_at_every_size() {
    paging_over_1200_tags(RegistryKind::Distribution).await;
}

#[tokio::test]
async fn docker_registry_2_8_pages_1200_tags_at_every_size() {
    paging_over_1200_tags(RegistryKind::DockerRegistry).await;
}

#[tokio::test]
async fn wrong_password_is_credentials_invalid() {
    for auth in [
        RegistryAuth::basic(USER, PASSWORD),
        RegistryAuth::token(USER, PASSWORD),
    ] {
        let registry = TestRegistry::start(RegistryKind::Distribution, auth.clone()).await;
        let client = open_with(
            &registry.url,
            RegistryCredentials::UsernamePassword {
                username: USER.into(),
                password: Zeroizing::new("wrong-password".into()),
            },
            "",
        )
        .unwrap();
        let err = client.login().await.expect_err("wrong password");
        assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{auth:?}: {err}");
        assert!(!err.to_string().contains("wrong-password"), "{err}");
        let err = client
            .list_tags("team/app", &page(10, None))
            .await
            .expect_err("wrong password");
        assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{auth:?}: {err}");
        let anonymous = open_with(&registry.url, RegistryCredentials::Anonymous, "").unwrap();
        let err = anonymous.login().await.expect_err("no credentials");
        assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{auth:?}: {err}");
        if let Some(issuer) = &registry.issuer {
            let issued = issuer.issued();
            assert!(
                !issued.is_empty() && issued.iter().all(|i| !i.granted),
                "{issued:?}"
            );
        }
    }
}

/// Tokens are asked for once per scope and reused until shortly before they expire, as the
/// issuer's own log shows.
#[tokio::test]
async fn tokens_are_cached_per_scope_until_expiry() {
    let registry = TestRegistry::start(
        RegistryKind::Distribution,
        RegistryAuth::Token {
            username: USER.into(),
            password: PASSWORD.into(),
            expires_in_secs: 4,
        },
    )
    .await;
    let pusher = Pusher::for_registry(&registry);
    pusher
        .push_image("team/app", Some("v1"), "linux/amd64", "x")
        .await;
    pusher
        .push_image("team/web", Some("v1"), "linux/amd64", "y")
        .await;
    let issuer = registry.issuer.as_ref().unwrap();
    let before = issuer.issued().len();
    let client = open(&registry);
    client.login().await.expect("login");
    for _ in 0..5 {
        client.list_tags("team/app", &page(10, None)).await.unwrap();
        client.list_tags("team/web", &page(10, None)).await.unwrap();
        client.get_artifact("team/app", "v1").await.unwrap();
    }
    let asked: Vec<Vec<String>> = issuer.issued()[before..]
        .iter()
        .map(|i| {
            assert!(i.granted);
            assert_eq!(i.account.as_deref(), Some(USER));
            i.requested.clone()
        })
        .collect();
    assert_eq!(
        asked,
        vec![
            vec![],
            vec!["repository:team/app:pull".to_string()],
            vec!["repository:team/web:pull".to_string()],
        ],
        "one token per scope"
    );
    // 4 s tokens are used for at most 2 s (half their life): a call after that asks again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    client.list_tags("team/app", &page(10, None)).await.unwrap();
    assert_eq!(issuer.issued().len() - before, 4, "refreshed once");
}

#[tokio::test]
async fn unreachable_registry_is_vendor_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = open_with(
        &format!("http://127.0.0.1:{port}"),
        RegistryCredentials::Anonymous,
        "",
    )
    .unwrap();
    let err = client.login().await.expect_err("nothing listens");
    assert_eq!(err.class, ErrorClass::VendorUnavailable, "{err}");
    let err = client
        .list_tags("team/app", &page(10, None))
        .await
        .expect_err("nothing listens");
    assert_eq!(err.class, ErrorClass::VendorUnavailable, "{err}");
}

/// The endpoint is a caller-supplied address: the outbound policy applies to it, by IP literal
/// and by name, and nothing is sent where it refuses.
#[tokio::test]
async fn outbound_policy_applies_to_the_endpoint() {
    let registry = TestRegistry::start(RegistryKind::Distribution, RegistryAuth::Anonymous).await;
    let err = open_with(
        &registry.url,
        RegistryCredentials::Anonymous,
        "127.0.0.1/32",
    )
    .err()
    .expect("refused literal");
    assert_eq!(err.class, ErrorClass::InvalidConfiguration);
    assert!(err.message.contains("127.0.0.1"), "{}", err.message);
    let by_name = open_with(
        &format!("http://localhost:{}", registry.port),
        RegistryCredentials::Anonymous,
        "127.0.0.1/32, ::1/128",
    )
    .expect("names are checked when resolved");
    let err = by_name.login().await.expect_err("refused name");
    assert!(err.message.contains("localhost"), "{err}");
    // The same name is fine when the policy allows it.
    let allowed = open_with(
        &format!("http://localhost:{}", registry.port),
        RegistryCredentials::Anonymous,
        "127.0.0.9/32",
    )
    .unwrap();
    allowed.login().await.expect("allowed");
}

/// A registry without `_catalog`: listing repositories (all, or of a namespace) and namespaces
/// says it cannot, while tag-level calls still work. Stands in for such a registry: a loopback
/// stub that answers the catalog 404 and proxies nothing else.
#[tokio::test]
async fn a_registry_without_catalog_says_so() {
    use axum::{Router, http::StatusCode, routing::get};
    let router = Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route(
            "/v2/_catalog",
            get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    r#"{"errors":[{"code":"UNSUPPORTED","message":"catalog disabled"}]}"#,
                )
            }),
        )
        .route(
            "/v2/team/app/tags/list",
            get(|| async { r#"{"name":"team/app","tags":["b","a"]}"# }),
        );
    let addr = support::sim::serve(router).await;
    let client = open_with(
        &format!("http://{addr}"),
        RegistryCredentials::Anonymous,
        "",
    )
    .unwrap();
    for result in [
        client.list_repositories(None, &page(10, None)).await.err(),
        client
            .list_repositories(Some("team"), &page(10, None))
            .await
            .err(),
    ] {
        let err = result.expect("refused");
        assert_eq!(err.class, ErrorClass::Unsupported);
        assert!(err.message.contains("_catalog"), "{}", err.message);
        assert!(err.message.contains("namespace"), "{}", err.message);
    }
    let err = client
        .list_namespaces(&page(10, None))
        .await
        .expect_err("refused");
    assert_eq!(err.class, ErrorClass::Unsupported);
    let tags = client.list_tags("team/app", &page(10, None)).await.unwrap();
    assert_eq!(tags.items, vec!["a", "b"]);
}

/// The registry process and its storage are gone once the test's handle is dropped.
#[tokio::test]
async fn test_registries_leave_nothing_behind() {
    let registry = TestRegistry::start(
        RegistryKind::Distribution,
        RegistryAuth::basic(USER, PASSWORD),
    )
    .await;
    let pid = registry.pid();
    let storage = registry.storage_dir();
    Pusher::for_registry(&registry)
        .push_image("team/app", Some("v1"), "linux/amd64", "x")
        .await;
    assert!(
        storage
            .join("docker/registry/v2/repositories/team/app")
            .is_dir(),
        "pushed to disk"
    );
    drop(registry);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still there"
    );
    assert!(!storage.exists(), "storage left behind");
}
