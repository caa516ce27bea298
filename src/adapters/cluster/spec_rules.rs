//! The spec rules most providers share, for their `ClusterProvider::check_spec`: a spec's
//! provider settings must be the provider's own (or absent), and a region may be required.
//! Each provider decides which rules apply to it; the wording is the same for all.

use super::{ClusterSpec, SpecViolation};

/// `spec.provider_config` is empty or holds `provider`'s own settings (`is_own`, which the
/// provider computes by matching its variant).
pub fn own_provider_config(
    provider: &str,
    spec: &ClusterSpec,
    is_own: bool,
) -> Result<(), SpecViolation> {
    if spec.provider_config.is_none() || is_own {
        return Ok(());
    }
    Err(SpecViolation {
        field: "spec.provider_config".into(),
        reason: format!(
            "does not match provider {provider:?}; set spec.{provider} or leave it empty"
        ),
    })
}

/// `spec.region` is set (not blank).
pub fn region_required(provider: &str, spec: &ClusterSpec) -> Result<(), SpecViolation> {
    if !spec.region.trim().is_empty() {
        return Ok(());
    }
    Err(SpecViolation {
        field: "spec.region".into(),
        reason: format!("is required for {provider}, such as \"cn-hangzhou\""),
    })
}
