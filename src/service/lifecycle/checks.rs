//! Checks of lifecycle requests, before anything is recorded or sent to a vendor.

use std::sync::Arc;

use crate::service::{Error, Result, validate};
use crate::{
    adapters::cluster::{Capability, ClusterProvider, ClusterSpec, NodePoolSpec},
    proto::cluster_spec::ProviderConfig,
};

pub(super) fn require(
    provider: &Arc<dyn ClusterProvider>,
    supported: bool,
    what: &str,
) -> Result<()> {
    if supported {
        Ok(())
    } else {
        Err(unsupported(provider, what))
    }
}

pub(super) fn unsupported(provider: &Arc<dyn ClusterProvider>, what: &str) -> Error {
    Error::FailedPrecondition {
        reason: "UNSUPPORTED_BY_PROVIDER",
        message: format!(
            "provider {:?} cannot {what} (see ListProviders)",
            provider.id()
        ),
    }
}

pub(super) fn check_spec(provider: &str, spec: &ClusterSpec) -> Result<()> {
    let matches = matches!(
        (&spec.provider_config, provider),
        (None, _)
            | (Some(ProviderConfig::Ack(_)), "ack")
            | (Some(ProviderConfig::Tke(_)), "tke")
            | (Some(ProviderConfig::Rancher(_)), "rancher")
    );
    if !matches {
        return Err(Error::invalid(
            "spec.provider_config",
            format!("does not match provider {provider:?}; set spec.{provider} or leave it empty"),
        ));
    }
    if provider != "rancher" && spec.region.trim().is_empty() {
        return Err(Error::invalid(
            "spec.region",
            format!("is required for {provider}, such as \"cn-hangzhou\""),
        ));
    }
    if !spec.display_name.is_empty() {
        validate::display_name("spec.display_name", &spec.display_name)?;
    }
    validate::labels("spec.labels", &spec.labels.clone().into_iter().collect())?;
    let mut names = std::collections::BTreeSet::new();
    for (i, pool) in spec.node_pools.iter().enumerate() {
        let field = format!("spec.node_pools[{i}]");
        check_pool(
            &field,
            pool,
            &Capability {
                node_pool_autoscaling: true,
                ..Default::default()
            },
        )?;
        if !names.insert(pool.name.clone()) {
            return Err(Error::invalid(
                format!("{field}.name"),
                format!("{:?} is used twice", pool.name),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_pool(field: &str, pool: &NodePoolSpec, cap: &Capability) -> Result<()> {
    if pool.name.trim().is_empty() || pool.name.len() > 63 {
        return Err(Error::invalid(
            format!("{field}.name"),
            "is required, at most 63 characters",
        ));
    }
    for (name, value) in [
        ("desired_size", pool.desired_size),
        ("min_size", pool.min_size),
        ("max_size", pool.max_size),
    ] {
        if !(0..=1000).contains(&value) {
            return Err(Error::invalid(
                format!("{field}.{name}"),
                "must be between 0 and 1000",
            ));
        }
    }
    if pool.autoscaling {
        if !cap.node_pool_autoscaling {
            return Err(Error::invalid(
                format!("{field}.autoscaling"),
                "this provider has no node pool autoscaling",
            ));
        }
        if pool.min_size > pool.max_size || pool.max_size == 0 {
            return Err(Error::invalid(
                format!("{field}.max_size"),
                "must be at least min_size and above 0 with autoscaling",
            ));
        }
    }
    Ok(())
}
