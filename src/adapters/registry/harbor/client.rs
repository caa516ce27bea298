//! Pure request builders for Harbor's management API (`/api/v2.0`, vendor-apis.md §5) and the
//! one `send` that hands them to the shared transport. Every builder takes the endpoint and the
//! credential and returns a finished request; nothing here does I/O.
//!
//! Path rules: project names go in once-encoded (and with `X-Is-Resource-Name: true`, so a
//! project called `123` is not taken for project id 123); repository names go in **encoded
//! twice** (`app/web` → `app%252Fweb`), because Harbor's router decodes the path once before it
//! matches routes.

use base64::Engine;
use http::HeaderValue;
use percent_encoding::utf8_percent_encode;
use zeroize::Zeroizing;

use crate::adapters::{
    ErrorClass, RFC3986, Result, VendorError, VendorHttp,
    transport::{Idempotency, LimitKey, RawResponse},
};

use super::{VENDOR, error::parse_error};

/// Where the management API lives below the Harbor URL.
pub const API_PREFIX: &str = "/api/v2.0";

/// The Harbor URL, checked once: `scheme://host[:port][/path]`, no trailing `/`, no
/// `/api/v2.0` (a pasted API URL is accepted and trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
    /// `host[:port]`, what a pull secret names.
    server: String,
}

impl Endpoint {
    /// Plain `http` only for loopback hosts (tests, port-forwards): the credential travels in
    /// every request.
    pub fn parse(url: &str) -> std::result::Result<Endpoint, String> {
        let trimmed = url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix(API_PREFIX).unwrap_or(trimmed);
        let trimmed = trimmed.trim_end_matches('/');
        let uri: http::Uri = trimmed
            .parse()
            .map_err(|_| format!("endpoint {url:?} is not a URL"))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("endpoint {url:?} has no host"))?;
        if uri.query().is_some() || trimmed.contains('#') || trimmed.contains('@') {
            return Err(format!(
                "endpoint {url:?} must not have a query, fragment or user info"
            ));
        }
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback(host) => {}
            Some("http") => {
                return Err(format!(
                    "endpoint {url:?} must use https: the credential is sent with every request"
                ));
            }
            _ => return Err(format!("endpoint {url:?} must start with https://")),
        }
        let server = match uri.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Ok(Endpoint {
            base: trimmed.to_string(),
            server,
        })
    }

    /// `path_and_query` starts with `/api/v2.0` or `/service`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    pub fn server(&self) -> &str {
        &self.server
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "[::1]" || host == "::1" || host.starts_with("127.")
}

/// A Harbor user or robot account and its password or secret.
#[derive(Clone)]
pub struct BasicAuth {
    username: String,
    password: Zeroizing<String>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BasicAuth({}, <redacted>)", self.username)
    }
}

impl BasicAuth {
    pub fn new(username: &str, password: &str) -> std::result::Result<BasicAuth, &'static str> {
        if username.is_empty() {
            return Err("the Harbor credential has no username");
        }
        if username.contains(':') {
            return Err("a Harbor username must not contain ':'");
        }
        if password.is_empty() {
            return Err("the Harbor credential has no password");
        }
        Ok(BasicAuth {
            username: username.to_string(),
            password: Zeroizing::new(password.to_string()),
        })
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// The `Authorization` header, marked sensitive so that `http`'s `Debug` hides it.
    fn header(&self) -> std::result::Result<HeaderValue, &'static str> {
        let pair = Zeroizing::new(format!("{}:{}", self.username, self.password.as_str()));
        let encoded =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
        let mut value = HeaderValue::from_str(&format!("Basic {}", encoded.as_str()))
            .map_err(|_| "the Harbor credential cannot go into a header")?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `text` with the password cut out, for messages that came back from the network.
    pub fn scrub(&self, text: &str) -> String {
        if self.password.len() >= 4 && text.contains(self.password.as_str()) {
            text.replace(self.password.as_str(), "<redacted>")
        } else {
            text.to_string()
        }
    }
}

/// One path segment, encoded once.
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, RFC3986).to_string()
}

