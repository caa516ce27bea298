//! RegistryService above the adapter traits, driven through gRPC against an in-process server
//! with fake providers (test-support's `registry_fake`: a fake of the `RegistryProvider` trait,
//! not of any vendor). What is checked comes from outside the service: rows counted with
//! `sqlite3` (or our own store on PostgreSQL), the fake's call counters, the audit log, the
//! database file's bytes and the log output.

use std::sync::{Arc, Mutex, OnceLock};

use flotilla::proto::{
    self as pb, admin_service_client::AdminServiceClient,
    credential_service_client::CredentialServiceClient,
};
use tonic::Code;

mod at_rest;
mod content;
mod deployments;
mod fixture;

use fixture::{Fixture, PASSWORD, USER, assert_invalid, create, fields, reason};

/// Every bad definition is refused on its field before anything is stored or sent; a registry
/// that refuses the login, or does not answer, is refused with the reason and nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_checks_everything_before_writing_or_sending() {
    let f = Fixture::sqlite().await;
    f.credential("good", USER, PASSWORD).await;
    f.credential("wrong", USER, "not-the-password").await;
    f.access_key_credential("cloud-key").await;
    let mut client = f.client().await;
    let with = |edit: &dyn Fn(&mut pb::CreateRegistryRequest)| {
        let mut request = create("reg", "fake", "good", &[]);
        edit(&mut request);
        request
    };
    let cases: Vec<(&str, pb::CreateRegistryRequest, &str)> = vec![
        (
            "no registry",
            pb::CreateRegistryRequest::default(),
            "registry",
        ),
        (
            "bad id",
            with(&|r| r.registry.as_mut().unwrap().id = "Bad_Id".into()),
            "registry.id",
        ),
        (
            "unknown provider",
            with(&|r| r.registry.as_mut().unwrap().provider = "quay".into()),
            "registry.provider",
        ),
        (
            "no endpoint",
            with(&|r| r.registry.as_mut().unwrap().endpoint.clear()),
            "registry.endpoint",
        ),
        (
            "credentials in the endpoint",
            with(&|r| {
                r.registry.as_mut().unwrap().endpoint = "https://u:p@reg.registry.test".into()
            }),
            "registry.endpoint",
        ),
        (
            "not a URL",
            with(&|r| r.registry.as_mut().unwrap().endpoint = "reg.registry.test".into()),
            "registry.endpoint",
        ),
        (
            "bad CA",
            with(&|r| r.ca_pem = "not a certificate".into()),
            "ca_pem",
        ),
        (
            "no credential for a provider that needs one",
            with(&|r| r.registry.as_mut().unwrap().credential_id.clear()),
            "registry.credential_id",
        ),
        (
            "credential that does not exist",
            with(&|r| r.registry.as_mut().unwrap().credential_id = "ghost".into()),
            "registry.credential_id",
        ),
        (
            "credential of a kind the provider does not take",
            with(&|r| r.registry.as_mut().unwrap().credential_id = "cloud-key".into()),
            "registry.credential_id",
        ),
        (
            "a field the provider's rules refuse",
            with(&|r| r.registry.as_mut().unwrap().region = "cn-hangzhou".into()),
            "registry.region",
        ),
        (
            "bad label",
            with(&|r| {
                r.registry
                    .as_mut()
                    .unwrap()
                    .labels
                    .insert("bad key!".into(), "v".into());
            }),
            "registry.labels.bad key!",
        ),
    ];
    for (case, request, field) in cases {
        let status = client.create_registry(request).await.unwrap_err();
        assert_invalid(&status, field, case);
        assert!(!status.message().is_empty(), "{case}: a message to act on");
    }
    // Two rule violations at once: both fields.
    let status = client
        .create_registry(with(&|r| {
            let reg = r.registry.as_mut().unwrap();
            reg.region = "x".into();
            reg.vendor_instance_id = "y".into();
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&status),
        ["registry.region", "registry.vendor_instance_id"]
    );
    assert_eq!(
        f.fake.total_calls(),
        0,
        "nothing was sent: {:?}",
        f.fake.calls()
    );
    assert!(
        f.fake.state().opened.is_empty(),
        "no client was even opened"
    );

    // Refused by the registry: the reason comes back, nothing is stored.
    let status = client
        .create_registry(create("reg", "fake", "wrong", &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "CREDENTIALS_INVALID");
    assert!(
        status.message().contains("https://reg.registry.test"),
        "{status:?}"
    );
    f.fake.state().unreachable = true;
    let status = client
        .create_registry(create("reg", "fake", "good", &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "VENDOR_UNAVAILABLE");
    f.fake.state().unreachable = false;
    assert_eq!(f.fake.calls().get("login"), Some(&2));
    assert!(f.registry_rows().await.is_empty(), "nothing was written");

    // validate_only logs in and stores nothing.
    let mut request = create("reg", "fake", "good", &[]);
    request.validate_only = true;
    let checked = client
        .create_registry(request)
        .await
        .expect("validate only");
    let checked = checked.into_inner().registry.expect("registry");
    assert_eq!(checked.status.expect("status").api_version, "fake/2.0");
    assert_eq!(f.fake.calls().get("login"), Some(&3));
    assert!(
        f.registry_rows().await.is_empty(),
        "validate_only writes nothing"
    );

    // Created once; the same id again is ALREADY_EXISTS before any login.
    f.registry("reg", "good", &[]).await;
    assert_eq!(f.registry_rows().await, ["reg|good"]);
    let status = client
        .create_registry(create("reg", "fake", "good", &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        f.fake.calls().get("login"),
        Some(&4),
        "no login for a taken id"
    );
    f.server.shutdown().await;
}

/// Get, list (paging, filter by provider and labels), update with a field mask, delete; the
/// same on SQLite and PostgreSQL.
async fn registry_lifecycle(f: Fixture) {
    f.credential("good", USER, PASSWORD).await;
    f.credential("wrong", USER, "nope").await;
    let mut client = f.client().await;
    f.registry("alpha", "good", &[("team", "web")]).await;
    f.registry("beta", "good", &[("team", "data")]).await;
    f.registry("gamma", "good", &[("team", "web"), ("env", "prod")])
        .await;
    let mut anonymous = create("delta", "fake-ro", "", &[]);
    anonymous.registry.as_mut().unwrap().display_name = "Public mirror".into();
    client
        .create_registry(anonymous)
        .await
        .expect("anonymous registry");

    let got = client
        .get_registry(pb::GetRegistryRequest {
            registry_id: "alpha".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .registry
        .expect("registry");
    assert_eq!(got.provider, "fake");
    assert_eq!(got.endpoint, "https://alpha.registry.test");
    assert_eq!(got.display_name, "alpha");
    let status = got.status.expect("status");
    assert!(status.reachable && status.last_check_time.is_some());
    assert_eq!(status.api_version, "fake/2.0");

    let list = |page_size: i32, page_token: &str, filter: &str| pb::ListRegistriesRequest {
        page_size,
        page_token: page_token.into(),
        filter: filter.into(),
    };
    let first = client
        .list_registries(list(3, "", ""))
        .await
        .expect("page 1")
        .into_inner();
    let ids: Vec<_> = first.registries.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["alpha", "beta", "delta"]);
    assert_eq!(first.total_size, 4);
    let second = client
        .list_registries(list(3, &first.next_page_token, ""))
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(
        second
            .registries
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["gamma"]
    );
    assert!(second.next_page_token.is_empty());
    let status = client
        .list_registries(list(3, &first.next_page_token, "provider = fake"))
        .await
        .unwrap_err();
    assert_invalid(&status, "page_token", "token from another filter");
    for (filter, expected) in [
        ("provider = fake-ro", vec!["delta"]),
        (r#"labels.team = "web""#, vec!["alpha", "gamma"]),
        ("labels.env:*", vec!["gamma"]),
        (r#"provider = fake AND labels.team = "data""#, vec!["beta"]),
    ] {
        let found = client
            .list_registries(list(0, "", filter))
            .await
            .expect(filter)
            .into_inner();
        let ids: Vec<_> = found.registries.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, expected, "{filter}");
    }
    let status = client
        .list_registries(list(0, "", "region = x"))
        .await
        .unwrap_err();
    assert_invalid(&status, "filter", "unknown filter field");

    // Update: the mask decides; a new credential must log in first.
    let update = |paths: &[&str], registry: pb::Registry| pb::UpdateRegistryRequest {
        registry: Some(registry),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
        validate_only: false,
    };
    let changed = client
        .update_registry(update(
            &["display_name", "labels"],
            pb::Registry {
                id: "alpha".into(),
                display_name: "Alpha (web)".into(),
                labels: [("team".to_string(), "mobile".to_string())].into(),
                endpoint: "https://ignored.example".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("update")
        .into_inner()
        .registry
        .expect("registry");
    assert_eq!(changed.display_name, "Alpha (web)");
    assert_eq!(
        changed.labels.get("team").map(String::as_str),
        Some("mobile")
    );
    assert_eq!(
        changed.endpoint, "https://alpha.registry.test",
        "not in the mask: unchanged"
    );
    let logins = f.fake.calls().get("login").copied();
    let status = client
        .update_registry(update(
            &["credential_id"],
            pb::Registry {
                id: "alpha".into(),
                credential_id: "wrong".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "CREDENTIALS_INVALID");
    assert_eq!(f.fake.calls().get("login").copied(), logins.map(|n| n + 1));
    assert!(
        f.registry_rows().await.contains(&"alpha|good".to_string()),
        "credential kept"
    );
    for (paths, field) in [(&[][..], "update_mask"), (&["endpoint"][..], "update_mask")] {
        let status = client
            .update_registry(update(
                paths,
                pb::Registry {
                    id: "alpha".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_invalid(&status, field, &format!("mask {paths:?}"));
    }
    let status = client
        .update_registry(update(
            &["labels"],
            pb::Registry {
                id: "nope".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Delete forgets; a second delete and a get are NOT_FOUND.
    client
        .delete_registry(pb::DeleteRegistryRequest {
            registry_id: "beta".into(),
        })
        .await
        .expect("delete");
    assert!(
        !f.registry_rows()
            .await
            .iter()
            .any(|r| r.starts_with("beta|"))
    );
    for status in [
        client
            .delete_registry(pb::DeleteRegistryRequest {
                registry_id: "beta".into(),
            })
            .await
            .unwrap_err(),
        client
            .get_registry(pb::GetRegistryRequest {
                registry_id: "beta".into(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let status = client
        .get_registry(pb::GetRegistryRequest::default())
        .await
        .unwrap_err();
    assert_invalid(&status, "registry_id", "empty id");
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_lifecycle_on_sqlite() {
    registry_lifecycle(Fixture::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_lifecycle_on_postgres() {
    registry_lifecycle(Fixture::postgres().await).await;
}

/// A credential a registry uses cannot be deleted; the answer names the registry.
async fn credential_in_use(f: Fixture) {
    f.credential("good", USER, PASSWORD).await;
    f.registry("mirror", "good", &[]).await;
    let mut credentials = CredentialServiceClient::new(f.server.channel().await);
    let status = credentials
        .delete_credential(pb::DeleteCredentialRequest {
            credential_id: "good".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "CREDENTIAL_IN_USE");
    assert!(status.message().contains("mirror"), "{status:?}");
    let credential = credentials
        .get_credential(pb::GetCredentialRequest {
            credential_id: "good".into(),
        })
        .await
        .expect("still there")
        .into_inner()
        .credential
        .expect("credential");
    assert_eq!(credential.used_by, ["registries/mirror"]);
    f.client()
        .await
        .delete_registry(pb::DeleteRegistryRequest {
            registry_id: "mirror".into(),
        })
        .await
        .expect("forget the registry");
    credentials
        .delete_credential(pb::DeleteCredentialRequest {
            credential_id: "good".into(),
        })
        .await
        .expect("unused now");
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_in_use_by_a_registry_is_kept_on_sqlite() {
    credential_in_use(Fixture::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_in_use_by_a_registry_is_kept_on_postgres() {
    credential_in_use(Fixture::postgres().await).await;
}

/// Who may do what, written out by hand (not read from the permission table): viewers read;
/// operators manage registry content; admins define registries. A cluster-scoped token reads
/// but changes nothing in a registry (it spans clusters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_by_role() {
    let f = Fixture::sqlite().await;
    f.credential("good", USER, PASSWORD).await;
    f.registry("reg", "good", &[]).await;
    f.fake.push("team/app", &fixture::digest(1), &["v1"]);
    let mut admin = AdminServiceClient::new(f.server.channel().await);
    let mut token = async |name: &str, role: pb::Role, clusters: &[&str]| {
        admin
            .create_api_token(pb::CreateApiTokenRequest {
                name: name.into(),
                role: role.into(),
                cluster_ids: clusters.iter().map(|c| c.to_string()).collect(),
                expire_time: None,
            })
            .await
            .expect("token")
            .into_inner()
            .secret
    };
    let viewer = token("viewer", pb::Role::Viewer, &[]).await;
    let operator = token("operator", pb::Role::Operator, &[]).await;
    let scoped = token("scoped-operator", pb::Role::Operator, &["some-cluster"]).await;
    // (caller, call, expected code)
    let expected: &[(&str, &str, Code)] = &[
        ("viewer", "get", Code::Ok),
        ("viewer", "list_artifacts", Code::Ok),
        ("viewer", "create_namespace", Code::PermissionDenied),
        ("viewer", "delete_artifact", Code::PermissionDenied),
        ("viewer", "create_registry", Code::PermissionDenied),
        ("viewer", "delete_registry", Code::PermissionDenied),
        ("operator", "get", Code::Ok),
        ("operator", "create_namespace", Code::Ok),
        ("operator", "delete_artifact", Code::Ok),
        ("operator", "create_registry", Code::PermissionDenied),
        ("operator", "update_registry", Code::PermissionDenied),
        ("operator", "delete_registry", Code::PermissionDenied),
        ("scoped-operator", "get", Code::Ok),
        (
            "scoped-operator",
            "create_namespace",
            Code::PermissionDenied,
        ),
        ("scoped-operator", "delete_artifact", Code::PermissionDenied),
    ];
    for (who, call, code) in expected {
        let secret = match *who {
            "viewer" => &viewer,
            "operator" => &operator,
            _ => &scoped,
        };
        let mut c = f.client_as(secret).await;
        let result = match *call {
            "get" => c
                .get_registry(pb::GetRegistryRequest {
                    registry_id: "reg".into(),
                })
                .await
                .map(|_| ()),
            "list_artifacts" => c
                .list_artifacts(pb::ListArtifactsRequest {
                    registry_id: "reg".into(),
                    repository: "team/app".into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            "create_namespace" => c
                .create_registry_namespace(pb::CreateRegistryNamespaceRequest {
                    registry_id: "reg".into(),
                    name: format!("ns-{}", who.len()),
                    public: false,
                })
                .await
                .map(|_| ()),
            "delete_artifact" => c
                .delete_artifact(pb::DeleteArtifactRequest {
                    registry_id: "reg".into(),
                    repository: "team/app".into(),
                    reference: "v1".into(),
                    force: false,
                })
                .await
                .map(|_| ()),
            "create_registry" => c
                .create_registry(create("other", "fake", "good", &[]))
                .await
                .map(|_| ()),
            "update_registry" => c
                .update_registry(pb::UpdateRegistryRequest {
                    registry: Some(pb::Registry {
                        id: "reg".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["labels".into()],
                    }),
                    validate_only: false,
                })
                .await
                .map(|_| ()),
            "delete_registry" => c
                .delete_registry(pb::DeleteRegistryRequest {
                    registry_id: "reg".into(),
                })
                .await
                .map(|_| ()),
            other => panic!("no call {other}"),
        };
        let got = result.map_or_else(|s| s.code(), |()| Code::Ok);
        assert_eq!(got, *code, "{who} {call}");
    }
    assert_eq!(
        f.registry_rows().await,
        ["reg|good"],
        "nothing denied was done"
    );
    f.server.shutdown().await;
}

/// Captured log output of this test binary (every test's server logs into it).
fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let sink = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
            buffer
        })
        .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A registry password carrying a marker appears in no response, log line, audit row or
/// database file, through successes and failures (wrong password, unreachable registry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_password_canary() {
    let logs = log_buffer();
    let marker = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let password = format!("pw-{marker}");
    let f = Fixture::sqlite().await;
    f.fake.state().accept = Some((USER.into(), password.clone()));
    f.credential("marked", USER, &password).await;
    f.credential("marked-wrong", USER, &format!("{password}-wrong"))
        .await;
    let mut client = f.client().await;
    let mut replies = Vec::new();
    let mut bad = create("bad", "fake", "marked-wrong", &[]);
    bad.registry.as_mut().unwrap().endpoint = format!("https://{marker}.registry.test");
    replies.push(format!("{:?}", client.create_registry(bad).await));
    replies.push(format!(
        "{:?}",
        client
            .create_registry(create("reg", "fake", "marked", &[]))
            .await
    ));
    replies.push(format!(
        "{:?}",
        client
            .get_registry(pb::GetRegistryRequest {
                registry_id: "reg".into()
            })
            .await
    ));
    replies.push(format!(
        "{:?}",
        client
            .list_registries(pb::ListRegistriesRequest::default())
            .await
    ));
    f.fake.state().unreachable = true;
    replies.push(format!(
        "{:?}",
        client
            .update_registry(pb::UpdateRegistryRequest {
                registry: Some(pb::Registry {
                    id: "reg".into(),
                    credential_id: "marked".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["credential_id".into()]
                }),
                validate_only: false,
            })
            .await
    ));
    f.fake.state().unreachable = false;
    replies.push(format!(
        "{:?}",
        CredentialServiceClient::new(f.server.channel().await)
            .delete_credential(pb::DeleteCredentialRequest {
                credential_id: "marked".into()
            })
            .await
    ));
    assert!(
        replies[1].contains("Ok("),
        "the registry was created: {}",
        replies[1]
    );
    for reply in &replies {
        assert!(
            !reply.contains(&password),
            "a response holds the password: {reply}"
        );
    }
    let mut admin = AdminServiceClient::new(f.server.channel().await);
    let events = admin
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .expect("audit")
        .into_inner()
        .events;
    let created = events
        .iter()
        .find(|e| e.method.ends_with("/CreateRegistry") && e.result_code == "OK")
        .expect("create audited");
    assert_eq!(created.target, "registries/reg");
    for event in &events {
        assert!(
            !format!("{event:?}").contains(&password),
            "audit row: {event:?}"
        );
    }
    // Read while the server runs: the WAL file holds the newest pages.
    let data_dir = f.server.settings.data_dir.clone();
    let mut checked = 0;
    for entry in std::fs::read_dir(&data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "master.keys") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 2, "the database and its WAL were checked");
    f.server.shutdown().await;
    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).to_string();
    assert!(
        text.contains("registry login failed"),
        "the log has the failures"
    );
    assert!(!text.contains(&password), "a log line holds the password");
}
