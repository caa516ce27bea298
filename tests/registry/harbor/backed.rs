//! The Harbor adapter against the simulator in backed mode: a real CNCF Distribution registry
//! behind the simulator's `/v2`, its tokens from the simulator's `/service/token`. Content is
//! pushed through the Harbor host with our own pusher; expected digests are the sha256 of the
//! bytes pushed, computed here; deletes are checked with raw GETs against the registry; what a
//! credential allows is checked by logging in and pulling or pushing as a runtime does.

use std::collections::BTreeMap;

use flotilla::adapters::registry::{ArtifactKind, PullScope, RegistryClient, RegistryProvider};
use sha2::{Digest, Sha256};

use flotilla_test_support::registry::{
    Pusher, TestRegistry,
    login::{Refused, Stage, pull_like_a_runtime, try_push},
    push::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Pushed},
};
use flotilla_test_support::sim::harbor::ProjectRole;

use super::{HarborSim, page, provider, target};

/// The sha256 of the bytes pushed, independent of the pusher's own digest.
fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn backed() -> (HarborSim, std::sync::Arc<dyn RegistryClient>, Pusher) {
    let sim = HarborSim::start_backed().await;
    let (user, password) = sim.admin();
    let client = provider().open(target(&sim, &user, &password)).unwrap();
    let pusher = Pusher::new(&sim.endpoint(), Some((user, password)));
    (sim, client, pusher)
}

/// GET of a manifest straight from the registry behind the simulator (not through it), with
/// a token from the simulator's realm as admin.
async fn registry_status(sim: &HarborSim, repository: &str, reference: &str) -> u16 {
    let (user, password) = sim.admin();
    let registry: &TestRegistry = sim.registry().unwrap();
    match pull_like_a_runtime(&registry.url, &user, &password, repository, reference).await {
        Ok(_) => 200,
        Err(refused) => {
            assert_eq!(refused.stage, Stage::Registry, "{refused}");
            refused.status
        }
    }
}

#[tokio::test]
async fn pushed_images_an_index_and_charts_are_listed_with_their_real_digests_and_sizes() {
    let (sim, client, pusher) = backed().await;
    client.create_namespace("team", false).await.unwrap();
    let image = pusher
        .push_image("team/app", Some("v1"), "linux/amd64", "one")
        .await;
    let docker = pusher.push_docker_image("team/app", "v2", "two").await;
    let index = pusher
        .push_index("team/app", "multi", &["linux/amd64", "linux/arm64/v8"])
        .await;
    pusher.tag("team/app", "latest", &image).await;
    let first = pusher
        .push_chart("team/charts/web", "web", "0.1.0", "1.0.0", "First")
        .await;
    let second = pusher
        .push_chart("team/charts/web", "web", "0.2.0", "1.1.0", "Second")
        .await;
    // Everything went through the Harbor host: 8 manifests (an image, a Docker image, two
    // children and their index, a second tag, two charts).
    let manifest_puts = sim
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.raw.contains("/manifests/") && r.status == 201)
        .count();
    assert_eq!(manifest_puts, 8);

    let listed = client
        .list_artifacts("team/app", &page(50, None))
        .await
        .unwrap();
    // The index's two children were pushed untagged: Harbor lists them under the index only.
    assert_eq!(listed.total, Some(3), "{listed:#?}");
    let by_digest: BTreeMap<&str, _> = listed
        .items
        .iter()
        .map(|a| (a.digest.as_str(), a))
        .collect();
    let expect = |pushed: &Pushed, media_type: &str, kind: ArtifactKind, tags: &[&str]| {
        let digest = sha256(&pushed.manifest);
        let artifact = by_digest
            .get(digest.as_str())
            .unwrap_or_else(|| panic!("{digest} not listed: {listed:#?}"));
        assert_eq!(artifact.media_type, media_type);
        assert_eq!(artifact.kind, kind);
        // Harbor's size: the manifest and what it references (the pusher counts the same).
        assert_eq!(artifact.size_bytes, pushed.total_size, "{digest}");
        let mut got = artifact.tags.clone();
        got.sort();
        assert_eq!(got, tags);
        assert!(artifact.pushed.is_some());
        (*artifact).clone()
    };
    expect(&image, OCI_MANIFEST, ArtifactKind::Image, &["latest", "v1"]);
    let docker = expect(&docker, DOCKER_MANIFEST, ArtifactKind::Image, &["v2"]);
    assert_eq!(
        docker.artifact_type,
        "application/vnd.docker.container.image.v1+json"
    );
    let index = expect(&index, OCI_INDEX, ArtifactKind::ImageIndex, &["multi"]);
    assert_eq!(index.platforms, ["linux/amd64", "linux/arm64/v8"]);

    // Charts: a repository of CHART artifacts, Chart.yaml from the real config blob.
    let charts = client
        .list_charts(Some("team"), &page(10, None))
        .await
        .unwrap();
    assert_eq!(charts.items.len(), 1, "{charts:#?}");
    assert_eq!(
        (
            charts.items[0].name.as_str(),
            charts.items[0].latest_version.as_str(),
            charts.items[0].description.as_str(),
            charts.items[0].version_count,
        ),
        ("charts/web", "0.2.0", "Second", Some(2))
    );
    let versions = client
        .list_chart_versions("team", "charts/web", &page(10, None))
        .await
        .unwrap();
    let mut versions: Vec<(String, String, String)> = versions
        .items
        .into_iter()
        .map(|v| (v.version, v.app_version, v.digest))
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        [
            ("0.1.0".into(), "1.0.0".into(), sha256(&first.manifest)),
            ("0.2.0".into(), "1.1.0".into(), sha256(&second.manifest)),
        ]
    );
    let repositories = client
        .list_repositories(Some("team"), &page(10, None))
        .await
        .unwrap();
    let counts: Vec<(String, Option<u64>)> = repositories
        .items
        .into_iter()
        .map(|r| (r.name, r.artifact_count))
        .collect();
    assert_eq!(
        counts,
        [
            ("team/app".to_string(), Some(3)),
            ("team/charts/web".to_string(), Some(2))
        ]
    );
}

