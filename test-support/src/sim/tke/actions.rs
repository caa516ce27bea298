//! The TKE actions the simulator answers, with TKE's parameter names and error codes.

use std::{collections::BTreeMap, time::Instant};

use serde_json::{Value, json};

use super::{
    Answer, EXTRANET_NOT_ENABLED, Fault, SimControl,
    state::{Cluster, Endpoint, Instance, Phase, Pool, PoolPhase, World, new_id},
    unix_now, utc,
};

/// Refuses parameters the action does not have (`allowed`: names separated by spaces).
fn only(params: &Value, allowed: &str) -> Result<(), Fault> {
    let map = params.as_object().map(|m| m.keys()).into_iter().flatten();
    for key in map {
        if !allowed.split(' ').any(|a| a == key) {
            return Err((
                "UnknownParameter",
                format!("The parameter `{key}` is not recognized."),
            ));
        }
    }
    Ok(())
}

fn text<'a>(p: &'a Value, key: &str) -> Result<&'a str, Fault> {
    match p.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Value::Null) => Err(("MissingParameter", format!("`{key}` is required."))),
        _ => Err((
            "InvalidParameterValue",
            format!("`{key}` must be a non-empty string."),
        )),
    }
}

fn int(p: &Value, key: &str) -> Result<Option<i64>, Fault> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            (
                "InvalidParameterValue",
                format!("`{key}` must be an integer."),
            )
        }),
    }
}

fn flag(p: &Value, key: &str) -> Result<Option<bool>, Fault> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        _ => Err((
            "InvalidParameterValue",
            format!("`{key}` must be a boolean."),
        )),
    }
}

fn texts(p: &Value, key: &str) -> Result<Vec<String>, Fault> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ("InvalidParameterValue", format!("`{key}` must be strings."))),
        _ => Err((
            "InvalidParameterValue",
            format!("`{key}` must be an array."),
        )),
    }
}

/// A parameter that is a JSON document inside a string (AutoScalingGroupPara and friends).
fn json_string(p: &Value, key: &str) -> Result<Value, Fault> {
    serde_json::from_str(text(p, key)?).map_err(|_| {
        (
            "InvalidParameter.Param",
            format!("`{key}` is not a JSON string."),
        )
    })
}

fn filters(p: &Value) -> Result<Vec<(String, Vec<String>)>, Fault> {
    let Some(list) = p.get("Filters").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|f| Ok((text(f, "Name")?.to_string(), texts(f, "Values")?)))
        .collect()
}

fn newer(candidate: &str, current: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    parse(candidate) > parse(current)
}

impl World {
    fn cluster(&mut self, p: &Value, missing: &'static str) -> Result<&mut Cluster, Fault> {
        let id = text(p, "ClusterId")?;
        self.clusters
            .get_mut(id)
            .ok_or_else(|| (missing, format!("cluster {id} not found")))
    }

