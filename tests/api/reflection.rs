//! Reflection serves the `google.rpc` error detail types, so a reflection client (grpcurl) prints
//! the details of an error decoded instead of as raw bytes.

use flotilla_test_support as support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use prost::Message;
use support::server::{ADMIN_TOKEN, TestServer};
use tokio_stream::StreamExt;
use tonic_reflection::pb::v1;

/// Asks the server's reflection service (v1) for the file that declares `symbol`; returns every
/// file of the answer (the file and its imports).
async fn files_containing(
    server: &TestServer,
    symbol: &str,
) -> Vec<prost_types::FileDescriptorProto> {
    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(server.raw_channel().await);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(symbol.to_string()),
        ),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1")
        .into_inner();
    let reply = replies.next().await.expect("a reply").expect("ok");
    match reply.message_response {
        Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) => {
            files
                .file_descriptor_proto
                .iter()
                .map(|bytes| {
                    prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("descriptor")
                })
                .collect()
        }
        other => panic!("{symbol}: no file descriptor in the reply: {other:?}"),
    }
}

/// The detail messages a client decodes, by the names google/rpc/error_details.proto gives them
/// upstream (googleapis), and `google.rpc.Status` that carries them.
#[tokio::test]
async fn reflection_serves_the_google_rpc_detail_types() {
    let server = TestServer::start().await;
    for (symbol, file_name) in [
        ("google.rpc.ErrorInfo", "google/rpc/error_details.proto"),
        ("google.rpc.BadRequest", "google/rpc/error_details.proto"),
        ("google.rpc.RetryInfo", "google/rpc/error_details.proto"),
        ("google.rpc.Status", "google/rpc/status.proto"),
    ] {
        let files = files_containing(&server, symbol).await;
        let file = files
            .iter()
            .find(|f| f.name() == file_name)
            .unwrap_or_else(|| panic!("{symbol}: {file_name} not among {:?}", names(&files)));
        assert_eq!(file.package(), "google.rpc");
        let message = symbol.trim_start_matches("google.rpc.");
        assert!(
            file.message_type.iter().any(|m| m.name() == message),
            "{symbol} not declared in the {file_name} reflection returned"
        );
    }
    // BadRequest.FieldViolation.field is what a client reads; the descriptor must carry it.
    let files = files_containing(&server, "google.rpc.BadRequest").await;
    let details = files
        .iter()
        .find(|f| f.name() == "google/rpc/error_details.proto")
        .expect("error_details.proto");
    let bad_request = details
        .message_type
        .iter()
        .find(|m| m.name() == "BadRequest")
        .expect("BadRequest");
    let violation = bad_request
        .nested_type
        .iter()
        .find(|m| m.name() == "FieldViolation")
        .expect("BadRequest.FieldViolation");
    assert!(violation.field.iter().any(|f| f.name() == "field"));
    server.shutdown().await;
}

fn names(files: &[prost_types::FileDescriptorProto]) -> Vec<&str> {
    files.iter().map(|f| f.name()).collect()
}

/// grpcurl (pinned, built from the Go module proxy by `scripts/gen-clients grpcurl`, which prints
/// its path), or `FLOTILLA_GRPCURL_BIN`.
fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("FLOTILLA_GRPCURL_BIN") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(root.join("scripts/gen-clients"))
        .arg("grpcurl")
        .output()
        .expect("run scripts/gen-clients grpcurl");
    assert!(
        output.status.success(),
        "scripts/gen-clients grpcurl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).expect("utf-8 path").trim())
}

/// Runs grpcurl against the server with the admin token; returns (exit success, stdout + stderr).
/// On a blocking thread: the server runs on this test's runtime and must keep answering.
async fn call(grpcurl: &Path, server: &TestServer, method: &str, body: &str) -> (bool, String) {
    let mut command = Command::new(grpcurl);
    command
        .args([
            "-plaintext",
            "-max-time",
            "20",
            "-H",
            &format!("authorization: Bearer {ADMIN_TOKEN}"),
            "-d",
            body,
            &server.addr.to_string(),
            method,
        ])
        // Loopback only: never through a proxy from the environment.
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("grpcurl thread")
        .expect("run grpcurl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// What a person sees: grpcurl prints the BadRequest of a bad page size and the ErrorInfo of a
/// missing cluster as JSON with their fields, not "is not recognized" with raw bytes.
#[tokio::test]
async fn grpcurl_prints_error_details_decoded() {
    let grpcurl = grpcurl();
    let server = TestServer::start().await;

    let (ok, out) = call(
        &grpcurl,
        &server,
        "flotilla.v1.ClusterService/ListClusters",
        r#"{"page_size": -1}"#,
    )
    .await;
    assert!(!ok, "a negative page size succeeded: {out}");
    assert!(out.contains("Code: InvalidArgument"), "{out}");
    assert!(
        out.contains(r#""@type": "type.googleapis.com/google.rpc.BadRequest""#),
        "{out}"
    );
    assert!(out.contains(r#""fieldViolations""#), "{out}");
    assert!(out.contains(r#""field": "page_size""#), "{out}");
    assert!(!out.contains("not recognized"), "{out}");

    let (ok, out) = call(
        &grpcurl,
        &server,
        "flotilla.v1.ClusterService/GetCluster",
        r#"{"cluster_id": "no-such-cluster"}"#,
    )
    .await;
    assert!(!ok, "a missing cluster was found: {out}");
    assert!(out.contains("Code: NotFound"), "{out}");
    assert!(
        out.contains(r#""@type": "type.googleapis.com/google.rpc.ErrorInfo""#),
        "{out}"
    );
    assert!(out.contains(r#""reason": "NOT_FOUND""#), "{out}");
    assert!(out.contains(r#""domain": "flotilla.dev""#), "{out}");
    assert!(!out.contains("not recognized"), "{out}");
    server.shutdown().await;
}
