//! A real registry process per test: CNCF Distribution v3.1.2 (built by `scripts/registry-env
//! build`) or Debian's docker-registry 2.8, on a free loopback port with its storage in a temp
//! dir, anonymous, with htpasswd basic auth, or with bearer tokens from our own
//! [`TokenIssuer`] or another realm signing with [`TokenSigner::test`] (the Harbor simulator's).
//! Deletes are enabled. The process is killed and the dir removed on drop.
//! [`TestRegistry::start_with`] adds HTTPS (a certificate from a CA made for the registry) and
//! the registry's own access log.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::token::{ISSUER, SERVICE, TokenIssuer, TokenSigner};

/// Which registry binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    /// CNCF Distribution v3.1.2: `$FLOTILLA_REGISTRY_BIN`, else the `scripts/registry-env` cache.
    Distribution,
    /// Debian's docker-registry 2.8: `$FLOTILLA_DOCKER_REGISTRY_BIN`, else /usr/bin/docker-registry.
    DockerRegistry,
}

impl RegistryKind {
    /// The binary, or a panic that says how to get it (tests must not pass without it).
    pub fn binary(self) -> PathBuf {
        let (var, fallback, how) = match self {
            RegistryKind::Distribution => (
                "FLOTILLA_REGISTRY_BIN",
                std::env::var("HOME")
                    .map(|home| format!("{home}/.cache/flotilla/registry/v3.1.2/bin/registry"))
                    .unwrap_or_default(),
                "run scripts/registry-env build",
            ),
            RegistryKind::DockerRegistry => (
                "FLOTILLA_DOCKER_REGISTRY_BIN",
                "/usr/bin/docker-registry".to_string(),
                "apt-get install docker-registry",
            ),
        };
        let path = PathBuf::from(std::env::var(var).unwrap_or(fallback));
        assert!(
            path.is_file(),
            "no registry binary at {} (set {var} or {how})",
            path.display()
        );
        path
    }
}

/// How the registry authenticates clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    Anonymous,
    /// htpasswd with one bcrypt user.
    Basic {
        username: String,
        password: String,
    },
    /// Bearer tokens from a [`TokenIssuer`] that accepts this user.
    Token {
        username: String,
        password: String,
        /// Lifetime of issued tokens.
        expires_in_secs: u64,
    },
    /// Bearer tokens from a realm someone else serves (the Harbor simulator's
    /// `/service/token`), signed by [`TokenSigner::test`]. The registry has no users of its own.
    Realm {
        /// The URL clients are sent to for tokens.
        realm: String,
        /// The token audience the registry expects (Harbor's is `harbor-registry`).
        service: String,
        /// The token issuer the registry trusts (Harbor's is `harbor-token-issuer`).
        issuer: String,
    },
}

impl RegistryAuth {
    pub fn basic(username: &str, password: &str) -> RegistryAuth {
        RegistryAuth::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn token(username: &str, password: &str) -> RegistryAuth {
        RegistryAuth::Token {
            username: username.into(),
            password: password.into(),
            expires_in_secs: 300,
        }
    }

    /// The user and password a client logs in with, if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        match self {
            RegistryAuth::Anonymous | RegistryAuth::Realm { .. } => None,
            RegistryAuth::Basic { username, password }
            | RegistryAuth::Token {
                username, password, ..
            } => Some((username.clone(), password.clone())),
        }
    }
}

/// What [`TestRegistry::start_with`] adds to a plain start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate for 127.0.0.1 and localhost, issued by a CA made for
    /// this registry alone ([`TestRegistry::ca_pem`]).
    pub tls: bool,
    /// Log every request the registry serves ([`TestRegistry::requests`]).
    pub access_log: bool,
}

/// One request in the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query, as requested.
    pub path: String,
    pub status: u16,
}

/// A running registry. Killed (and its storage removed) on drop.
pub struct TestRegistry {
    pub kind: RegistryKind,
    pub auth: RegistryAuth,
    /// "http://127.0.0.1:PORT".
    pub url: String,
    pub port: u16,
    /// The token issuer in token mode.
    pub issuer: Option<TokenIssuer>,
    /// With TLS: the PEM certificate of the CA that issued the registry's certificate.
    pub ca_pem: Option<String>,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    pub async fn start(kind: RegistryKind, auth: RegistryAuth) -> TestRegistry {
        Self::start_with(kind, auth, RegistryOptions::default()).await
    }