/// A repository name below its project, encoded twice (`a/b` → `a%252Fb`).
pub fn repository_segment(rest: &str) -> String {
    segment(&segment(rest))
}

/// `/api/v2.0/projects/{project}/repositories/{repository}`.
fn repository_path(project: &str, rest: &str) -> String {
    format!(
        "{API_PREFIX}/projects/{}/repositories/{}",
        segment(project),
        repository_segment(rest)
    )
}

fn page_query(page: u64, page_size: u32) -> String {
    format!("page={page}&page_size={page_size}")
}

fn request(
    method: http::Method,
    url: String,
    auth: &BasicAuth,
    body: Option<&serde_json::Value>,
    operation: &'static str,
) -> Result<http::Request<Vec<u8>>> {
    let config = |message: String| {
        VendorError::new(
            ErrorClass::InvalidConfiguration,
            VENDOR,
            operation,
            "",
            message,
        )
    };
    let authorization = auth
        .header()
        .map_err(|m| VendorError::new(ErrorClass::CredentialsInvalid, VENDOR, operation, "", m))?;
    let mut builder = http::Request::builder()
        .method(method)
        .uri(&url)
        .header(http::header::AUTHORIZATION, authorization)
        .header(http::header::ACCEPT, "application/json")
        .header("X-Request-Id", uuid::Uuid::new_v4().to_string())
        // Project names that are all digits are names, not ids.
        .header("X-Is-Resource-Name", "true");
    let bytes = match body {
        Some(body) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            serde_json::to_vec(body).map_err(|err| config(err.to_string()))?
        }
        None => Vec::new(),
    };
    builder
        .body(bytes)
        .map_err(|err| config(format!("cannot build a request for {url}: {err}")))
}

/// `GET /users/current`: who the credential is (users only; robots are not users).
pub fn current_user_request(e: &Endpoint, a: &BasicAuth) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!("{API_PREFIX}/users/current"));
    request(http::Method::GET, url, a, None, "GetCurrentUser")
}

/// `GET /users/current/permissions`: needs a logged-in caller (user or robot); Harbor treats
/// credentials that do not hold as anonymous, which this answers with 401.
pub fn current_permissions_request(e: &Endpoint, a: &BasicAuth) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!("{API_PREFIX}/users/current/permissions"));
    request(http::Method::GET, url, a, None, "GetCurrentUserPermissions")
}

/// `GET /systeminfo`: the Harbor version (given to authenticated callers).
pub fn systeminfo_request(e: &Endpoint, a: &BasicAuth) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!("{API_PREFIX}/systeminfo"));
    request(http::Method::GET, url, a, None, "GetSystemInfo")
}

pub fn list_projects_request(
    e: &Endpoint,
    a: &BasicAuth,
    page: u64,
    page_size: u32,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!(
        "{API_PREFIX}/projects?{}&with_detail=true",
        page_query(page, page_size)
    ));
    request(http::Method::GET, url, a, None, "ListProjects")
}

pub fn get_project_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!("{API_PREFIX}/projects/{}", segment(project)));
    request(http::Method::GET, url, a, None, "GetProject")
}

/// `POST /projects` with `{"project_name", "metadata": {"public": "true"|"false"}}` (metadata
/// values are strings in Harbor).
pub fn create_project_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: &str,
    public: bool,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!("{API_PREFIX}/projects"));
    let body = serde_json::json!({
        "project_name": project,
        "metadata": {"public": if public { "true" } else { "false" }},
    });
    request(http::Method::POST, url, a, Some(&body), "CreateProject")
}

pub fn delete_project_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!("{API_PREFIX}/projects/{}", segment(project)));
    request(http::Method::DELETE, url, a, None, "DeleteProject")
}

/// `GET /projects/{project}/repositories`, or `GET /repositories` for every project.
pub fn list_repositories_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: Option<&str>,
    page: u64,
    page_size: u32,
) -> Result<http::Request<Vec<u8>>> {
    let path = match project {
        Some(project) => format!("{API_PREFIX}/projects/{}/repositories", segment(project)),
        None => format!("{API_PREFIX}/repositories"),
    };
    let url = e.url(&format!("{path}?{}", page_query(page, page_size)));
    request(http::Method::GET, url, a, None, "ListRepositories")
}