    pub(super) fn dispatch(&mut self, action: &str, p: &Value, control: &SimControl) -> Answer {
        let now = Instant::now();
        let provision = now + control.provision_delay();
        let change = now + control.change_delay();
        match action {
            "CreateCluster" => {
                only(
                    p,
                    "ClusterType ClusterCIDRSettings RunInstancesForNode ClusterBasicSettings ClusterAdvancedSettings InstanceAdvancedSettings ExistedInstancesForNode InstanceDataDiskMountSettings ExtensionAddons CdcId DisableAddons",
                )?;
                let kind = text(p, "ClusterType")?;
                if kind != "MANAGED_CLUSTER" && kind != "INDEPENDENT_CLUSTER" {
                    return Err(("InvalidParameter.Param", format!("ClusterType {kind:?}")));
                }
                let basic = p.get("ClusterBasicSettings").unwrap_or(&Value::Null);
                let name = text(basic, "ClusterName")?.to_string();
                let version = basic["ClusterVersion"].as_str().unwrap_or("1.32.2");
                // Not de-duplicated by name: the real vendor does not either.
                self.created += 1;
                self.seq += 1;
                let id = new_id("cls");
                let cluster = Cluster {
                    seq: self.seq,
                    id: id.clone(),
                    name,
                    version: version.to_string(),
                    phase: Phase::Creating {
                        until: provision,
                        fail: control.take_task_failure(),
                    },
                    request: p.clone(),
                    created_time: utc(unix_now(), true),
                    extranet: Endpoint::Closed,
                    extranet_policies: Vec::new(),
                    pools: BTreeMap::new(),
                };
                self.clusters.insert(id.clone(), cluster);
                Ok(json!({"ClusterId": id}))
            }
            "DescribeClusters" => {
                only(p, "ClusterIds Offset Limit Filters ClusterType")?;
                let ids = texts(p, "ClusterIds")?;
                let offset = int(p, "Offset")?.unwrap_or(0).max(0) as usize;
                let limit = int(p, "Limit")?.unwrap_or(20);
                if !(1..=100).contains(&limit) {
                    return Err(("InvalidParameterValue", "Limit must be 1..=100".into()));
                }
                let filters = filters(p)?;
                let mut found: Vec<&Cluster> = Vec::new();
                for cluster in self.clusters.values() {
                    if !ids.is_empty() && !ids.contains(&cluster.id) {
                        continue;
                    }
                    let mut keep = true;
                    for (name, values) in &filters {
                        keep &= match name.as_str() {
                            "ClusterName" => values.iter().any(|v| cluster.name.contains(v)),
                            "ClusterStatus" => values.iter().any(|v| v == cluster.status()),
                            "ClusterType" => {
                                values.iter().any(|v| cluster.request["ClusterType"] == **v)
                            }
                            other => {
                                return Err((
                                    "InvalidParameter.Param",
                                    format!("filter {other:?} is not supported"),
                                ));
                            }
                        };
                    }
                    if keep {
                        found.push(cluster);
                    }
                }
                found.sort_by_key(|c| std::cmp::Reverse(c.seq));
                let page: Vec<Value> = found
                    .iter()
                    .skip(offset)
                    .take(limit as usize)
                    .map(|c| c.json())
                    .collect();
                Ok(json!({"TotalCount": found.len(), "Clusters": page}))
            }
            "DescribeClusterKubeconfig" => {
                only(p, "ClusterId IsExtranet")?;
                let extranet = flag(p, "IsExtranet")?.unwrap_or(false);
                let kubeconfig = self.kubeconfig.clone();
                let cluster = self.cluster(p, "ResourceNotFound.ClusterNotFound")?;
                if !matches!(cluster.phase, Phase::Running | Phase::Upgrading { .. }) {
                    return Err((
                        "ResourceUnavailable.ClusterInAbnormalStat",
                        format!("cluster {} is {}", cluster.id, cluster.status()),
                    ));
                }
                if extranet && !matches!(cluster.extranet, Endpoint::Open) {
                    return Err((
                        EXTRANET_NOT_ENABLED,
                        format!("cluster {} has not enabled extranet access", cluster.id),
                    ));
                }
                Ok(json!({"Kubeconfig": kubeconfig}))
            }
            "DescribeClusterEndpointStatus" => {
                only(p, "ClusterId IsExtranet")?;
                let extranet = flag(p, "IsExtranet")?.unwrap_or(false);
                let cluster = self.cluster(p, "InternalError.ClusterNotFound")?;
                let status = match (&cluster.extranet, extranet) {
                    (_, false) | (Endpoint::Open, true) => "Created",
                    (Endpoint::Opening(_), true) => "Creating",
                    (Endpoint::Closed, true) => "NotFound",
                };
                Ok(json!({"Status": status, "ErrorMsg": ""}))
            }
            "CreateClusterEndpoint" => {
                only(
                    p,
                    "ClusterId SubnetId IsExtranet Domain SecurityGroup ExtensiveParameters ExistedLoadBalancerId",
                )?;
                let extranet = flag(p, "IsExtranet")?.unwrap_or(false);
                let cluster = self.cluster(p, "ResourceNotFound")?;
                if !cluster.running() {
                    return Err((
                        "ResourceUnavailable.ClusterState",
                        format!("cluster {} is {}", cluster.id, cluster.status()),
                    ));
                }
                if extranet {
                    if !matches!(cluster.extranet, Endpoint::Closed) {
                        return Err(("ResourceInUse", "the extranet endpoint exists".into()));
                    }
                    cluster.extranet = Endpoint::Opening(change);
                }
                Ok(json!({}))
            }
            // UNCONFIRMED: the security policy of a managed cluster's extranet endpoint.
            "ModifyClusterEndpointSP" => {
                only(p, "ClusterId SecurityPolicies SecurityGroup IsExtranet")?;
                let policies = texts(p, "SecurityPolicies")?;
                if let Some(bad) = policies.iter().find(|c| {
                    let (ip, prefix) = c.split_once('/').unwrap_or((c, "32"));
                    ip.parse::<std::net::IpAddr>().is_err() || prefix.parse::<u8>().is_err()
                }) {
                    return Err((
                        "InvalidParameterValue",
                        format!("`SecurityPolicies` has {bad:?}, not an IP or CIDR."),
                    ));
                }
                let cluster = self.cluster(p, "ResourceNotFound.ClusterNotFound")?;
                if !matches!(cluster.extranet, Endpoint::Open) {
                    return Err((
                        EXTRANET_NOT_ENABLED,
                        format!("cluster {} has not enabled extranet access", cluster.id),
                    ));
                }
                cluster.extranet_policies = policies;
                Ok(json!({}))
            }
            "UpdateClusterVersion" => {
                only(
                    p,
                    "ClusterId DstVersion ExtraArgs MaxNotReadyPercent SkipPreCheck",
                )?;
                let to = text(p, "DstVersion")?.to_string();
                let cluster = self.cluster(p, "ResourceNotFound")?;
                if !cluster.running() {
                    return Err((
                        "ResourceUnavailable.ClusterState",
                        format!("cluster {} is {}", cluster.id, cluster.status()),
                    ));
                }
                if !newer(&to, &cluster.version) {
                    return Err((
                        "InvalidParameter.Param",
                        format!("DstVersion {to} is not newer than {}", cluster.version),
                    ));
                }
                cluster.phase = Phase::Upgrading {
                    until: change,
                    to,
                    fail: control.take_task_failure(),
                };
                Ok(json!({}))
            }
            "DeleteCluster" => {
                only(p, "ClusterId InstanceDeleteMode ResourceDeleteOptions")?;
                let mode = text(p, "InstanceDeleteMode")?;
                if mode != "terminate" && mode != "retain" {
                    return Err(("InvalidParameter", format!("InstanceDeleteMode {mode:?}")));
                }
                let cluster = self.cluster(p, "InternalError.ClusterNotFound")?;
                if !matches!(cluster.phase, Phase::Deleting { .. }) {
                    cluster.phase = Phase::Deleting {
                        until: provision,
                        fail: control.take_task_failure(),
                    };
                }
                Ok(json!({}))
            }
            _ => self.dispatch_pools(action, p, control, change),
        }
    }

