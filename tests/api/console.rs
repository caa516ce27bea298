//! The browser console on the API port: every file of console/dist (read from disk, the oracle)
//! served byte for byte with its type, caching, gzip and security headers; 404 and 405 answered
//! plainly; gRPC and grpc-web on the same port unchanged; `console = false` turns it off.

use flotilla_test_support as support;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use reqwest::{Method, Response, StatusCode, header::HeaderMap};
use support::server::{ADMIN_TOKEN, TestServer};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Written out here, not taken from the server's code.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'self'";

fn dist() -> PathBuf {
    support::workspace_dir().join("console/dist")
}

/// Every file of console/dist as (URL path, bytes on disk).
fn built_files() -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("read console/dist") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let relative = path.strip_prefix(root).expect("under dist");
                let url = format!("/{}", relative.to_str().expect("UTF-8 name"));
                out.push((url, std::fs::read(&path).expect("read file")));
            }
        }
    }
    let mut files = Vec::new();
    walk(&dist(), &dist(), &mut files);
    files.sort();
    assert!(
        files.iter().any(|(p, _)| p == "/index.html")
            && files.iter().any(|(p, _)| p.ends_with(".js")),
        "console/dist has index.html and JavaScript: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    files
}

/// The media type a browser needs for each kind of file the console may contain.
fn expected_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        other => panic!("console/dist has {path} ({other:?}): add its media type to this test"),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().expect("ASCII header"))
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

fn assert_security_headers(what: &str, headers: &HeaderMap) {
    assert_eq!(header(headers, "content-security-policy"), CSP, "{what}");
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{what}");
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{what}");
}

/// A plain HTTP/1.1 client that neither asks for nor undoes compression.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client")
}

async fn send(method: Method, url: String, accept_encoding: Option<&str>) -> Response {
    let mut request = http().request(method, url);
    if let Some(value) = accept_encoding {
        request = request.header("accept-encoding", value);
    }
    request.send().await.expect("request")
}

/// `gzip -dc`: an unpacker that is not ours.
fn gunzip(packed: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    let mut stdin = child.stdin.take().expect("stdin");
    let packed = packed.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&packed).expect("write to gzip"));
    let output = child.wait_with_output().expect("gzip output");
    writer.join().expect("writer");
    assert!(output.status.success(), "gzip -dc failed: not gzip data");
    output.stdout
}

