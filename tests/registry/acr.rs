//! The ACR adapter through the registry traits, against the ACR simulator (which verifies V3
//! signatures with its own code, keeps state, pages as ACR does and counts every request):
//! every supported method, paging at several sizes compared with the simulator's state, names
//! refused before any request, a wrong key, throttling with ACR's hint, outages, not-found,
//! and the temporary pull token's expiry.

use flotilla_test_support as support;

use std::{
    sync::Arc,
    time::{Duration, Instant, UNIX_EPOCH},
};

use flotilla::adapters::{
    Credentials, ErrorClass, TransportSettings, VendorHttp,
    registry::{
        PageRequest, PullScope, RegistryClient, RegistryCredentials, RegistryProvider,
        RegistryTarget,
        acr::{self, AcrConfig},
    },
};
use support::sim::{
    Faults,
    acr::{AcrSim, INSTANCE_ID},
};
use zeroize::Zeroizing;

const REGISTRY_HOST: &str = "simacr-registry.cn-hangzhou.cr.aliyuncs.com";

fn http() -> VendorHttp {
    VendorHttp::new(
        TransportSettings {
            rate_per_second: 1000,
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_secs(2),
            ..Default::default()
        },
        None,
    )
    .unwrap()
}

fn provider(sim: &AcrSim) -> Arc<dyn RegistryProvider> {
    acr::provider(
        http(),
        AcrConfig {
            api_endpoint: Some(sim.endpoint()),
        },
    )
}

fn target(id: &str, secret: &str) -> RegistryTarget {
    RegistryTarget {
        endpoint: format!("https://{REGISTRY_HOST}"),
        region: "cn-hangzhou".into(),
        instance_id: INSTANCE_ID.into(),
        ca_pem: None,
        credentials: RegistryCredentials::Cloud(Credentials::AccessKey {
            id: id.into(),
            secret: Zeroizing::new(secret.into()),
        }),
    }
}

async fn setup() -> (AcrSim, Arc<dyn RegistryClient>) {
    let sim = AcrSim::start().await;
    let (id, secret) = sim.credentials();
    let client = provider(&sim).open(target(&id, &secret)).unwrap();
    (sim, client)
}

fn digest(n: usize) -> String {
    format!("sha256:{n:064x}")
}

fn page(size: u32, cursor: Option<String>) -> PageRequest {
    PageRequest { size, cursor }
}

/// Requests the simulator has seen, all actions.
fn requests(sim: &AcrSim) -> usize {
    sim.control.seen().len()
}

#[tokio::test]
async fn login_and_the_namespace_lifecycle() {
    let (sim, acr) = setup().await;
    let info = acr.login().await.unwrap();
    assert_eq!(info.api_version, "2018-12-01");
    assert_eq!(info.credential_expires, None);
    assert_eq!(sim.control.count("GetInstance"), 1);

    let created = acr.create_namespace("team-a", true).await.unwrap();
    assert!(created.public);
    acr.create_namespace("team-b", false).await.unwrap();
    assert_eq!(
        sim.namespaces(),
        vec![("team-a".to_string(), true), ("team-b".to_string(), false)]
    );
    let listed = acr.list_namespaces(&page(10, None)).await.unwrap();
    let seen: Vec<(String, bool)> = listed
        .items
        .iter()
        .map(|n| (n.name.clone(), n.public))
        .collect();
    assert_eq!(seen, sim.namespaces());
    assert_eq!(listed.total, Some(2));
    assert_eq!(listed.next, None);

    let again = acr.create_namespace("team-a", false).await.unwrap_err();
    assert_eq!(again.class, ErrorClass::DependencyBlocked, "{again}");
    assert_eq!(again.code, "NAMESPACE_ALREADY_EXIST");
    // A conflict is not retried: one request.
    assert_eq!(sim.control.count("CreateNamespace"), 3);

    sim.seed_repository("team-a", "app");
    let held = acr.delete_namespace("team-a").await.unwrap_err();
    assert_eq!(held.class, ErrorClass::DependencyBlocked, "{held}");
    assert_eq!(held.code, "NAMESPACE_NOT_EMPTY");
    acr.delete_namespace("team-b").await.unwrap();
    assert_eq!(sim.namespaces(), vec![("team-a".to_string(), true)]);
    let gone = acr.delete_namespace("team-b").await.unwrap_err();
    assert_eq!(gone.class, ErrorClass::VendorNotFound, "{gone}");
}

