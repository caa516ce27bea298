//! The TCR adapters (`tcr` Enterprise and `tcr-personal`) through the registry traits, against
//! the TCR simulator (which verifies TC3 signatures with its own code, keeps state, pages as
//! TCR does — Enterprise `Offset` is a page number — and counts every request).

use flotilla_test_support as support;

use std::{
    sync::Arc,
    time::{Duration, Instant, UNIX_EPOCH},
};

use flotilla::adapters::{
    Credentials, ErrorClass, TransportSettings, VendorHttp,
    registry::{
        PageRequest, PullScope, RegistryClient, RegistryCredentials, RegistryTarget,
        tcr::{self, TcrConfig},
    },
};
use support::sim::{
    Faults,
    tcr::{Edition, REGISTRY_ID, TcrSim},
};
use zeroize::Zeroizing;

const REGISTRY_HOST: &str = "simtcr.tencentcloudcr.com";

fn http() -> VendorHttp {
    VendorHttp::new(
        TransportSettings {
            rate_per_second: 1000,
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_secs(3),
            ..Default::default()
        },
        None,
    )
    .unwrap()
}

fn config(sim: &TcrSim) -> TcrConfig {
    TcrConfig {
        api_endpoint: Some(sim.endpoint()),
    }
}

fn target(id: &str, secret: &str, instance: &str) -> RegistryTarget {
    RegistryTarget {
        endpoint: format!("https://{REGISTRY_HOST}"),
        region: "ap-guangzhou".into(),
        instance_id: instance.into(),
        ca_pem: None,
        credentials: RegistryCredentials::Cloud(Credentials::AccessKey {
            id: id.into(),
            secret: Zeroizing::new(secret.into()),
        }),
    }
}

async fn setup() -> (TcrSim, Arc<dyn RegistryClient>) {
    let sim = TcrSim::start().await;
    let (id, secret) = sim.credentials();
    let client = tcr::provider(http(), config(&sim))
        .open(target(&id, &secret, REGISTRY_ID))
        .unwrap();
    (sim, client)
}

async fn setup_personal() -> (TcrSim, Arc<dyn RegistryClient>) {
    let sim = TcrSim::start().await;
    let (id, secret) = sim.credentials();
    let client = tcr::personal_provider(http(), config(&sim))
        .open(target(&id, &secret, ""))
        .unwrap();
    (sim, client)
}

fn digest(n: usize) -> String {
    format!("sha256:{n:064x}")
}

fn page(size: u32, cursor: Option<String>) -> PageRequest {
    PageRequest { size, cursor }
}

fn requests(sim: &TcrSim) -> usize {
    sim.control.seen().len()
}

/// Walks a list to its end; returns the items and how many pages it took.
macro_rules! walk {
    ($size:expr, |$page:ident| $call:expr) => {{
        let (mut items, mut cursor, mut pages) = (Vec::new(), None, 0usize);
        loop {
            let $page = page($size, cursor);
            let listed = $call.await.unwrap();
            assert!(listed.items.len() <= $size as usize, "more than asked");
            pages += 1;
            items.extend(listed.items);
            cursor = listed.next;
            if cursor.is_none() {
                break;
            }
        }
        (items, pages)
    }};
}

