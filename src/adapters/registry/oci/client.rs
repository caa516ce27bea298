//! The distribution API: pure request builders, the registry's answers, and the one `send`,
//! which logs in as the registry asks — the token flow (`WWW-Authenticate: Bearer realm=…,
//! service=…,scope=…`, tokens cached per scope until shortly before they expire) or basic auth
//! — over the shared transport (rate limit, retries) and the outbound address policy.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    config::OciSettings,
    error::{VENDOR, parse_error},
    spec::MANIFEST_ACCEPT,
};
use crate::adapters::{
    ErrorClass, LimitKey, Result, VendorError, VendorHttp,
    registry::outbound::CheckedResolver,
    transport::{Idempotency, RawResponse},
};

/// The scope that lists the catalog.
pub const CATALOG_SCOPE: &str = "registry:catalog:*";

pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub fn delete_scope(repository: &str) -> String {
    format!("repository:{repository}:delete")
}

/// What the registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
        /// `insufficient_scope` when a token was sent but does not allow the call.
        error: Option<String>,
    },
}

impl Challenge {
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let params = auth_params(rest);
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
            error: params.get("error").cloned(),
        })
    }
}

/// `realm="…",service="…"` (quoted or token values, commas inside quotes kept).
fn auth_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    params
}

/// The `last` of a `Link: <…?last=x&n=y>; rel="next"` header, if there is a next page.
pub fn next_link_last(headers: &http::HeaderMap, base: &reqwest::Url) -> Option<Option<String>> {
    for value in headers.get_all(http::header::LINK) {
        let Ok(text) = value.to_str() else { continue };
        for link in text.split(',') {
            let mut parts = link.split(';');
            let target = parts.next()?.trim();
            let is_next = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if !is_next {
                continue;
            }
            let target = target.trim_start_matches('<').trim_end_matches('>');
            let url = base.join(target).ok()?;
            let last = url
                .query_pairs()
                .find(|(k, _)| k == "last")
                .map(|(_, v)| v.into_owned());
            return Some(last);
        }
    }
    None
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// `GET /v2/_catalog` and `GET /v2/<name>/tags/list`.
#[derive(Debug, Deserialize)]
pub struct CatalogAnswer {
    #[serde(default)]
    pub repositories: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct TagsAnswer {
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

struct CachedToken {
    token: Zeroizing<String>,
    use_until: Instant,
}

#[derive(Default)]
struct AuthState {
    /// The scheme the registry asked for, once it did.
    challenge: Option<Challenge>,
    /// Bearer tokens by the scope they were asked for ("" for the ping).
    tokens: HashMap<String, CachedToken>,
}

/// One registry: its endpoint, credentials and what it said about logging in.
pub struct OciClient {
    pub base: reqwest::Url,
    http: VendorHttp,
    resolver: Arc<CheckedResolver>,
    username: Option<String>,
    password: Option<Zeroizing<String>>,
    key: LimitKey,
    pub settings: OciSettings,
    auth: Mutex<AuthState>,
}

impl OciClient {
    pub fn new(
        base: reqwest::Url,
        http: VendorHttp,
        resolver: Arc<CheckedResolver>,
        credentials: Option<(String, Zeroizing<String>)>,
        settings: OciSettings,
    ) -> OciClient {
        let (username, password) = match credentials {
            Some((u, p)) => (Some(u), Some(p)),
            None => (None, None),
        };
        let key = LimitKey {
            vendor: VENDOR,
            account: username.clone().unwrap_or_default(),
            region: base.host_str().unwrap_or_default().to_string(),
        };
        OciClient {
            base,
            http,
            resolver,
            username,
            password,
            key,
            settings,
            auth: Mutex::default(),
        }
    }

    /// `path` under the endpoint, with `query` pairs.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(path);
        if query.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(query);
        }
        url
    }

    /// Number of tokens cached (tests of the cache).
    pub fn cached_tokens(&self) -> usize {
        self.lock().tokens.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn basic_header(&self) -> Option<Zeroizing<String>> {
        let (user, pass) = (self.username.as_ref()?, self.password.as_ref()?);
        let raw = Zeroizing::new(format!("{user}:{}", pass.as_str()));
        Some(Zeroizing::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
        )))
    }

    fn cached_token(&self, scope: &str) -> Option<Zeroizing<String>> {
        let state = self.lock();
        state
            .tokens
            .get(scope)
            .filter(|t| t.use_until > Instant::now())
            .map(|t| Zeroizing::new(format!("Bearer {}", t.token.as_str())))
    }

    /// What to send with a request for `scope`: basic credentials once the registry asked for
    /// them, a cached or fresh token once it asked for tokens, nothing before it asked.
    async fn authorization(
        &self,
        scope: &str,
        operation: &'static str,
    ) -> Result<Option<Zeroizing<String>>> {
        let challenge = self.lock().challenge.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic_header()),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(token) = self.cached_token(scope) {
                    return Ok(Some(token));
                }
                let scope_opt = (!scope.is_empty()).then_some(scope);
                self.fetch_token(&realm, service.as_deref(), scope_opt, scope, operation)
                    .await
                    .map(Some)
            }
        }
    }

    /// `GET realm?service=…&scope=…` with basic credentials (when there are any); caches the
    /// token under `cache_key` and returns the `Authorization` value.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        cache_key: &str,
        operation: &'static str,
    ) -> Result<Zeroizing<String>> {
        let mut url = reqwest::Url::parse(realm).map_err(|err| {
            VendorError::new(
                ErrorClass::InvalidConfiguration,
                VENDOR,
                operation,
                "BadTokenRealm",
                format!("the registry's token realm {realm:?} is not a URL: {err}"),
            )
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
        }
        self.resolver.admit(VENDOR, operation, &url)?;
        let basic = self.basic_header();
        let raw = self
            .http
            .send(
                &self.key,
                operation,
                Idempotency::Idempotent,
                || token_request(&url, basic.as_deref().map(String::as_str)),
                |raw, op| match raw.status {
                    401 | 403 => Some(
                        VendorError::new(
                            ErrorClass::CredentialsInvalid,
                            VENDOR,
                            op,
                            "UNAUTHORIZED",
                            "the registry's token service refused the credentials",
                        )
                        .with_status(raw.status),
                    ),
                    _ => parse_error(raw, op),
                },
            )
            .await?;
        let answer: TokenAnswer = raw.json(VENDOR, operation)?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                VendorError::new(
                    ErrorClass::Unknown,
                    VENDOR,
                    operation,
                    "MalformedResponse",
                    "the token service answered without a token",
                )
            })?;
        // The spec's default lifetime is 60 s; use a token until a margin before it expires.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(1));
        let margin = self.settings.token_refresh_margin.min(lifetime / 2);
        let header = Zeroizing::new(format!("Bearer {token}"));
        self.lock().tokens.insert(
            cache_key.to_string(),
            CachedToken {
                token: Zeroizing::new(token),
                use_until: Instant::now() + lifetime - margin,
            },
        );
        Ok(header)
    }

    /// The one send: the request `build` makes (given the `Authorization` value), sent through
    /// the transport; on a 401 challenge it logs in as asked and tries once more.
    pub async fn send<B>(
        &self,
        operation: &'static str,
        scope: &str,
        idempotency: Idempotency,
        build: B,
    ) -> Result<RawResponse>
    where
        B: Fn(Option<&str>) -> Result<http::Request<Vec<u8>>>,
    {
        let authorization = self.authorization(scope, operation).await?;
        let first = self
            .send_once(
                operation,
                idempotency,
                &build,
                authorization.as_deref().map(String::as_str),
                true,
            )
            .await?;
        if first.status != 401 {
            return Ok(first);
        }
        let challenge = first
            .headers
            .get(http::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse);
        let retry_with = match &challenge {
            Some(Challenge::Basic) => {
                if authorization.is_some() {
                    // We sent the credentials and they were refused.
                    return Err(credentials_refused(&first, operation));
                }
                self.lock().challenge = Some(Challenge::Basic);
                match self.basic_header() {
                    Some(basic) => basic,
                    None => return Err(credentials_needed(operation)),
                }
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
                error,
            }) => {
                if authorization.is_some() {
                    // A token was sent and was not enough.
                    return Err(if error.as_deref() == Some("insufficient_scope") {
                        VendorError::new(
                            ErrorClass::CredentialsForbidden,
                            VENDOR,
                            operation,
                            "DENIED",
                            format!(
                                "the registry's token service did not grant {}",
                                asked.as_deref().unwrap_or(scope)
                            ),
                        )
                        .with_status(401)
                    } else {
                        credentials_refused(&first, operation)
                    });
                }
                self.lock().challenge = Some(Challenge::Bearer {
                    realm: realm.clone(),
                    service: service.clone(),
                    scope: None,
                    error: None,
                });
                // The registry names the exact scope it wants; ours is the cache key.
                let wanted = asked.as_deref().or((!scope.is_empty()).then_some(scope));
                self.fetch_token(realm, service.as_deref(), wanted, scope, operation)
                    .await?
            }
            None => return Err(credentials_refused(&first, operation)),
        };
        let second = self
            .send_once(
                operation,
                idempotency,
                &build,
                Some(retry_with.as_str()),
                false,
            )
            .await?;
        Ok(second)
    }

    async fn send_once<B>(
        &self,
        operation: &'static str,
        idempotency: Idempotency,
        build: &B,
        authorization: Option<&str>,
        challenge_allowed: bool,
    ) -> Result<RawResponse>
    where
        B: Fn(Option<&str>) -> Result<http::Request<Vec<u8>>>,
    {
        self.http
            .send(
                &self.key,
                operation,
                idempotency,
                || {
                    let request = build(authorization)?;
                    let url = reqwest::Url::parse(&request.uri().to_string()).map_err(|err| {
                        VendorError::new(
                            ErrorClass::InvalidConfiguration,
                            VENDOR,
                            operation,
                            "BadUrl",
                            err.to_string(),
                        )
                    })?;
                    self.resolver.admit(VENDOR, operation, &url)?;
                    Ok(request)
                },
                |raw, op| {
                    if raw.status == 401 && challenge_allowed {
                        None
                    } else {
                        parse_error(raw, op)
                    }
                },
            )
            .await
    }
}

