//! Namespaces, repositories, artifacts, tags and charts through the fake provider: names
//! checked before any call, the adapter's cursor wrapped in our page token, NOT_FOUND from the
//! registry, capability refusals that send nothing.

use flotilla::proto as pb;
use tonic::Code;

use super::fixture::{Fixture, PASSWORD, USER, assert_invalid, digest, reason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_repositories_artifacts_tags_and_charts() {
    let f = Fixture::sqlite().await;
    f.credential("good", USER, PASSWORD).await;
    f.registry("reg", "good", &[]).await;
    for n in 1..=5u8 {
        f.fake.push("team/app", &digest(n), &[&format!("v{n}")]);
    }
    f.fake.push("team/web", &digest(9), &["latest"]);
    f.fake
        .push("charts/nginx-chart", &digest(20), &["1.0.0", "1.1.0"]);
    let mut c = f.client().await;

    // Namespaces: list, create, refuse a non-empty delete naming the count, force it.
    let listed = c
        .list_registry_namespaces(pb::ListRegistryNamespacesRequest {
            registry_id: "reg".into(),
            ..Default::default()
        })
        .await
        .expect("namespaces")
        .into_inner();
    let names: Vec<_> = listed
        .namespaces
        .iter()
        .map(|n| (n.name.as_str(), n.repository_count))
        .collect();
    assert_eq!(names, [("charts", 1), ("team", 2)]);
    let created = c
        .create_registry_namespace(pb::CreateRegistryNamespaceRequest {
            registry_id: "reg".into(),
            name: "fresh".into(),
            public: true,
        })
        .await
        .expect("create namespace")
        .into_inner()
        .namespace
        .expect("namespace");
    assert!(created.public);
    assert_eq!(f.fake.state().namespaces.get("fresh"), Some(&true));
    let status = c
        .delete_registry_namespace(pb::DeleteRegistryNamespaceRequest {
            registry_id: "reg".into(),
            name: "team".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "NAMESPACE_NOT_EMPTY");
    assert!(status.message().contains("2 repositories"), "{status:?}");
    assert!(
        !f.fake.calls().contains_key("delete_namespace"),
        "not deleted"
    );

    // Artifacts page with our token around the fake's cursor.
    let list = |size: i32, token: &str, repository: &str| pb::ListArtifactsRequest {
        registry_id: "reg".into(),
        repository: repository.into(),
        page_size: size,
        page_token: token.into(),
        include_deployments: false,
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_artifacts(list(2, &token, "team/app"))
            .await
            .expect("page")
            .into_inner();
        assert!(page.artifacts.len() <= 2);
        assert_eq!(page.total_size, 5);
        seen.extend(page.artifacts.iter().map(|a| a.digest.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(
            !page.next_page_token.contains(&digest(1)),
            "the cursor is wrapped, not shown"
        );
        token = page.next_page_token;
    }
    assert_eq!(seen, (1..=5).map(digest).collect::<Vec<_>>());
    let first = c
        .list_artifacts(list(2, "", "team/app"))
        .await
        .expect("first")
        .into_inner();
    let a = &first.artifacts[0];
    assert_eq!(a.tags, ["v1"]);
    assert_eq!(a.kind, pb::ArtifactKind::Image as i32);
    assert_eq!(a.artifact_type, "application/vnd.oci.image.config.v1+json");
    let calls = f.fake.calls().get("list_artifacts").copied();
    for (bad, case) in [
        (
            first.next_page_token.as_str(),
            "token of another repository",
        ),
        ("not-a-token", "garbage token"),
    ] {
        let status = c
            .list_artifacts(list(2, bad, "team/web"))
            .await
            .unwrap_err();
        assert_invalid(&status, "page_token", case);
    }
    assert_eq!(
        f.fake.calls().get("list_artifacts").copied(),
        calls,
        "refused tokens sent nothing"
    );

    // Tags, one artifact, NOT_FOUND from the registry.
    let tags = c
        .list_tags(pb::ListTagsRequest {
            registry_id: "reg".into(),
            repository: "team/app".into(),
            page_size: 3,
            page_token: String::new(),
        })
        .await
        .expect("tags")
        .into_inner();
    assert_eq!(tags.tags, ["v1", "v2", "v3"]);
    assert!(!tags.next_page_token.is_empty());
    let got = c
        .get_artifact(pb::GetArtifactRequest {
            registry_id: "reg".into(),
            repository: "team/app".into(),
            reference: "v3".into(),
            include_deployments: true,
        })
        .await
        .expect("get artifact")
        .into_inner();
    let artifact = got.artifact.expect("artifact");
    assert_eq!(artifact.digest, digest(3));
    assert!(
        artifact.deployments.is_empty() && got.unreachable.is_empty(),
        "no clusters here"
    );
    let status = c
        .get_artifact(pb::GetArtifactRequest {
            registry_id: "reg".into(),
            repository: "team/app".into(),
            reference: "v404".into(),
            include_deployments: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Delete a tag, then an artifact by digest; deleting it again is NOT_FOUND.
    let delete = |reference: &str| pb::DeleteArtifactRequest {
        registry_id: "reg".into(),
        repository: "team/app".into(),
        reference: reference.into(),
        force: false,
    };
    c.delete_artifact(delete("v2")).await.expect("delete tag");
    assert_eq!(f.fake.calls().get("delete_tag"), Some(&1));
    c.delete_artifact(delete(&digest(4)))
        .await
        .expect("delete digest");
    let status = c.delete_artifact(delete(&digest(4))).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let left: Vec<_> = f.fake.state().repositories["team/app"]
        .iter()
        .map(|a| a.digest.clone())
        .collect();
    assert_eq!(left, [digest(1), digest(2), digest(3), digest(5)]);

    // Charts and versions, with descriptions.
    let charts = c
        .list_charts(pb::ListChartsRequest {
            registry_id: "reg".into(),
            namespace: "charts".into(),
            ..Default::default()
        })
        .await
        .expect("charts")
        .into_inner();
    assert_eq!(charts.charts.len(), 1);
    assert_eq!(charts.charts[0].name, "nginx-chart");
    assert_eq!(charts.charts[0].namespace, "charts");
    let versions = c
        .list_chart_versions(pb::ListChartVersionsRequest {
            registry_id: "reg".into(),
            namespace: "charts".into(),
            chart: "nginx-chart".into(),
            ..Default::default()
        })
        .await
        .expect("versions")
        .into_inner();
    let shown: Vec<_> = versions
        .versions
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
        shown,
        [
            ("1.0.0", "app-1.0.0", "the nginx-chart chart"),
            ("1.1.0", "app-1.1.0", "the nginx-chart chart")
        ]
    );

    // Repositories of a namespace; force-deleting the namespace deletes them first.
    let repos = c
        .list_repositories(pb::ListRepositoriesRequest {
            registry_id: "reg".into(),
            namespace: "team".into(),
            ..Default::default()
        })
        .await
        .expect("repositories")
        .into_inner();
    let names: Vec<_> = repos
        .repositories
        .iter()
        .map(|r| (r.name.as_str(), r.artifact_count, r.pull_count))
        .collect();
    assert_eq!(names, [("team/app", 4, 7), ("team/web", 1, 7)]);
    c.delete_registry_namespace(pb::DeleteRegistryNamespaceRequest {
        registry_id: "reg".into(),
        name: "team".into(),
        force: true,
    })
    .await
    .expect("forced");
    {
        let state = f.fake.state();
        assert!(!state.namespaces.contains_key("team"));
        assert!(!state.repositories.keys().any(|r| r.starts_with("team/")));
    }
    f.server.shutdown().await;
}

/// Bad names are INVALID_ARGUMENT on their field and send nothing; a registry that does not
/// exist is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_missing_registries_send_nothing() {
    let f = Fixture::sqlite().await;
    f.credential("good", USER, PASSWORD).await;
    f.registry("reg", "good", &[]).await;
    let before = f.fake.total_calls();
    let mut c = f.client().await;
    let reg = || "reg".to_string();
    let cases: Vec<(&str, Result<(), tonic::Status>, &str)> = vec![
        (
            "namespace against the provider's rule",
            c.create_registry_namespace(pb::CreateRegistryNamespaceRequest {
                registry_id: reg(),
                name: "Bad_NS".into(),
                public: false,
            })
            .await
            .map(|_| ()),
            "name",
        ),
        (
            "empty namespace",
            c.delete_registry_namespace(pb::DeleteRegistryNamespaceRequest {
                registry_id: reg(),
                name: String::new(),
                force: true,
            })
            .await
            .map(|_| ()),
            "name",
        ),
        (
            "repository grammar",
            c.list_artifacts(pb::ListArtifactsRequest {
                registry_id: reg(),
                repository: "Team//App".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            "repository",
        ),
        (
            "reference grammar",
            c.delete_artifact(pb::DeleteArtifactRequest {
                registry_id: reg(),
                repository: "team/app".into(),
                reference: "sha256:abc".into(),
                force: true,
            })
            .await
            .map(|_| ()),
            "reference",
        ),
        (
            "chart name",
            c.list_chart_versions(pb::ListChartVersionsRequest {
                registry_id: reg(),
                namespace: "charts".into(),
                chart: "../x".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            "chart",
        ),
        (
            "negative page size",
            c.list_tags(pb::ListTagsRequest {
                registry_id: reg(),
                repository: "team/app".into(),
                page_size: -1,
                page_token: String::new(),
            })
            .await
            .map(|_| ()),
            "page_size",
        ),
        (
            "no registry id",
            c.list_registry_namespaces(pb::ListRegistryNamespacesRequest::default())
                .await
                .map(|_| ()),
            "registry_id",
        ),
    ];
    for (case, result, field) in cases {
        assert_invalid(&result.unwrap_err(), field, case);
    }
    let status = c
        .list_repositories(pb::ListRepositoriesRequest {
            registry_id: "ghost".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        f.fake.total_calls(),
        before,
        "nothing was sent: {:?}",
        f.fake.calls()
    );
    f.server.shutdown().await;
}

/// What a provider cannot do is FAILED_PRECONDITION / UNSUPPORTED_BY_PROVIDER before anything is
/// sent; ListRegistryProviders says what each can do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_refusals_send_nothing() {
    let f = Fixture::sqlite().await;
    let mut c = f.client().await;
    c.create_registry(super::fixture::create("mirror", "fake-ro", "", &[]))
        .await
        .expect("anonymous read-only registry");
    f.ro.push("library/alpine", &digest(1), &["3"]);
    let before = f.ro.total_calls();
    let mirror = || "mirror".to_string();
    let refused: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "create namespace",
            c.create_registry_namespace(pb::CreateRegistryNamespaceRequest {
                registry_id: mirror(),
                name: "team".into(),
                public: false,
            })
            .await
            .map(|_| ()),
        ),
        (
            "delete namespace",
            c.delete_registry_namespace(pb::DeleteRegistryNamespaceRequest {
                registry_id: mirror(),
                name: "library".into(),
                force: true,
            })
            .await
            .map(|_| ()),
        ),
        (
            "delete repository",
            c.delete_repository(pb::DeleteRepositoryRequest {
                registry_id: mirror(),
                repository: "library/alpine".into(),
            })
            .await
            .map(|_| ()),
        ),
        (
            "delete tag",
            c.delete_artifact(pb::DeleteArtifactRequest {
                registry_id: mirror(),
                repository: "library/alpine".into(),
                reference: "3".into(),
                force: true,
            })
            .await
            .map(|_| ()),
        ),
        (
            "delete digest",
            c.delete_artifact(pb::DeleteArtifactRequest {
                registry_id: mirror(),
                repository: "library/alpine".into(),
                reference: digest(1),
                force: true,
            })
            .await
            .map(|_| ()),
        ),
        (
            "charts",
            c.list_charts(pb::ListChartsRequest {
                registry_id: mirror(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
        (
            "every repository",
            c.list_repositories(pb::ListRepositoriesRequest {
                registry_id: mirror(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ),
    ];
    for (case, result) in refused {
        let status = result.unwrap_err();
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{case}: {status:?}"
        );
        assert_eq!(reason(&status), "UNSUPPORTED_BY_PROVIDER", "{case}");
    }
    assert_eq!(
        f.ro.total_calls(),
        before,
        "nothing was sent: {:?}",
        f.ro.calls()
    );
    // Reads still work.
    c.list_tags(pb::ListTagsRequest {
        registry_id: mirror(),
        repository: "library/alpine".into(),
        ..Default::default()
    })
    .await
    .expect("tags");

    let providers = c
        .list_registry_providers(pb::ListRegistryProvidersRequest {})
        .await
        .expect("providers")
        .into_inner()
        .providers;
    let ro = providers
        .iter()
        .find(|p| p.id == "fake-ro")
        .expect("fake-ro listed");
    let capability = ro.capability.expect("capability");
    assert!(!capability.manage_namespaces && !capability.delete_artifact);
    assert_eq!(
        ro.credential_kinds,
        [
            pb::RegistryCredentialKind::Anonymous as i32,
            pb::RegistryCredentialKind::UsernamePassword as i32
        ]
    );
    let full = providers
        .iter()
        .find(|p| p.id == "fake")
        .expect("fake listed");
    assert!(full.capability.expect("capability").manage_namespaces);
    f.server.shutdown().await;
}