#[tokio::test]
async fn login_and_the_namespace_lifecycle() {
    let (sim, tcr) = setup().await;
    let info = tcr.login().await.unwrap();
    assert_eq!(info.api_version, "2019-09-24");
    assert_eq!(sim.control.count("DescribeInstances"), 1);

    tcr.create_namespace("team-a", true).await.unwrap();
    tcr.create_namespace("team-b", false).await.unwrap();
    assert_eq!(
        sim.namespaces(Edition::Enterprise),
        vec![("team-a".to_string(), true), ("team-b".to_string(), false)]
    );
    let listed = tcr.list_namespaces(&page(10, None)).await.unwrap();
    let seen: Vec<(String, bool)> = listed
        .items
        .iter()
        .map(|n| (n.name.clone(), n.public))
        .collect();
    assert_eq!(seen, sim.namespaces(Edition::Enterprise));
    // CreationTime (Go's format, +0800) is read as the instant it names.
    assert!(
        listed.items[0]
            .created
            .is_some_and(|t| t > UNIX_EPOCH + Duration::from_secs(1_699_999_000))
    );

    let again = tcr.create_namespace("team-a", true).await.unwrap_err();
    assert_eq!(again.class, ErrorClass::DependencyBlocked, "{again}");
    assert_eq!(again.code, "FailedOperation.ErrorTcrResourceConflict");
    sim.seed_repository(Edition::Enterprise, "team-a", "app", 0);
    let held = tcr.delete_namespace("team-a").await.unwrap_err();
    assert_eq!(held.class, ErrorClass::DependencyBlocked, "{held}");
    tcr.delete_namespace("team-b").await.unwrap();
    assert_eq!(sim.namespaces(Edition::Enterprise).len(), 1);
    let gone = tcr.delete_namespace("team-b").await.unwrap_err();
    assert_eq!(gone.class, ErrorClass::VendorNotFound, "{gone}");

    // An instance that is not there.
    let (id, secret) = sim.credentials();
    let other = tcr::provider(http(), config(&sim))
        .open(target(&id, &secret, "tcr-missing1"))
        .unwrap();
    let err = other.login().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorNotFound, "{err}");
}

#[tokio::test]
async fn page_number_offsets_visit_every_item_once_at_several_sizes() {
    let (sim, tcr) = setup().await;
    let e = Edition::Enterprise;
    for n in 0..23 {
        sim.seed_namespace(e, &format!("ns{n:02}"), n % 2 == 0);
    }
    for n in 0..37 {
        sim.seed_repository(e, &format!("ns{:02}", n % 3), &format!("repo{n:02}"), 0);
    }
    for n in 0..45 {
        sim.seed_image(
            e,
            "ns00/repo00",
            &format!("v{n}"),
            &digest(n),
            100 + n as u64,
        );
    }
    let want_ns: Vec<String> = sim.namespaces(e).into_iter().map(|(n, _)| n).collect();
    let want_tags: Vec<String> = sim
        .images(e, "ns00/repo00")
        .into_iter()
        .map(|i| i.tag)
        .collect();
    assert_eq!(want_tags.len(), 45);

    for size in [1u32, 4, 10, 23, 45, 100] {
        let pages_for = |n: usize| n.div_ceil(size as usize);
        let (names, pages) = walk!(size, |p| tcr.list_namespaces(&p));
        let names: Vec<String> = names.into_iter().map(|n| n.name).collect();
        assert_eq!(names, want_ns, "namespaces at size {size}");
        assert_eq!(pages, pages_for(23));

        for namespace in [None, Some("ns01")] {
            let want = sim.repositories(e, namespace);
            let (repos, pages) = walk!(size, |p| tcr.list_repositories(namespace, &p));
            let names: Vec<String> = repos.iter().map(|r| r.name.clone()).collect();
            assert_eq!(names, want, "repositories of {namespace:?} at size {size}");
            assert!(
                repos
                    .iter()
                    .all(|r| r.name.starts_with(&format!("{}/", r.namespace)))
            );
            assert_eq!(pages, pages_for(want.len()));
        }

        let before = sim.control.count("DescribeImages");
        let (tags, pages) = walk!(size, |p| tcr.list_tags("ns00/repo00", &p));
        assert_eq!(tags, want_tags, "tags at size {size}");
        assert_eq!(pages, pages_for(45));
        assert_eq!(sim.control.count("DescribeImages") - before, pages);
    }

    // A cursor made at one size and followed at another still skips and repeats nothing.
    let first = tcr.list_namespaces(&page(7, None)).await.unwrap();
    let second = tcr
        .list_namespaces(&page(5, first.next.clone()))
        .await
        .unwrap();
    let names: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(names, want_ns[..names.len()].to_vec());
    assert!(!names.is_empty() && names.len() <= 12);

    let want = sim.images(e, "ns00/repo00");
    let (artifacts, _) = walk!(8, |p| tcr.list_artifacts("ns00/repo00", &p));
    assert_eq!(artifacts.len(), 45);
    for (artifact, image) in artifacts.iter().zip(&want) {
        assert_eq!(artifact.tags, vec![image.tag.clone()]);
        assert_eq!(artifact.digest, image.digest);
        assert_eq!(artifact.size_bytes, image.size);
        assert_eq!(
            artifact.pushed,
            Some(UNIX_EPOCH + Duration::from_secs(image.pushed_secs))
        );
    }
}