#[tokio::test]
async fn paging_visits_every_item_once_at_several_sizes() {
    let (sim, acr) = setup().await;
    for n in 0..23 {
        sim.seed_namespace(&format!("ns{n:02}"), n % 3 == 0);
    }
    for n in 0..37 {
        sim.seed_repository(&format!("ns{:02}", n % 3), &format!("repo{n:02}"));
    }
    for n in 0..45 {
        sim.seed_tag(
            "ns00/repo00",
            &format!("v{n}"),
            &digest(n % 40),
            1000 + n as u64,
        );
    }
    let want_namespaces: Vec<String> = sim.namespaces().into_iter().map(|(n, _)| n).collect();
    let want_tags: Vec<String> = sim.tags("ns00/repo00").into_iter().map(|t| t.tag).collect();
    assert_eq!(want_tags.len(), 45);

    for size in [1u32, 4, 10, 23, 45, 100] {
        let pages_for = |n: usize| n.div_ceil(size as usize);

        let before = sim.control.count("ListNamespace");
        let (mut names, mut cursor) = (Vec::new(), None);
        loop {
            let listed = acr.list_namespaces(&page(size, cursor)).await.unwrap();
            assert!(listed.items.len() <= size as usize);
            assert_eq!(listed.total, Some(23));
            names.extend(listed.items.into_iter().map(|n| n.name));
            cursor = listed.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(names, want_namespaces, "namespaces at size {size}");
        assert_eq!(sim.control.count("ListNamespace") - before, pages_for(23));

        for namespace in [None, Some("ns01")] {
            let want = sim.repositories(namespace);
            let before = sim.control.count("ListRepository");
            let (mut repos, mut cursor) = (Vec::new(), None);
            loop {
                let listed = acr
                    .list_repositories(namespace, &page(size, cursor))
                    .await
                    .unwrap();
                assert!(listed.items.len() <= size as usize);
                assert_eq!(listed.total, Some(want.len() as u64));
                repos.extend(listed.items.into_iter().map(|r| r.name));
                cursor = listed.next;
                if cursor.is_none() {
                    break;
                }
            }
            assert_eq!(repos, want, "repositories of {namespace:?} at size {size}");
            assert_eq!(
                sim.control.count("ListRepository") - before,
                pages_for(want.len())
            );
        }

        let (before_get, before_list) = (
            sim.control.count("GetRepository"),
            sim.control.count("ListRepoTag"),
        );
        let (mut tags, mut cursor) = (Vec::new(), None);
        loop {
            let listed = acr
                .list_tags("ns00/repo00", &page(size, cursor))
                .await
                .unwrap();
            assert!(listed.items.len() <= size as usize);
            tags.extend(listed.items);
            cursor = listed.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(tags, want_tags, "tags at size {size}");
        // The RepoId is looked up once per walk; later pages carry it in the cursor.
        assert_eq!(sim.control.count("GetRepository") - before_get, 1);
        assert_eq!(
            sim.control.count("ListRepoTag") - before_list,
            pages_for(45)
        );
    }

    // Artifacts carry what the simulator holds: digests (with their algorithm), sizes, times.
    let want = sim.tags("ns00/repo00");
    let (mut artifacts, mut cursor) = (Vec::new(), None);
    loop {
        let listed = acr
            .list_artifacts("ns00/repo00", &page(7, cursor))
            .await
            .unwrap();
        artifacts.extend(listed.items);
        cursor = listed.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(artifacts.len(), want.len());
    for (artifact, tag) in artifacts.iter().zip(&want) {
        assert_eq!(artifact.tags, vec![tag.tag.clone()]);
        assert_eq!(artifact.digest, tag.digest);
        assert_eq!(artifact.size_bytes, tag.size);
        assert_eq!(
            artifact.pushed,
            Some(UNIX_EPOCH + Duration::from_millis(tag.pushed_ms))
        );
    }
}

#[tokio::test]
async fn tags_repositories_and_not_found() {
    let (sim, acr) = setup().await;
    sim.seed_namespace("team", false);
    sim.seed_repository("team", "app");
    sim.seed_tag("team/app", "v1", &digest(1), 10);
    sim.seed_tag("team/app", "v2", &digest(2), 20);
    sim.seed_tag("team/app", "latest", &digest(2), 20);

    let by_tag = acr.get_artifact("team/app", "v2").await.unwrap();
    assert_eq!(by_tag.digest, digest(2));
    let mut tags = by_tag.tags.clone();
    tags.sort();
    assert_eq!(tags, vec!["latest", "v2"]);
    let by_digest = acr.get_artifact("team/app", &digest(1)).await.unwrap();
    assert_eq!(by_digest.tags, vec!["v1"]);
    assert_eq!(by_digest.size_bytes, 10);
    let missing = acr.get_artifact("team/app", "v9").await.unwrap_err();
    assert_eq!(missing.class, ErrorClass::VendorNotFound);

    acr.delete_tag("team/app", "v1").await.unwrap();
    let left: Vec<String> = sim.tags("team/app").into_iter().map(|t| t.tag).collect();
    assert_eq!(left, vec!["latest", "v2"]);
    let again = acr.delete_tag("team/app", "v1").await.unwrap_err();
    assert_eq!(again.class, ErrorClass::VendorNotFound, "{again}");
    assert_eq!(again.code, "TAG_NOT_EXIST");

    let no_repo = acr
        .list_tags("team/nope", &page(10, None))
        .await
        .unwrap_err();
    assert_eq!(no_repo.class, ErrorClass::VendorNotFound, "{no_repo}");
    assert_eq!(no_repo.code, "REPO_NOT_EXIST");
    let no_ns = acr
        .list_repositories(Some("nope"), &page(10, None))
        .await
        .unwrap_err();
    assert_eq!(no_ns.class, ErrorClass::VendorNotFound, "{no_ns}");

    acr.delete_repository("team/app").await.unwrap();
    assert!(sim.repositories(None).is_empty());
    let gone = acr.delete_repository("team/app").await.unwrap_err();
    assert_eq!(gone.class, ErrorClass::VendorNotFound, "{gone}");
}

#[tokio::test]
async fn bad_names_and_targets_are_refused_before_any_request() {
    let (sim, acr) = setup().await;
    let refusals = [
        acr.create_namespace("Team", true).await.unwrap_err(),
        acr.create_namespace("a", true).await.unwrap_err(),
        acr.delete_namespace("-team").await.unwrap_err(),
        acr.list_repositories(Some("te--am"), &page(10, None))
            .await
            .unwrap_err(),
        acr.list_tags("no-namespace", &page(10, None))
            .await
            .unwrap_err(),
        acr.list_artifacts("team/App", &page(10, None))
            .await
            .unwrap_err(),
        acr.get_artifact("team/app", "bad tag").await.unwrap_err(),
        acr.delete_tag("team/app", ".hidden").await.unwrap_err(),
        acr.delete_repository("team/a/b").await.unwrap_err(),
    ];
    for err in &refusals {
        assert_eq!(err.class, ErrorClass::InvalidConfiguration, "{err}");
        assert_eq!(err.code, "InvalidName", "{err}");
        let says_the_rule = ["lowercase", "a tag is", "`namespace/repository`"]
            .iter()
            .any(|rule| err.message.contains(rule));
        assert!(says_the_rule, "{err}");
    }
    let forged = acr
        .list_namespaces(&page(10, Some("t/forged".into())))
        .await
        .unwrap_err();
    assert_eq!(forged.code, "BadCursor");
    assert_eq!(requests(&sim), 0, "nothing may reach ACR");

    let provider = provider(&sim);
    let (id, secret) = sim.credentials();
    let mut bad = target(&id, &secret);
    bad.region = String::new();
    bad.instance_id = "tcr-abc".into();
    bad.endpoint = "registry.example.com".into();
    let fields: Vec<String> = provider
        .check_target(&bad)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, vec!["endpoint", "region", "vendor_instance_id"]);
    assert!(provider.open(bad).is_err());
    let mut basic = target(&id, &secret);
    basic.credentials = RegistryCredentials::UsernamePassword {
        username: "u".into(),
        password: Zeroizing::new("p".into()),
    };
    let fields: Vec<String> = provider
        .check_target(&basic)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, vec!["credential_id"]);
    assert!(provider.check_namespace_name("Team").is_err());
    assert_eq!(requests(&sim), 0);
}

#[tokio::test]
async fn a_wrong_key_is_credentials_invalid_and_not_retried() {
    let sim = AcrSim::start().await;
    let (id, _) = sim.credentials();
    let wrong = provider(&sim).open(target(&id, "not-the-secret")).unwrap();
    let err = wrong.login().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err}");
    assert_eq!(err.code, "SignatureDoesNotMatch");
    assert!(!err.to_string().contains("not-the-secret"));
    let seen = sim.control.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].outcome, "signature");

    let unknown = provider(&sim).open(target("LTAI5tNobody", "x")).unwrap();
    let err = unknown.list_namespaces(&page(5, None)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err}");
    assert_eq!(err.code, "InvalidAccessKeyId.NotFound");
    assert_eq!(sim.control.seen().len(), 2);
}

