//! The Harbor adapter, through the registry traits, against the Harbor simulator: no gRPC
//! server, no Kubernetes. Expected answers come from the simulator's own state, counters and
//! raw request log.

use flotilla_test_support as support;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use flotilla::{
    adapters::{
        CredentialKind, ErrorClass, TransportSettings,
        registry::{
            ArtifactKind, PageRequest, PullScope, RegistryClient, RegistryCredentials,
            RegistryProvider, RegistryTarget,
            harbor::{HarborProvider, HarborSettings},
            oci::OciSettings,
            providers,
        },
    },
    net::{OutboundPolicy, OutboundSettings, outbound::parse_cidrs},
};
use support::sim::{
    Faults,
    harbor::{HarborSim, SimArtifact},
};
use zeroize::Zeroizing;

/// Pull credentials: robot accounts, what they may pull, replacement and revocation.
mod robots;

/// Backed mode: a real registry behind the simulator, content pushed through its `/v2`.
mod backed;

fn transport() -> TransportSettings {
    TransportSettings {
        rate_per_second: 1000,
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_secs(2),
        ..Default::default()
    }
}

/// The outbound policy with `deny` (CIDRs) refused; Flotilla itself is 127.0.0.1:1.
fn policy(deny: &str) -> Arc<OutboundPolicy> {
    Arc::new(
        OutboundSettings {
            deny: parse_cidrs(deny).unwrap(),
            allow: Vec::new(),
        }
        .policy("127.0.0.1:1".parse().unwrap()),
    )
}

fn provider() -> HarborProvider {
    HarborProvider::new(transport(), policy(""), HarborSettings::default())
}

fn target(sim: &HarborSim, username: &str, password: &str) -> RegistryTarget {
    RegistryTarget {
        endpoint: sim.endpoint(),
        region: String::new(),
        instance_id: String::new(),
        ca_pem: None,
        credentials: RegistryCredentials::UsernamePassword {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        },
    }
}

async fn setup() -> (HarborSim, Arc<dyn RegistryClient>) {
    let sim = HarborSim::start().await;
    let (user, password) = sim.admin();
    let client = provider().open(target(&sim, &user, &password)).unwrap();
    (sim, client)
}

fn page(size: u32, cursor: Option<String>) -> PageRequest {
    PageRequest { size, cursor }
}

fn digest_of(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

#[tokio::test]
async fn login_reads_the_version_and_a_wrong_password_is_credentials_invalid() {
    let (sim, client) = setup().await;
    let info = client.login().await.unwrap();
    assert_eq!(info.api_version, "v2.13.1-sim");
    assert_eq!(sim.control.count("GET /users/current"), 1);

    let wrong_password = "not-the-password-4711";
    let wrong = provider()
        .open(target(&sim, "admin", wrong_password))
        .unwrap();
    let err = wrong.login().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid, "{err}");
    assert_eq!(err.http_status, 401);
    assert!(!err.to_string().contains(wrong_password));
    // Not retried: one 401 and done.
    let refused: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.status == 401)
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].user, "admin");
    assert_eq!(refused[0].action, "GET /users/current");
    // As in Harbor, credentials that do not hold are anonymous elsewhere: public projects only.
    sim.create_project("hidden", false);
    let anonymous_view = wrong.list_namespaces(&page(10, None)).await.unwrap();
    assert!(anonymous_view.items.is_empty());
}

#[tokio::test]
async fn projects_are_created_with_visibility_listed_and_deleted() {
    let (sim, client) = setup().await;
    let public = client.create_namespace("team-a", true).await.unwrap();
    assert_eq!((public.name.as_str(), public.public), ("team-a", true));
    assert_eq!(public.repository_count, Some(0));
    assert!(public.created.is_some());
    let private = client.create_namespace("team-b", false).await.unwrap();
    assert!(!private.public);
    assert_eq!(sim.project_public("team-a"), Some(true));
    assert_eq!(sim.project_public("team-b"), Some(false));

    sim.push("team-a/app", SimArtifact::image(&["v1"], 10));
    sim.push("team-a/db", SimArtifact::image(&["v1"], 10));
    let listed = client.list_namespaces(&page(50, None)).await.unwrap();
    let counts: Vec<(String, bool, Option<u64>)> = listed
        .items
        .iter()
        .map(|n| (n.name.clone(), n.public, n.repository_count))
        .collect();
    assert_eq!(
        counts,
        [
            ("team-a".to_string(), true, Some(2)),
            ("team-b".to_string(), false, Some(0))
        ]
    );
    assert_eq!(listed.total, Some(2));
    assert_eq!(listed.next, None);

    // A duplicate is Harbor's 409.
    let err = client.create_namespace("team-b", false).await.unwrap_err();
    assert_eq!((err.http_status, err.code.as_str()), (409, "CONFLICT"));

    client.delete_namespace("team-b").await.unwrap();
    assert_eq!(sim.project_names(), ["team-a"]);
}