#[tokio::test]
async fn images_repositories_and_not_found() {
    let (sim, tcr) = setup().await;
    let e = Edition::Enterprise;
    sim.seed_namespace(e, "team", false);
    sim.seed_repository(e, "team", "app", 0);
    sim.seed_image(e, "team/app", "v1", &digest(1), 10);
    sim.seed_image(e, "team/app", "v10", &digest(10), 11);
    sim.seed_image(e, "team/app", "latest", &digest(10), 11);

    // Exact match: "v1" is not "v10".
    let v1 = tcr.get_artifact("team/app", "v1").await.unwrap();
    assert_eq!(
        (v1.digest.as_str(), v1.tags.clone()),
        (digest(1).as_str(), vec!["v1".to_string()])
    );
    let by_digest = tcr.get_artifact("team/app", &digest(10)).await.unwrap();
    let mut tags = by_digest.tags.clone();
    tags.sort();
    assert_eq!(tags, vec!["latest", "v10"]);
    let missing = tcr.get_artifact("team/app", "v9").await.unwrap_err();
    assert_eq!(missing.class, ErrorClass::VendorNotFound);

    tcr.delete_tag("team/app", "v1").await.unwrap();
    let left: Vec<String> = sim
        .images(e, "team/app")
        .into_iter()
        .map(|i| i.tag)
        .collect();
    assert_eq!(left, vec!["latest", "v10"]);
    let again = tcr.delete_tag("team/app", "v1").await.unwrap_err();
    assert_eq!(again.class, ErrorClass::VendorNotFound, "{again}");
    let no_repo = tcr
        .list_tags("team/nope", &page(10, None))
        .await
        .unwrap_err();
    assert_eq!(no_repo.class, ErrorClass::VendorNotFound, "{no_repo}");

    tcr.delete_repository("team/app").await.unwrap();
    assert!(sim.repositories(e, None).is_empty());
    let gone = tcr.delete_repository("team/app").await.unwrap_err();
    assert_eq!(gone.class, ErrorClass::VendorNotFound, "{gone}");
}

#[tokio::test]
async fn bad_names_and_targets_are_refused_before_any_request() {
    let (sim, tcr) = setup().await;
    let refusals = [
        tcr.create_namespace("Team", true).await.unwrap_err(),
        tcr.create_namespace(&"a".repeat(31), true)
            .await
            .unwrap_err(),
        tcr.delete_namespace("team-").await.unwrap_err(),
        tcr.list_repositories(Some("a"), &page(10, None))
            .await
            .unwrap_err(),
        tcr.list_tags("team/ab", &page(10, None)).await.unwrap_err(),
        tcr.list_artifacts("nonamespace", &page(10, None))
            .await
            .unwrap_err(),
        tcr.get_artifact("team/app", "-x").await.unwrap_err(),
        tcr.delete_tag("team/app", "a b").await.unwrap_err(),
        tcr.delete_repository("team/a/b").await.unwrap_err(),
    ];
    for err in &refusals {
        assert_eq!(err.class, ErrorClass::InvalidConfiguration, "{err}");
        assert_eq!(err.code, "InvalidName", "{err}");
    }
    let forged = tcr
        .list_namespaces(&page(10, Some("forged".into())))
        .await
        .unwrap_err();
    assert_eq!(forged.code, "BadCursor");
    assert_eq!(requests(&sim), 0, "nothing may reach TCR");

    let (id, secret) = sim.credentials();
    let enterprise = tcr::provider(http(), config(&sim));
    let mut bad = target(&id, &secret, "cri-abc");
    bad.region = "Guangzhou".into();
    let fields: Vec<String> = enterprise
        .check_target(&bad)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, vec!["region", "vendor_instance_id"]);
    let fields: Vec<String> = enterprise
        .check_target(&target(&id, &secret, ""))
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, vec!["vendor_instance_id"]);
    let personal = tcr::personal_provider(http(), config(&sim));
    let fields: Vec<String> = personal
        .check_target(&target(&id, &secret, REGISTRY_ID))
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        vec!["vendor_instance_id"],
        "personal has no instance"
    );
    assert!(enterprise.open(bad).is_err());
    assert_eq!(requests(&sim), 0);
}

