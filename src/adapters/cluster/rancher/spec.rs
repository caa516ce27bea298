//! Flotilla's cluster spec for Rancher (pure): the rules checked before anything is recorded,
//! and the `POST /v3/clusters` body a spec becomes.

use serde_json::{Map, Value};

use crate::adapters::cluster::{ClusterSpec, SpecViolation, SpecWarning, spec_rules};
use crate::proto::cluster_spec::ProviderConfig;

use super::{DRIVER_CONFIGS, VENDOR};

/// Rancher's rules for a cluster spec, before anything is recorded: Rancher settings or none.
/// No region: a Rancher server is one place, whatever clouds its clusters run in.
pub fn check(spec: &ClusterSpec) -> std::result::Result<Vec<SpecWarning>, SpecViolation> {
    let own = matches!(spec.provider_config, Some(ProviderConfig::Rancher(_)));
    spec_rules::own_provider_config(VENDOR, spec, own)?;
    Ok(Vec::new())
}

/// The `POST /v3/clusters` body for `spec`:
/// - `type: cluster` and `name` (Flotilla's id, so `find_cluster_by_name` finds it) always win;
/// - `display_name` becomes `description`, `labels` become the cluster's labels;
/// - `rancher.driver_config` and then `vendor_extra` are merged into the top level unchanged;
/// - `kubernetes_version` goes into the driver config's `kubernetesVersion` (rke2Config, else
///   k3sConfig) unchanged, so give Rancher's own form (`v1.33.1+rke2r1`) there or in the driver
///   config. A version in both must agree up to the `v` prefix and `+` suffix (the driver
///   config's stays). A version without either driver config is refused: Rancher has no version
///   to set on an imported cluster.
/// - `region`, `zones` and `network` have no v3 cluster field and are left out (network
///   settings of an RKE2/K3s cluster belong in the driver config);
/// - node pools are refused rather than dropped: they would be machines nobody creates.
pub fn create_body(name: &str, spec: &ClusterSpec) -> std::result::Result<Value, String> {
    let rancher = match &spec.provider_config {
        None => None,
        Some(ProviderConfig::Rancher(rancher)) => Some(rancher),
        Some(ProviderConfig::Ack(_)) => return Err("the spec has ack settings, not rancher".into()),
        Some(ProviderConfig::Tke(_)) => return Err("the spec has tke settings, not rancher".into()),
    };
    if rancher.is_some_and(|r| !r.rancher_cluster_id.is_empty()) {
        return Err(
            "rancher.rancher_cluster_id names an existing cluster to import; a create \
                    makes a new cluster, so leave it empty"
                .into(),
        );
    }
    if !spec.node_pools.is_empty() {
        return Err(
            "Rancher's v3 API has no node pools (NodePool was removed in Rancher \
                    v2.15): leave node_pools empty and describe machines in rancher.driver_config"
                .into(),
        );
    }
    let mut body = Map::new();
    if !spec.display_name.is_empty() {
        body.insert("description".into(), spec.display_name.clone().into());
    }
    if !spec.labels.is_empty() {
        let labels: Map<String, Value> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        body.insert("labels".into(), Value::Object(labels));
    }
    let extras = [
        rancher.and_then(|r| r.driver_config.as_ref()),
        spec.vendor_extra.as_ref(),
    ];
    for extra in extras.into_iter().flatten() {
        for (key, value) in &extra.fields {
            body.insert(key.clone(), struct_value_to_json(value));
        }
    }
    body.insert("type".into(), "cluster".into());
    body.insert("name".into(), name.into());
    apply_version(&mut body, &spec.kubernetes_version)?;
    Ok(Value::Object(body))
}

fn apply_version(body: &mut Map<String, Value>, version: &str) -> std::result::Result<(), String> {
    if version.is_empty() {
        return Ok(());
    }
    let kind = DRIVER_CONFIGS
        .into_iter()
        .find(|kind| body.get(*kind).is_some_and(Value::is_object));
    let Some(config) = kind.and_then(|kind| body.get_mut(kind)?.as_object_mut()) else {
        return Err(format!(
            "kubernetes_version {version:?} needs rancher.driver_config with rke2Config or \
             k3sConfig: Rancher has no version to set on an imported cluster"
        ));
    };
    match config.get("kubernetesVersion").and_then(Value::as_str) {
        Some(given) if !given.is_empty() => {
            if bare_version(given) != bare_version(version) {
                return Err(format!(
                    "kubernetes_version {version:?} disagrees with the driver config's \
                     kubernetesVersion {given:?}"
                ));
            }
        }
        _ => {
            config.insert("kubernetesVersion".into(), version.into());
        }
    }
    Ok(())
}

/// `v1.33.1+rke2r1` → `1.33.1`.
fn bare_version(version: &str) -> &str {
    let version = version.trim();
    let version = version.strip_prefix('v').unwrap_or(version);
    version.split('+').next().unwrap_or(version)
}