#[tokio::test]
async fn throttling_is_retried_after_acrs_time_left() {
    let (sim, acr) = setup().await;
    sim.seed_namespace("team", false);
    sim.control.set_faults(Faults {
        throttle_ratio: 0.5,
        throttle_retry_after: Some(Duration::from_millis(600)),
        ..Default::default()
    });
    // Faults are spread evenly: of two requests, the second is throttled.
    acr.list_namespaces(&page(10, None)).await.unwrap();
    let started = Instant::now();
    let listed = acr.list_namespaces(&page(10, None)).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(listed.items.len(), 1);
    let outcomes: Vec<&str> = sim.control.seen().iter().map(|s| s.outcome).collect();
    assert_eq!(outcomes, vec!["ok", "throttled", "ok"]);
    // Without the hint the first backoff is under 20 ms.
    assert!(
        waited >= Duration::from_millis(600),
        "waited only {waited:?}"
    );

    // Throttling never did anything, so even a create is retried.
    let created = acr.create_namespace("team-b", false).await.unwrap();
    assert_eq!(created.name, "team-b");
    assert_eq!(sim.control.count("CreateNamespace"), 2);
    assert_eq!(sim.namespaces().len(), 2);
}

#[tokio::test]
async fn server_errors_retry_reads_but_not_writes() {
    let (sim, acr) = setup().await;
    sim.control.set_faults(Faults {
        server_error_ratio: 1.0,
        ..Default::default()
    });
    let err = acr.list_namespaces(&page(10, None)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable, "{err}");
    assert_eq!(err.code, "InternalError");
    let attempts = TransportSettings::default().max_attempts as usize;
    assert_eq!(sim.control.count("ListNamespace"), attempts);
    let err = acr.create_namespace("team", false).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable);
    assert_eq!(sim.control.count("CreateNamespace"), 1);
    assert!(sim.namespaces().is_empty());

    sim.control.set_faults(Faults {
        server_error_ratio: 0.5,
        ..Default::default()
    });
    // Faults are spread evenly: of two requests, the second fails.
    acr.login().await.unwrap();
    acr.login().await.unwrap();
    let outcomes: Vec<&str> = sim
        .control
        .seen()
        .iter()
        .filter(|s| s.action == "GetInstance")
        .map(|s| s.outcome)
        .collect();
    assert_eq!(outcomes, vec!["ok", "server_error", "ok"]);
}