#[tokio::test]
async fn a_wrong_key_is_credentials_invalid_and_not_retried() {
    let sim = TcrSim::start().await;
    let (id, _) = sim.credentials();
    let wrong = tcr::provider(http(), config(&sim))
        .open(target(&id, "not-the-secret", REGISTRY_ID))
        .unwrap();
    let err = wrong.login().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err}");
    assert_eq!(err.code, "AuthFailure.SignatureFailure");
    assert!(!err.to_string().contains("not-the-secret"));
    let seen = sim.control.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].outcome, "signature");

    let unknown = tcr::provider(http(), config(&sim))
        .open(target("AKIDnobody", "x", REGISTRY_ID))
        .unwrap();
    let err = unknown.list_namespaces(&page(5, None)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err}");
    assert_eq!(err.code, "AuthFailure.SecretIdNotFound");
    assert_eq!(sim.control.seen().len(), 2);
}

#[tokio::test]
async fn throttling_is_retried_and_its_hint_honoured() {
    let (sim, tcr) = setup().await;
    sim.seed_namespace(Edition::Enterprise, "team", false);
    sim.control.set_faults(Faults {
        throttle_ratio: 0.5,
        throttle_retry_after: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    // Faults are spread evenly: of two requests, the second is throttled.
    tcr.list_namespaces(&page(10, None)).await.unwrap();
    let started = Instant::now();
    let listed = tcr.list_namespaces(&page(10, None)).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(listed.items.len(), 1);
    let outcomes: Vec<&str> = sim.control.seen().iter().map(|s| s.outcome).collect();
    assert_eq!(outcomes, vec!["ok", "throttled", "ok"]);
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    // Throttled requests did nothing, so a create is retried too.
    tcr.create_namespace("team-b", false).await.unwrap();
    assert_eq!(sim.control.count("CreateNamespace"), 2);
    assert_eq!(sim.namespaces(Edition::Enterprise).len(), 2);
}

#[tokio::test]
async fn server_errors_retry_reads_but_not_writes() {
    let (sim, tcr) = setup().await;
    sim.control.set_faults(Faults {
        server_error_ratio: 1.0,
        ..Default::default()
    });
    let err = tcr.list_namespaces(&page(10, None)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable, "{err}");
    let attempts = TransportSettings::default().max_attempts as usize;
    assert_eq!(sim.control.count("DescribeNamespaces"), attempts);
    let err = tcr.create_namespace("team", false).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable);
    assert_eq!(sim.control.count("CreateNamespace"), 1);
    assert!(sim.namespaces(Edition::Enterprise).is_empty());

    sim.control.set_faults(Faults {
        server_error_ratio: 0.5,
        ..Default::default()
    });
    // Faults are spread evenly: of two requests, the second fails.
    tcr.login().await.unwrap();
    tcr.login().await.unwrap();
    let outcomes: Vec<&str> = sim
        .control
        .seen()
        .iter()
        .filter(|s| s.action == "DescribeInstances")
        .map(|s| s.outcome)
        .collect();
    assert_eq!(outcomes, vec!["ok", "server_error", "ok"]);
}

#[tokio::test]
async fn the_instance_token_carries_tcrs_expiry() {
    let (sim, tcr) = setup().await;
    let scope = PullScope {
        namespaces: vec![],
        name: "flotilla-ps-1".into(),
        lifetime: Duration::from_secs(3600),
    };
    let credential = tcr.issue_pull_credential(&scope).await.unwrap();
    let issued = sim.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].registry_id, REGISTRY_ID);
    assert_eq!(credential.server, REGISTRY_HOST);
    assert_eq!(credential.username, issued[0].username);
    assert_eq!(credential.password.as_str(), issued[0].token);
    assert_eq!(
        credential.expires,
        Some(UNIX_EPOCH + Duration::from_millis(issued[0].expires_ms))
    );
    assert!(!format!("{credential:?}").contains(&issued[0].token));
}

