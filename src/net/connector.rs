//! The one TCP connector for outbound connections to caller-supplied addresses: resolves the
//! host once, checks every resolved address against the [`OutboundPolicy`], and connects only
//! to addresses it checked — no second lookup, so DNS rebinding has no gap to use. IP-literal
//! hosts are checked too (hyper-util's own connector would skip the resolver for them).
//!
//! It is a `tower::Service<Uri>` for hyper-util clients (kube-rs). A reqwest client can reuse
//! [`resolve_allowed`] from a `reqwest::dns::Resolve`, but reqwest skips the resolver for IP
//! literals, so those URLs must be checked with [`check_literal`] before the request.

use std::{
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::outbound::{OutboundPolicy, Refusal};

/// Why an outbound connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the URL {0:?} has no host")]
    NoHost(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    /// Every address the host resolved to is refused by the policy. Nothing was sent.
    #[error("{0}")]
    NotAllowed(AddressNotAllowed),
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A host whose every address the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressNotAllowed {
    pub host: String,
    pub refusals: Vec<Refusal>,
}

impl std::fmt::Display for AddressNotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reasons: Vec<String> = self.refusals.iter().map(Refusal::to_string).collect();
        write!(
            f,
            "Flotilla may not connect to {}: {} (see --outbound-allow and --outbound-deny)",
            self.host,
            reasons.join("; ")
        )
    }
}

impl std::error::Error for AddressNotAllowed {}

/// Whether `ip` is assigned to this host: binding a UDP socket to it succeeds only then. Sends
/// nothing.
pub fn is_local_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The addresses of `host:port` that the policy allows, resolved once; refused when there are
/// none. An IP-literal host is checked as is.
pub async fn resolve_allowed(
    policy: &OutboundPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let resolved: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| ConnectError::Resolve {
                host: host.to_string(),
                source,
            })?
            .collect(),
    };
    if resolved.is_empty() {
        return Err(ConnectError::NoAddress(host.to_string()));
    }
    let mut allowed = Vec::new();
    let mut refusals = Vec::new();
    for address in resolved {
        match policy.check(address, &is_local_address) {
            Ok(()) => allowed.push(address),
            Err(refusal) => refusals.push(refusal),
        }
    }
    if allowed.is_empty() {
        return Err(ConnectError::NotAllowed(AddressNotAllowed {
            host: host.to_string(),
            refusals,
        }));
    }
    Ok(allowed)
}

/// For clients that skip their resolver for IP-literal hosts: refuses a literal the policy
/// refuses. Host names pass (their resolver must use [`resolve_allowed`]).
pub fn check_literal(policy: &OutboundPolicy, host: &str, port: u16) -> Result<(), ConnectError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => policy
            .check(SocketAddr::new(ip, port), &is_local_address)
            .map_err(|refusal| {
                ConnectError::NotAllowed(AddressNotAllowed {
                    host: bare.to_string(),
                    refusals: vec![refusal],
                })
            }),
        Err(_) => Ok(()),
    }
}

/// A hyper-util connector (plain TCP; TLS goes on top) that only connects where the policy
/// allows.
#[derive(Clone)]
pub struct CheckedConnector {
    policy: Arc<OutboundPolicy>,
}

impl CheckedConnector {
    pub fn new(policy: Arc<OutboundPolicy>) -> CheckedConnector {
        CheckedConnector { policy }
    }
}

impl tower::Service<Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| ConnectError::NoHost(uri.to_string()))?
                .to_string();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("http") {
                    80
                } else {
                    443
                });
            let addresses = resolve_allowed(&policy, &host, port).await?;
            let mut last = None;
            for address in addresses {
                match TcpStream::connect(address).await {
                    Ok(stream) => {
                        // Small requests and answers: do not wait to fill segments.
                        let _ = stream.set_nodelay(true);
                        return Ok(TokioIo::new(stream));
                    }
                    Err(source) => last = Some(ConnectError::Connect { address, source }),
                }
            }
            Err(last.unwrap_or(ConnectError::NoAddress(host)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::outbound::{OutboundSettings, parse_cidrs};
    use tower::ServiceExt;

    fn policy(deny: &str) -> Arc<OutboundPolicy> {
        Arc::new(
            OutboundSettings {
                deny: parse_cidrs(deny).unwrap(),
                allow: Vec::new(),
            }
            .policy("127.0.0.1:1".parse().unwrap()),
        )
    }

    #[tokio::test]
    async fn refuses_a_denied_literal_without_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.9:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let uri: Uri = format!("https://127.0.0.9:{port}/version").parse().unwrap();
        let err = CheckedConnector::new(policy("127.0.0.9/32"))
            .oneshot(uri)
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, ConnectError::NotAllowed(n) if n.refusals[0].address.port() == port),
            "{err}"
        );
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "no connection was made");
    }

    #[tokio::test]
    async fn connects_where_allowed_and_checks_ipv6_literals() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let uri: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let stream = CheckedConnector::new(policy("127.0.0.9/32"))
            .oneshot(uri)
            .await;
        assert!(stream.is_ok());
        listener.accept().await.expect("one connection");

        let uri: Uri = "https://[::1]:1/".parse().unwrap();
        let err = CheckedConnector::new(policy("::1/128"))
            .oneshot(uri)
            .await
            .expect_err("refused");
        assert!(matches!(err, ConnectError::NotAllowed(_)), "{err}");
    }

    #[tokio::test]
    async fn a_host_name_is_refused_when_all_its_addresses_are() {
        let err = resolve_allowed(&policy("127.0.0.1/32, ::1/128"), "localhost", 6443)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ConnectError::NotAllowed(n) if n.host == "localhost"),
            "{err}"
        );
        let allowed = resolve_allowed(&policy("::1/128"), "localhost", 6443)
            .await
            .unwrap();
        assert!(
            allowed
                .iter()
                .all(|a| a.ip() != "::1".parse::<IpAddr>().unwrap())
        );
        assert!(check_literal(&policy("127.0.0.9/32"), "127.0.0.9", 1).is_err());
        assert!(check_literal(&policy("127.0.0.9/32"), "[::ffff:127.0.0.9]", 1).is_err());
        assert!(check_literal(&policy("127.0.0.9/32"), "localhost", 1).is_ok());
    }
}