fn credentials_refused(raw: &RawResponse, operation: &'static str) -> VendorError {
    parse_error(raw, operation)
        .map(|mut err| {
            err.class = ErrorClass::CredentialsInvalid;
            err
        })
        .unwrap_or_else(|| credentials_needed(operation))
}

fn credentials_needed(operation: &'static str) -> VendorError {
    VendorError::new(
        ErrorClass::CredentialsInvalid,
        VENDOR,
        operation,
        "UNAUTHORIZED",
        "the registry requires credentials",
    )
    .with_status(401)
}

fn request(
    method: http::Method,
    url: &reqwest::Url,
    accept: Option<&str>,
    authorization: Option<&str>,
) -> Result<http::Request<Vec<u8>>> {
    let mut builder = http::Request::builder().method(method).uri(url.as_str());
    if let Some(accept) = accept {
        builder = builder.header(http::header::ACCEPT, accept);
    }
    if let Some(authorization) = authorization {
        builder = builder.header(http::header::AUTHORIZATION, authorization);
    }
    builder.body(Vec::new()).map_err(|err| {
        VendorError::new(
            ErrorClass::InvalidConfiguration,
            VENDOR,
            "BuildRequest",
            "BadRequest",
            err.to_string(),
        )
    })
}

/// `GET /v2/`: is this a registry, and how does it want us to log in.
pub fn ping_request(
    client: &OciClient,
    authorization: Option<&str>,
) -> Result<http::Request<Vec<u8>>> {
    request(
        http::Method::GET,
        &client.url("/v2/", &[]),
        None,
        authorization,
    )
}