pub fn delete_repository_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: &str,
    rest: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&repository_path(project, rest));
    request(http::Method::DELETE, url, a, None, "DeleteRepository")
}

pub fn list_artifacts_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: &str,
    rest: &str,
    page: u64,
    page_size: u32,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!(
        "{}/artifacts?{}&with_tag=true",
        repository_path(project, rest),
        page_query(page, page_size)
    ));
    request(http::Method::GET, url, a, None, "ListArtifacts")
}

/// `reference`: a tag or a digest (already checked by `spec`).
pub fn get_artifact_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: &str,
    rest: &str,
    reference: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!(
        "{}/artifacts/{}?with_tag=true",
        repository_path(project, rest),
        segment(reference)
    ));
    request(http::Method::GET, url, a, None, "GetArtifact")
}

pub fn delete_artifact_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: &str,
    rest: &str,
    digest: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!(
        "{}/artifacts/{}",
        repository_path(project, rest),
        segment(digest)
    ));
    request(http::Method::DELETE, url, a, None, "DeleteArtifact")
}

/// `DELETE …/artifacts/{tag}/tags/{tag}`: the tag names its own artifact, so one call does.
pub fn delete_tag_request(
    e: &Endpoint,
    a: &BasicAuth,
    project: &str,
    rest: &str,
    tag: &str,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!(
        "{}/artifacts/{}/tags/{}",
        repository_path(project, rest),
        segment(tag),
        segment(tag)
    ));
    request(http::Method::DELETE, url, a, None, "DeleteTag")
}

/// `POST /robots` with a `RobotCreate` body.
pub fn create_robot_request(
    e: &Endpoint,
    a: &BasicAuth,
    body: &serde_json::Value,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!("{API_PREFIX}/robots"));
    request(http::Method::POST, url, a, Some(body), "CreateRobot")
}

/// `GET /robots?q=name%3D<full name>`: a robot account by its full name.
pub fn find_robot_request(
    e: &Endpoint,
    a: &BasicAuth,
    full_name: &str,
) -> Result<http::Request<Vec<u8>>> {
    let q = utf8_percent_encode(&format!("name={full_name}"), RFC3986).to_string();
    let url = e.url(&format!("{API_PREFIX}/robots?q={q}&page=1&page_size=10"));
    request(http::Method::GET, url, a, None, "ListRobots")
}

pub fn delete_robot_request(
    e: &Endpoint,
    a: &BasicAuth,
    robot_id: u64,
) -> Result<http::Request<Vec<u8>>> {
    let url = e.url(&format!("{API_PREFIX}/robots/{robot_id}"));
    request(http::Method::DELETE, url, a, None, "DeleteRobot")
}

/// The `RobotCreate` body for a pull-only robot: one project is a project-level robot (what a
/// project admin may create; Harbor names it `robot$<project>+<name>`), several projects (or
/// none: every project) a system-level one with a pull permission per project.
pub fn pull_robot_body(name: &str, projects: &[String], days: u32) -> serde_json::Value {
    let pull = serde_json::json!([{"resource": "repository", "action": "pull"}]);
    let permission = |namespace: &str| serde_json::json!({"kind": "project", "namespace": namespace, "access": pull});
    let (level, permissions): (&str, Vec<serde_json::Value>) = match projects {
        [] => ("system", vec![permission("*")]),
        [one] => ("project", vec![permission(one)]),
        many => ("system", many.iter().map(|p| permission(p)).collect()),
    };
    serde_json::json!({
        "name": name,
        "description": "Flotilla image pull secret (pull only)",
        "level": level,
        "disable": false,
        "duration": days,
        "permissions": permissions,
    })
}

/// The full name Harbor gives the robot `pull_robot_body` describes (`prefix` is `robot$`
/// unless an operator changed `ROBOT_NAME_PREFIX`).
pub fn pull_robot_full_name(prefix: &str, name: &str, projects: &[String]) -> String {
    match projects {
        [one] => format!("{prefix}{one}+{name}"),
        _ => format!("{prefix}{name}"),
    }
}

