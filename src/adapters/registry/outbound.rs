//! The outbound address policy for registry clients (reqwest). Registry endpoints — and the
//! token realms and `Link`s they name — are caller-supplied addresses, so every connection is
//! checked like a cluster connection is (`crate::net::connector`): host names are resolved once
//! by [`CheckedResolver`], each address checked, and only checked addresses are handed to the
//! connector; IP literals (which reqwest never resolves) are checked by [`CheckedResolver::admit`]
//! before a request is built.
//!
//! The policy's own-listen-address rule needs the port, which reqwest does not give a resolver:
//! `admit` records the ports each host is used with, and the resolver checks every address
//! against each of them.

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use crate::{
    adapters::{ErrorClass, TransportSettings, VendorError, VendorHttp},
    net::{
        OutboundPolicy,
        connector::{ConnectError, check_literal, resolve_allowed},
    },
};

/// A reqwest resolver that applies the outbound policy. One per registry client.
#[derive(Debug)]
pub struct CheckedResolver {
    policy: Arc<OutboundPolicy>,
    /// Host name → the ports requests to it were admitted with.
    ports: Mutex<HashMap<String, BTreeSet<u16>>>,
}

impl CheckedResolver {
    pub fn new(policy: Arc<OutboundPolicy>) -> Arc<CheckedResolver> {
        Arc::new(CheckedResolver {
            policy,
            ports: Mutex::default(),
        })
    }

    /// Call before sending to `url`: refuses an IP literal the policy refuses, and records the
    /// port of a host name for the resolver.
    pub fn admit(
        &self,
        vendor: &'static str,
        operation: &'static str,
        url: &reqwest::Url,
    ) -> Result<(), VendorError> {
        let refused = |message: String| {
            VendorError::new(
                ErrorClass::InvalidConfiguration,
                vendor,
                operation,
                "AddressNotAllowed",
                message,
            )
        };
        let host = url
            .host_str()
            .ok_or_else(|| refused(format!("the URL {url} has no host")))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| refused(format!("the URL {url} has no port")))?;
        check_literal(&self.policy, host, port).map_err(|err| refused(err.to_string()))?;
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase(),
            )
            .or_default()
            .insert(port);
        Ok(())
    }

    fn ports_of(&self, host: &str) -> Vec<u16> {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&host.to_ascii_lowercase())
            .map(|ports| ports.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// The one way a registry adapter gets its HTTP client: `endpoint` is admitted by the policy
/// before anything is built (so a refused address fails `open`, with nothing sent), host names
/// are resolved only through the returned [`CheckedResolver`], redirects and proxies are off
/// (both would reach addresses nobody checked) and `ca_pem` is trusted besides the public roots.
/// Any other URL the adapter sends to (token realms, `Link`s) must be admitted on the resolver
/// first.
pub fn checked_http(
    transport: &TransportSettings,
    policy: &Arc<OutboundPolicy>,
    ca_pem: Option<&[u8]>,
    vendor: &'static str,
    endpoint: &reqwest::Url,
) -> Result<(VendorHttp, Arc<CheckedResolver>), VendorError> {
    const OPEN: &str = "Open";
    let resolver = CheckedResolver::new(policy.clone());
    resolver.admit(vendor, OPEN, endpoint)?;
    let mut builder = reqwest::Client::builder()
        .timeout(transport.timeout)
        .connect_timeout(transport.timeout.min(std::time::Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(resolver.clone())
        .user_agent(concat!("flotilla/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|err| {
            VendorError::new(
                ErrorClass::InvalidConfiguration,
                vendor,
                OPEN,
                "BadCaBundle",
                format!("the CA bundle does not parse: {err}"),
            )
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|err| {
        VendorError::new(
            ErrorClass::InvalidConfiguration,
            vendor,
            OPEN,
            "",
            err.to_string(),
        )
    })?;
    Ok((VendorHttp::from_client(transport.clone(), client), resolver))
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let ports = self.ports_of(&host);
        let policy = self.policy.clone();
        Box::pin(async move {
            if ports.is_empty() {
                // Every request goes through `admit` first; a host without ports was never admitted.
                return Err(
                    Box::new(ConnectError::NoAddress(format!("{host} (not admitted)")))
                        as Box<dyn std::error::Error + Send + Sync>,
                );
            }
            // An address is kept only when it is allowed with every port the host is used with.
            let mut allowed: Option<Vec<SocketAddr>> = None;
            for port in ports {
                let addresses = resolve_allowed(&policy, &host, port)
                    .await
                    .map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)?;
                let ips: Vec<SocketAddr> = addresses
                    .into_iter()
                    .map(|a| SocketAddr::new(a.ip(), 0))
                    .collect();
                allowed = Some(match allowed {
                    None => ips,
                    Some(before) => before.into_iter().filter(|a| ips.contains(a)).collect(),
                });
            }
            let allowed = allowed.unwrap_or_default();
            if allowed.is_empty() {
                return Err(Box::new(ConnectError::NoAddress(host))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::outbound::{OutboundSettings, parse_cidrs};
    use reqwest::dns::Resolve;

    fn resolver(deny: &str) -> Arc<CheckedResolver> {
        CheckedResolver::new(Arc::new(
            OutboundSettings {
                deny: parse_cidrs(deny).unwrap(),
                allow: Vec::new(),
            }
            .policy("127.0.0.1:50051".parse().unwrap()),
        ))
    }

    #[test]
    fn literals_are_checked_before_sending() {
        let r = resolver("127.0.0.9/32");
        let url = reqwest::Url::parse("http://127.0.0.9:5000/v2/").unwrap();
        let err = r.admit("oci", "Ping", &url).unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
        assert!(err.message.contains("127.0.0.9"), "{}", err.message);
        let own = reqwest::Url::parse("http://127.0.0.1:50051/v2/").unwrap();
        assert!(r.admit("oci", "Ping", &own).is_err(), "Flotilla itself");
        let fine = reqwest::Url::parse("http://127.0.0.1:5000/v2/").unwrap();
        assert!(r.admit("oci", "Ping", &fine).is_ok());
    }

    #[tokio::test]
    async fn names_resolve_only_to_allowed_addresses() {
        let r = resolver("127.0.0.1/32");
        let url = reqwest::Url::parse("http://localhost:5000/v2/").unwrap();
        r.admit("oci", "Ping", &url).unwrap();
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        match r.resolve(name).await {
            Ok(addrs) => {
                for a in addrs {
                    assert_ne!(a.ip().to_string(), "127.0.0.1", "denied address handed out");
                }
            }
            Err(err) => assert!(err.to_string().contains("localhost"), "{err}"),
        }
        let unknown: reqwest::dns::Name = "registry.invalid".parse().unwrap();
        assert!(r.resolve(unknown).await.is_err(), "not admitted");
    }
}
