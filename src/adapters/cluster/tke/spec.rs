//! Flotilla's cluster and node pool specs as TKE request bodies (pure). Empty fields are left
//! out; `vendor_extra` fields are set at the top level of CreateCluster last, unchanged.

use serde_json::{Map, Value, json};

use super::{VENDOR, action, client::invalid, endpoint};
use crate::adapters::{
    cluster::{ClusterSpec, NodePoolSpec, SpecViolation, SpecWarning, spec_rules},
    error::Result,
};
use crate::proto::{self as pb, cluster_spec, node_pool_spec};

/// TKE's rules for a cluster spec, before anything is recorded: TKE settings or none, a region
/// (every TKE call names one), and how the API server may be reached (`endpoint::review`: a
/// public endpoint only with source CIDRs, and a warning when there is one).
pub fn check(spec: &ClusterSpec) -> std::result::Result<Vec<SpecWarning>, SpecViolation> {
    let own = matches!(
        spec.provider_config,
        Some(cluster_spec::ProviderConfig::Tke(_))
    );
    spec_rules::own_provider_config(VENDOR, spec, own)?;
    spec_rules::region_required(VENDOR, spec)?;
    endpoint::review(spec)
}

/// TKE versions have no leading `v` ("1.30.0").
pub(super) fn vendor_version(version: &str) -> &str {
    version.strip_prefix('v').unwrap_or(version)
}

fn put(map: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        map.insert(key.into(), json!(value));
    }
}

/// The CreateCluster body for `spec`, named `name` at the vendor. Empty fields are left out;
/// `vendor_extra` fields are set at the top level last, unchanged. Node pools are not part of
/// it: TKE's CreateCluster takes raw CVM parameters, not pools, so they are created afterwards
/// with CreateClusterNodePool.
pub fn create_cluster_body(name: &str, spec: &ClusterSpec) -> Result<Value> {
    const OP: &str = action::CREATE_CLUSTER;
    let tke = match &spec.provider_config {
        None => None,
        Some(cluster_spec::ProviderConfig::Tke(tke)) => Some(tke),
        Some(_) => {
            return Err(invalid(
                OP,
                "provider_config holds another vendor's settings; a TKE cluster takes `tke`",
            ));
        }
    };
    let default_tke = pb::TkeClusterConfig::default();
    let tke = tke.unwrap_or(&default_tke);
    let network = spec.network.clone().unwrap_or_default();

    let mut basic = Map::new();
    put(&mut basic, "ClusterName", name);
    put(
        &mut basic,
        "ClusterVersion",
        vendor_version(&spec.kubernetes_version),
    );
    put(&mut basic, "ClusterDescription", &spec.display_name);
    put(&mut basic, "VpcId", &network.vpc_id);
    put(&mut basic, "ClusterLevel", &tke.cluster_level);
    if !tke.project_id.is_empty() {
        let project: i64 = tke.project_id.trim().parse().map_err(|_| {
            invalid(
                OP,
                format!("tke.project_id {:?} is not a number", tke.project_id),
            )
        })?;
        basic.insert("ProjectId".into(), json!(project));
    }
    if !spec.labels.is_empty() {
        let mut labels: Vec<_> = spec.labels.iter().collect();
        labels.sort();
        let tags: Vec<Value> = labels
            .into_iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        basic.insert(
            "TagSpecification".into(),
            json!([{"ResourceType": "cluster", "Tags": tags}]),
        );
    }

    let mut cidr = Map::new();
    put(&mut cidr, "ClusterCIDR", &network.pod_cidr);
    put(&mut cidr, "ServiceCIDR", &network.service_cidr);
    if tke.network_type == "VPC-CNI" && !network.node_subnet_ids.is_empty() {
        cidr.insert("EniSubnetIds".into(), json!(network.node_subnet_ids));
    }

    let mut advanced = Map::new();
    put(&mut advanced, "NetworkType", &tke.network_type);
    match network.proxy_mode.as_str() {
        "" | "iptables" => {}
        "ipvs" => {
            advanced.insert("IPVS".into(), json!(true));
        }
        "ipvs-bpf" => {
            advanced.insert("KubeProxyMode".into(), json!("kube-proxy-bpf"));
        }
        other => {
            return Err(invalid(
                OP,
                format!("network.proxy_mode {other:?}: TKE takes iptables, ipvs or ipvs-bpf"),
            ));
        }
    }

    let mut body = Map::new();
    let cluster_type = if tke.cluster_type.is_empty() {
        "MANAGED_CLUSTER"
    } else {
        &tke.cluster_type
    };
    body.insert("ClusterType".into(), json!(cluster_type));
    body.insert("ClusterBasicSettings".into(), Value::Object(basic));
    for (key, section) in [
        ("ClusterCIDRSettings", cidr),
        ("ClusterAdvancedSettings", advanced),
    ] {
        if !section.is_empty() {
            body.insert(key.into(), Value::Object(section));
        }
    }
    if let Some(extra) = &spec.vendor_extra {
        for (key, value) in &extra.fields {
            body.insert(key.clone(), struct_value_to_json(value));
        }
    }
    Ok(Value::Object(body))
}

