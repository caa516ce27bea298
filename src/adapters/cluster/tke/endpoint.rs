//! How Flotilla reaches a TKE cluster's API server. The public (extranet) endpoint is opened
//! only when the spec asks for it (`TkeClusterConfig.public_endpoint`), with the source CIDRs
//! the spec allows, and the cluster then carries a `PUBLIC_ENDPOINT` warning. Otherwise nothing
//! is opened and Flotilla uses the intranet kubeconfig: that works where Flotilla runs with a
//! route into the VPC; elsewhere the create's connect step fails with an unreachable API server
//! (the operation's error says so), never by exposing the cluster behind the user's back.
//!
//! The allowed CIDRs are set with ModifyClusterEndpointSP (SecurityPolicies) once the endpoint
//! is open, on every fetch, so a policy changed at the vendor is put back. UNCONFIRMED: that
//! TKE takes SecurityPolicies there (the Terraform provider's
//! `managed_cluster_internet_security_policies` goes through it); vendor-apis.md is silent.

use std::net::IpAddr;

use zeroize::Zeroizing;

use super::{
    EXTRANET_NOT_ENABLED, PUBLIC_ENDPOINT_WARNING, VENDOR, action,
    backend::TkeProvider,
    client::{self, EndpointStatusReply, KubeconfigReply, Reply},
};
use crate::adapters::{
    CallContext,
    cluster::{ClusterSpec, SpecViolation, SpecWarning},
    error::{ErrorClass, Result, VendorError},
    transport::Idempotency,
};
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

impl TkeProvider {
    /// DescribeClusterKubeconfig, intranet or extranet.
    pub(super) async fn kubeconfig(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        extranet: bool,
    ) -> Result<Zeroizing<String>> {
        let reply: Reply<KubeconfigReply> = self
            .call(
                ctx,
                action::DESCRIBE_CLUSTER_KUBECONFIG,
                Idempotency::Idempotent,
                |t, ts| client::describe_cluster_kubeconfig_request(t, ts, cluster_id, extranet),
            )
            .await?;
        match reply.body.kubeconfig {
            Some(yaml) if !yaml.trim().is_empty() => Ok(Zeroizing::new(yaml)),
            _ => Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                action::DESCRIBE_CLUSTER_KUBECONFIG,
                "MalformedResponse",
                "the answer has no Kubeconfig",
            )),
        }
    }

    /// The public kubeconfig, opening the endpoint first (once) and restricting it to `cidrs`.
    pub(super) async fn public_kubeconfig(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        cidrs: &[String],
    ) -> Result<Zeroizing<String>> {
        let kubeconfig = match self.kubeconfig(ctx, cluster_id, true).await {
            Ok(kubeconfig) => kubeconfig,
            Err(err) if extranet_not_enabled(&err) => {
                return Err(self.open_extranet_endpoint(ctx, cluster_id, err).await);
            }
            Err(err) => return Err(err),
        };
        self.call::<serde_json::Value, _>(
            ctx,
            action::MODIFY_CLUSTER_ENDPOINT_SP,
            // Sets the whole list: repeating it changes nothing.
            Idempotency::Idempotent,
            |t, ts| client::modify_cluster_endpoint_sp_request(t, ts, cluster_id, cidrs),
        )
        .await?;
        Ok(kubeconfig)
    }

    /// The kubeconfig failed because the cluster has no public endpoint: open one (once) and
    /// say "not yet", so the caller polls again.
    async fn open_extranet_endpoint(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        cause: VendorError,
    ) -> VendorError {
        let pending = |what: String, request_id: String| {
            VendorError::new(
                ErrorClass::DependencyPending,
                VENDOR,
                action::DESCRIBE_CLUSTER_KUBECONFIG,
                cause.code.clone(),
                format!("{what}; the kubeconfig can be fetched once it is ready"),
            )
            .with_request_id(request_id)
        };
        let status: Reply<EndpointStatusReply> = match self
            .call(
                ctx,
                action::DESCRIBE_CLUSTER_ENDPOINT_STATUS,
                Idempotency::Idempotent,
                |t, ts| client::describe_cluster_endpoint_status_request(t, ts, cluster_id),
            )
            .await
        {
            Ok(status) => status,
            Err(err) => return err,
        };
        match status.body.status.as_deref().unwrap_or("NotFound") {
            "NotFound" => {}
            "CreateFailed" => {
                return VendorError::new(
                    ErrorClass::DependencyBlocked,
                    VENDOR,
                    action::CREATE_CLUSTER_ENDPOINT,
                    cause.code.clone(),
                    format!(
                        "opening the public API server endpoint of {cluster_id} failed: {}",
                        status.body.error_msg.unwrap_or_default()
                    ),
                )
                .with_request_id(status.request_id);
            }
            other => {
                return pending(
                    format!("the public API server endpoint of {cluster_id} is {other}"),
                    status.request_id,
                );
            }
        }
        let created: Result<Reply<serde_json::Value>> = self
            .call(
                ctx,
                action::CREATE_CLUSTER_ENDPOINT,
                Idempotency::NotIdempotent,
                |t, ts| client::create_cluster_endpoint_request(t, ts, cluster_id),
            )
            .await;
        match created {
            Ok(reply) => pending(
                format!("opening the public API server endpoint of {cluster_id}"),
                reply.request_id,
            ),
            // Someone else opened it meanwhile.
            Err(err) if err.code.starts_with("ResourceInUse") => pending(
                format!("the public API server endpoint of {cluster_id} is being opened"),
                err.request_id,
            ),
            Err(err) => err,
        }
    }
}

pub(super) fn extranet_not_enabled(err: &VendorError) -> bool {
    let message = err.message.to_ascii_lowercase();
    err.code == EXTRANET_NOT_ENABLED
        || err.code.ends_with("NotEnableExtranet")
        || (message.contains("extranet")
            && (message.contains("not enable") || message.contains("not open")))
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