/// A protobuf `Value` as JSON. Integral numbers stay integers (`3`, not `3.0`); NaN and the
/// infinities, which JSON cannot carry, become null.
pub fn struct_value_to_json(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
                Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), struct_value_to_json(v)))
                .collect(),
        ),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(struct_value_to_json).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use prost_types::{ListValue, Struct, value::Kind};
    use serde_json::json;

    use super::*;
    use crate::proto::{
        AckClusterConfig, ClusterNetwork, NodePoolSpec, RancherClusterConfig, TkeClusterConfig,
    };

    fn value(kind: Kind) -> prost_types::Value {
        prost_types::Value { kind: Some(kind) }
    }

    fn object(fields: &[(&str, prost_types::Value)]) -> Struct {
        Struct {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn text(s: &str) -> prost_types::Value {
        value(Kind::StringValue(s.into()))
    }

    fn rancher(driver_config: Option<Struct>) -> Option<ProviderConfig> {
        Some(ProviderConfig::Rancher(RancherClusterConfig {
            rancher_cluster_id: String::new(),
            driver_config,
        }))
    }

    fn rke2(version: Option<&str>) -> Struct {
        let config = match version {
            Some(v) => object(&[("kubernetesVersion", text(v))]),
            None => object(&[]),
        };
        object(&[("rke2Config", value(Kind::StructValue(config)))])
    }

    #[test]
    fn a_bare_spec_is_type_and_name() {
        let body = create_body("prod-1", &ClusterSpec::default()).unwrap();
        assert_eq!(body, json!({"type": "cluster", "name": "prod-1"}));
    }

    #[test]
    fn spec_fields_driver_config_and_extras() {
        let spec = ClusterSpec {
            display_name: "Production".into(),
            labels: [("team".to_string(), "infra".to_string())].into(),
            region: "ignored".into(),
            provider_config: rancher(Some(rke2(Some("v1.33.1+rke2r1")))),
            vendor_extra: Some(object(&[
                ("name", text("not-this")),
                ("type", text("not-this")),
                ("fleetWorkspaceName", text("fleet-default")),
                ("replicas", value(Kind::NumberValue(3.0))),
                ("ratio", value(Kind::NumberValue(0.5))),
                (
                    "list",
                    value(Kind::ListValue(ListValue {
                        values: vec![value(Kind::BoolValue(true)), value(Kind::NullValue(0))],
                    })),
                ),
            ])),
            ..ClusterSpec::default()
        };
        let body = create_body("prod-1", &spec).unwrap();
        assert_eq!(
            body,
            json!({
                "type": "cluster",
                "name": "prod-1",
                "description": "Production",
                "labels": {"team": "infra"},
                "rke2Config": {"kubernetesVersion": "v1.33.1+rke2r1"},
                "fleetWorkspaceName": "fleet-default",
                "replicas": 3,
                "ratio": 0.5,
                "list": [true, null],
            })
        );
    }

    #[test]
    fn the_spec_version_goes_into_the_driver_config() {
        let mut spec = ClusterSpec {
            kubernetes_version: "v1.33.1+rke2r1".into(),
            provider_config: rancher(Some(rke2(None))),
            ..ClusterSpec::default()
        };
        let body = create_body("a", &spec).unwrap();
        assert_eq!(
            body["rke2Config"],
            json!({"kubernetesVersion": "v1.33.1+rke2r1"})
        );

        let k3s = object(&[("k3sConfig", value(Kind::StructValue(object(&[]))))]);
        spec.provider_config = rancher(Some(k3s));
        spec.kubernetes_version = "v1.32.5+k3s1".into();
        let body = create_body("a", &spec).unwrap();
        assert_eq!(
            body["k3sConfig"],
            json!({"kubernetesVersion": "v1.32.5+k3s1"})
        );

        // Agreeing versions keep the driver config's precise form; disagreeing ones are refused.
        spec.provider_config = rancher(Some(rke2(Some("v1.33.1+rke2r1"))));
        spec.kubernetes_version = "1.33.1".into();
        let body = create_body("a", &spec).unwrap();
        assert_eq!(body["rke2Config"]["kubernetesVersion"], "v1.33.1+rke2r1");
        spec.kubernetes_version = "1.32.0".into();
        assert!(create_body("a", &spec).unwrap_err().contains("disagrees"));

        // No driver config: nothing to put a version in.
        spec.provider_config = None;
        let err = create_body("a", &spec).unwrap_err();
        assert!(err.contains("rke2Config"), "{err}");
    }

    #[test]
    fn what_rancher_v3_cannot_take_is_refused() {
        let refused = [
            ClusterSpec {
                node_pools: vec![NodePoolSpec::default()],
                ..ClusterSpec::default()
            },
            ClusterSpec {
                provider_config: Some(ProviderConfig::Ack(AckClusterConfig::default())),
                ..ClusterSpec::default()
            },
            ClusterSpec {
                provider_config: Some(ProviderConfig::Rancher(RancherClusterConfig {
                    rancher_cluster_id: "c-abcde".into(),
                    driver_config: None,
                })),
                ..ClusterSpec::default()
            },
        ];
        for spec in refused {
            assert!(create_body("a", &spec).is_err(), "{spec:?}");
        }
        // Fields with no v3 equivalent are left out.
        let spec = ClusterSpec {
            region: "cn-hangzhou".into(),
            zones: vec!["cn-hangzhou-a".into()],
            network: Some(ClusterNetwork {
                pod_cidr: "10.42.0.0/16".into(),
                ..ClusterNetwork::default()
            }),
            ..ClusterSpec::default()
        };
        assert_eq!(
            create_body("a", &spec).unwrap(),
            json!({"type": "cluster", "name": "a"})
        );
    }

    #[test]
    fn check_takes_rancher_settings_or_none_and_no_region() {
        let spec = |config: Option<ProviderConfig>| ClusterSpec {
            provider_config: config,
            ..ClusterSpec::default()
        };
        assert_eq!(check(&spec(rancher(None))), Ok(Vec::new()));
        assert_eq!(check(&spec(None)), Ok(Vec::new()), "no region needed");
        for other in [
            ProviderConfig::Ack(AckClusterConfig::default()),
            ProviderConfig::Tke(TkeClusterConfig::default()),
        ] {
            let refused = check(&spec(Some(other))).unwrap_err();
            assert_eq!(refused.field, "spec.provider_config");
            assert_eq!(
                refused.reason,
                "does not match provider \"rancher\"; set spec.rancher or leave it empty"
            );
        }
    }
}