    fn dispatch_pools(
        &mut self,
        action: &str,
        p: &Value,
        control: &SimControl,
        change: Instant,
    ) -> Answer {
        let mut seq = self.seq;
        let answer = match action {
            "CreateClusterNodePool" => {
                only(
                    p,
                    "ClusterId AutoScalingGroupPara LaunchConfigurePara InstanceAdvancedSettings EnableAutoscale Name Labels Taints Annotations ContainerRuntime RuntimeVersion NodePoolOs OsCustomizeType Tags DeletionProtection SkipValidateOptions",
                )?;
                let asg = json_string(p, "AutoScalingGroupPara")?;
                json_string(p, "LaunchConfigurePara")?;
                let (Some(min), Some(max)) = (int(&asg, "MinSize")?, int(&asg, "MaxSize")?) else {
                    return Err((
                        "InvalidParameter.Param",
                        "AutoScalingGroupPara needs MinSize and MaxSize".into(),
                    ));
                };
                let desired = int(&asg, "DesiredCapacity")?.unwrap_or(min);
                if min < 0 || min > desired || desired > max {
                    return Err((
                        "InvalidParameterValue.Size",
                        format!(
                            "need 0 <= MinSize {min} <= DesiredCapacity {desired} <= MaxSize {max}"
                        ),
                    ));
                }
                let autoscale = flag(p, "EnableAutoscale")?.unwrap_or(false);
                let name = p["Name"].as_str().unwrap_or_default().to_string();
                let cluster = self.cluster(p, "ResourceNotFound.ClusterNotFound")?;
                if !cluster.running() {
                    return Err((
                        "ResourceUnavailable.ClusterState",
                        format!("cluster {} is {}", cluster.id, cluster.status()),
                    ));
                }
                let id = new_id("np");
                cluster.pools.insert(
                    id.clone(),
                    Pool {
                        id: id.clone(),
                        name,
                        phase: PoolPhase::Creating {
                            until: change,
                            fail: control.take_task_failure(),
                        },
                        desired,
                        min,
                        max,
                        autoscale,
                        labels: p.get("Labels").cloned().unwrap_or(json!([])),
                        taints: p.get("Taints").cloned().unwrap_or(json!([])),
                        instances: Vec::new(),
                    },
                );
                Ok(json!({"NodePoolId": id}))
            }
            "DescribeClusterNodePools" => {
                only(p, "ClusterId Filters")?;
                let filters = filters(p)?;
                let cluster = self.cluster(p, "ResourceNotFound.ClusterNotFound")?;
                let pools: Vec<Value> = cluster
                    .pools
                    .values()
                    .filter(|pool| {
                        filters.iter().all(|(name, values)| match name.as_str() {
                            "NodePoolsName" => values.contains(&pool.name),
                            "NodePoolsId" => values.contains(&pool.id),
                            _ => true,
                        })
                    })
                    .map(|pool| pool.json(&cluster.id))
                    .collect();
                Ok(json!({"TotalCount": pools.len(), "NodePoolSet": pools}))
            }
            "ModifyNodePoolDesiredCapacityAboutAsg" => {
                only(p, "ClusterId NodePoolId DesiredCapacity")?;
                let pool_id = text(p, "NodePoolId")?;
                let Some(desired) = int(p, "DesiredCapacity")? else {
                    return Err(("MissingParameter", "`DesiredCapacity` is required.".into()));
                };
                let cluster = self.cluster(p, "ResourceNotFound.ClusterNotFound")?;
                let pool = cluster.pool(pool_id)?;
                if matches!(
                    pool.phase,
                    PoolPhase::Creating { .. } | PoolPhase::Deleting { .. }
                ) {
                    return Err((
                        "ResourceUnavailable.ClusterState",
                        format!("node pool {pool_id} is {}", pool.life_state()),
                    ));
                }
                if desired < pool.min || desired > pool.max {
                    return Err((
                        "InvalidParameterValue.Size",
                        format!(
                            "DesiredCapacity {desired} is outside [{}, {}]",
                            pool.min, pool.max
                        ),
                    ));
                }
                let previous = match pool.phase {
                    PoolPhase::Updating { previous, .. } => previous,
                    _ => pool.desired,
                };
                pool.desired = desired;
                pool.phase = PoolPhase::Updating {
                    until: change,
                    previous,
                    fail: control.take_task_failure(),
                };
                Ok(json!({}))
            }
            "ModifyClusterNodePool" => {
                only(
                    p,
                    "ClusterId NodePoolId Name MaxNodesNum MinNodesNum Labels Taints Annotations EnableAutoscale OsName OsCustomizeType GPUArgs UserScript IgnoreExistedNode ExtraArgs Tags Unschedulable DeletionProtection DockerGraphPath PreStartUserScript",
                )?;
                let pool_id = text(p, "NodePoolId")?;
                let (min, max) = (int(p, "MinNodesNum")?, int(p, "MaxNodesNum")?);
                let autoscale = flag(p, "EnableAutoscale")?;
                let cluster = self.cluster(p, "ResourceNotFound.ClusterNotFound")?;
                let pool = cluster.pool(pool_id)?;
                let (min, max) = (min.unwrap_or(pool.min), max.unwrap_or(pool.max));
                if min < 0 || min > max {
                    return Err((
                        "InvalidParameterValue.Size",
                        format!("MinNodesNum {min} > MaxNodesNum {max}"),
                    ));
                }
                (pool.min, pool.max) = (min, max);
                pool.autoscale = autoscale.unwrap_or(pool.autoscale);
                if let Some(name) = p["Name"].as_str() {
                    pool.name = name.to_string();
                }
                // The scaling group keeps its desired size inside the new bounds.
                let clamped = pool.desired.clamp(min, max);
                if clamped != pool.desired {
                    let previous = pool.desired;
                    pool.desired = clamped;
                    pool.phase = PoolPhase::Updating {
                        until: change,
                        previous,
                        fail: None,
                    };
                }
                Ok(json!({}))
            }
            "DeleteClusterNodePool" => {
                only(p, "ClusterId NodePoolIds KeepInstance")?;
                let ids = texts(p, "NodePoolIds")?;
                if ids.is_empty() {
                    return Err(("MissingParameter", "`NodePoolIds` is required.".into()));
                }
                let cluster = self.cluster(p, "ResourceNotFound.ClusterNotFound")?;
                for id in &ids {
                    cluster.pool(id)?;
                }
                for id in &ids {
                    let pool = cluster.pool(id)?;
                    if !matches!(pool.phase, PoolPhase::Deleting { .. }) {
                        pool.phase = PoolPhase::Deleting {
                            until: change,
                            fail: control.take_task_failure(),
                        };
                    }
                }
                Ok(json!({}))
            }
            _ => self.dispatch_instances(action, p, &mut seq),
        };
        self.seq = self.seq.max(seq);
        answer
    }

