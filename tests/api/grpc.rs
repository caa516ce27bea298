//! The server over a real gRPC connection: health, reflection, paging, errors, shutdown.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::{
    proto::{self as pb, cluster_service_client::ClusterServiceClient},
    store::ClusterRow,
};
use prost::Message;
use support::{raw::RawCodec, server::TestServer};
use tokio_stream::StreamExt;
use tonic::{Code, Status};
use tonic_types::StatusExt;

fn field_violation(status: &Status) -> String {
    let details = status.get_error_details();
    let bad = details
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest detail in {status:?}"));
    bad.field_violations[0].field.clone()
}

fn row(i: usize) -> ClusterRow {
    let id = format!("cluster-{i:04}");
    ClusterRow {
        display_name: format!("Cluster {}", 999 - i),
        labels: if i.is_multiple_of(2) {
            r#"{"env":"prod"}"#.into()
        } else {
            r#"{"env":"dev"}"#.into()
        },
        provider: if i.is_multiple_of(4) {
            "ack"
        } else {
            "imported"
        }
        .into(),
        endpoint: format!("https://10.0.0.{i}:6443"),
        kube_system_uid: Some(format!("uid-{i}")),
        create_time: 1_700_000_000_000 + i as i64,
        update_time: 1_700_000_000_000 + i as i64,
        ..support::rows::imported_cluster(&id)
    }
}

#[tokio::test]
async fn health_reports_serving_for_every_service() {
    let server = TestServer::start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    for service in std::iter::once("").chain(flotilla::proto::SERVICE_NAMES) {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(
            reply.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "{service}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_every_service() {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = TestServer::start().await;

    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1")
        .into_inner();
    let reply = replies.next().await.expect("a reply").expect("ok");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("unexpected reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in flotilla::proto::SERVICE_NAMES.iter().chain(&[
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ]) {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    // v1alpha: resolve a file by symbol, as grpcurl's `describe` does.
    let mut alpha =
        v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "flotilla.v1.ClusterService".into(),
            ),
        ),
    };
    let mut replies = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let reply = replies.next().await.expect("a reply").expect("ok");
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        reply.message_response
    else {
        panic!("unexpected reply {reply:?}");
    };
    let file = prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
        .expect("descriptor");
    assert_eq!(file.name(), "flotilla/v1/cluster_service.proto");
    assert!(file.service.iter().any(|s| s.name() == "ClusterService"));
    server.shutdown().await;
}

