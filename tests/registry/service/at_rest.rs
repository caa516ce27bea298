//! What the prober shows, and the registry password at rest on PostgreSQL.

use std::time::{Duration, Instant, SystemTime};

use flotilla::proto as pb;

use super::fixture::{Fixture, USER, create};

async fn status(f: &Fixture) -> pb::RegistryStatus {
    f.client()
        .await
        .get_registry(pb::GetRegistryRequest {
            registry_id: "reg".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .registry
        .and_then(|r| r.status)
        .expect("status")
}

/// Polls the registry's status until `done` says so (the prober runs every second).
async fn wait_for(f: &Fixture, what: &str, done: impl Fn(&pb::RegistryStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen = status(f).await;
        if done(&seen) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: last status {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The prober logs in on its own: an unreachable registry shows why, keeps the last API
/// version, and comes back; the credential's expiry is shown with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prober_records_reachability_and_expiry() {
    let f = Fixture::probing(Duration::from_secs(1)).await;
    let expires = SystemTime::now() + Duration::from_secs(2 * 24 * 3600);
    f.fake.state().credential_expires = Some(expires);
    f.credential("good", USER, super::fixture::PASSWORD).await;
    f.registry("reg", "good", &[]).await;
    let logins = f.fake.calls().get("login").copied().unwrap_or_default();
    f.fake.state().unreachable = true;
    wait_for(&f, "unreachable", |s| !s.reachable).await;
    let down = status(&f).await;
    assert!(
        down.unreachable_reason.contains("VENDOR_UNAVAILABLE"),
        "{down:?}"
    );
    assert_eq!(down.api_version, "fake/2.0", "the last version seen stays");
    assert!(f.fake.calls().get("login").copied().unwrap_or_default() > logins);
    f.fake.state().unreachable = false;
    wait_for(&f, "reachable again", |s| s.reachable).await;
    let up = status(&f).await;
    assert_eq!(
        up.credential_expire_time.map(|t| t.seconds),
        Some(prost_types::Timestamp::from(expires).seconds)
    );
    assert_eq!(
        up.warnings
            .iter()
            .map(|w| w.code.as_str())
            .collect::<Vec<_>>(),
        ["CREDENTIAL_EXPIRING"]
    );
    f.server.shutdown().await;
}

/// A registry password with a marker is not in a dump of the PostgreSQL database after a
/// refused and an accepted CreateRegistry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_password_is_not_in_a_postgres_dump() {
    let password = format!("pw-canary-{}", uuid::Uuid::new_v4().simple());
    let f = Fixture::postgres().await;
    f.fake.state().accept = Some((USER.into(), password.clone()));
    f.credential("marked", USER, &password).await;
    f.credential("marked-wrong", USER, &format!("{password}-x"))
        .await;
    let mut client = f.client().await;
    let refused = client
        .create_registry(create("bad", "fake", "marked-wrong", &[]))
        .await;
    assert!(refused.is_err());
    client
        .create_registry(create("reg", "fake", "marked", &[]))
        .await
        .expect("create");
    let url = f.db.as_ref().expect("postgres").url.clone();
    f.server.shutdown().await;
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--inserts", &url])
        .output()
        .expect("run pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(
        text.contains("INSERT INTO public.registries"),
        "the dump has the registry"
    );
    assert!(!text.contains(&password), "the dump holds the password");
    let hex: String = password.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!text.contains(&hex), "the dump holds the password (hex)");
}
