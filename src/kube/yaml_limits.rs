//! Parser limits for YAML that comes from callers (uploaded kubeconfigs, manifests).
//!
//! serde-saphyr's defaults already bound depth, events and nodes, but let aliases replay up to a
//! million events: a "billion laughs" of a few hundred bytes then costs seconds of CPU per
//! document before it is refused. Real kubeconfigs and manifests replay few, if any, aliases.

/// Events that aliases may replay in one document.
pub const MAX_REPLAYED_EVENTS: usize = 20_000;

/// serde-saphyr options for untrusted YAML.
pub fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    options
}