#[tokio::test]
async fn deletes_through_the_adapter_reach_the_real_registry() {
    let (sim, client, pusher) = backed().await;
    client.create_namespace("team", false).await.unwrap();
    let image = pusher
        .push_image("team/app", Some("v1"), "linux/amd64", "one")
        .await;
    let other = pusher
        .push_image("team/app", Some("v2"), "linux/amd64", "two")
        .await;
    pusher.tag("team/app", "stable", &other).await;
    let index = pusher
        .push_index("team/app", "multi", &["linux/amd64", "linux/arm64"])
        .await;
    let image_digest = sha256(&image.manifest);
    assert_eq!(registry_status(&sim, "team/app", &image_digest).await, 200);

    // An artifact by digest: the manifest and its tag are gone from the registry.
    client
        .delete_artifact("team/app", &image_digest)
        .await
        .unwrap();
    assert_eq!(registry_status(&sim, "team/app", &image_digest).await, 404);
    assert_eq!(registry_status(&sim, "team/app", "v1").await, 404);
    let raw = pusher
        .raw_get(&format!("/v2/team/app/manifests/{image_digest}"), &[])
        .await;
    assert_eq!(raw.status, 404);
    // The other artifact is untouched.
    let other_digest = sha256(&other.manifest);
    assert_eq!(registry_status(&sim, "team/app", &other_digest).await, 200);

    // An index goes with its children.
    let children: Vec<String> = serde_json::from_slice::<serde_json::Value>(&index.manifest)
        .unwrap()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(children.len(), 2);
    client
        .delete_artifact("team/app", &sha256(&index.manifest))
        .await
        .unwrap();
    for reference in children.iter().map(String::as_str).chain(["multi"]) {
        assert_eq!(registry_status(&sim, "team/app", reference).await, 404);
    }

    // A tag: gone from the registry, the artifact stays under its other tag.
    client.delete_tag("team/app", "stable").await.unwrap();
    assert_eq!(registry_status(&sim, "team/app", "stable").await, 404);
    assert_eq!(registry_status(&sim, "team/app", "v2").await, 200);
    let left = client
        .list_artifacts("team/app", &page(10, None))
        .await
        .unwrap();
    let left: Vec<(String, Vec<String>)> =
        left.items.into_iter().map(|a| (a.digest, a.tags)).collect();
    assert_eq!(left, [(other_digest.clone(), vec!["v2".to_string()])]);

    // The repository: nothing of it is left in the registry, nor in Harbor.
    client.delete_repository("team/app").await.unwrap();
    assert_eq!(registry_status(&sim, "team/app", &other_digest).await, 404);
    let repositories = client
        .list_repositories(Some("team"), &page(10, None))
        .await
        .unwrap();
    assert!(repositories.items.is_empty(), "{repositories:#?}");
}

