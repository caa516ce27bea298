//! The browser console on the API port: the files Vite built into console/dist (committed, and
//! embedded at build time by build.rs) answered by the outermost HTTP layer, before CORS,
//! grpc-web and authentication.
//!
//! A browser loads the console with GET and HEAD; gRPC and grpc-web calls are always POST. So
//! this layer answers every GET and HEAD itself (a file, or a plain 404) and never passes one on:
//! a request without a token can reach no gRPC service through it. Other methods on the
//! console's own paths get 405; everything else goes to the gRPC stack exactly as before.

use std::{
    future::{Ready, ready},
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::future::Either;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tonic::body::Body;

/// One built file of the console.
#[derive(Debug)]
pub struct ConsoleFile {
    /// The URL path, such as `/assets/index-1ln06iYR.js`.
    pub path: &'static str,
    pub body: &'static [u8],
    /// `gzip -9` of `body`, when that is smaller.
    pub gzip: Option<&'static [u8]>,
}

/// Every file of console/dist, sorted by path (written by build.rs).
static FILES: &[ConsoleFile] = include!(concat!(env!("OUT_DIR"), "/console_files.rs"));

/// No inline script or style, no data: URLs, nothing from elsewhere, not framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";
/// Vite puts a hash of the content in every file name under /assets/.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Anything else (index.html, favicon.svg) is checked with the server on every use.
const REVALIDATE: &str = "no-cache";

/// Serves the console in front of `S` (the gRPC stack).
#[derive(Clone)]
pub struct ConsoleLayer {
    /// Empty when the console is turned off: then every GET and HEAD is a 404.
    files: &'static [ConsoleFile],
}

impl ConsoleLayer {
    /// The embedded console, or (`enabled` false) none.
    pub fn new(enabled: bool) -> ConsoleLayer {
        ConsoleLayer {
            files: if enabled { FILES } else { &[] },
        }
    }
}

impl<S> tower::Layer<S> for ConsoleLayer {
    type Service = ConsoleService<S>;

    fn layer(&self, inner: S) -> ConsoleService<S> {
        ConsoleService {
            inner,
            files: self.files,
        }
    }
}

#[derive(Clone)]
pub struct ConsoleService<S> {
    inner: S,
    files: &'static [ConsoleFile],
}

impl<S> tower::Service<Request<Body>> for ConsoleService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match answer(
            self.files,
            request.method(),
            request.uri().path(),
            request.headers(),
        ) {
            Some(response) => Either::Left(ready(Ok(response))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

/// The console's answer, or `None` for a request that is the gRPC stack's.
fn answer(
    files: &[ConsoleFile],
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    let file = find(files, path);
    if method == Method::GET || method == Method::HEAD {
        let head = method == Method::HEAD;
        return Some(match file {
            Some(file) => serve(file, head, accepts_gzip(headers)),
            None => plain(StatusCode::NOT_FOUND, "not found\n", head),
        });
    }
    let console_path = file.is_some() || (!files.is_empty() && path.starts_with("/assets/"));
    console_path.then(|| {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD here\n",
            false,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        response
    })
}

fn find<'a>(files: &'a [ConsoleFile], path: &str) -> Option<&'a ConsoleFile> {
    let path = if path == "/" { "/index.html" } else { path };
    files
        .binary_search_by(|file| file.path.cmp(path))
        .ok()
        .map(|at| &files[at])
}

fn serve(file: &ConsoleFile, head: bool, gzip_accepted: bool) -> Response<Body> {
    let (bytes, gzipped) = match file.gzip {
        Some(packed) if gzip_accepted => (packed, true),
        _ => (file.body, false),
    };
    let cache = if file.path.starts_with("/assets/") {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let mut response = respond(
        StatusCode::OK,
        content_type(file.path),
        cache,
        Bytes::from_static(bytes),
        head,
    );
    let headers = response.headers_mut();
    if file.gzip.is_some() {
        // Caches keep the two variants apart.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn plain(status: StatusCode, text: &'static str, head: bool) -> Response<Body> {
    respond(
        status,
        "text/plain; charset=utf-8",
        REVALIDATE,
        Bytes::from_static(text.as_bytes()),
        head,
    )
}

/// A response with the security headers every console response carries. HEAD gets the headers
/// of GET (Content-Length included) and no body.
fn respond(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    bytes: Bytes,
    head: bool,
) -> Response<Body> {
    let length = HeaderValue::from(bytes.len());
    let body = if head {
        Body::empty()
    } else {
        Body::new(Full::new(bytes))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, length);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|param| {
                param
                    .split_once('=')
                    .filter(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                    .is_some_and(|(_, q)| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
                && !refused
        })
}

/// The media type of a console file, by its extension.
fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_sent_only_when_accepted_with_a_non_zero_quality() {
        assert!(accept("gzip, deflate, br, zstd"), "Chromium's header");
        assert!(accept("br;q=1.0, GZIP;q=0.5"));
        assert!(accept("x-gzip"));
        assert!(!accept("gzip;q=0"));
        assert!(!accept("gzip; q=0.000, identity"));
        assert!(!accept("br, deflate"));
        assert!(!accept("gzipped"));
        assert!(!accepts_gzip(&HeaderMap::new()), "no header: identity");
    }

    #[test]
    fn root_is_index_and_lookups_are_exact() {
        static TABLE: &[ConsoleFile] = &[
            ConsoleFile {
                path: "/assets/a-1.js",
                body: b"js",
                gzip: None,
            },
            ConsoleFile {
                path: "/index.html",
                body: b"html",
                gzip: None,
            },
        ];
        assert_eq!(find(TABLE, "/").map(|f| f.body), Some(&b"html"[..]));
        assert_eq!(
            find(TABLE, "/assets/a-1.js").map(|f| f.body),
            Some(&b"js"[..])
        );
        assert!(find(TABLE, "/assets/a-1.JS").is_none());
        assert!(find(TABLE, "/assets/").is_none());
        assert!(
            FILES.windows(2).all(|w| w[0].path < w[1].path),
            "build.rs sorts the table (binary search)"
        );
    }
}