/// The CreateClusterNodePool body. `vpc_id` is the cluster's VPC, which the pool's scaling group
/// needs and the pool spec does not carry.
pub fn create_node_pool_body(cluster_id: &str, vpc_id: &str, spec: &NodePoolSpec) -> Result<Value> {
    const OP: &str = action::CREATE_CLUSTER_NODE_POOL;
    if spec.min_size < 0 || spec.max_size < 0 || spec.desired_size < 0 {
        return Err(invalid(OP, "node pool sizes cannot be negative"));
    }
    if spec.max_size > 0 && spec.min_size > spec.max_size {
        return Err(invalid(OP, "min_size is larger than max_size"));
    }
    let tke = match &spec.provider_config {
        None => pb::TkeNodePoolConfig::default(),
        Some(node_pool_spec::ProviderConfig::Tke(tke)) => tke.clone(),
        Some(_) => {
            return Err(invalid(
                OP,
                "provider_config holds another vendor's settings; a TKE pool takes `tke`",
            ));
        }
    };
    // The scaling group's bounds must contain the desired size.
    let max = spec.max_size.max(spec.desired_size).max(spec.min_size);
    let mut asg = Map::new();
    asg.insert("MinSize".into(), json!(spec.min_size));
    asg.insert("MaxSize".into(), json!(max));
    asg.insert("DesiredCapacity".into(), json!(spec.desired_size));
    put(&mut asg, "VpcId", vpc_id);
    if !spec.subnet_ids.is_empty() {
        asg.insert("SubnetIds".into(), json!(spec.subnet_ids));
    }
    if !spec.zones.is_empty() {
        asg.insert("Zones".into(), json!(spec.zones));
    }

    let mut launch = Map::new();
    match spec.instance_types.as_slice() {
        [] => {}
        [one] => {
            launch.insert("InstanceType".into(), json!(one));
        }
        many => {
            launch.insert("InstanceTypes".into(), json!(many));
        }
    }
    put(&mut launch, "ImageId", &spec.image);
    if let Some(disk) = &spec.system_disk {
        launch.insert("SystemDisk".into(), disk_json(disk));
    }
    if !spec.data_disks.is_empty() {
        let disks: Vec<Value> = spec.data_disks.iter().map(disk_json).collect();
        launch.insert("DataDisks".into(), json!(disks));
    }
    put(&mut launch, "InstanceChargeType", &tke.instance_charge_type);
    if !tke.key_id.is_empty() {
        launch.insert("LoginSettings".into(), json!({"KeyIds": [tke.key_id]}));
    }

    let mut body = Map::new();
    body.insert("ClusterId".into(), json!(cluster_id));
    put(&mut body, "Name", &spec.name);
    body.insert("EnableAutoscale".into(), json!(spec.autoscaling));
    // Both are JSON documents passed as strings (AS CreateAutoScalingGroup and
    // CreateLaunchConfiguration parameters).
    body.insert(
        "AutoScalingGroupPara".into(),
        json!(Value::Object(asg).to_string()),
    );
    body.insert(
        "LaunchConfigurePara".into(),
        json!(Value::Object(launch).to_string()),
    );
    if !spec.labels.is_empty() {
        let mut labels: Vec<_> = spec.labels.iter().collect();
        labels.sort();
        let labels: Vec<Value> = labels
            .into_iter()
            .map(|(k, v)| json!({"Name": k, "Value": v}))
            .collect();
        body.insert("Labels".into(), json!(labels));
    }
    if !spec.taints.is_empty() {
        let taints: Vec<Value> = spec
            .taints
            .iter()
            .map(|t| json!({"Key": t.key, "Value": t.value, "Effect": t.effect}))
            .collect();
        body.insert("Taints".into(), json!(taints));
    }
    Ok(Value::Object(body))
}

fn disk_json(disk: &pb::Disk) -> Value {
    let mut map = Map::new();
    put(&mut map, "DiskType", &disk.category);
    if disk.size_gib > 0 {
        map.insert("DiskSize".into(), json!(disk.size_gib));
    }
    Value::Object(map)
}