#[tokio::test]
async fn a_pull_credential_pulls_from_its_project_only_and_cannot_push() {
    let (sim, client, pusher) = backed().await;
    client.create_namespace("team-a", false).await.unwrap();
    client.create_namespace("team-b", false).await.unwrap();
    let a = pusher
        .push_image("team-a/app", Some("v1"), "linux/amd64", "a")
        .await;
    let b = pusher
        .push_image("team-b/app", Some("v1"), "linux/amd64", "b")
        .await;
    let issued = client
        .issue_pull_credential(&PullScope {
            namespaces: vec!["team-a".into()],
            name: "ps-1".into(),
            lifetime: std::time::Duration::from_secs(86_400),
        })
        .await
        .unwrap();
    let base = sim.endpoint();
    let (robot, secret) = (issued.username.as_str(), issued.password.as_str());

    // Pulls from its project, by tag and by digest, through the Harbor host.
    assert_eq!(
        pull_like_a_runtime(&base, robot, secret, "team-a/app", "v1").await,
        Ok(sha256(&a.manifest))
    );
    assert_eq!(
        pull_like_a_runtime(&base, robot, secret, "team-a/app", &sha256(&a.manifest)).await,
        Ok(sha256(&a.manifest))
    );
    // Another project: the realm grants nothing, the registry refuses.
    let refused = pull_like_a_runtime(&base, robot, secret, "team-b/app", "v1")
        .await
        .unwrap_err();
    assert_eq!(
        (refused.stage, refused.status),
        (Stage::Registry, 401),
        "{refused}"
    );
    assert!(refused.message.contains("UNAUTHORIZED"), "{refused}");
    let token = sim.tokens().pop().unwrap();
    assert_eq!(
        (token.subject.as_str(), token.access),
        (robot, vec![("team-b/app".to_string(), Vec::new())])
    );
    // Push: asked for, not granted (the token carries pull only), refused by the registry.
    let refused = try_push(&base, robot, secret, "team-a/app", "evil")
        .await
        .unwrap_err();
    assert_eq!(
        (refused.stage, refused.status),
        (Stage::Registry, 401),
        "{refused}"
    );
    assert_eq!(
        sim.tokens().pop().unwrap().access,
        [("team-a/app".to_string(), vec!["pull".to_string()])]
    );
    assert_eq!(registry_status(&sim, "team-a/app", "evil").await, 404);

    // The admin pulls anywhere and pushes.
    let (admin, password) = sim.admin();
    assert_eq!(
        pull_like_a_runtime(&base, &admin, &password, "team-b/app", "v1").await,
        Ok(sha256(&b.manifest))
    );
    let pushed = try_push(&base, &admin, &password, "team-a/app", "v2")
        .await
        .unwrap();
    assert_eq!(
        pull_like_a_runtime(&base, robot, secret, "team-a/app", "v2").await,
        Ok(pushed)
    );

    // A wrong secret is refused by the realm; so is the credential once revoked.
    let refused = pull_like_a_runtime(&base, robot, "not-the-secret", "team-a/app", "v1")
        .await
        .unwrap_err();
    assert_eq!((refused.stage, refused.status), (Stage::Realm, 401));
    client
        .revoke_pull_credential(issued.vendor_id.as_deref().unwrap())
        .await
        .unwrap();
    let refused: Refused = pull_like_a_runtime(&base, robot, secret, "team-a/app", "v1")
        .await
        .unwrap_err();
    assert_eq!((refused.stage, refused.status), (Stage::Realm, 401));

    // Harbor counts the pulls that went through it: three manifests the robot got.
    let repositories = client
        .list_repositories(Some("team-a"), &page(10, None))
        .await
        .unwrap();
    assert_eq!(repositories.items[0].pull_count, Some(3));
}

#[tokio::test]
async fn anonymous_pulls_public_projects_only_and_members_act_by_role() {
    let (sim, client, pusher) = backed().await;
    client.create_namespace("open", true).await.unwrap();
    client.create_namespace("closed", false).await.unwrap();
    let open = pusher
        .push_image("open/app", Some("v1"), "linux/amd64", "o")
        .await;
    pusher
        .push_image("closed/app", Some("v1"), "linux/amd64", "c")
        .await;
    let base = sim.endpoint();
    assert_eq!(
        pull_like_a_runtime(&base, "", "", "open/app", "v1").await,
        Ok(sha256(&open.manifest))
    );
    let refused = pull_like_a_runtime(&base, "", "", "closed/app", "v1")
        .await
        .unwrap_err();
    assert_eq!((refused.stage, refused.status), (Stage::Registry, 401));
    let refused = try_push(&base, "", "", "open/app", "v2").await.unwrap_err();
    assert_eq!((refused.stage, refused.status), (Stage::Registry, 401));

    sim.add_user("dev", "dev-password-1", false);
    sim.add_user("guest", "guest-password-1", false);
    sim.add_member("closed", "dev", ProjectRole::Developer);
    sim.add_member("closed", "guest", ProjectRole::Guest);
    let pushed = try_push(&base, "dev", "dev-password-1", "closed/app", "v2")
        .await
        .unwrap();
    assert_eq!(
        pull_like_a_runtime(&base, "guest", "guest-password-1", "closed/app", "v2").await,
        Ok(pushed)
    );
    let refused = try_push(&base, "guest", "guest-password-1", "closed/app", "v3")
        .await
        .unwrap_err();
    assert_eq!((refused.stage, refused.status), (Stage::Registry, 401));
    // Not a member: nothing in a private project.
    let refused = pull_like_a_runtime(&base, "dev", "dev-password-1", "open/app", "v1").await;
    assert_eq!(refused, Ok(sha256(&open.manifest)));
    sim.add_user("stranger", "stranger-password-1", false);
    let refused = pull_like_a_runtime(&base, "stranger", "stranger-password-1", "closed/app", "v1")
        .await
        .unwrap_err();
    assert_eq!((refused.stage, refused.status), (Stage::Registry, 401));
}