#[tokio::test]
async fn index_is_served_at_the_root_with_the_security_headers() {
    let server = TestServer::start().await;
    let index = std::fs::read(dist().join("index.html")).expect("index.html");
    for path in ["/", "/index.html", "/?from=bookmark"] {
        let response = send(Method::GET, format!("{}{path}", server.url()), None).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let headers = response.headers().clone();
        assert_security_headers(path, &headers);
        assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&headers, "cache-control"), "no-cache", "GET {path}");
        assert!(headers.get("grpc-status").is_none(), "{headers:?}");
        assert_eq!(response.bytes().await.expect("body"), index, "GET {path}");
    }
    let head = send(Method::HEAD, format!("{}/", server.url()), None).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_security_headers("HEAD /", head.headers());
    assert_eq!(
        header(head.headers(), "content-length"),
        index.len().to_string()
    );
    assert!(
        head.bytes().await.expect("body").is_empty(),
        "HEAD has no body"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn every_built_file_is_served_byte_for_byte_with_its_type_caching_and_gzip() {
    let server = TestServer::start().await;
    let mut first_load_js_gzip = 0;
    let index = String::from_utf8(std::fs::read(dist().join("index.html")).expect("index"))
        .expect("UTF-8 index.html");
    for (path, bytes) in built_files() {
        let url = format!("{}{path}", server.url());
        let hashed = path.starts_with("/assets/");
        let cache = if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };

        let plain = send(Method::GET, url.clone(), None).await;
        assert_eq!(plain.status(), StatusCode::OK, "GET {path}");
        let headers = plain.headers().clone();
        assert_security_headers(&path, &headers);
        assert_eq!(
            header(&headers, "content-type"),
            expected_type(&path),
            "{path}"
        );
        assert_eq!(header(&headers, "cache-control"), cache, "{path}");
        assert!(
            headers.get("content-encoding").is_none(),
            "{path}: not asked"
        );
        assert_eq!(plain.bytes().await.expect("body"), bytes, "{path}");

        let packed = send(Method::GET, url.clone(), Some("br, gzip;q=0.8, deflate")).await;
        assert_eq!(packed.status(), StatusCode::OK, "GET {path} (gzip)");
        let headers = packed.headers().clone();
        assert_security_headers(&path, &headers);
        assert_eq!(
            header(&headers, "content-type"),
            expected_type(&path),
            "{path}"
        );
        assert_eq!(header(&headers, "cache-control"), cache, "{path}");
        let body = packed.bytes().await.expect("body");
        let text_like = [".js", ".css", ".html"].iter().any(|e| path.ends_with(e));
        if text_like && bytes.len() > 1024 {
            assert_eq!(
                headers.get("content-encoding").map(|v| v.as_bytes()),
                Some(&b"gzip"[..]),
                "{path} ({} bytes) is sent gzip'd when the browser accepts it",
                bytes.len()
            );
        }
        if headers.get("content-encoding").is_some() {
            assert_eq!(header(&headers, "content-encoding"), "gzip", "{path}");
            assert_eq!(header(&headers, "vary"), "accept-encoding", "{path}");
            assert!(body.len() < bytes.len(), "{path}: gzip is smaller");
            assert_eq!(gunzip(&body), bytes, "{path}: gzip unpacks to the file");
            if path.ends_with(".js") && index.contains(&format!("\"{path}\"")) {
                first_load_js_gzip += body.len();
            }
            // A browser that refuses gzip gets the file as it is.
            let refused = send(Method::GET, url.clone(), Some("gzip;q=0, identity")).await;
            assert!(
                refused.headers().get("content-encoding").is_none(),
                "{path}"
            );
            assert_eq!(refused.bytes().await.expect("body"), bytes, "{path}");
        } else {
            assert_eq!(body, bytes, "{path}");
        }

        let head = send(Method::HEAD, url, None).await;
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(header(head.headers(), "cache-control"), cache, "{path}");
        assert_eq!(
            header(head.headers(), "content-length"),
            bytes.len().to_string(),
            "HEAD {path}"
        );
        assert!(head.bytes().await.expect("body").is_empty(), "HEAD {path}");
    }
    assert!(first_load_js_gzip > 0, "index.html loads gzip'd JavaScript");
    eprintln!("first load: {first_load_js_gzip} bytes of gzip'd JavaScript");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_a_plain_404_and_other_methods_a_405() {
    let server = TestServer::start().await;
    let js = built_files()
        .into_iter()
        .map(|(path, _)| path)
        .find(|p| p.ends_with(".js"))
        .expect("a JavaScript file");
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/assets/nope.js"),
        (Method::HEAD, "/assets/nope.js"),
        // A gRPC method's path read with GET is not a call: it never reaches the service.
        (Method::GET, "/flotilla.v1.ClusterService/ListClusters"),
        (Method::GET, "/grpc.health.v1.Health/Check"),
    ] {
        let response = send(method.clone(), format!("{}{path}", server.url()), None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let headers = response.headers().clone();
        assert_security_headers(path, &headers);
        assert_eq!(
            header(&headers, "content-type"),
            "text/plain; charset=utf-8"
        );
        assert!(headers.get("grpc-status").is_none(), "{headers:?}");
    }
    for (method, path) in [
        (Method::POST, "/"),
        (Method::POST, "/index.html"),
        (Method::PUT, "/index.html"),
        (Method::DELETE, js.as_str()),
        (Method::POST, "/assets/nope.js"),
    ] {
        let response = send(method.clone(), format!("{}{path}", server.url()), None).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let headers = response.headers().clone();
        assert_security_headers(path, &headers);
        assert_eq!(header(&headers, "allow"), "GET, HEAD", "{method} {path}");
        assert!(headers.get("grpc-status").is_none(), "{headers:?}");
    }
    server.shutdown().await;
}

/// A grpc-web call over HTTP/1.1: (HTTP status, grpc-status, the messages).
async fn grpc_web(server: &TestServer, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut request = http()
        .post(format!("{}{path}", server.url()))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        // An empty message in one uncompressed frame.
        .body(vec![0u8, 0, 0, 0, 0]);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("grpc-web call");
    let status = response.status().as_u16();
    let mut grpc_status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().expect("ASCII").to_string());
    let body = response.bytes().await.expect("body");
    let mut messages = Vec::new();
    let mut rest = &body[..];
    while rest.len() >= 5 {
        let flags = rest[0];
        let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let frame = &rest[5..5 + length];
        if flags & 0x80 != 0 {
            let trailers = String::from_utf8_lossy(frame);
            for line in trailers.split("\r\n") {
                if let Some(value) = line.strip_prefix("grpc-status:") {
                    grpc_status = Some(value.trim().to_string());
                }
            }
        } else {
            messages.extend_from_slice(frame);
        }
        rest = &rest[5 + length..];
    }
    (
        status,
        grpc_status.expect("a grpc-status in headers or trailers"),
        messages,
    )
}

#[tokio::test]
async fn grpc_and_grpc_web_keep_working_on_the_same_port() {
    let server = TestServer::start().await;
    // grpc-web: Health/Check answers SERVING (field 1 = 1).
    let (http_status, grpc_status, message) =
        grpc_web(&server, "/grpc.health.v1.Health/Check", None).await;
    assert_eq!((http_status, grpc_status.as_str()), (200, "0"));
    assert_eq!(message, vec![0x08, 0x01], "HealthCheckResponse{{SERVING}}");
    // grpc-web without a token is refused; with one it is served.
    let list = "/flotilla.v1.ClusterService/ListClusters";
    let (_, grpc_status, _) = grpc_web(&server, list, None).await;
    assert_eq!(grpc_status, (Code::Unauthenticated as i32).to_string());
    let (_, grpc_status, _) = grpc_web(&server, list, Some(ADMIN_TOKEN)).await;
    assert_eq!(grpc_status, "0");

    // gRPC over HTTP/2.
    let health = HealthClient::new(server.raw_channel().await)
        .check(HealthCheckRequest::default())
        .await
        .expect("health");
    assert_eq!(health.into_inner().status, ServingStatus::Serving as i32);
    let refused = ClusterServiceClient::new(server.channel_as(None).await)
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    ClusterServiceClient::new(server.channel().await)
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("with the admin token");
    server.shutdown().await;
}

#[tokio::test]
async fn console_false_serves_no_console_and_grpc_still_works() {
    let server = TestServer::start_with(|settings| settings.console = false).await;
    for (path, _) in built_files() {
        let response = send(Method::GET, format!("{}{path}", server.url()), None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
    }
    let response = send(Method::GET, format!("{}/", server.url()), None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET /");
    let (_, grpc_status, message) = grpc_web(&server, "/grpc.health.v1.Health/Check", None).await;
    assert_eq!((grpc_status.as_str(), message), ("0", vec![0x08, 0x01]));
    let refused = ClusterServiceClient::new(server.channel_as(None).await)
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    server.shutdown().await;
}
