//! What is in a real registry, through every RegistryService RPC that applies to `oci`:
//! namespaces, repositories, tags, artifacts, charts and deletes, checked against what the test
//! pushed (digests computed here from the pushed bytes), raw registry reads and the registry's
//! own access log.

use flotilla_test_support as support;

use std::collections::BTreeSet;

use flotilla::proto as pb;
use support::registry::{
    Pushed, Pusher, RegistryAuth, RegistryKind, push,
    scenario::{Content, push_content},
};
use tonic::Code;

use super::fixture::{
    Client, Server, assert_refused, fields, raw_manifest, registry, requests, sha256, walk_tags,
    writes,
};

const REG: &str = "reg";

fn artifacts_request(repository: &str, page_size: i32) -> pb::ListArtifactsRequest {
    pb::ListArtifactsRequest {
        registry_id: REG.into(),
        repository: repository.into(),
        page_size,
        ..Default::default()
    }
}

fn delete_request(repository: &str, reference: &str) -> pb::DeleteArtifactRequest {
    pb::DeleteArtifactRequest {
        registry_id: REG.into(),
        repository: repository.into(),
        reference: reference.into(),
        force: false,
    }
}

fn get_request(repository: &str, reference: &str) -> pb::GetArtifactRequest {
    pb::GetArtifactRequest {
        registry_id: REG.into(),
        repository: repository.into(),
        reference: reference.into(),
        include_deployments: false,
    }
}

/// Registers a real registry in each auth mode and drives every content RPC over gRPC.
pub async fn every_rpc(kind: RegistryKind, auth: RegistryAuth) {
    let registry = registry(kind, auth.clone()).await;
    let pusher = Pusher::for_registry(&registry);
    let content = push_content(&pusher).await;
    let server = Server::start().await;
    let credential = match auth.credentials() {
        Some((username, password)) => {
            server.credential("login", &username, &password).await;
            "login"
        }
        None => "",
    };

    // CreateRegistry logs in (reads only) and stores the registry.
    let before = requests(&registry).await.len();
    let created = server
        .create(REG, &registry, credential)
        .await
        .expect("create");
    assert_eq!(created.provider, "oci");
    let status = created.status.expect("status");
    assert!(status.reachable, "{status:?}");
    assert_eq!(status.api_version, "registry/2.0");
    assert_eq!(
        server.registry_rows(),
        [format!("{REG}|oci|{}|{credential}", registry.url)]
    );
    let login = requests(&registry).await.split_off(before);
    assert!(
        login.iter().any(|r| r.path == "/v2/" && r.status == 200),
        "logged in: {login:?}"
    );
    assert!(writes(&login).is_empty(), "{login:?}");
    if let Some(issuer) = &registry.issuer {
        assert!(
            issuer
                .issued()
                .iter()
                .any(|i| i.granted && i.account.as_deref() == Some(super::fixture::USER)),
            "logged in with the credential: {:?}",
            issuer.issued()
        );
    }
    let mut client = server.client().await;

    namespaces_and_repositories(&mut client, &registry).await;
    tags_and_artifacts(&mut client, &content).await;
    charts(&mut client, &content).await;
    deletes(&mut client, &registry, &pusher, &content).await;
    server.server.shutdown().await;
}