#[tokio::test]
async fn what_tcr_cannot_do_is_unsupported_without_a_request() {
    let (sim, tcr) = setup().await;
    for err in [
        tcr.delete_artifact("team/app", &digest(1))
            .await
            .unwrap_err(),
        tcr.list_charts(None, &page(10, None)).await.unwrap_err(),
        tcr.list_chart_versions("team", "chart", &page(10, None))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.class, ErrorClass::Unsupported, "{err}");
    }
    let (psim, personal) = setup_personal().await;
    let err = personal
        .issue_pull_credential(&PullScope {
            namespaces: vec![],
            name: "x".into(),
            lifetime: Duration::from_secs(60),
        })
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Unsupported);
    let err = personal.create_namespace("team", true).await.unwrap_err();
    assert_eq!(
        err.class,
        ErrorClass::Unsupported,
        "no namespace visibility"
    );
    assert_eq!(requests(&sim), 0);
    assert_eq!(requests(&psim), 0);
}

#[tokio::test]
async fn personal_edition_lifecycle_paging_and_pull_counts() {
    let (sim, tcr) = setup_personal().await;
    let p = Edition::Personal;
    tcr.login().await.unwrap();
    assert_eq!(sim.control.count("DescribeNamespacePersonal"), 1);
    tcr.create_namespace("mine", false).await.unwrap();
    assert_eq!(sim.namespaces(p), vec![("mine".to_string(), false)]);
    let again = tcr.create_namespace("mine", false).await.unwrap_err();
    assert_eq!(again.class, ErrorClass::DependencyBlocked, "{again}");

    for n in 0..12 {
        sim.seed_namespace(p, &format!("ns{n:02}"), false);
    }
    for n in 0..26 {
        sim.seed_repository(
            p,
            &format!("ns{:02}", n % 2),
            &format!("repo{n:02}"),
            n as u64 * 3,
        );
    }
    for n in 0..17 {
        sim.seed_image(p, "ns00/repo00", &format!("t{n}"), &digest(n), 50);
    }
    let want_ns: Vec<String> = sim.namespaces(p).into_iter().map(|(n, _)| n).collect();
    for size in [1u32, 5, 13, 100] {
        let (names, pages) = walk!(size, |q| tcr.list_namespaces(&q));
        let names: Vec<String> = names.into_iter().map(|n| n.name).collect();
        assert_eq!(names, want_ns, "size {size}");
        assert_eq!(pages, 13usize.div_ceil(size as usize));
        let (repos, _) = walk!(size, |q| tcr.list_repositories(None, &q));
        let names: Vec<String> = repos.iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, sim.repositories(p, None), "size {size}");
        let (repos, _) = walk!(size, |q| tcr.list_repositories(Some("ns01"), &q));
        let names: Vec<String> = repos.iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, sim.repositories(p, Some("ns01")), "size {size}");
        let (tags, _) = walk!(size, |q| tcr.list_tags("ns00/repo00", &q));
        let want: Vec<String> = sim
            .images(p, "ns00/repo00")
            .into_iter()
            .map(|i| i.tag)
            .collect();
        assert_eq!(tags, want, "size {size}");
    }
    let repos = tcr
        .list_repositories(None, &page(100, None))
        .await
        .unwrap()
        .items;
    let repo3 = repos.iter().find(|r| r.name == "ns01/repo03").unwrap();
    assert_eq!(repo3.pull_count, Some(9));
    let repo0 = repos.iter().find(|r| r.name == "ns00/repo00").unwrap();
    assert_eq!(repo0.artifact_count, Some(17));

    let artifact = tcr.get_artifact("ns00/repo00", "t3").await.unwrap();
    assert_eq!(artifact.digest, digest(3));
    let by_digest = tcr.get_artifact("ns00/repo00", &digest(4)).await.unwrap();
    assert_eq!(by_digest.tags, vec!["t4"]);
    tcr.delete_tag("ns00/repo00", "t3").await.unwrap();
    assert_eq!(sim.images(p, "ns00/repo00").len(), 16);
    let gone = tcr.delete_tag("ns00/repo00", "t3").await.unwrap_err();
    assert_eq!(gone.class, ErrorClass::VendorNotFound, "{gone}");
    tcr.delete_repository("ns00/repo00").await.unwrap();
    assert!(
        !sim.repositories(p, None)
            .contains(&"ns00/repo00".to_string())
    );
    tcr.delete_namespace("mine").await.unwrap();
    let gone = tcr.delete_namespace("mine").await.unwrap_err();
    assert_eq!(gone.class, ErrorClass::VendorNotFound, "{gone}");
}