/// A protobuf `Value` as JSON. Whole numbers become integers, since TKE's fields are typed.
pub fn struct_value_to_json(value: &prost_types::Value) -> Value {
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
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(struct_value_to_json).collect())
        }
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), struct_value_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ErrorClass;

    #[test]
    fn cluster_spec_maps_onto_the_create_body() {
        let mut spec = ClusterSpec {
            display_name: "Demo".into(),
            kubernetes_version: "v1.30.0".into(),
            network: Some(pb::ClusterNetwork {
                vpc_id: "vpc-1".into(),
                node_subnet_ids: vec!["subnet-1".into()],
                pod_cidr: "172.16.0.0/16".into(),
                service_cidr: String::new(),
                proxy_mode: "ipvs".into(),
                ..Default::default()
            }),
            provider_config: Some(cluster_spec::ProviderConfig::Tke(pb::TkeClusterConfig {
                cluster_level: "L5".into(),
                network_type: "VPC-CNI".into(),
                project_id: "7".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        spec.labels.insert("team".into(), "infra".into());
        let mut extra = prost_types::Struct::default();
        extra.fields.insert(
            "ExtensionAddons".into(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::ListValue(
                    prost_types::ListValue { values: vec![] },
                )),
            },
        );
        spec.vendor_extra = Some(extra);
        let body = create_cluster_body("c-1", &spec).expect("body");
        assert_eq!(
            body,
            json!({
                "ClusterType": "MANAGED_CLUSTER",
                "ClusterBasicSettings": {
                    "ClusterName": "c-1", "ClusterVersion": "1.30.0", "ClusterDescription": "Demo",
                    "VpcId": "vpc-1", "ClusterLevel": "L5", "ProjectId": 7,
                    "TagSpecification": [{"ResourceType": "cluster",
                        "Tags": [{"Key": "team", "Value": "infra"}]}],
                },
                "ClusterCIDRSettings": {"ClusterCIDR": "172.16.0.0/16", "EniSubnetIds": ["subnet-1"]},
                "ClusterAdvancedSettings": {"NetworkType": "VPC-CNI", "IPVS": true},
                "ExtensionAddons": [],
            })
        );
        spec.provider_config = Some(cluster_spec::ProviderConfig::Ack(Default::default()));
        let err = create_cluster_body("c-1", &spec).expect_err("ack settings");
        assert_eq!(err.class, ErrorClass::InvalidConfiguration);
    }

    #[test]
    fn node_pool_spec_maps_onto_the_create_body() {
        let spec = NodePoolSpec {
            name: "workers".into(),
            instance_types: vec!["S5.MEDIUM4".into()],
            min_size: 1,
            max_size: 0,
            desired_size: 3,
            subnet_ids: vec!["subnet-1".into()],
            system_disk: Some(pb::Disk {
                category: "CLOUD_PREMIUM".into(),
                size_gib: 50,
            }),
            provider_config: Some(node_pool_spec::ProviderConfig::Tke(pb::TkeNodePoolConfig {
                instance_charge_type: String::new(),
                key_id: "skey-1".into(),
            })),
            ..Default::default()
        };
        let body = create_node_pool_body("cls-1", "vpc-1", &spec).expect("body");
        let asg: Value =
            serde_json::from_str(body["AutoScalingGroupPara"].as_str().expect("string"))
                .expect("json");
        assert_eq!(
            asg,
            json!({"MinSize": 1, "MaxSize": 3, "DesiredCapacity": 3, "VpcId": "vpc-1",
                   "SubnetIds": ["subnet-1"]})
        );
        let launch: Value =
            serde_json::from_str(body["LaunchConfigurePara"].as_str().expect("string"))
                .expect("json");
        assert_eq!(
            launch,
            json!({"InstanceType": "S5.MEDIUM4",
                   "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskSize": 50},
                   "LoginSettings": {"KeyIds": ["skey-1"]}})
        );
        assert_eq!(body["Name"], "workers");
        assert_eq!(body["EnableAutoscale"], false);
        let bad = NodePoolSpec {
            min_size: 5,
            max_size: 2,
            ..spec
        };
        assert!(create_node_pool_body("cls-1", "vpc-1", &bad).is_err());
    }

    #[test]
    fn check_takes_tke_settings_or_none_a_region_and_the_endpoint_rules() {
        let spec = |config: Option<cluster_spec::ProviderConfig>, region: &str| ClusterSpec {
            region: region.into(),
            provider_config: config,
            ..ClusterSpec::default()
        };
        let tke = |public_endpoint: bool, cidrs: &[&str]| {
            Some(cluster_spec::ProviderConfig::Tke(pb::TkeClusterConfig {
                public_endpoint,
                public_endpoint_cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
                ..Default::default()
            }))
        };
        assert_eq!(
            check(&spec(tke(false, &[]), "ap-guangzhou")),
            Ok(Vec::new())
        );
        assert_eq!(check(&spec(None, "ap-guangzhou")), Ok(Vec::new()));
        for other in [
            cluster_spec::ProviderConfig::Ack(Default::default()),
            cluster_spec::ProviderConfig::Rancher(Default::default()),
        ] {
            let refused = check(&spec(Some(other), "ap-guangzhou")).unwrap_err();
            assert_eq!(refused.field, "spec.provider_config");
            assert_eq!(
                refused.reason,
                "does not match provider \"tke\"; set spec.tke or leave it empty"
            );
        }
        let refused = check(&spec(tke(false, &[]), " ")).unwrap_err();
        assert_eq!(refused.field, "spec.region");
        assert!(
            refused.reason.starts_with("is required for tke"),
            "{refused:?}"
        );
        // The endpoint rules come after: a public endpoint needs CIDRs and is warned about.
        let refused = check(&spec(tke(true, &[]), "ap-guangzhou")).unwrap_err();
        assert_eq!(refused.field, "spec.tke.public_endpoint_cidrs");
        let warnings = check(&spec(tke(true, &["203.0.113.0/24"]), "ap-guangzhou")).unwrap();
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].code, "PUBLIC_ENDPOINT");
    }
}
