//! RegistryService over gRPC against real registries: an in-process Flotilla server, and per
//! test a real registry process — CNCF Distribution v3.1.2 anonymous, with htpasswd basic auth,
//! with bearer tokens from our own issuer, or with TLS from a CA the test makes, and Debian's
//! docker-registry 2.8 (which ignores `n`/`last` and returns tags unsorted) — with content
//! pushed by the test support's own pusher. What is checked comes from outside Flotilla: the
//! pushed bytes (digests computed here), raw registry reads, the registry's access log and
//! the token issuer's log, and registry rows read with `sqlite3` from the database file.
//!
//! Needs FLOTILLA_REGISTRY_BIN and FLOTILLA_DOCKER_REGISTRY_BIN (`scripts/registry-env env`).

use flotilla_test_support as support;

use std::collections::BTreeSet;

use flotilla::proto as pb;
use support::registry::{
    Pusher, RegistryAuth, RegistryKind, RegistryOptions, TestRegistry, process::LoggedRequest,
};
use tonic::Code;

mod content;
mod fixture;

use fixture::{
    PASSWORD, Server, USER, assert_refused, create_request, fields, registry, requests, walk_tags,
    writes,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_anonymous_every_rpc() {
    content::every_rpc(RegistryKind::Distribution, RegistryAuth::Anonymous).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_basic_auth_every_rpc() {
    content::every_rpc(
        RegistryKind::Distribution,
        RegistryAuth::basic(USER, PASSWORD),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_token_auth_every_rpc() {
    content::every_rpc(
        RegistryKind::Distribution,
        RegistryAuth::token(USER, PASSWORD),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_registry_2_8_every_rpc() {
    content::every_rpc(RegistryKind::DockerRegistry, RegistryAuth::Anonymous).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_registry_2_8_token_auth_every_rpc() {
    content::every_rpc(
        RegistryKind::DockerRegistry,
        RegistryAuth::token(USER, PASSWORD),
    )
    .await;
}

/// Only reads of `/v2/` (the login), whatever they answered.
fn only_logins(log: &[LoggedRequest]) -> bool {
    log.iter().all(|r| r.method == "GET" && r.path == "/v2/")
}

/// A registry that refuses the credential, a port nothing listens on: refused with the reason,
/// nothing stored, nothing written to the registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_store_nothing() {
    let server = Server::start().await;
    server.credential("wrong", USER, "wrong-password").await;
    server.credential("right", USER, PASSWORD).await;
    let mut client = server.client().await;
    for auth in [
        RegistryAuth::basic(USER, PASSWORD),
        RegistryAuth::token(USER, PASSWORD),
    ] {
        let registry = registry(RegistryKind::Distribution, auth.clone()).await;
        for credential in ["wrong", ""] {
            let status = client
                .create_registry(create_request("reg", &registry.url, credential, ""))
                .await
                .unwrap_err();
            let case = format!("{auth:?} with credential {credential:?}");
            assert_refused(
                &status,
                Code::FailedPrecondition,
                "CREDENTIALS_INVALID",
                &case,
            );
            assert!(
                status.message().contains(&registry.url),
                "{case}: {status:?}"
            );
            assert!(!status.message().contains("wrong-password"), "{status:?}");
        }
        // validate_only with the right credential logs in and stores nothing either.
        let mut request = create_request("reg", &registry.url, "right", "");
        request.validate_only = true;
        let checked = client
            .create_registry(request)
            .await
            .expect("validate only")
            .into_inner()
            .registry
            .expect("registry");
        assert_eq!(checked.status.expect("status").api_version, "registry/2.0");
        let log = requests(&registry).await;
        assert!(
            log.iter().any(|r| r.status == 401),
            "the registry refused: {log:?}"
        );
        assert!(only_logins(&log), "{auth:?}: {log:#?}");
        if let Some(issuer) = &registry.issuer {
            let issued = issuer.issued();
            let refused = issued.iter().filter(|i| !i.granted).count();
            assert_eq!(refused, 2, "wrong password and none: {issued:?}");
            assert_eq!(issued.len(), 3, "one grant, for validate_only: {issued:?}");
        }
    }
    // Nothing listens on the port.
    let port = support::process::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let status = client
        .create_registry(create_request("reg", &endpoint, "right", ""))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        Code::Unavailable,
        "VENDOR_UNAVAILABLE",
        "closed port",
    );
    assert!(status.message().contains(&endpoint), "{status:?}");
    assert!(
        server.registry_rows().is_empty(),
        "{:?}",
        server.registry_rows()
    );
    let listed = client
        .list_registries(pb::ListRegistriesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_size, 0);
    server.server.shutdown().await;
}

/// A registry serving TLS with a certificate from a CA of its own: refused (naming TLS and
/// storing nothing) until the CA is given in `ca_pem`; then everything works over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registry_needs_its_ca() {
    let options = RegistryOptions {
        tls: true,
        access_log: true,
    };
    let registry =
        TestRegistry::start_with(RegistryKind::Distribution, RegistryAuth::Anonymous, options)
            .await;
    let other =
        TestRegistry::start_with(RegistryKind::Distribution, RegistryAuth::Anonymous, options)
            .await;
    assert!(registry.url.starts_with("https://"), "{}", registry.url);
    let pusher = Pusher::for_registry(&registry);
    let image = pusher
        .push_image("team/app", Some("v1"), "linux/amd64", "over tls")
        .await;
    let pushed = requests(&registry).await.len();
    let server = Server::start().await;
    let mut client = server.client().await;
    let other_ca = other.ca_pem.clone().expect("CA");
    for (case, ca) in [("no CA", ""), ("another CA", other_ca.as_str())] {
        let status = client
            .create_registry(create_request("tls", &registry.url, "", ca))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{case}: {status:?}");
        let message = status.message().to_lowercase();
        assert!(
            message.contains("tls") || message.contains("certificate"),
            "{case}: the answer names TLS: {status:?}"
        );
        assert!(message.contains(&registry.url), "{case}: {status:?}");
    }
    assert!(server.registry_rows().is_empty());
    let log = requests(&registry).await;
    assert_eq!(
        log.len(),
        pushed,
        "no request got through: {:?}",
        &log[pushed..]
    );

    let ca = registry.ca_pem.clone().expect("CA");
    let created = client
        .create_registry(create_request("tls", &registry.url, "", &ca))
        .await
        .expect("with its CA")
        .into_inner()
        .registry
        .expect("registry");
    assert!(created.status.expect("status").reachable);
    assert_eq!(
        server.registry_rows(),
        [format!("tls|oci|{}|", registry.url)]
    );
    let tags = walk_tags(&mut client, "tls", "team/app", 10).await;
    assert_eq!(tags, ["v1"]);
    let artifact = client
        .get_artifact(pb::GetArtifactRequest {
            registry_id: "tls".into(),
            repository: "team/app".into(),
            reference: "v1".into(),
            include_deployments: false,
        })
        .await
        .expect("artifact over TLS")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(artifact.digest, fixture::sha256(&image.manifest));
    let log = requests(&registry).await.split_off(pushed);
    assert!(
        log.iter()
            .any(|r| r.path.starts_with("/v2/team/app/tags/list") && r.status == 200),
        "{log:?}"
    );
    server.server.shutdown().await;
}

/// Get, List (paging, filters), Update (field mask; a new credential logs in first) and Delete
/// (forgets: nothing is sent to the registry), against real registries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_lifecycle_against_real_registries() {
    let basic = registry(
        RegistryKind::Distribution,
        RegistryAuth::basic(USER, PASSWORD),
    )
    .await;
    let anonymous = registry(RegistryKind::DockerRegistry, RegistryAuth::Anonymous).await;
    let pusher = Pusher::for_registry(&basic);
    pusher
        .push_image("team/app", Some("v1"), "linux/amd64", "kept")
        .await;
    let server = Server::start().await;
    server.credential("good", USER, PASSWORD).await;
    server.credential("good-2", USER, PASSWORD).await;
    server.credential("wrong", USER, "nope").await;
    let mut client = server.client().await;
    let mut request = create_request("alpha", &basic.url, "good", "");
    let definition = request.registry.as_mut().expect("registry");
    definition.display_name = "Alpha".into();
    definition.labels = [("team".to_string(), "web".to_string())].into();
    client.create_registry(request).await.expect("alpha");
    server.create("beta", &anonymous, "").await.expect("beta");
    assert_eq!(
        server.registry_rows(),
        [
            format!("alpha|oci|{}|good", basic.url),
            format!("beta|oci|{}|", anonymous.url)
        ]
    );

    // Providers: what oci can do, as a client sees it before choosing.
    let providers = client
        .list_registry_providers(pb::ListRegistryProvidersRequest {})
        .await
        .expect("providers")
        .into_inner()
        .providers;
    let oci = providers
        .iter()
        .find(|p| p.id == "oci")
        .expect("oci offered");
    let capability = oci.capability.as_ref().expect("capability");
    assert!(!capability.manage_namespaces && !capability.delete_repository);
    assert!(capability.delete_artifact && capability.delete_tag && capability.oci_charts);
    assert_eq!(
        oci.credential_kinds,
        [
            pb::RegistryCredentialKind::Anonymous as i32,
            pb::RegistryCredentialKind::UsernamePassword as i32
        ]
    );

    let get = |id: &str| pb::GetRegistryRequest {
        registry_id: id.into(),
    };
    let alpha = client
        .get_registry(get("alpha"))
        .await
        .expect("get")
        .into_inner()
        .registry
        .expect("registry");
    assert_eq!(
        (
            alpha.provider.as_str(),
            alpha.endpoint.as_str(),
            alpha.display_name.as_str(),
            alpha.credential_id.as_str()
        ),
        ("oci", basic.url.as_str(), "Alpha", "good")
    );
    let status = alpha.status.expect("status");
    assert!(
        status.reachable && status.last_check_time.is_some(),
        "{status:?}"
    );
    assert_eq!(status.api_version, "registry/2.0");

    let list = |page_size: i32, page_token: &str, filter: &str| pb::ListRegistriesRequest {
        page_size,
        page_token: page_token.into(),
        filter: filter.into(),
    };
    let first = client
        .list_registries(list(1, "", "provider = oci"))
        .await
        .expect("page 1")
        .into_inner();
    let second = client
        .list_registries(list(1, &first.next_page_token, "provider = oci"))
        .await
        .expect("page 2")
        .into_inner();
    let ids: Vec<&str> = first
        .registries
        .iter()
        .chain(&second.registries)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);
    assert_eq!(first.total_size, 2);
    assert!(second.next_page_token.is_empty());
    let web = client
        .list_registries(list(0, "", r#"labels.team = "web""#))
        .await
        .expect("by label")
        .into_inner();
    assert_eq!(
        web.registries
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["alpha"]
    );

    // Update: the mask decides; a wrong credential is refused (the registry said no) and kept
    // out; a right one is stored after its login.
    let update =
        |paths: &[&str], registry: pb::Registry, validate_only: bool| pb::UpdateRegistryRequest {
            registry: Some(registry),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
            validate_only,
        };
    let changed = client
        .update_registry(update(
            &["display_name", "labels"],
            pb::Registry {
                id: "alpha".into(),
                display_name: "Alpha (mobile)".into(),
                labels: [("team".to_string(), "mobile".to_string())].into(),
                endpoint: "http://127.0.0.1:1".into(),
                ..Default::default()
            },
            false,
        ))
        .await
        .expect("update")
        .into_inner()
        .registry
        .expect("registry");
    assert_eq!(changed.display_name, "Alpha (mobile)");
    assert_eq!(
        changed.labels.get("team").map(String::as_str),
        Some("mobile")
    );
    assert_eq!(changed.endpoint, basic.url, "not in the mask: unchanged");
    let logins_before = requests(&basic).await.len();
    for validate_only in [false, true] {
        let status = client
            .update_registry(update(
                &["credential_id"],
                pb::Registry {
                    id: "alpha".into(),
                    credential_id: "wrong".into(),
                    ..Default::default()
                },
                validate_only,
            ))
            .await
            .unwrap_err();
        assert_refused(
            &status,
            Code::FailedPrecondition,
            "CREDENTIALS_INVALID",
            "wrong credential",
        );
    }
    let log = requests(&basic).await.split_off(logins_before);
    assert!(
        log.iter()
            .filter(|r| r.path == "/v2/" && r.status == 401)
            .count()
            >= 2,
        "the registry refused both logins: {log:?}"
    );
    client
        .update_registry(update(
            &["credential_id"],
            pb::Registry {
                id: "alpha".into(),
                credential_id: "good-2".into(),
                ..Default::default()
            },
            true,
        ))
        .await
        .expect("validate only");
    assert!(
        server.registry_rows()[0].ends_with("|good"),
        "validate_only stores nothing"
    );
    client
        .update_registry(update(
            &["credential_id"],
            pb::Registry {
                id: "alpha".into(),
                credential_id: "good-2".into(),
                ..Default::default()
            },
            false,
        ))
        .await
        .expect("a right credential");
    assert_eq!(
        server.registry_rows()[0],
        format!("alpha|oci|{}|good-2", basic.url)
    );
    assert_eq!(
        walk_tags(&mut client, "alpha", "team/app", 10).await,
        ["v1"],
        "reads go on with the new credential"
    );
    let status = client
        .update_registry(update(
            &["endpoint"],
            pb::Registry {
                id: "alpha".into(),
                ..Default::default()
            },
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["update_mask"]);

    // Delete forgets: nothing is sent to the registry, whose content stays.
    let before = requests(&basic).await.len();
    client
        .delete_registry(pb::DeleteRegistryRequest {
            registry_id: "alpha".into(),
        })
        .await
        .expect("delete");
    assert_eq!(
        server.registry_rows(),
        [format!("beta|oci|{}|", anonymous.url)]
    );
    let status = client.get_registry(get("alpha")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .delete_registry(pb::DeleteRegistryRequest {
            registry_id: "alpha".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .list_tags(pb::ListTagsRequest {
            registry_id: "alpha".into(),
            repository: "team/app".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let log = requests(&basic).await;
    assert_eq!(log.len(), before, "sent on delete: {:?}", &log[before..]);
    assert!(writes(&log).iter().all(|r| r.method != "DELETE"), "{log:?}");
    let kept = fixture::raw_manifest(&pusher, "team/app", "v1").await;
    assert_eq!(kept.status, 200, "the registry's content stays");
    server.server.shutdown().await;
}

/// 250 tags pushed in a scrambled order; every page size walks each of them exactly once, in
/// order, with honest page tokens (a token only when more follow; the same token, the same
/// page; a token from elsewhere refused), on a registry that pages and on one that ignores
/// `n`/`last`. 50, 125 and 250 divide the count: the last full page must not promise more.
async fn tag_paging(kind: RegistryKind) {
    const COUNT: u32 = 250;
    let registry = registry(kind, RegistryAuth::Anonymous).await;
    let pusher = Pusher::for_registry(&registry);
    let image = pusher
        .push_image("big/tags", None, "linux/amd64", "tagged a lot")
        .await;
    pusher
        .push_image("big/other", Some("only"), "linux/amd64", "other")
        .await;
    let mut pushed = BTreeSet::new();
    for i in 0..COUNT {
        let n = i.wrapping_mul(7919) % COUNT;
        let tag = match n % 4 {
            0 => format!("v{n}"),
            1 => format!("{n}-rc.{}", n % 7),
            2 => format!("Release_{n:04}"),
            _ => format!("z.{n}"),
        };
        pusher.tag("big/tags", &tag, &image).await;
        pushed.insert(tag);
    }
    assert_eq!(pushed.len(), COUNT as usize);
    if kind == RegistryKind::DockerRegistry {
        let raw = pusher.raw_get("/v2/big/tags/tags/list?n=5", &[]).await;
        let body: serde_json::Value = serde_json::from_slice(&raw.body).expect("json");
        let tags = body["tags"].as_array().expect("tags");
        assert!(tags.len() > 5, "docker-registry 2.8 honours n now?");
        let mut sorted = tags.clone();
        sorted.sort_by_key(|t| t.as_str().map(str::to_string));
        assert_ne!(&sorted, tags, "docker-registry 2.8 sorts tags now?");
    }
    let server = Server::start().await;
    server.create("reg", &registry, "").await.expect("create");
    let mut client = server.client().await;
    for size in [1, 7, 50, 125, 250, 1000] {
        let walked = walk_tags(&mut client, "reg", "big/tags", size).await;
        let unique: BTreeSet<String> = walked.iter().cloned().collect();
        assert_eq!(unique.len(), walked.len(), "size {size}: a tag came twice");
        assert_eq!(unique, pushed, "size {size}: tags skipped or invented");
        let mut sorted = walked.clone();
        sorted.sort();
        assert_eq!(walked, sorted, "size {size}: not in order");
    }
    // Tokens belong to their list.
    let first = client
        .list_tags(pb::ListTagsRequest {
            registry_id: "reg".into(),
            repository: "big/tags".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .expect("first page")
        .into_inner();
    for (repository, token, page_size, field) in [
        (
            "big/other",
            first.next_page_token.as_str(),
            10,
            "page_token",
        ),
        ("big/tags", "not-a-token", 10, "page_token"),
        ("big/tags", "", -1, "page_size"),
    ] {
        let status = client
            .list_tags(pb::ListTagsRequest {
                registry_id: "reg".into(),
                repository: repository.into(),
                page_size,
                page_token: token.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{repository} {token:?}: {status:?}"
        );
        assert_eq!(fields(&status), [field]);
    }
    let status = client
        .list_tags(pb::ListTagsRequest {
            registry_id: "reg".into(),
            repository: "big/none".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    server.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_tag_paging_over_grpc() {
    tag_paging(RegistryKind::Distribution).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_registry_2_8_tag_paging_over_grpc() {
    tag_paging(RegistryKind::DockerRegistry).await;
}
