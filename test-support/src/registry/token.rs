//! Registry bearer tokens for tests. [`TokenSigner`] is the one implementation of signing: RS256
//! JWTs with a test-only key whose self-signed certificate registries trust (`auth.token.
//! rootcertbundle`); each JWT carries the certificate in its `x5c` header, which is how both
//! Distribution v3 and docker-registry 2.8 find the key. Two realms use it: our own token
//! endpoint ([`TokenIssuer`], the distribution spec's `GET /token?service=…&scope=…` with basic
//! credentials, one user who gets every scope) and the Harbor simulator's `/service/token`.
//!
//! The issuer counts what it issued, so tests can check from outside the client that tokens are
//! cached.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::Engine;
use serde_json::{Value, json};

/// The issuer name the registry is configured to trust.
pub const ISSUER: &str = "flotilla-test-issuer";
/// The `service` the registry names in its challenge (the token's audience).
pub const SERVICE: &str = "flotilla-test-registry";

/// A test-only RSA key (2048 bit, PKCS#8): it signs tokens for throw-away registries on loopback
/// and nothing else.
const SIGNING_KEY_PEM: &str = include_str!("token-signing-key.pem");

/// What one token request asked for and what it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The account, or `None` for an anonymous request.
    pub account: Option<String>,
    /// The scopes asked for, as sent (`repository:team/app:pull,push`).
    pub requested: Vec<String>,
    /// Whether a token was issued (false: 401).
    pub granted: bool,
}

struct IssuerState {
    username: String,
    password: String,
    /// Lifetime of the tokens it issues.
    expires_in: u64,
    log: Mutex<Vec<Issued>>,
}

/// A running token issuer on a loopback port; stops with the test's runtime.
pub struct TokenIssuer {
    addr: SocketAddr,
    cert_pem: String,
    state: Arc<IssuerState>,
}

impl TokenIssuer {
    /// Issues tokens to `username`/`password` (every scope it asks for); anyone else gets 401.
    pub async fn start(username: &str, password: &str, expires_in_secs: u64) -> TokenIssuer {
        let state = Arc::new(IssuerState {
            username: username.to_string(),
            password: password.to_string(),
            expires_in: expires_in_secs,
            log: Mutex::default(),
        });
        let router = Router::new()
            .route("/token", get(issue))
            .with_state(state.clone());
        let addr = crate::sim::serve(router).await;
        TokenIssuer {
            addr,
            cert_pem: TokenSigner::test().cert_pem().to_string(),
            state,
        }
    }

    /// The realm URL the registry sends clients to.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The certificate the registry must trust (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Every token request so far, oldest first.
    pub fn issued(&self) -> Vec<Issued> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn time_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

async fn issue(
    State(state): State<Arc<IssuerState>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let params: HashMap<&str, Vec<&str>> = query.iter().fold(HashMap::new(), |mut map, (k, v)| {
        map.entry(k.as_str()).or_default().push(v.as_str());
        map
    });
    let requested: Vec<String> = params
        .get("scope")
        .map(|scopes| {
            scopes
                .iter()
                // Several scopes may come space-separated in one parameter as well.
                .flat_map(|s| s.split(' '))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let credentials = basic_credentials(&headers);
    let granted =
        matches!(&credentials, Some((u, p)) if *u == state.username && *p == state.password);
    state
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Issued {
            account: credentials.as_ref().map(|(u, _)| u.clone()),
            requested: requested.clone(),
            granted,
        });
    if !granted {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"flotilla-test-issuer\"")],
            axum::Json(
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
            ),
        )
            .into_response();
    }
    let service = params
        .get("service")
        .and_then(|s| s.first())
        .copied()
        .unwrap_or(SERVICE);
    let access: Vec<Access> = requested.iter().filter_map(|s| Access::parse(s)).collect();
    let token =
        TokenSigner::test().token(ISSUER, &state.username, service, &access, state.expires_in);
    axum::Json(token_answer(&token, state.expires_in)).into_response()
}

/// One entry of a token's `access` claim: `{"type", "name", "actions"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `repository` or `registry`.
    pub kind: String,
    /// `team/app`, or `catalog`.
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    pub fn repository(name: &str, actions: &[&str]) -> Access {
        Access {
            kind: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// A scope as sent to a realm: `repository:team/app:pull,push`, `registry:catalog:*`. The
    /// name may hold `:` (a port), so the actions are after the last one.
    pub fn parse(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Access {
            kind: kind.into(),
            name: name.into(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    fn claim(&self) -> Value {
        json!({"type": self.kind, "name": self.name, "actions": self.actions})
    }
}

/// Signs registry tokens with the committed test key. One per process ([`TokenSigner::test`]):
/// every registry a test starts in token mode trusts its certificate.
pub struct TokenSigner {
    key: ring::signature::RsaKeyPair,
    cert_der: Vec<u8>,
    cert_pem: String,
}

impl TokenSigner {
    /// The signer of every test realm (built on first use).
    pub fn test() -> &'static TokenSigner {
        static SIGNER: OnceLock<TokenSigner> = OnceLock::new();
        SIGNER.get_or_init(|| {
            let key_pair =
                rcgen::KeyPair::from_pem(SIGNING_KEY_PEM).expect("test signing key parses");
            let key = ring::signature::RsaKeyPair::from_pkcs8(&key_pair.serialize_der())
                .expect("test signing key is RSA PKCS#8");
            let mut params =
                rcgen::CertificateParams::new(Vec::<String>::new()).expect("certificate params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "flotilla test token issuer");
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2100, 1, 1);
            let cert = params
                .self_signed(&key_pair)
                .expect("self-signed certificate");
            TokenSigner {
                key,
                cert_der: cert.der().to_vec(),
                cert_pem: cert.pem(),
            }
        })
    }

    /// The certificate a registry must trust (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A registry token from `issuer` for `subject` (empty: anonymous) with audience `service`,
    /// granting exactly `access`, valid for `expires_in` seconds.
    pub fn token(
        &self,
        issuer: &str,
        subject: &str,
        service: &str,
        access: &[Access],
        expires_in: u64,
    ) -> String {
        let now = time_now();
        let claims = json!({
            "iss": issuer,
            "sub": subject,
            "aud": service,
            "exp": now + expires_in,
            "nbf": now.saturating_sub(5),
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "access": access.iter().map(Access::claim).collect::<Vec<_>>(),
        });
        self.sign(&claims)
    }

    fn sign(&self, claims: &Value) -> String {
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.cert_der)],
        });
        let signing_input = format!(
            "{}.{}",
            b64url.encode(header.to_string()),
            b64url.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("RS256 signature");
        format!("{signing_input}.{}", b64url.encode(signature))
    }
}

/// The claims of a JWT, not verified: what a test reads to see what a token grants.
pub fn claims_of(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A realm's 200 answer (the token spec's fields; `access_token` for OAuth2 clients).
pub fn token_answer(token: &str, expires_in: u64) -> Value {
    json!({
        "token": token,
        "access_token": token,
        "expires_in": expires_in,
        "issued_at": humantime_rfc3339(time_now()),
    })
}

/// Seconds since the epoch as an RFC 3339 UTC time (the spec's `issued_at`).
fn humantime_rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), enough for a timestamp in a test.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}