#[tokio::test]
async fn list_clusters_pages_filters_and_orders() {
    let server = TestServer::start().await;
    let mut client = ClusterServiceClient::new(server.channel().await);

    let empty = client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("empty list")
        .into_inner();
    assert!(empty.clusters.is_empty());
    assert_eq!(empty.total_size, 0);
    assert_eq!(empty.next_page_token, "");

    let store = server.store().await;
    for i in 0..120 {
        store.insert_cluster(&row(i)).await.unwrap();
    }

    let mut ids = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_clusters(pb::ListClustersRequest {
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert_eq!(page.total_size, 120);
        assert!(page.clusters.len() <= 50, "default page size is 50");
        ids.extend(page.clusters.iter().map(|c| c.id.clone()));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..120).map(|i| format!("cluster-{i:04}")).collect();
    assert_eq!(ids, expected);

    let big = client
        .list_clusters(pb::ListClustersRequest {
            page_size: 5000,
            ..Default::default()
        })
        .await
        .expect("coerced page size")
        .into_inner();
    assert_eq!(big.clusters.len(), 120);
    assert_eq!(big.next_page_token, "");

    let filtered = client
        .list_clusters(pb::ListClustersRequest {
            filter: r#"provider = "ack" AND labels.env = prod AND state = RUNNING"#.into(),
            order_by: "display_name desc".into(),
            page_size: 5,
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner();
    assert_eq!(
        filtered.total_size, 30,
        "every 4th is ack, all of those even"
    );
    let first = &filtered.clusters[0];
    assert_eq!(first.display_name, "Cluster 999");
    assert_eq!(first.provider, "ack");
    assert_eq!(first.labels.get("env").map(String::as_str), Some("prod"));
    assert_eq!(first.state(), pb::ClusterState::Running);
    assert!(first.create_time.is_some() && !first.etag.is_empty());

    let got = client
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "cluster-0007".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .cluster
        .expect("cluster");
    assert_eq!(got.endpoint, "https://10.0.0.7:6443");
    assert_eq!(got.kube_system_uid, "uid-7");
    server.shutdown().await;
}

/// ListClusters keeps the pages it answered while no stored cluster changes. Every kind of write
/// shows in the next page: one through the API, one by another connection in another program
/// (the `sqlite3` tool, behind the server's back), a delete. The expected values come from the
/// writes themselves and from the `sqlite3` tool's own reading of the table.
#[tokio::test]
async fn list_clusters_shows_every_write_at_once() {
    let server = TestServer::start().await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    let store = server.store().await;
    for i in 0..60 {
        store.insert_cluster(&row(i)).await.unwrap();
    }
    let db = std::path::PathBuf::from(
        server
            .settings
            .database_url
            .strip_prefix("sqlite://")
            .expect("the test server runs on SQLite"),
    );
    let first_page = |mut client: ClusterServiceClient<support::server::AuthedChannel>| async move {
        client
            .list_clusters(pb::ListClustersRequest {
                page_size: 50,
                ..Default::default()
            })
            .await
            .expect("first page")
            .into_inner()
    };
    let before = first_page(client.clone()).await;
    assert_eq!(before.clusters.len(), 50);
    assert_eq!(first_page(client.clone()).await, before, "nothing changed");

    // Through the API.
    let renamed = client
        .update_cluster(pb::UpdateClusterRequest {
            cluster: Some(pb::Cluster {
                id: "cluster-0003".into(),
                display_name: "Renamed".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("rename")
        .into_inner()
        .cluster
        .expect("cluster");
    let page = first_page(client.clone()).await;
    let listed = page
        .clusters
        .iter()
        .find(|c| c.id == "cluster-0003")
        .unwrap();
    assert_eq!(listed.display_name, "Renamed");
    assert_eq!(listed.etag, renamed.etag);
    assert_ne!(listed.etag, before.clusters[3].etag);

    // Behind the server's back, by another program.
    support::db::sqlite(
        &db,
        r#"UPDATE clusters SET display_name = 'Outside', labels = '{"env":"qa"}'
           WHERE id = 'cluster-0005'"#,
    );
    let page = first_page(client.clone()).await;
    let listed = page
        .clusters
        .iter()
        .find(|c| c.id == "cluster-0005")
        .unwrap();
    let stored = support::db::sqlite(
        &db,
        "SELECT display_name FROM clusters WHERE id = 'cluster-0005'",
    );
    assert_eq!(stored, [listed.display_name.as_str()]);
    assert_eq!(listed.labels.get("env").map(String::as_str), Some("qa"));
    let qa = client
        .list_clusters(pb::ListClustersRequest {
            filter: "labels.env = qa".into(),
            ..Default::default()
        })
        .await
        .expect("label filter")
        .into_inner();
    let ids: Vec<_> = qa.clusters.iter().map(|c| c.id.as_str()).collect();
    assert_eq!((ids, qa.total_size), (vec!["cluster-0005"], 1));

    // A delete, also from outside: the page closes up and the total drops.
    support::db::sqlite(&db, "DELETE FROM clusters WHERE id = 'cluster-0007'");
    let page = first_page(client.clone()).await;
    assert!(page.clusters.iter().all(|c| c.id != "cluster-0007"));
    assert_eq!(page.clusters.len(), 50);
    assert_eq!(
        page.total_size.to_string(),
        support::db::sqlite(&db, "SELECT count(*) FROM clusters")[0]
    );
    assert_eq!(
        page.clusters[49].id, "cluster-0050",
        "the next cluster moved up"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_invalid_argument_with_the_field() {
    let server = TestServer::start().await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    let cases = [
        (
            pb::ListClustersRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListClustersRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListClustersRequest {
                filter: "provider = ack OR provider = tke".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            pb::ListClustersRequest {
                order_by: "colour".into(),
                ..Default::default()
            },
            "order_by",
        ),
    ];
    for (request, field) in cases {
        let status = client.list_clusters(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(field_violation(&status), field);
        assert!(status.message().contains(field), "{}", status.message());
    }

    // A token from one query replayed with another filter.
    let store = server.store().await;
    for i in 0..3 {
        store.insert_cluster(&row(i)).await.unwrap();
    }
    let page = client
        .list_clusters(pb::ListClustersRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!page.next_page_token.is_empty());
    let status = client
        .list_clusters(pb::ListClustersRequest {
            page_size: 1,
            page_token: page.next_page_token,
            filter: "provider = ack".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_violation(&status), "page_token");

    let missing = client
        .get_cluster(pb::GetClusterRequest {
            cluster_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        missing
            .get_error_details()
            .error_info()
            .map(|i| i.reason.clone()),
        Some("NOT_FOUND".to_string())
    );
    let empty = client
        .get_cluster(pb::GetClusterRequest::default())
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert_eq!(field_violation(&empty), "cluster_id");
    server.shutdown().await;
}

/// Sends raw bytes as the request message, as a broken client would.
async fn raw_unary(server: &TestServer, path: &str, body: Vec<u8>) -> Status {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(body),
        path.parse().expect("path"),
        RawCodec,
    )
    .await
    .expect_err("a malformed message must be refused")
}

#[tokio::test]
async fn malformed_messages_are_invalid_argument_not_internal() {
    let server = TestServer::start().await;
    // page_size (field 1, varint) sent as a length-delimited string.
    let status = raw_unary(
        &server,
        "/flotilla.v1.ClusterService/ListClusters",
        vec![0x0a, 0x02, b'h', b'i'],
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(field_violation(&status), "page_size");

    // Truncated: a string field that claims more bytes than follow.
    let status = raw_unary(
        &server,
        "/flotilla.v1.ClusterService/GetCluster",
        vec![0x0a, 0x10, b'x'],
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    server.shutdown().await;
}

/// Every RPC in the contract is built; a method the contract does not have, on a service it
/// does have, answers UNIMPLEMENTED (after the token is checked), not INTERNAL or NOT_FOUND.
#[tokio::test]
async fn unknown_methods_say_unimplemented() {
    let server = TestServer::start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.expect("ready");
    let status = grpc
        .unary(
            tonic::Request::new(Vec::new()),
            "/flotilla.v1.RegistryService/NoSuchMethod"
                .parse()
                .expect("path"),
            RawCodec,
        )
        .await
        .expect_err("an unknown method must be refused");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_prompt_and_stops_listening() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let mut client = ClusterServiceClient::new(server.channel().await);
    client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("serving");
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
