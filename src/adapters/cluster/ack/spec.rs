//! Flotilla's specs as ACK request bodies (vendor-apis.md §1.6, §1.7), and how a node pool
//! resize becomes one ACK call. Pure: no I/O, unit-tested by comparing JSON.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::{MAX_SCALE_OUT, VENDOR, action};
use crate::adapters::{
    cluster::{
        ClusterSpec, NodePoolResize, NodePoolSpec, SpecViolation, SpecWarning, VendorNodePool,
        spec_rules,
    },
    error::{ErrorClass, Result, VendorError},
};
use crate::proto::{cluster_spec, node_pool_spec};

fn invalid(operation: &'static str, message: impl Into<String>) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        "",
        message,
    )
}

/// ACK's rules for a cluster spec, before anything is recorded: ACK settings or none, and a
/// region (ACK is regional: the endpoint and every cluster live in one).
pub fn check(spec: &ClusterSpec) -> std::result::Result<Vec<SpecWarning>, SpecViolation> {
    let own = matches!(
        spec.provider_config,
        Some(cluster_spec::ProviderConfig::Ack(_))
    );
    spec_rules::own_provider_config(VENDOR, spec, own)?;
    spec_rules::region_required(VENDOR, spec)?;
    Ok(Vec::new())
}

/// What one resize call sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ResizePlan {
    /// The pool already is as asked.
    Nothing,
    /// ScaleClusterNodePool: nodes to add.
    ScaleOut(i32),
    /// ModifyClusterNodePool with this body.
    Modify(Value),
}

/// Decides the call for `change` against the pool as it is now.
pub fn plan_resize(current: &VendorNodePool, change: &NodePoolResize) -> Result<ResizePlan> {
    let op = action::MODIFY_CLUSTER_NODE_POOL;
    let enable = change.autoscaling.unwrap_or(current.autoscaling);
    let min = change.min_size.unwrap_or(current.min_size);
    let max = change.max_size.unwrap_or(current.max_size);
    if change.desired_size.is_some_and(|d| d < 0) || min < 0 || max < 0 {
        return Err(invalid(op, "node pool sizes cannot be negative"));
    }
    if enable && min > max {
        return Err(invalid(
            op,
            format!("autoscaling bounds are reversed: min {min} > max {max}"),
        ));
    }
    let bounds_change =
        enable != current.autoscaling || min != current.min_size || max != current.max_size;
    let target = change
        .desired_size
        .filter(|target| *target != current.desired_size);
    let mut body = Map::new();
    if bounds_change {
        body.insert(
            "auto_scaling".into(),
            json!({ "enable": enable, "min_instances": min, "max_instances": max }),
        );
    }
    match target {
        Some(target) if target > current.desired_size && !bounds_change => {
            let count = target - current.desired_size;
            if count > MAX_SCALE_OUT {
                return Err(invalid(
                    action::SCALE_CLUSTER_NODE_POOL,
                    format!("ACK adds at most {MAX_SCALE_OUT} nodes per call; asked for {count}"),
                ));
            }
            return Ok(ResizePlan::ScaleOut(count));
        }
        Some(target) => {
            body.insert("scaling_group".into(), json!({ "desired_size": target }));
        }
        None => {}
    }
    Ok(if body.is_empty() {
        ResizePlan::Nothing
    } else {
        ResizePlan::Modify(Value::Object(body))
    })
}

fn tags(labels: &HashMap<String, String>) -> Value {
    let sorted: BTreeMap<&String, &String> = labels.iter().collect();
    Value::Array(
        sorted
            .into_iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect(),
    )
}

fn put(body: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
    };
    if !empty {
        body.insert(key.to_string(), value);
    }
}

