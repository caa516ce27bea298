//! Renewal and rotation: the Secret's content changes in the API server before the credential
//! it held expires, or after the registry's credential changed; the credential it held is then
//! revoked (the fake's record). The work is a durable `RENEW_PULL_SECRET` operation: one queued
//! by a server that stops is finished by the next server on the same database.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, credential_service_client::CredentialServiceClient,
    operation_service_client::OperationServiceClient,
};
use support::{db::TestDb, kube as kenv, registry_fake::FakeRegistry};

use super::cleaning;
use super::fixture::{
    DockerAuth, Fixture, Options, docker_auth, read_secret, request, target, username_password,
};

/// Polls the Secret until it holds something else than `before`.
async fn changed(
    kube: &kube::Client,
    ns: &str,
    before: &DockerAuth,
    within: Duration,
) -> DockerAuth {
    let start = Instant::now();
    loop {
        if let Some(secret) = read_secret(kube, ns, "flotilla-reg").await {
            let now = docker_auth(&secret);
            if now != *before {
                return now;
            }
        }
        assert!(
            start.elapsed() < within,
            "the Secret in {ns} still holds {} after {within:?}",
            before.username
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn renewals(f: &Fixture) -> Vec<pb::Operation> {
    OperationServiceClient::new(f.server.channel().await)
        .list_operations(pb::ListOperationsRequest {
            resource: "registries/reg/pullSecrets".into(),
            types: vec![pb::OperationType::RenewPullSecret.into()],
            ..Default::default()
        })
        .await
        .expect("list operations")
        .into_inner()
        .operations
}

/// Waits until the fake records credential `vendor_id` as revoked.
async fn revoked(fake: &FakeRegistry, vendor_id: &str) {
    let start = Instant::now();
    while !fake
        .pulls()
        .iter()
        .any(|p| p.vendor_id == vendor_id && p.revoked)
    {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "credential {vendor_id} not revoked: {:?}",
            fake.pulls()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_before_it_expires_and_the_old_credential_revoked() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "ps-renew").await;
    let n = ns.name().to_string();
    let check = async {
        let f = Fixture::start(Options {
            lifetime: Duration::from_secs(6),
            check_interval: Duration::from_millis(200),
            ..Options::default()
        })
        .await;
        f.registries().await;
        f.import_first().await;
        f.sync(request("reg", vec![target("first", &[&n])])).await;
        let first = docker_auth(
            &read_secret(&kube, &n, "flotilla-reg")
                .await
                .expect("secret"),
        );
        let issued = f.fake.pulls()[0].clone();
        assert_eq!(first.username, issued.username);
        let renewed = changed(&kube, &n, &first, Duration::from_secs(15)).await;
        // Renewed before the first credential expired (a third of 6 s was left).
        assert!(
            std::time::SystemTime::now() < issued.expires,
            "renewed only after the credential expired"
        );
        assert!(
            f.fake
                .state()
                .live_pull(&renewed.username, &renewed.password)
                .is_some(),
            "the renewed Secret holds a live credential"
        );
        revoked(&f.fake, &issued.vendor_id).await;
        let ops = renewals(&f).await;
        assert!(
            ops.iter()
                .any(|o| o.state == pb::OperationState::Succeeded as i32),
            "{ops:?}"
        );
        f.server.shutdown().await;
    };
    cleaning(check, ns.cleanup()).await;
}

/// Rotating the registry's credential (CredentialService) and pointing the registry at another
/// credential (UpdateRegistry) each rewrite the Secret, issued under the new credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_registry_credential_rewrites_the_secret() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "ps-rotate").await;
    let n = ns.name().to_string();
    let check = async {
        let f = Fixture::start(Options {
            check_interval: Duration::from_millis(200),
            ..Options::default()
        })
        .await;
        f.registries().await;
        f.import_first().await;
        f.sync(request("reg", vec![target("first", &[&n])])).await;
        let first = docker_auth(
            &read_secret(&kube, &n, "flotilla-reg")
                .await
                .expect("secret"),
        );
        // Nothing is due: the Secret stays as it is.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            docker_auth(&read_secret(&kube, &n, "flotilla-reg").await.unwrap()),
            first
        );
        assert_eq!(f.fake.pulls().len(), 1);

        CredentialServiceClient::new(f.server.channel().await)
            .rotate_credential(pb::RotateCredentialRequest {
                credential_id: "admin".into(),
                secret: Some(username_password(
                    super::fixture::ADMIN_USER,
                    "rotated-Pa55word",
                )),
            })
            .await
            .expect("rotate");
        let rotated = changed(&kube, &n, &first, Duration::from_secs(15)).await;
        revoked(&f.fake, "1").await;

        f.credential("other", "other-admin", "other-Pa55").await;
        f.fake.state().accept = Some(("other-admin".into(), "other-Pa55".into()));
        f.client()
            .await
            .update_registry(pb::UpdateRegistryRequest {
                registry: Some(pb::Registry {
                    id: "reg".into(),
                    credential_id: "other".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["credential_id".into()],
                }),
                ..Default::default()
            })
            .await
            .expect("update registry");
        let moved = changed(&kube, &n, &rotated, Duration::from_secs(15)).await;
        let issued_under = f
            .fake
            .state()
            .live_pull(&moved.username, &moved.password)
            .expect("live credential")
            .issued_under
            .clone();
        assert_eq!(issued_under, "other-admin");
        f.server.shutdown().await;
    };
    cleaning(check, ns.cleanup()).await;
}

/// A renewal queued by a server that stops before any worker ran it is finished by the next
/// server on the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_renewal_survives_a_restart() {
    let kube = kenv::client().await;
    let ns = kenv::TestNamespace::create(&kube, "ps-restart").await;
    let n = ns.name().to_string();
    let check = async {
        let db = TestDb::postgres().await;
        let keys = tempfile::tempdir().expect("keys");
        let fake = FakeRegistry::issuing("fake-pull");
        let options = Options {
            lifetime: Duration::from_secs(6),
            check_interval: Duration::from_millis(200),
            ..Options::default()
        };
        let a = Fixture::start_on(
            Options {
                workers: 0,
                ..options.clone()
            },
            Some((&db, keys.path())),
            fake.clone(),
        )
        .await;
        a.registries().await;
        a.import_first().await;
        a.sync(request("reg", vec![target("first", &[&n])])).await;
        let first = docker_auth(
            &read_secret(&kube, &n, "flotilla-reg")
                .await
                .expect("secret"),
        );
        let start = Instant::now();
        while renewals(&a).await.is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no renewal queued"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        a.server.shutdown().await;
        assert_eq!(
            docker_auth(&read_secret(&kube, &n, "flotilla-reg").await.unwrap()),
            first,
            "no worker ran it"
        );
        let b = Fixture::start_on(options, Some((&db, keys.path())), fake.clone()).await;
        let renewed = changed(&kube, &n, &first, Duration::from_secs(15)).await;
        assert!(
            fake.state()
                .live_pull(&renewed.username, &renewed.password)
                .is_some()
        );
        revoked(&fake, "1").await;
        b.server.shutdown().await;
    };
    cleaning(check, ns.cleanup()).await;
}