async fn namespaces_and_repositories(
    client: &mut Client,
    registry: &support::registry::TestRegistry,
) {
    // Namespaces: the first path segments, with the repositories pushed into each.
    let list = |page_token: &str| pb::ListRegistryNamespacesRequest {
        registry_id: REG.into(),
        page_size: 2,
        page_token: page_token.into(),
    };
    let first = client
        .list_registry_namespaces(list(""))
        .await
        .expect("namespaces")
        .into_inner();
    assert_eq!(first.total_size, 3);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_registry_namespaces(list(&first.next_page_token))
        .await
        .expect("namespaces page 2")
        .into_inner();
    assert!(second.next_page_token.is_empty());
    let counted: Vec<(String, i32)> = first
        .namespaces
        .iter()
        .chain(&second.namespaces)
        .map(|n| (n.name.clone(), n.repository_count))
        .collect();
    assert_eq!(
        counted,
        [
            ("charts".to_string(), 1),
            ("other".to_string(), 1),
            ("team".to_string(), 2)
        ]
    );

    // Namespaces are read-only on a plain registry: refused before anything is sent.
    let before = requests(registry).await.len();
    let status = client
        .create_registry_namespace(pb::CreateRegistryNamespaceRequest {
            registry_id: REG.into(),
            name: "new".into(),
            public: false,
        })
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "UNSUPPORTED_BY_PROVIDER",
        "create namespace",
    );
    for force in [false, true] {
        let status = client
            .delete_registry_namespace(pb::DeleteRegistryNamespaceRequest {
                registry_id: REG.into(),
                name: "team".into(),
                force,
            })
            .await
            .unwrap_err();
        assert_refused(
            &status,
            Code::FailedPrecondition,
            "UNSUPPORTED_BY_PROVIDER",
            "delete namespace",
        );
    }
    let status = client
        .delete_repository(pb::DeleteRepositoryRequest {
            registry_id: REG.into(),
            repository: "team/web".into(),
        })
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "UNSUPPORTED_BY_PROVIDER",
        "delete repository",
    );
    let after = requests(registry).await;
    assert_eq!(after.len(), before, "sent: {:?}", &after[before..]);

    // Repositories: all of them (paged by 3), and those of one namespace.
    let list = |namespace: &str, page_size: i32, page_token: &str| pb::ListRepositoriesRequest {
        registry_id: REG.into(),
        namespace: namespace.into(),
        page_size,
        page_token: page_token.into(),
    };
    let first = client
        .list_repositories(list("", 3, ""))
        .await
        .expect("repositories")
        .into_inner();
    let second = client
        .list_repositories(list("", 3, &first.next_page_token))
        .await
        .expect("repositories page 2")
        .into_inner();
    assert!(second.next_page_token.is_empty());
    let all: Vec<(&str, &str)> = first
        .repositories
        .iter()
        .chain(&second.repositories)
        .map(|r| (r.name.as_str(), r.namespace.as_str()))
        .collect();
    assert_eq!(
        all,
        [
            ("charts/nginx", "charts"),
            ("other/thing", "other"),
            ("team/app", "team"),
            ("team/web", "team")
        ]
    );
    let team = client
        .list_repositories(list("team", 10, ""))
        .await
        .expect("team")
        .into_inner();
    let names: Vec<&str> = team.repositories.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["team/app", "team/web"]);
    assert!(team.next_page_token.is_empty());
    let none = client
        .list_repositories(list("nobody", 10, ""))
        .await
        .expect("an empty namespace")
        .into_inner();
    assert!(none.repositories.is_empty());
    let status = client
        .list_repositories(list("Bad_NS!", 10, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["namespace"]);
}

