//! CredentialService: stored encrypted, metadata only out, refusals change nothing.

use flotilla_test_support as support;

use flotilla::{
    proto::{self as pb, credential_service_client::CredentialServiceClient},
    store::ClusterRow,
};
use support::server::TestServer;
use tonic::Code;
use tonic_types::StatusExt;

fn access_key(id: &str, secret: &str) -> pb::CredentialSecret {
    pb::CredentialSecret {
        secret: Some(pb::credential_secret::Secret::AccessKey(
            pb::AccessKeySecret {
                access_key_id: id.into(),
                access_key_secret: secret.into(),
            },
        )),
    }
}

fn create(id: &str, provider: &str, secret: pb::CredentialSecret) -> pb::CreateCredentialRequest {
    pb::CreateCredentialRequest {
        credential_id: id.into(),
        display_name: String::new(),
        labels: [("team".to_string(), "core".to_string())].into(),
        provider: provider.into(),
        secret: Some(secret),
    }
}

fn field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations[0].field.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn credentials_lifecycle() {
    let server = TestServer::start().await;
    let mut client = CredentialServiceClient::new(server.channel().await);
    let store = server.store().await;

    let created = client
        .create_credential(create(
            "ali-prod",
            "ack",
            access_key("LTAI-public", "SECRET-ali-1"),
        ))
        .await
        .expect("create")
        .into_inner();
    assert!(
        !format!("{created:?}").contains("SECRET"),
        "no secret in the response"
    );
    let credential = created.credential.expect("credential");
    assert_eq!(credential.principal, "LTAI-public");
    assert_eq!(credential.r#type(), pb::CredentialType::AccessKey);
    assert_eq!(credential.display_name, "ali-prod");
    assert!(credential.used_by.is_empty());

    client
        .create_credential(create(
            "rancher-main",
            "rancher",
            pb::CredentialSecret {
                secret: Some(pb::credential_secret::Secret::ApiKey(pb::ApiKeySecret {
                    key_id: "token-abcde".into(),
                    token: "SECRET-rancher".into(),
                })),
            },
        ))
        .await
        .expect("create rancher key");

    // Refusals: a code, the field, and nothing written.
    let cases = vec![
        (
            create(
                "x1",
                "ack",
                pb::CredentialSecret {
                    secret: Some(pb::credential_secret::Secret::ApiKey(pb::ApiKeySecret {
                        key_id: "k".into(),
                        token: "t".into(),
                    })),
                },
            ),
            Code::InvalidArgument,
            "secret",
        ),
        (
            create("x2", "ack", access_key("id", "")),
            Code::InvalidArgument,
            "secret.access_key.access_key_secret",
        ),
        (
            create("x3", "gcp", access_key("id", "s")),
            Code::InvalidArgument,
            "provider",
        ),
        (
            create("X_4", "ack", access_key("id", "s")),
            Code::InvalidArgument,
            "credential_id",
        ),
        (
            pb::CreateCredentialRequest {
                secret: None,
                ..create("x5", "ack", access_key("a", "b"))
            },
            Code::InvalidArgument,
            "secret",
        ),
        (
            create("ali-prod", "ack", access_key("id", "s")),
            Code::AlreadyExists,
            "",
        ),
    ];
    for (request, code, expected_field) in cases {
        let status = client.create_credential(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert_eq!(field(&status), expected_field, "{status:?}");
    }
    assert_eq!(store.count_secrets().await.unwrap(), 2);

    let acks = client
        .list_credentials(pb::ListCredentialsRequest {
            filter: "provider = ack AND labels.team = core".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(acks.total_size, 1);
    assert_eq!(acks.credentials[0].id, "ali-prod");
    let page = client
        .list_credentials(pb::ListCredentialsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_size, 2);
    assert!(!page.next_page_token.is_empty());

    // Rotation keeps the type, changes the secret and principal.
    let rotated = client
        .rotate_credential(pb::RotateCredentialRequest {
            credential_id: "ali-prod".into(),
            secret: Some(access_key("LTAI-new", "SECRET-ali-2")),
        })
        .await
        .expect("rotate")
        .into_inner()
        .credential
        .expect("credential");
    assert_eq!(rotated.principal, "LTAI-new");
    let millis = |t: Option<prost_types::Timestamp>| {
        let t = t.expect("timestamp");
        t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
    };
    assert!(millis(rotated.rotate_time) >= millis(credential.rotate_time));
    let wrong_type = client
        .rotate_credential(pb::RotateCredentialRequest {
            credential_id: "ali-prod".into(),
            secret: Some(pb::CredentialSecret {
                secret: Some(pb::credential_secret::Secret::UsernamePassword(
                    pb::UsernamePasswordSecret {
                        username: "u".into(),
                        password: "p".into(),
                    },
                )),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong_type.code(), Code::InvalidArgument);
    assert_eq!(
        store.count_secrets().await.unwrap(),
        2,
        "old secret replaced, not kept"
    );

    // In use by a cluster: deletion refused, naming the cluster.
    store
        .insert_cluster(&ClusterRow {
            id: "prod".into(),
            display_name: "prod".into(),
            labels: "{}".into(),
            provider: "ack".into(),
            region: "cn-hangzhou".into(),
            vendor_cluster_id: "c123".into(),
            state: "RUNNING".into(),
            endpoint: String::new(),
            kube_system_uid: None,
            credential_id: Some("ali-prod".into()),
            access_secret_id: None,
            spec: None,
            warnings: "[]".into(),
            last_operation_id: None,
            version: 1,
            create_time: 1,
            update_time: 1,
            kube_access: "builtin".into(),
        })
        .await
        .unwrap();
    let in_use = client
        .delete_credential(pb::DeleteCredentialRequest {
            credential_id: "ali-prod".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(in_use.code(), Code::FailedPrecondition);
    assert!(in_use.message().contains("prod"), "{}", in_use.message());
    let got = client
        .get_credential(pb::GetCredentialRequest {
            credential_id: "ali-prod".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(got.used_by, vec!["clusters/prod".to_string()]);

    store.delete_cluster("prod").await.unwrap();
    for id in ["ali-prod", "rancher-main"] {
        client
            .delete_credential(pb::DeleteCredentialRequest {
                credential_id: id.into(),
            })
            .await
            .expect("delete");
    }
    let gone = client
        .get_credential(pb::GetCredentialRequest {
            credential_id: "ali-prod".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(
        store.count_secrets().await.unwrap(),
        0,
        "nothing left behind"
    );
    server.shutdown().await;
}