/// The CreateCluster body (vendor-apis.md §1.6). Empty fields are left out; `vendor_extra`
/// is merged in last, unchanged, so it can set anything this mapping does not know.
pub fn cluster_body(name: &str, ctx_region: &str, spec: &ClusterSpec) -> Result<Value> {
    let op = action::CREATE_CLUSTER;
    if !spec.region.is_empty() && !ctx_region.is_empty() && spec.region != ctx_region {
        return Err(invalid(
            op,
            format!(
                "the spec's region {:?} differs from the credential's region {ctx_region:?}",
                spec.region
            ),
        ));
    }
    let region = if spec.region.is_empty() {
        ctx_region
    } else {
        &spec.region
    };
    let ack = match &spec.provider_config {
        Some(cluster_spec::ProviderConfig::Ack(ack)) => Some(ack),
        Some(_) => return Err(invalid(op, "the spec's provider settings are not for ACK")),
        None => None,
    };
    let mut body = Map::new();
    put(&mut body, "name", json!(name));
    put(&mut body, "region_id", json!(region));
    let cluster_type = ack
        .map(|a| a.cluster_type.as_str())
        .filter(|t| !t.is_empty())
        .unwrap_or("ManagedKubernetes");
    put(&mut body, "cluster_type", json!(cluster_type));
    put(
        &mut body,
        "kubernetes_version",
        json!(spec.kubernetes_version),
    );
    if let Some(net) = &spec.network {
        put(&mut body, "vpcid", json!(net.vpc_id));
        put(&mut body, "vswitch_ids", json!(net.node_subnet_ids));
        put(&mut body, "container_cidr", json!(net.pod_cidr));
        put(&mut body, "service_cidr", json!(net.service_cidr));
        put(&mut body, "proxy_mode", json!(net.proxy_mode));
        put(
            &mut body,
            "endpoint_public_access",
            json!(net.endpoint_public_access),
        );
        put(&mut body, "security_group_id", json!(net.security_group_id));
    }
    if let Some(ack) = ack {
        put(&mut body, "cluster_spec", json!(ack.cluster_spec));
        put(&mut body, "pod_vswitch_ids", json!(ack.pod_vswitch_ids));
        let addons: Vec<Value> = ack.addons.iter().map(|a| json!({ "name": a })).collect();
        put(&mut body, "addons", Value::Array(addons));
        put(&mut body, "snat_entry", json!(ack.snat_entry));
        put(&mut body, "resource_group_id", json!(ack.resource_group_id));
    }
    put(&mut body, "tags", tags(&spec.labels));
    let pools: Vec<Value> = spec.node_pools.iter().map(node_pool_body).collect();
    put(&mut body, "nodepools", Value::Array(pools));
    if let Some(extra) = &spec.vendor_extra {
        for (key, value) in &extra.fields {
            body.insert(key.clone(), struct_value_to_json(value));
        }
    }
    Ok(Value::Object(body))
}

/// The Nodepool model, as CreateClusterNodePool and CreateCluster's `nodepools[]` take it.
pub fn node_pool_body(spec: &NodePoolSpec) -> Value {
    let ack = match &spec.provider_config {
        Some(node_pool_spec::ProviderConfig::Ack(ack)) => Some(ack),
        _ => None,
    };
    let mut info = Map::new();
    put(&mut info, "name", json!(spec.name));
    let mut scaling = Map::new();
    put(&mut scaling, "instance_types", json!(spec.instance_types));
    put(&mut scaling, "vswitch_ids", json!(spec.subnet_ids));
    if !spec.autoscaling {
        // Zero is a real size here: an empty pool.
        scaling.insert("desired_size".into(), json!(spec.desired_size));
    }
    if let Some(disk) = &spec.system_disk {
        put(&mut scaling, "system_disk_category", json!(disk.category));
        put(&mut scaling, "system_disk_size", json!(disk.size_gib));
    }
    let disks: Vec<Value> = spec
        .data_disks
        .iter()
        .map(|d| json!({ "category": d.category, "size": d.size_gib }))
        .collect();
    put(&mut scaling, "data_disks", Value::Array(disks));
    put(&mut scaling, "image_id", json!(spec.image));
    let mut kube = Map::new();
    put(&mut kube, "labels", tags(&spec.labels));
    let taints: Vec<Value> = spec
        .taints
        .iter()
        .map(|t| json!({ "key": t.key, "value": t.value, "effect": t.effect }))
        .collect();
    put(&mut kube, "taints", Value::Array(taints));
    if let Some(ack) = ack {
        put(
            &mut scaling,
            "instance_charge_type",
            json!(ack.instance_charge_type),
        );
        put(&mut scaling, "key_pair", json!(ack.key_pair));
        put(&mut kube, "runtime", json!(ack.runtime));
    }
    let mut body = Map::new();
    body.insert("nodepool_info".into(), Value::Object(info));
    put(&mut body, "scaling_group", Value::Object(scaling));
    put(&mut body, "kubernetes_config", Value::Object(kube));
    if spec.autoscaling {
        body.insert(
            "auto_scaling".into(),
            json!({
                "enable": true,
                "min_instances": spec.min_size,
                "max_instances": spec.max_size,
            }),
        );
    }
    Value::Object(body)
}