/// Sends through the shared transport (throttling, retries with Retry-After, timeouts); the
/// password is cut out of anything that comes back.
pub async fn send<B>(
    http: &VendorHttp,
    limit: &LimitKey,
    auth: &BasicAuth,
    operation: &'static str,
    idempotency: Idempotency,
    build: B,
) -> Result<RawResponse>
where
    B: Fn() -> Result<http::Request<Vec<u8>>>,
{
    http.send(limit, operation, idempotency, build, parse_error)
        .await
        .map_err(|mut err| {
            err.message = auth.scrub(&err.message);
            err.code = auth.scrub(&err.code);
            err
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::parse("https://harbor.example.com:8443/api/v2.0/").unwrap()
    }

    fn auth() -> BasicAuth {
        BasicAuth::new("robot$ci", "S3cret-pass").unwrap()
    }

    #[test]
    fn endpoints() {
        let e = endpoint();
        assert_eq!(
            e.url("/api/v2.0/projects"),
            "https://harbor.example.com:8443/api/v2.0/projects"
        );
        assert_eq!(e.server(), "harbor.example.com:8443");
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:9000").unwrap().server(),
            "127.0.0.1:9000"
        );
        for bad in [
            "http://harbor.example.com",
            "ftp://harbor.example.com",
            "harbor.example.com",
            "https://harbor.example.com/?x=1",
            "https://user@harbor.example.com",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repository_names_are_encoded_twice_and_projects_once() {
        let req = list_artifacts_request(&endpoint(), &auth(), "team", "app/web", 3, 100).unwrap();
        assert_eq!(
            req.uri().to_string(),
            "https://harbor.example.com:8443/api/v2.0/projects/team/repositories/app%252Fweb/artifacts?page=3&page_size=100&with_tag=true"
        );
        assert_eq!(req.headers()["x-is-resource-name"], "true");
        let req = delete_tag_request(&endpoint(), &auth(), "team", "a/b/c", "v1").unwrap();
        assert!(
            req.uri()
                .path()
                .ends_with("/repositories/a%252Fb%252Fc/artifacts/v1/tags/v1"),
            "{}",
            req.uri()
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let req = delete_artifact_request(&endpoint(), &auth(), "team", "app", &digest).unwrap();
        assert!(
            req.uri()
                .path()
                .ends_with(&format!("/artifacts/sha256%3A{}", "a".repeat(64)))
        );
    }

    #[test]
    fn basic_auth_is_sensitive_and_scrubbed() {
        let req = systeminfo_request(&endpoint(), &auth()).unwrap();
        let header = &req.headers()[http::header::AUTHORIZATION];
        assert!(header.is_sensitive());
        let expected = base64::engine::general_purpose::STANDARD.encode("robot$ci:S3cret-pass");
        assert_eq!(header.to_str().unwrap(), format!("Basic {expected}"));
        assert!(!format!("{req:?}").contains(&expected));
        assert!(!format!("{:?}", auth()).contains("S3cret"));
        assert_eq!(auth().scrub("x S3cret-pass y"), "x <redacted> y");
        assert!(BasicAuth::new("a:b", "p").is_err());
        assert!(BasicAuth::new("a", "").is_err());
    }

    #[test]
    fn create_project_body() {
        let req = create_project_request(&endpoint(), &auth(), "team", true).unwrap();
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"project_name": "team", "metadata": {"public": "true"}})
        );
    }

    #[test]
    fn pull_robots_are_pull_only() {
        let one = pull_robot_body("ps-1", &["team".into()], 30);
        assert_eq!(one["level"], "project");
        assert_eq!(one["duration"], 30);
        assert_eq!(
            one["permissions"],
            serde_json::json!([{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}])
        );
        let two = pull_robot_body("ps-1", &["a".into(), "b".into()], 1);
        assert_eq!(two["level"], "system");
        assert_eq!(two["permissions"].as_array().unwrap().len(), 2);
        let all = pull_robot_body("ps-1", &[], 1);
        assert_eq!(all["permissions"][0]["namespace"], "*");
    }
}