    fn dispatch_instances(&mut self, action: &str, p: &Value, seq: &mut u64) -> Answer {
        match action {
            "AddExistedInstances" => {
                only(
                    p,
                    "ClusterId InstanceIds InstanceAdvancedSettings EnhancedService LoginSettings HostName SecurityGroupIds NodePool SkipValidateOptions InstanceAdvancedSettingsOverrides ImageId NodeType Tags RenewFlag",
                )?;
                let ids = texts(p, "InstanceIds")?;
                if ids.is_empty() {
                    return Err(("MissingParameter", "`InstanceIds` is required.".into()));
                }
                let in_use: Vec<String> = self
                    .clusters
                    .values()
                    .flat_map(|c| c.pools.values())
                    .flat_map(|pool| pool.instances.iter().map(|i| i.id.clone()))
                    .collect();
                let pool_id = p["NodePool"]["NodePoolId"].as_str().unwrap_or_default();
                let cluster = self.cluster(p, "FailedOperation.ClusterNotFound")?;
                if !cluster.running() {
                    return Err((
                        "FailedOperation.ClusterState",
                        format!("cluster {} is {}", cluster.id, cluster.status()),
                    ));
                }
                let pool = cluster.pool(pool_id)?;
                let (mut succ, mut failed, mut reasons, mut slow) =
                    (vec![], vec![], vec![], vec![]);
                for id in ids {
                    if !id.starts_with("ins-") {
                        reasons.push(format!("InstanceNotFound: instance {id} does not exist"));
                        failed.push(id);
                    } else if in_use.contains(&id) || succ.contains(&id) {
                        reasons.push(format!("instance {id} is already in a cluster"));
                        failed.push(id);
                    } else if id.contains("slow") {
                        slow.push(id);
                    } else {
                        *seq += 1;
                        pool.instances.push(Instance {
                            id: id.clone(),
                            lan_ip: format!("10.1.{}.{}", *seq / 250, *seq % 250 + 2),
                            manual: true,
                        });
                        succ.push(id);
                    }
                }
                Ok(json!({
                    "SuccInstanceIds": succ, "FailedInstanceIds": failed,
                    "FailedReasons": reasons, "TimeoutInstanceIds": slow,
                }))
            }
            "DescribeClusterInstances" => {
                only(p, "ClusterId Offset Limit InstanceIds InstanceRole Filters")?;
                let ids = texts(p, "InstanceIds")?;
                let offset = int(p, "Offset")?.unwrap_or(0).max(0) as usize;
                let limit = int(p, "Limit")?.unwrap_or(20);
                if !(1..=100).contains(&limit) {
                    return Err(("InvalidParameterValue", "Limit must be 1..=100".into()));
                }
                let filters = filters(p)?;
                let cluster = self.cluster(p, "InvalidParameter.ClusterNotFound")?;
                let mut set = Vec::new();
                for pool in cluster.pools.values() {
                    let wanted = filters
                        .iter()
                        .all(|(name, values)| name != "nodepool-id" || values.contains(&pool.id));
                    for i in pool.instances.iter().filter(|_| wanted) {
                        if ids.is_empty() || ids.contains(&i.id) {
                            set.push(json!({
                                "InstanceId": i.id, "InstanceRole": "WORKER",
                                "InstanceState": "running", "FailedReason": "",
                                "DrainStatus": "", "CreatedTime": cluster.created_time,
                                "LanIP": i.lan_ip, "NodePoolId": pool.id,
                                "AutoscalingGroupId": format!("asg-{}", &pool.id[3..]),
                            }));
                        }
                    }
                }
                let total = set.len();
                let page: Vec<Value> = set.into_iter().skip(offset).take(limit as usize).collect();
                Ok(json!({"TotalCount": total, "InstanceSet": page}))
            }
            "DeleteClusterInstances" => {
                only(
                    p,
                    "ClusterId InstanceIds InstanceDeleteMode ForceDelete ResourceDeleteOptions",
                )?;
                let ids = texts(p, "InstanceIds")?;
                if ids.is_empty() {
                    return Err(("MissingParameter", "`InstanceIds` is required.".into()));
                }
                if let Some(mode) = p["InstanceDeleteMode"].as_str()
                    && mode != "terminate"
                    && mode != "retain"
                {
                    return Err(("InvalidParameter", format!("InstanceDeleteMode {mode:?}")));
                }
                let cluster = self.cluster(p, "FailedOperation.ClusterNotFound")?;
                let (mut succ, mut missing) = (Vec::new(), Vec::new());
                for id in ids {
                    let found = cluster.pools.values_mut().find_map(|pool| {
                        let at = pool.instances.iter().position(|i| i.id == id)?;
                        Some((pool, at))
                    });
                    match found {
                        Some((pool, at)) => {
                            // The scaling group shrinks with the instances it loses.
                            if !pool.instances.remove(at).manual {
                                pool.desired = (pool.desired - 1).max(0);
                                pool.min = pool.min.min(pool.desired);
                            }
                            succ.push(id);
                        }
                        None => missing.push(id),
                    }
                }
                Ok(json!({
                    "SuccInstanceIds": succ, "FailedInstanceIds": [], "NotFoundInstanceIds": missing,
                }))
            }
            other => Err((
                "InvalidAction",
                format!("the action {other:?} is not supported by this simulator"),
            )),
        }
    }
}