#[tokio::test]
async fn a_project_with_repositories_is_not_deleted_and_the_error_says_how_many() {
    let (sim, client) = setup().await;
    sim.create_project("full", false);
    for repo in ["full/a", "full/b/c", "full/d"] {
        sim.push(repo, SimArtifact::image(&["v1"], 10));
    }
    let err = client.delete_namespace("full").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::DependencyBlocked, "{err}");
    assert_eq!(err.http_status, 412);
    assert!(
        err.message.contains("holds 3 repositories"),
        "{}",
        err.message
    );
    assert_eq!(sim.project_names(), ["full"]);
    assert_eq!(sim.repository_names().len(), 3);
}

/// Walks a list to its end with the page sizes given in turn; returns the names in order.
async fn walk<F, Fut>(sizes: &[u32], mut list: F) -> Vec<String>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = (Vec<String>, Option<String>)>,
{
    let mut names = Vec::new();
    let mut cursor = None;
    for i in 0.. {
        let size = sizes[i % sizes.len()];
        let (items, next) = list(page(size, cursor)).await;
        assert!(items.len() <= size as usize, "{} > {size}", items.len());
        names.extend(items);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(i < 2000, "the walk does not end");
    }
    names
}

#[tokio::test]
async fn paging_over_more_than_100_items_skips_and_repeats_nothing() {
    let (sim, client) = setup().await;
    for i in 0..130 {
        sim.create_project(&format!("p{i:03}"), i % 2 == 0);
    }
    for i in 0..105 {
        sim.push(&format!("p000/repo{i:03}"), SimArtifact::image(&[], 1));
    }
    for i in 0..140 {
        let tags: Vec<String> = (0..(i % 3)).map(|t| format!("v{i}-{t}")).collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        sim.push("p001/many", SimArtifact::image(&tags, i));
    }
    let projects = sim.project_names();
    let repositories: Vec<String> = sim
        .repository_names()
        .into_iter()
        .filter(|r| r.starts_with("p000/"))
        .collect();
    let artifacts: Vec<String> = sim
        .artifacts("p001/many")
        .into_iter()
        .map(|a| a.0)
        .collect();
    let tags: Vec<String> = sim
        .artifacts("p001/many")
        .into_iter()
        .flat_map(|a| a.1)
        .collect();
    assert_eq!(
        (projects.len(), artifacts.len(), tags.len()),
        (130, 140, 139)
    );
    // A reference is Copy: each `async move` below takes it, not the client.
    let client = &client;

    for sizes in [&[7][..], &[100], &[250], &[1000], &[33, 100, 1, 250]] {
        let seen = walk(sizes, |p| async move {
            let listed = client.list_namespaces(&p).await.unwrap();
            assert_eq!(listed.total, Some(130));
            (
                listed.items.into_iter().map(|n| n.name).collect(),
                listed.next,
            )
        })
        .await;
        assert_eq!(seen, projects, "projects at {sizes:?}");

        let seen = walk(sizes, |p| async move {
            let listed = client.list_repositories(Some("p000"), &p).await.unwrap();
            (
                listed.items.into_iter().map(|r| r.name).collect(),
                listed.next,
            )
        })
        .await;
        assert_eq!(seen, repositories, "repositories at {sizes:?}");

        let seen = walk(sizes, |p| async move {
            let listed = client.list_artifacts("p001/many", &p).await.unwrap();
            (
                listed.items.into_iter().map(|a| a.digest).collect(),
                listed.next,
            )
        })
        .await;
        assert_eq!(seen, artifacts, "artifacts at {sizes:?}");

        let seen = walk(sizes, |p| async move {
            let listed = client.list_tags("p001/many", &p).await.unwrap();
            (listed.items, listed.next)
        })
        .await;
        assert_eq!(seen, tags, "tags at {sizes:?}");
    }
    // Every repository of every project, through `GET /repositories`.
    let all = walk(&[64], |p| async move {
        let listed = client.list_repositories(None, &p).await.unwrap();
        (
            listed.items.into_iter().map(|r| r.name).collect(),
            listed.next,
        )
    })
    .await;
    assert_eq!(all, sim.repository_names());

    let max = sim.max_page_size().unwrap();
    assert!(max <= 100, "a page_size of {max} was asked for");
    assert_eq!(max, 100);
    assert!(sim.requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn repository_names_with_slashes_are_encoded_twice() {
    let (sim, client) = setup().await;
    sim.create_project("team", false);
    let digest = sim.push("team/app/web", SimArtifact::image(&["v1", "v2"], 42));
    sim.push("team/app/web", SimArtifact::image(&["old"], 41));

    let listed = client
        .list_artifacts("team/app/web", &page(10, None))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    let artifact = client.get_artifact("team/app/web", "v1").await.unwrap();
    assert_eq!(artifact.digest, digest);
    client.delete_tag("team/app/web", "v2").await.unwrap();
    let tags = client
        .list_tags("team/app/web", &page(10, None))
        .await
        .unwrap();
    assert_eq!(tags.items, ["old", "v1"]);
    client
        .delete_artifact("team/app/web", &digest)
        .await
        .unwrap();
    client.delete_repository("team/app/web").await.unwrap();
    assert!(sim.repository_names().is_empty());

    let requests = sim.requests();
    let repository_calls: Vec<&str> = requests
        .iter()
        .filter(|r| r.raw.contains("/repositories/"))
        .map(|r| r.raw.as_str())
        .collect();
    assert_eq!(repository_calls.len(), 6, "{repository_calls:#?}");
    for raw in &repository_calls {
        assert!(
            raw.starts_with("/api/v2.0/projects/team/repositories/app%252Fweb"),
            "{raw}"
        );
    }
    assert!(
        repository_calls.contains(
            &format!(
                "/api/v2.0/projects/team/repositories/app%252Fweb/artifacts/{}",
                digest.replace(':', "%3A")
            )
            .as_str()
        )
    );
    assert!(requests.iter().all(|r| r.status == 200), "{requests:#?}");
}

#[tokio::test]
async fn bad_names_are_refused_before_any_request() {
    let (sim, client) = setup().await;
    let p = page(10, None);
    let scope = |namespaces: &[&str], name: &str| PullScope {
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        name: name.into(),
        lifetime: Duration::from_secs(86_400),
    };
    let results = vec![
        (
            "create Team",
            client.create_namespace("Team", false).await.map(drop),
        ),
        (
            "create -x",
            client.create_namespace("-x", false).await.map(drop),
        ),
        (
            "create long",
            client
                .create_namespace(&"a".repeat(256), false)
                .await
                .map(drop),
        ),
        ("delete a/b", client.delete_namespace("a/b").await),
        (
            "repos ..",
            client.list_repositories(Some(".."), &p).await.map(drop),
        ),
        ("delete repo", client.delete_repository("noproject").await),
        (
            "artifacts",
            client.list_artifacts("team/App", &p).await.map(drop),
        ),
        ("tags", client.list_tags("team/a%2Fb", &p).await.map(drop)),
        (
            "get",
            client.get_artifact("team/app", "../x").await.map(drop),
        ),
        ("delete tag", client.delete_tag("team/app", "-bad").await),
        (
            "delete digest",
            client.delete_artifact("team/app", "sha256:XYZ").await,
        ),
        ("charts", client.list_charts(Some("UP"), &p).await.map(drop)),
        (
            "versions",
            client
                .list_chart_versions("team", "Chart", &p)
                .await
                .map(drop),
        ),
        (
            "robot name",
            client
                .issue_pull_credential(&scope(&["team"], "robot$x"))
                .await
                .map(drop),
        ),
        (
            "robot project",
            client
                .issue_pull_credential(&scope(&["Team"], "ok"))
                .await
                .map(drop),
        ),
        ("revoke", client.revoke_pull_credential("12a").await),
        (
            "cursor",
            client
                .list_namespaces(&page(10, Some("page=2".into())))
                .await
                .map(drop),
        ),
    ];
    for (what, result) in results {
        let err = result.expect_err(what);
        assert_eq!(err.class, ErrorClass::InvalidConfiguration, "{what}: {err}");
        assert!(!err.message.is_empty());
    }
    assert!(sim.requests().is_empty(), "{:#?}", sim.requests());
    assert!(sim.control.seen().is_empty());
    // The provider checks the same rule for the service before anything is opened.
    assert!(
        provider()
            .check_namespace_name("Team")
            .unwrap_err()
            .contains("lowercase")
    );
    assert!(provider().check_namespace_name("team-a").is_ok());
}

#[tokio::test]
async fn throttling_is_retried_after_the_retry_after_hint() {
    let (sim, client) = setup().await;
    sim.create_project("team", false);
    let hint = Duration::from_millis(300);
    sim.control.set_faults(Faults {
        throttle_ratio: 0.5,
        throttle_retry_after: Some(hint),
        ..Faults::default()
    });
    // Of every two requests one is throttled (the first passes, the second is throttled).
    for _ in 0..2 {
        let listed = client.list_namespaces(&page(10, None)).await.unwrap();
        assert_eq!(listed.items.len(), 1);
    }
    let seen = sim.control.seen();
    let outcomes: Vec<&str> = seen.iter().map(|s| s.outcome).collect();
    assert_eq!(outcomes, ["ok", "throttled", "ok"]);
    let waited = seen[2].at.duration_since(seen[1].at);
    assert!(
        waited >= hint,
        "retried after {waited:?}, the hint was {hint:?}"
    );
    assert_eq!(sim.control.count("GET /projects"), 3);
}

#[tokio::test]
async fn server_errors_are_retried_and_a_create_is_not() {
    let (sim, client) = setup().await;
    sim.create_project("team", false);
    sim.control.set_faults(Faults {
        server_error_ratio: 0.5,
        ..Faults::default()
    });
    for _ in 0..2 {
        let listed = client
            .list_repositories(Some("team"), &page(10, None))
            .await
            .unwrap();
        assert!(listed.items.is_empty());
    }
    let outcomes: Vec<&str> = sim.control.seen().iter().map(|s| s.outcome).collect();
    assert_eq!(outcomes, ["ok", "server_error", "ok"]);

    // Creating is not idempotent: a 5xx (Harbor may have created it) goes to the caller.
    sim.control.set_faults(Faults {
        server_error_ratio: 1.0,
        ..Faults::default()
    });
    let err = client.create_namespace("new-one", false).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::VendorUnavailable, "{err}");
    assert_eq!(sim.control.count("POST /projects"), 1);
}

#[tokio::test]
async fn what_does_not_exist_is_not_found() {
    let (sim, client) = setup().await;
    sim.create_project("team", false);
    sim.push("team/app", SimArtifact::image(&["v1"], 1));
    let results = vec![
        client.get_artifact("team/app", "nope").await.map(drop),
        client
            .get_artifact("team/app", &digest_of('e'))
            .await
            .map(drop),
        client.delete_tag("team/app", "nope").await,
        client.delete_artifact("team/app", &digest_of('e')).await,
        client.delete_repository("team/gone").await,
        client
            .list_artifacts("team/gone", &page(10, None))
            .await
            .map(drop),
        client.delete_namespace("gone").await,
        client
            .list_repositories(Some("gone"), &page(10, None))
            .await
            .map(drop),
    ];
    for result in results {
        let err = result.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert_eq!(err.http_status, 404);
        assert!(!err.request_id.is_empty());
    }
    // Nothing was changed by any of it.
    assert_eq!(sim.artifacts("team/app").len(), 1);
}

#[tokio::test]
async fn artifacts_tags_platforms_and_charts() {
    let (sim, client) = setup().await;
    sim.create_project("team", true);
    let image = sim.push("team/app", SimArtifact::image(&["v1", "latest"], 2048));
    let index = sim.push(
        "team/app",
        SimArtifact::index(&["multi"], &["linux/amd64", "linux/arm64/v8"]),
    );
    sim.record_pulls("team/app", 7);
    sim.push(
        "team/charts/web",
        SimArtifact::chart("web", "0.1.0", "1.0.0", "First"),
    );
    sim.push(
        "team/charts/web",
        SimArtifact::chart("web", "0.2.0", "1.1.0", "Second"),
    );

    let repos = client
        .list_repositories(Some("team"), &page(10, None))
        .await
        .unwrap();
    let app = repos.items.iter().find(|r| r.name == "team/app").unwrap();
    assert_eq!(
        (app.namespace.as_str(), app.artifact_count, app.pull_count),
        ("team", Some(2), Some(7))
    );
    assert!(app.updated.is_some());

    let artifacts = client
        .list_artifacts("team/app", &page(10, None))
        .await
        .unwrap()
        .items;
    assert_eq!(artifacts.len(), 2);
    let (newest, older) = (&artifacts[0], &artifacts[1]);
    assert_eq!(newest.digest, index);
    assert_eq!(newest.kind, ArtifactKind::ImageIndex);
    assert_eq!(newest.platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert!(newest.pulled.is_some());
    assert_eq!(older.digest, image);
    assert_eq!(older.kind, ArtifactKind::Image);
    assert_eq!(older.tags, ["v1", "latest"]);
    assert_eq!(older.size_bytes, 2048);
    assert_eq!(
        older.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        older.artifact_type,
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(older.pulled, None);
    let pushed = older.pushed.unwrap();
    assert!(pushed <= SystemTime::now() + Duration::from_secs(600));

    assert_eq!(
        client
            .get_artifact("team/app", "latest")
            .await
            .unwrap()
            .digest,
        image
    );
    assert_eq!(
        client.get_artifact("team/app", &image).await.unwrap().tags,
        ["v1", "latest"]
    );

    client.delete_tag("team/app", "latest").await.unwrap();
    assert_eq!(
        sim.artifacts("team/app")[1],
        (image.clone(), vec!["v1".to_string()])
    );
    client.delete_artifact("team/app", &index).await.unwrap();
    assert_eq!(sim.artifacts("team/app"), [(image, vec!["v1".to_string()])]);

    let charts = client
        .list_charts(Some("team"), &page(10, None))
        .await
        .unwrap();
    assert_eq!(charts.items.len(), 1, "{charts:?}");
    let chart = &charts.items[0];
    assert_eq!(
        (chart.name.as_str(), chart.namespace.as_str()),
        ("charts/web", "team")
    );
    assert_eq!(
        (chart.latest_version.as_str(), chart.description.as_str()),
        ("0.2.0", "Second")
    );
    assert_eq!(chart.version_count, Some(2));
    let all_charts = client.list_charts(None, &page(10, None)).await.unwrap();
    assert_eq!(all_charts.items, charts.items);

    let versions = client
        .list_chart_versions("team", "charts/web", &page(10, None))
        .await
        .unwrap()
        .items;
    let found: Vec<(&str, &str, &str)> = versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                v.app_version.as_str(),
                v.description.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [("0.2.0", "1.1.0", "Second"), ("0.1.0", "1.0.0", "First")]
    );
    let expected: Vec<String> = sim
        .artifacts("team/charts/web")
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        versions
            .iter()
            .map(|v| v.digest.clone())
            .collect::<Vec<_>>(),
        expected
    );
}

#[tokio::test]
async fn the_target_is_checked_before_anything_is_opened() {
    let sim = HarborSim::start().await;
    let mut bad = target(&sim, "admin", "pw");
    bad.endpoint = "http://harbor.example.com".into();
    bad.region = "cn-hangzhou".into();
    bad.credentials = RegistryCredentials::Anonymous;
    let fields: Vec<String> = provider()
        .check_target(&bad)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["endpoint", "region", "credential_id"]);
    assert!(provider().open(bad).is_err());
    assert!(
        provider()
            .check_target(&target(&sim, "admin", "pw"))
            .is_empty()
    );
    // Stored robot tokens are accepted for Harbor (they log in as `robot$…` with basic auth).
    assert_eq!(
        provider().credential_kinds(),
        [CredentialKind::UsernamePassword, CredentialKind::RobotToken]
    );
    assert!(sim.requests().is_empty());
}