    pub async fn start_with(
        kind: RegistryKind,
        auth: RegistryAuth,
        options: RegistryOptions,
    ) -> TestRegistry {
        let binary = kind.binary();
        let dir = tempfile::tempdir().expect("registry temp dir");
        let issuer = match &auth {
            RegistryAuth::Token {
                username,
                password,
                expires_in_secs,
            } => Some(TokenIssuer::start(username, password, *expires_in_secs).await),
            _ => None,
        };
        let auth_section = match (&auth, &issuer) {
            (RegistryAuth::Basic { username, password }, _) => {
                let hash = bcrypt::hash(password, 5).expect("bcrypt");
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{username}:{hash}\n")).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: flotilla-test\n    path: {}\n",
                    path.display()
                )
            }
            (RegistryAuth::Token { .. }, Some(issuer)) => {
                let path = dir.path().join("token-root.pem");
                std::fs::write(&path, issuer.cert_pem()).expect("write root bundle");
                format!(
                    "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    issuer.realm(),
                    path.display()
                )
            }
            (
                RegistryAuth::Realm {
                    realm,
                    service,
                    issuer,
                },
                _,
            ) => {
                let path = dir.path().join("token-root.pem");
                std::fs::write(&path, TokenSigner::test().cert_pem()).expect("write root bundle");
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    path.display()
                )
            }
            _ => String::new(),
        };
        // A port the kernel just gave out and we let go of; another process could take it in
        // between, which start-up would then report.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let (ca_pem, tls_section) = if options.tls {
            let (ca_pem, cert_pem, key_pem) = tls_certificates();
            let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
            std::fs::write(&cert, cert_pem).expect("write certificate");
            std::fs::write(&key, key_pem).expect("write key");
            let section = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
            (Some(ca_pem), section)
        } else {
            (None, String::new())
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: {no_access_log}\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: flotilla-test-{secret}\n{tls_section}{auth_section}",
            no_access_log = !options.access_log,
            data = dir.path().join("data").display(),
            secret = uuid::Uuid::new_v4(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config_path)
            // Distribution v3 would otherwise try to export traces to localhost:4318.
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_SDK_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        let scheme = if options.tls { "https" } else { "http" };
        let mut registry = TestRegistry {
            kind,
            auth,
            url: format!("{scheme}://127.0.0.1:{port}"),
            port,
            issuer,
            ca_pem,
            child,
            dir,
        };
        registry.wait_ready().await;
        registry
    }

    /// Until `GET /v2/` answers (200, or 401 with auth on).
    async fn wait_ready(&mut self) {
        let client = self.http_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{:?} exited with {status} before serving: {}",
                    self.kind,
                    self.log()
                );
            }
            if let Ok(response) = client.get(format!("{}/v2/", self.url)).send().await
                && matches!(response.status().as_u16(), 200 | 401)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} not serving after 20 s: {}",
                self.kind,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An HTTP client that trusts the registry's CA (with TLS).
    pub fn http_client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = &self.ca_pem {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(pem.as_bytes()).expect("test CA parses"),
            );
        }
        builder.build().expect("registry HTTP client")
    }

    /// The requests the registry served so far, from its access log (started with
    /// `access_log`; the registry writes a line once it has answered).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log().lines().filter_map(access_line).collect()
    }

    /// What the registry logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The storage root on disk (tests read raw bytes from it).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The PID of the registry process, to check it is gone after drop.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, and a certificate for 127.0.0.1 and localhost it issued: (CA PEM, cert PEM, key PEM).
fn tls_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "flotilla test registry CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("registry key");
    let cert = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("registry certificate params")
        .signed_by(&key, &issuer)
        .expect("registry certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "agent"` → the request.
fn access_line(line: &str) -> Option<LoggedRequest> {
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once('"')?;
    let mut parts = request.split(' ');
    let (method, path) = (parts.next()?, parts.next()?);
    let status = rest.split_whitespace().next()?.parse().ok()?;
    Some(LoggedRequest {
        method: method.to_string(),
        path: path.to_string(),
        status,
    })
}
