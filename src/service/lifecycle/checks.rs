//! Checks of lifecycle requests, before anything is recorded or sent to a vendor.

use std::sync::Arc;

use crate::adapters::cluster::{
    Capability, ClusterProvider, ClusterSpec, NodePoolSpec, SpecWarning,
};
use crate::service::{Error, Result, validate};

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

/// Checks a cluster spec: first the provider's own rules (its settings, what it requires, the
/// risks it names, which come back as warnings), then the vendor-neutral ones.
pub(super) fn check_spec(
    provider: &Arc<dyn ClusterProvider>,
    spec: &ClusterSpec,
) -> Result<Vec<SpecWarning>> {
    let warnings = provider
        .check_spec(spec)
        .map_err(|violation| Error::invalid(violation.field, violation.reason))?;
    if !spec.display_name.is_empty() {
        validate::display_name("spec.display_name", &spec.display_name)?;
    }
    validate::labels("spec.labels", &spec.labels.clone().into_iter().collect())?;
    let mut names = std::collections::BTreeSet::new();
    for (i, pool) in spec.node_pools.iter().enumerate() {
        let field = format!("spec.node_pools[{i}]");
        // A cluster spec's pools are checked for shape only: whether the provider takes them
        // at all (and with autoscaling) is the provider's to say when it creates them.
        check_pool(&field, pool, None)?;
        if !names.insert(pool.name.clone()) {
            return Err(Error::invalid(
                format!("{field}.name"),
                format!("{:?} is used twice", pool.name),
            ));
        }
    }
    Ok(warnings)
}

/// Checks a node pool spec's shape and, with the provider's `capability`, that it offers what
/// the pool asks for.
pub(super) fn check_pool(
    field: &str,
    pool: &NodePoolSpec,
    capability: Option<&Capability>,
) -> Result<()> {
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
        if capability.is_some_and(|cap| !cap.node_pool_autoscaling) {
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