/// The endpoint is a caller-supplied address: Harbor (as the server's `providers()` builds it)
/// refuses one the outbound policy denies, before anything is sent to it.
#[tokio::test]
async fn outbound_policy_refuses_a_denied_endpoint_before_sending() {
    let sim = HarborSim::start().await;
    let (user, password) = sim.admin();
    let open = |deny: &str| {
        let registries = providers(
            transport(),
            policy(deny),
            OciSettings::default(),
            HarborSettings::default(),
        );
        let harbor = registries.get("harbor").expect("harbor is offered");
        harbor.open(target(&sim, &user, &password))
    };
    // The simulator listens on 127.0.0.1: deny exactly that address.
    assert!(
        sim.endpoint().starts_with("http://127.0.0.1:"),
        "{}",
        sim.endpoint()
    );
    let refused = match open("127.0.0.1/32") {
        Err(err) => err,
        // Were it opened, the first call would reach the simulator: make that visible.
        Ok(client) => {
            let login = client.login().await;
            panic!("a denied endpoint was opened (login: {login:?})");
        }
    };
    assert_eq!(refused.class, ErrorClass::InvalidConfiguration, "{refused}");
    assert_eq!(refused.code, "AddressNotAllowed", "{refused}");
    assert!(refused.message.contains("127.0.0.1"), "{}", refused.message);
    assert!(!refused.to_string().contains(&password));
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());

    // Another loopback address on the deny list leaves the simulator reachable.
    let allowed = open("127.0.0.9/32").expect("not denied");
    allowed.login().await.expect("login");
    assert_eq!(sim.control.count("GET /users/current"), 1);
}