/// A `google.protobuf.Value` as JSON; whole numbers stay integers (ACK wants `timeout_mins: 30`,
/// not `30.0`).
fn struct_value_to_json(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                json!(*n as i64)
            } else {
                json!(n)
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
    use super::*;
    use crate::proto::{
        AckClusterConfig, AckNodePoolConfig, ClusterNetwork, Disk, Taint, TkeClusterConfig,
    };

    fn pool(desired: i32, autoscaling: bool, min: i32, max: i32) -> VendorNodePool {
        VendorNodePool {
            id: "np-1".into(),
            desired_size: desired,
            autoscaling,
            min_size: min,
            max_size: max,
            ..Default::default()
        }
    }

    fn resize(desired: Option<i32>) -> NodePoolResize {
        NodePoolResize {
            desired_size: desired,
            ..Default::default()
        }
    }

    #[test]
    fn growth_adds_the_difference_and_only_once() {
        let now = pool(2, false, 0, 0);
        assert_eq!(
            plan_resize(&now, &resize(Some(5))).unwrap(),
            ResizePlan::ScaleOut(3)
        );
        // Repeated after the first call landed: the pool's desired size is already 5.
        let after = pool(5, false, 0, 0);
        assert_eq!(
            plan_resize(&after, &resize(Some(5))).unwrap(),
            ResizePlan::Nothing
        );
        assert_eq!(
            plan_resize(&after, &resize(None)).unwrap(),
            ResizePlan::Nothing
        );
    }

    #[test]
    fn shrinking_modifies_the_desired_size() {
        assert_eq!(
            plan_resize(&pool(5, false, 0, 0), &resize(Some(1))).unwrap(),
            ResizePlan::Modify(json!({ "scaling_group": { "desired_size": 1 } }))
        );
        assert_eq!(
            plan_resize(&pool(5, false, 0, 0), &resize(Some(0))).unwrap(),
            ResizePlan::Modify(json!({ "scaling_group": { "desired_size": 0 } }))
        );
    }

    #[test]
    fn autoscaling_changes_send_the_whole_range_in_one_call() {
        let change = NodePoolResize {
            autoscaling: Some(true),
            min_size: Some(1),
            max_size: Some(6),
            desired_size: Some(4),
        };
        assert_eq!(
            plan_resize(&pool(2, false, 0, 0), &change).unwrap(),
            ResizePlan::Modify(json!({
                "auto_scaling": { "enable": true, "min_instances": 1, "max_instances": 6 },
                "scaling_group": { "desired_size": 4 },
            }))
        );
        let only_max = NodePoolResize {
            max_size: Some(10),
            ..Default::default()
        };
        assert_eq!(
            plan_resize(&pool(2, true, 1, 6), &only_max).unwrap(),
            ResizePlan::Modify(json!({
                "auto_scaling": { "enable": true, "min_instances": 1, "max_instances": 10 }
            }))
        );
        let same = NodePoolResize {
            autoscaling: Some(true),
            min_size: Some(1),
            max_size: Some(6),
            desired_size: None,
        };
        assert_eq!(
            plan_resize(&pool(2, true, 1, 6), &same).unwrap(),
            ResizePlan::Nothing
        );
    }

    #[test]
    fn bad_resizes_are_refused_before_any_call() {
        let now = pool(2, false, 0, 0);
        for change in [
            resize(Some(-1)),
            resize(Some(2 + MAX_SCALE_OUT + 1)),
            NodePoolResize {
                autoscaling: Some(true),
                min_size: Some(5),
                max_size: Some(2),
                desired_size: None,
            },
        ] {
            let err = plan_resize(&now, &change).unwrap_err();
            assert_eq!(err.class, ErrorClass::InvalidConfiguration, "{change:?}");
        }
    }

    fn spec() -> ClusterSpec {
        ClusterSpec {
            kubernetes_version: "1.32.1-aliyun.1".into(),
            region: "cn-hangzhou".into(),
            network: Some(ClusterNetwork {
                vpc_id: "vpc-1".into(),
                node_subnet_ids: vec!["vsw-1".into(), "vsw-2".into()],
                pod_cidr: "172.20.0.0/16".into(),
                service_cidr: "172.21.0.0/20".into(),
                proxy_mode: "ipvs".into(),
                endpoint_public_access: true,
                security_group_id: String::new(),
            }),
            labels: [("team".to_string(), "infra".to_string())].into(),
            provider_config: Some(cluster_spec::ProviderConfig::Ack(AckClusterConfig {
                cluster_spec: "ack.pro.small".into(),
                addons: vec!["terway-eniip".into()],
                ..Default::default()
            })),
            node_pools: vec![NodePoolSpec {
                name: "default".into(),
                instance_types: vec!["ecs.g7.large".into()],
                desired_size: 2,
                subnet_ids: vec!["vsw-1".into()],
                system_disk: Some(Disk {
                    category: "cloud_essd".into(),
                    size_gib: 120,
                }),
                taints: vec![Taint {
                    key: "dedicated".into(),
                    value: "gpu".into(),
                    effect: "NoSchedule".into(),
                }],
                provider_config: Some(node_pool_spec::ProviderConfig::Ack(AckNodePoolConfig {
                    runtime: "containerd".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            vendor_extra: Some(prost_types::Struct {
                fields: [
                    (
                        "timeout_mins".to_string(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::NumberValue(30.0)),
                        },
                    ),
                    (
                        "cluster_spec".to_string(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::StringValue(
                                "ack.pro.xlarge".into(),
                            )),
                        },
                    ),
                ]
                .into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn cluster_body_maps_the_spec_and_leaves_empty_fields_out() {
        let body = cluster_body("flo-1", "cn-hangzhou", &spec()).unwrap();
        assert_eq!(
            body,
            json!({
                "name": "flo-1",
                "region_id": "cn-hangzhou",
                "cluster_type": "ManagedKubernetes",
                // vendor_extra wins over the typed field.
                "cluster_spec": "ack.pro.xlarge",
                "kubernetes_version": "1.32.1-aliyun.1",
                "vpcid": "vpc-1",
                "vswitch_ids": ["vsw-1", "vsw-2"],
                "container_cidr": "172.20.0.0/16",
                "service_cidr": "172.21.0.0/20",
                "proxy_mode": "ipvs",
                "endpoint_public_access": true,
                "addons": [{ "name": "terway-eniip" }],
                "tags": [{ "key": "team", "value": "infra" }],
                "timeout_mins": 30,
                "nodepools": [{
                    "nodepool_info": { "name": "default" },
                    "scaling_group": {
                        "instance_types": ["ecs.g7.large"],
                        "vswitch_ids": ["vsw-1"],
                        "desired_size": 2,
                        "system_disk_category": "cloud_essd",
                        "system_disk_size": 120,
                    },
                    "kubernetes_config": {
                        "taints": [{ "key": "dedicated", "value": "gpu", "effect": "NoSchedule" }],
                        "runtime": "containerd",
                    },
                }],
            })
        );
    }

    #[test]
    fn cluster_body_refuses_foreign_settings_and_region_mismatch() {
        let mut tke = spec();
        tke.provider_config = Some(cluster_spec::ProviderConfig::Tke(
            TkeClusterConfig::default(),
        ));
        assert_eq!(
            cluster_body("x", "cn-hangzhou", &tke).unwrap_err().class,
            ErrorClass::InvalidConfiguration
        );
        assert_eq!(
            cluster_body("x", "cn-beijing", &spec()).unwrap_err().class,
            ErrorClass::InvalidConfiguration
        );
        let bare = ClusterSpec::default();
        assert_eq!(
            cluster_body("x", "cn-beijing", &bare).unwrap(),
            json!({ "name": "x", "region_id": "cn-beijing", "cluster_type": "ManagedKubernetes" })
        );
    }

    #[test]
    fn autoscaling_pools_send_bounds_not_a_size() {
        let spec = NodePoolSpec {
            name: "auto".into(),
            autoscaling: true,
            min_size: 1,
            max_size: 5,
            desired_size: 3,
            ..Default::default()
        };
        assert_eq!(
            node_pool_body(&spec),
            json!({
                "nodepool_info": { "name": "auto" },
                "auto_scaling": { "enable": true, "min_instances": 1, "max_instances": 5 },
            })
        );
    }

    #[test]
    fn check_takes_ack_settings_or_none_and_needs_a_region() {
        let spec = |config: Option<cluster_spec::ProviderConfig>, region: &str| ClusterSpec {
            region: region.into(),
            provider_config: config,
            ..ClusterSpec::default()
        };
        let ack = || Some(cluster_spec::ProviderConfig::Ack(Default::default()));
        assert_eq!(check(&spec(ack(), "cn-hangzhou")), Ok(Vec::new()));
        assert_eq!(check(&spec(None, "cn-hangzhou")), Ok(Vec::new()));
        for other in [
            cluster_spec::ProviderConfig::Tke(Default::default()),
            cluster_spec::ProviderConfig::Rancher(Default::default()),
        ] {
            let refused = check(&spec(Some(other), "cn-hangzhou")).unwrap_err();
            assert_eq!(refused.field, "spec.provider_config");
            assert_eq!(
                refused.reason,
                "does not match provider \"ack\"; set spec.ack or leave it empty"
            );
        }
        for region in ["", "  "] {
            let refused = check(&spec(ack(), region)).unwrap_err();
            assert_eq!(refused.field, "spec.region");
            assert!(
                refused.reason.starts_with("is required for ack"),
                "{refused:?}"
            );
        }
    }
}