#[tokio::test]
async fn the_temporary_pull_token_carries_acrs_expiry() {
    let (sim, acr) = setup().await;
    let scope = PullScope {
        namespaces: vec!["team".into()],
        name: "flotilla-ps-1".into(),
        lifetime: Duration::from_secs(90 * 60),
    };
    let credential = acr.issue_pull_credential(&scope).await.unwrap();
    let issued = sim.issued_tokens();
    assert_eq!(issued.len(), 1);
    let token = &issued[0];
    assert_eq!(token.hours, 2, "90 minutes ask for 2 hours");
    assert_eq!(credential.server, REGISTRY_HOST);
    assert_eq!(credential.username, token.username);
    assert_eq!(credential.password.as_str(), token.password);
    assert_eq!(
        credential.expires,
        Some(UNIX_EPOCH + Duration::from_millis(token.expires_ms))
    );
    assert!(!format!("{credential:?}").contains(&token.password));
    // Nothing to revoke: the token expires on its own.
    acr.revoke_pull_credential("anything").await.unwrap();
    assert_eq!(requests(&sim), 1);
}

#[tokio::test]
async fn what_acr_cannot_do_is_unsupported_without_a_request() {
    let (sim, acr) = setup().await;
    let capability = provider(&sim).capability();
    assert!(!capability.delete_artifact && !capability.oci_charts && !capability.pull_counts);
    assert!(capability.manage_namespaces && capability.issue_pull_credential);
    let errors = [
        acr.delete_artifact("team/app", &digest(1))
            .await
            .unwrap_err(),
        acr.list_charts(None, &page(10, None)).await.unwrap_err(),
        acr.list_chart_versions("team", "chart", &page(10, None))
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.class, ErrorClass::Unsupported, "{err}");
        assert_eq!(err.vendor, "acr");
    }
    assert_eq!(requests(&sim), 0);
}