async fn tags_and_artifacts(client: &mut Client, content: &Content) {
    let v1_digest = sha256(&content.v1.manifest);
    let v1_hex = v1_digest.trim_start_matches("sha256:");
    let tags: BTreeSet<String> = walk_tags(client, REG, "team/app", 100)
        .await
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = [
        "latest".to_string(),
        "v1".into(),
        "v2-docker".into(),
        "multi".into(),
        format!("sha256-{v1_hex}.sig"),
        format!("sha256-{v1_hex}"),
    ]
    .into();
    assert_eq!(tags, expected);

    // Artifacts, with their kinds; digests are the sha256 of the bytes pushed.
    let artifacts = client
        .list_artifacts(artifacts_request("team/app", 100))
        .await
        .expect("artifacts")
        .into_inner();
    assert!(artifacts.next_page_token.is_empty());
    let artifacts = artifacts.artifacts;
    let find = |pushed: &Pushed| {
        let digest = sha256(&pushed.manifest);
        artifacts
            .iter()
            .find(|a| a.digest == digest)
            .unwrap_or_else(|| panic!("{digest} not listed in {artifacts:#?}"))
            .clone()
    };
    let kind = |k: pb::ArtifactKind| k as i32;
    let v1 = find(&content.v1);
    assert_eq!(v1.kind, kind(pb::ArtifactKind::Image));
    assert_eq!(v1.tags, ["latest", "v1"]);
    assert_eq!(v1.media_type, push::OCI_MANIFEST);
    assert_eq!(v1.artifact_type, push::OCI_CONFIG);
    assert_eq!(v1.size_bytes as u64, content.v1.total_size);
    let docker = find(&content.docker);
    assert_eq!(docker.kind, kind(pb::ArtifactKind::Image));
    assert_eq!(docker.media_type, push::DOCKER_MANIFEST);
    assert_eq!(docker.tags, ["v2-docker"]);
    let multi = find(&content.multi);
    assert_eq!(multi.kind, kind(pb::ArtifactKind::ImageIndex));
    assert_eq!(multi.media_type, push::OCI_INDEX);
    assert_eq!(multi.platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(multi.size_bytes as u64, content.multi.total_size);
    let signature = find(&content.signature);
    assert_eq!(signature.kind, kind(pb::ArtifactKind::Signature));
    assert_eq!(signature.tags, [format!("sha256-{v1_hex}.sig")]);
    let sbom = find(&content.sbom);
    assert_eq!(sbom.kind, kind(pb::ArtifactKind::Sbom));
    assert_eq!(sbom.artifact_type, push::SPDX_ARTIFACT);
    assert!(sbom.tags.is_empty(), "found through the sha256-<hex> index");
    assert_eq!(artifacts.len(), 5, "{artifacts:#?}");

    // Paged by 2 tags: the same artifacts, each tag once.
    let mut paged_tags = Vec::new();
    let mut token = String::new();
    loop {
        let mut request = artifacts_request("team/app", 2);
        request.page_token = token.clone();
        let page = client
            .list_artifacts(request)
            .await
            .expect("artifacts page")
            .into_inner();
        paged_tags.extend(page.artifacts.into_iter().flat_map(|a| a.tags));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    paged_tags.sort();
    let mut expected: Vec<String> = ["latest", "multi", "v1", "v2-docker"]
        .map(String::from)
        .into();
    expected.push(format!("sha256-{v1_hex}.sig"));
    expected.sort();
    assert_eq!(paged_tags, expected, "each tag once over the pages");

    // Charts are artifacts too.
    let charts = client
        .list_artifacts(artifacts_request("charts/nginx", 10))
        .await
        .expect("chart artifacts")
        .into_inner()
        .artifacts;
    let chart_digests: Vec<(&str, &str, i32)> = charts
        .iter()
        .map(|a| (a.digest.as_str(), a.artifact_type.as_str(), a.kind))
        .collect();
    let (d100, d120) = (
        sha256(&content.chart_100.manifest),
        sha256(&content.chart_120.manifest),
    );
    assert_eq!(
        chart_digests,
        [
            (
                d100.as_str(),
                push::HELM_CONFIG,
                kind(pb::ArtifactKind::HelmChart)
            ),
            (
                d120.as_str(),
                push::HELM_CONFIG,
                kind(pb::ArtifactKind::HelmChart)
            ),
        ]
    );

    // One artifact, by tag and by digest.
    let by_tag = client
        .get_artifact(get_request("team/app", "multi"))
        .await
        .expect("by tag")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(by_tag.digest, sha256(&content.multi.manifest));
    assert_eq!(by_tag.platforms, ["linux/amd64", "linux/arm64/v8"]);
    let by_digest = client
        .get_artifact(get_request("team/app", &v1_digest))
        .await
        .expect("by digest")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(
        (by_digest.digest.as_str(), by_digest.kind),
        (v1_digest.as_str(), kind(pb::ArtifactKind::Image))
    );
    for (repository, reference) in [("team/app", "no-such-tag"), ("nobody/nothing", "v1")] {
        let status = client
            .get_artifact(get_request(repository, reference))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::NotFound,
            "{repository}:{reference}: {status:?}"
        );
    }
    for (repository, reference, field) in [
        ("team/app", "bad tag!", "reference"),
        ("Team/App", "v1", "repository"),
    ] {
        let status = client
            .get_artifact(get_request(repository, reference))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(fields(&status), [field]);
    }
}

async fn charts(client: &mut Client, content: &Content) {
    let list = |namespace: &str| pb::ListChartsRequest {
        registry_id: REG.into(),
        namespace: namespace.into(),
        page_size: 10,
        page_token: String::new(),
    };
    let charts = client
        .list_charts(list(""))
        .await
        .expect("charts")
        .into_inner();
    assert!(charts.next_page_token.is_empty());
    let found: Vec<(&str, &str, &str, &str, i32)> = charts
        .charts
        .iter()
        .map(|c| {
            (
                c.namespace.as_str(),
                c.name.as_str(),
                c.latest_version.as_str(),
                c.description.as_str(),
                c.version_count,
            )
        })
        .collect();
    assert_eq!(
        found,
        [("charts", "nginx", "1.2.0", "A faster web server", 2)]
    );
    let in_team = client
        .list_charts(list("team"))
        .await
        .expect("team charts")
        .into_inner();
    assert!(in_team.charts.is_empty(), "{:?}", in_team.charts);
    let versions = client
        .list_chart_versions(pb::ListChartVersionsRequest {
            registry_id: REG.into(),
            namespace: "charts".into(),
            chart: "nginx".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .expect("versions")
        .into_inner()
        .versions;
    let versions: Vec<(&str, &str, &str, String)> = versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                v.app_version.as_str(),
                v.description.as_str(),
                v.digest.clone(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            (
                "1.0.0",
                "1.25.0",
                "A web server",
                sha256(&content.chart_100.manifest)
            ),
            (
                "1.2.0",
                "1.27.1",
                "A faster web server",
                sha256(&content.chart_120.manifest)
            ),
        ]
    );
    let status = client
        .list_chart_versions(pb::ListChartVersionsRequest {
            registry_id: REG.into(),
            namespace: "charts".into(),
            chart: "absent".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

async fn deletes(
    client: &mut Client,
    registry: &support::registry::TestRegistry,
    pusher: &Pusher,
    content: &Content,
) {
    let before = requests(registry).await.len();
    // A tag: Distribution untags; docker-registry 2.8 deletes manifests only by digest, which
    // would drop every tag of the artifact, so Flotilla refuses rather than do that.
    let deleted = client
        .delete_artifact(delete_request("team/app", "latest"))
        .await;
    let latest = raw_manifest(pusher, "team/app", "latest").await;
    match registry.kind {
        RegistryKind::Distribution => {
            deleted.expect("delete tag");
            assert_eq!(latest.status, 404, "the tag is gone");
        }
        RegistryKind::DockerRegistry => {
            let status = deleted.unwrap_err();
            assert_refused(
                &status,
                Code::FailedPrecondition,
                "UNSUPPORTED_BY_PROVIDER",
                "tag delete on 2.8",
            );
            assert!(status.message().contains("by digest"), "{status:?}");
            assert_eq!(latest.status, 200, "nothing deleted");
        }
    }
    let v1 = raw_manifest(pusher, "team/app", "v1").await;
    assert_eq!(v1.status, 200, "the artifact's other tag stays");
    assert_eq!(sha256(&v1.body), sha256(&content.v1.manifest));

    // An artifact by digest: gone for a raw read; its tag is gone from ListTags.
    let docker = sha256(&content.docker.manifest);
    client
        .delete_artifact(delete_request("team/app", &docker))
        .await
        .expect("delete by digest");
    let raw = raw_manifest(pusher, "team/app", &docker).await;
    assert_eq!(raw.status, 404);
    let tags = walk_tags(client, REG, "team/app", 50).await;
    assert!(!tags.iter().any(|t| t == "v2-docker"), "{tags:?}");

    // What does not exist is NOT_FOUND.
    for reference in [docker.as_str(), "no-such-tag"] {
        let status = client
            .delete_artifact(delete_request("team/app", reference))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{reference}: {status:?}");
    }
    let status = client
        .delete_artifact(delete_request("team/app", "sha256:abc"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["reference"]);

    // The registry saw exactly these deletes succeed.
    let log = requests(registry).await.split_off(before);
    let done: Vec<String> = writes(&log)
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let mut expected = vec![format!("DELETE /v2/team/app/manifests/{docker}")];
    if registry.kind == RegistryKind::Distribution {
        expected.insert(0, "DELETE /v2/team/app/manifests/latest".to_string());
    }
    assert_eq!(done, expected, "{log:#?}");
}