/// `GET /v2/_catalog?n=…&last=…`.
pub fn catalog_request(
    client: &OciClient,
    n: u32,
    last: Option<&str>,
    authorization: Option<&str>,
) -> Result<http::Request<Vec<u8>>> {
    let n = n.to_string();
    let mut query = vec![("n", n.as_str())];
    if let Some(last) = last {
        query.push(("last", last));
    }
    request(
        http::Method::GET,
        &client.url("/v2/_catalog", &query),
        None,
        authorization,
    )
}

/// `GET /v2/<name>/tags/list?n=…&last=…`.
pub fn tags_request(
    client: &OciClient,
    repository: &str,
    n: u32,
    last: Option<&str>,
    authorization: Option<&str>,
) -> Result<http::Request<Vec<u8>>> {
    let n = n.to_string();
    let mut query = vec![("n", n.as_str())];
    if let Some(last) = last {
        query.push(("last", last));
    }
    let path = format!("/v2/{repository}/tags/list");
    request(
        http::Method::GET,
        &client.url(&path, &query),
        None,
        authorization,
    )
}

/// `GET|HEAD|DELETE /v2/<name>/manifests/<reference>` (reads accept every manifest type).
pub fn manifest_request(
    client: &OciClient,
    method: http::Method,
    repository: &str,
    reference: &str,
    authorization: Option<&str>,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/v2/{repository}/manifests/{reference}");
    let accept = (method != http::Method::DELETE).then_some(MANIFEST_ACCEPT);
    request(method, &client.url(&path, &[]), accept, authorization)
}

/// `GET /v2/<name>/blobs/<digest>`.
pub fn blob_request(
    client: &OciClient,
    repository: &str,
    digest: &str,
    authorization: Option<&str>,
) -> Result<http::Request<Vec<u8>>> {
    let path = format!("/v2/{repository}/blobs/{digest}");
    request(
        http::Method::GET,
        &client.url(&path, &[]),
        None,
        authorization,
    )
}

/// `GET realm?service=…&scope=…` with basic credentials when there are any.
pub fn token_request(url: &reqwest::Url, basic: Option<&str>) -> Result<http::Request<Vec<u8>>> {
    request(http::Method::GET, url, Some("application/json"), basic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="http://127.0.0.1:5001/token",service="reg",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5001/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into()),
                error: None,
            })
        );
        assert_eq!(
            Challenge::parse(r#"Bearer realm="https://auth.example/token", service="x", error="insufficient_scope""#)
                .and_then(|c| match c {
                    Challenge::Bearer { error, .. } => error,
                    Challenge::Basic => None,
                }),
            Some("insufficient_scope".into())
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse("Bearer service=\"x\""), None, "no realm");
    }

    #[test]
    fn link_headers() {
        let base = reqwest::Url::parse("http://127.0.0.1:5000").unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::LINK,
            "</v2/team/app/tags/list?last=v0099&n=100>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link_last(&headers, &base), Some(Some("v0099".into())));
        headers.insert(
            http::header::LINK,
            "</v2/_catalog?last=a%2Fb&n=2>; rel=next".parse().unwrap(),
        );
        assert_eq!(next_link_last(&headers, &base), Some(Some("a/b".into())));
        headers.insert(http::header::LINK, "</x>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link_last(&headers, &base), None);
        assert_eq!(next_link_last(&http::HeaderMap::new(), &base), None);
    }
}
