//! The rules of how a TKE cluster's API server may be reached, from the spec alone (pure): a
//! public endpoint only when asked for and only with source CIDRs, and a warning when there is
//! one. `endpoint.rs` does the calls.

use std::net::IpAddr;

use super::PUBLIC_ENDPOINT_WARNING;
use crate::adapters::cluster::{ClusterSpec, SpecViolation, SpecWarning};
use crate::proto::cluster_spec::ProviderConfig;

/// The CIDRs allowed to reach the public endpoint, when the spec asks for one.
pub fn public_endpoint(spec: &ClusterSpec) -> Option<&[String]> {
    match &spec.provider_config {
        Some(ProviderConfig::Tke(tke)) if tke.public_endpoint => Some(&tke.public_endpoint_cidrs),
        _ => None,
    }
}

/// Whether `text` is an IPv4 or IPv6 CIDR ("203.0.113.0/24", "2001:db8::/32"), with no host
/// bits set below the prefix (a typo such as "10.0.0.1/8" is caught, not widened).
pub fn check_cidr(text: &str) -> std::result::Result<(), String> {
    let (address, prefix) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a CIDR such as \"203.0.113.0/24\""))?;
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("{text:?}: {address:?} is not an IP address"))?;
    let bits = match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let prefix: u32 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= bits && !prefix.starts_with('+'))
        .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?;
    let value = match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    };
    let host_mask = if prefix == 0 {
        u128::MAX
    } else {
        (1u128 << (128 - prefix)) - 1
    };
    if value & host_mask != 0 {
        return Err(format!(
            "{text:?} has host bits set; did you mean the network address?"
        ));
    }
    Ok(())
}

/// Checks the endpoint part of a TKE spec and names the risk it chooses.
pub fn review(spec: &ClusterSpec) -> std::result::Result<Vec<SpecWarning>, SpecViolation> {
    let violation = |field: String, reason: String| SpecViolation { field, reason };
    if spec
        .network
        .as_ref()
        .is_some_and(|n| n.endpoint_public_access)
    {
        return Err(violation(
            "spec.network.endpoint_public_access".into(),
            "is not used by tke; set spec.tke.public_endpoint and spec.tke.public_endpoint_cidrs"
                .into(),
        ));
    }
    let Some(ProviderConfig::Tke(tke)) = &spec.provider_config else {
        return Ok(Vec::new());
    };
    if !tke.public_endpoint {
        if !tke.public_endpoint_cidrs.is_empty() {
            return Err(violation(
                "spec.tke.public_endpoint_cidrs".into(),
                "is only used with spec.tke.public_endpoint = true".into(),
            ));
        }
        return Ok(Vec::new());
    }
    if tke.public_endpoint_cidrs.is_empty() {
        return Err(violation(
            "spec.tke.public_endpoint_cidrs".into(),
            "is required with a public endpoint: name the source CIDRs allowed to reach it, \
             such as \"203.0.113.0/24\""
                .into(),
        ));
    }
    for (i, cidr) in tke.public_endpoint_cidrs.iter().enumerate() {
        check_cidr(cidr)
            .map_err(|reason| violation(format!("spec.tke.public_endpoint_cidrs[{i}]"), reason))?;
    }
    Ok(vec![SpecWarning {
        code: PUBLIC_ENDPOINT_WARNING,
        message: format!(
            "the API server has a public (internet) endpoint, open to {}",
            tke.public_endpoint_cidrs.join(", ")
        ),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{self as pb, TkeClusterConfig};

    fn spec(public: bool, cidrs: &[&str]) -> ClusterSpec {
        ClusterSpec {
            provider_config: Some(ProviderConfig::Tke(TkeClusterConfig {
                public_endpoint: public,
                public_endpoint_cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn cidrs_are_checked() {
        for good in [
            "203.0.113.0/24",
            "0.0.0.0/0",
            "10.1.2.3/32",
            "2001:db8::/32",
            "::/0",
        ] {
            assert_eq!(check_cidr(good), Ok(()), "{good}");
        }
        for bad in [
            "203.0.113.0",
            "203.0.113.0/33",
            "10.0.0.1/8",
            "2001:db8::1/32",
            "nope/8",
            "1.2.3.4/+8",
            "1.2.3.4/",
            "/8",
            "",
        ] {
            assert!(check_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_public_endpoint_is_opt_in_and_warned_about() {
        assert_eq!(review(&spec(false, &[])), Ok(Vec::new()));
        assert_eq!(public_endpoint(&spec(false, &[])), None);
        let warnings = review(&spec(true, &["203.0.113.0/24"])).unwrap();
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].code, PUBLIC_ENDPOINT_WARNING);
        assert!(warnings[0].message.contains("203.0.113.0/24"));
        assert_eq!(
            review(&spec(true, &[])).unwrap_err().field,
            "spec.tke.public_endpoint_cidrs"
        );
        assert_eq!(
            review(&spec(true, &["203.0.113.0/24", "10.0.0.1/8"]))
                .unwrap_err()
                .field,
            "spec.tke.public_endpoint_cidrs[1]"
        );
        assert_eq!(
            review(&spec(false, &["203.0.113.0/24"])).unwrap_err().field,
            "spec.tke.public_endpoint_cidrs"
        );
        let mut neutral = spec(false, &[]);
        neutral.network = Some(pb::ClusterNetwork {
            endpoint_public_access: true,
            ..Default::default()
        });
        assert_eq!(
            review(&neutral).unwrap_err().field,
            "spec.network.endpoint_public_access"
        );
    }
}
