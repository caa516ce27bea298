//! The simulator's state: clusters, node pools and instances, their phases, and how they move
//! on with time. Transitions are computed from timestamps whenever state is read.

use std::{collections::BTreeMap, time::Instant};

use serde_json::{Value, json};

use super::Fault;

pub(super) struct World {
    pub(super) kubeconfig: String,
    pub(super) clusters: BTreeMap<String, Cluster>,
    pub(super) created: usize,
    pub(super) seq: u64,
}

pub(super) enum Phase {
    Creating {
        until: Instant,
        fail: Option<String>,
    },
    Running,
    Upgrading {
        until: Instant,
        to: String,
        fail: Option<String>,
    },
    Deleting {
        until: Instant,
        fail: Option<String>,
    },
    Abnormal,
}

pub(super) enum Endpoint {
    Closed,
    Opening(Instant),
    Open,
}

pub(super) struct Cluster {
    pub(super) seq: u64,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) version: String,
    pub(super) phase: Phase,
    pub(super) request: Value,
    pub(super) created_time: String,
    pub(super) extranet: Endpoint,
    /// Source CIDRs allowed to reach the extranet endpoint (ModifyClusterEndpointSP).
    pub(super) extranet_policies: Vec<String>,
    pub(super) pools: BTreeMap<String, Pool>,
}

pub(super) enum PoolPhase {
    Creating {
        until: Instant,
        fail: Option<String>,
    },
    Normal,
    Updating {
        until: Instant,
        previous: i64,
        fail: Option<String>,
    },
    Deleting {
        until: Instant,
        fail: Option<String>,
    },
}

pub(super) struct Pool {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) phase: PoolPhase,
    pub(super) desired: i64,
    pub(super) min: i64,
    pub(super) max: i64,
    pub(super) autoscale: bool,
    pub(super) labels: Value,
    pub(super) taints: Value,
    pub(super) instances: Vec<Instance>,
}

pub(super) struct Instance {
    pub(super) id: String,
    pub(super) lan_ip: String,
    pub(super) manual: bool,
}

pub(super) fn new_id(prefix: &str) -> String {
    let tail: String = (0..8)
        .map(|_| {
            let n = fastrand::u8(0..36);
            char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
        })
        .collect();
    format!("{prefix}-{tail}")
}

// ---- state ----

impl Cluster {
    pub(super) fn status(&self) -> &'static str {
        match self.phase {
            Phase::Creating { .. } => "Creating",
            Phase::Running => "Running",
            Phase::Upgrading { .. } => "Upgrading",
            Phase::Deleting { .. } => "Deleting",
            Phase::Abnormal => "Abnormal",
        }
    }

    pub(super) fn running(&self) -> bool {
        matches!(self.phase, Phase::Running)
    }

    pub(super) fn pool(&mut self, id: &str) -> Result<&mut Pool, Fault> {
        self.pools.get_mut(id).ok_or_else(|| {
            (
                "FailedOperation.RecordNotFound",
                format!("node pool {id} not found"),
            )
        })
    }

    pub(super) fn json(&self) -> Value {
        let basic = &self.request["ClusterBasicSettings"];
        let cidr = &self.request["ClusterCIDRSettings"];
        let advanced = &self.request["ClusterAdvancedSettings"];
        let nodes: usize = self.pools.values().map(|p| p.instances.len()).sum();
        json!({
            "ClusterId": self.id,
            "ClusterName": self.name,
            "ClusterDescription": basic["ClusterDescription"].as_str().unwrap_or_default(),
            "ClusterVersion": self.version,
            "ClusterOs": "tlinux2.4x86_64",
            "ClusterType": self.request["ClusterType"],
            "ClusterNetworkSettings": {
                "ClusterCIDR": cidr["ClusterCIDR"].as_str().unwrap_or("172.16.0.0/16"),
                "ServiceCIDR": cidr["ServiceCIDR"].as_str().unwrap_or_default(),
                "VpcId": basic["VpcId"].as_str().unwrap_or_default(),
                "Ipvs": advanced["IPVS"].as_bool().unwrap_or(false),
                "Cni": advanced["NetworkType"] == "VPC-CNI",
                "KubeProxyMode": advanced["KubeProxyMode"].as_str().unwrap_or_default(),
                "Subnets": cidr.get("EniSubnetIds").cloned().unwrap_or(json!(null)),
            },
            "ClusterNodeNum": nodes,
            "ClusterMaterNodeNum": 0,
            "ClusterEtcdNodeNum": 0,
            "ProjectId": basic["ProjectId"].as_i64().unwrap_or(0),
            "TagSpecification": basic.get("TagSpecification").cloned().unwrap_or(json!([])),
            "ClusterStatus": self.status(),
            "Property": "{\"NodeNameType\":\"lan-ip\"}",
            "CreatedTime": self.created_time,
            "DeletionProtection": false,
            "ClusterLevel": basic["ClusterLevel"].as_str().unwrap_or("L5"),
            "ContainerRuntime": "containerd",
            "ClusterCategory": "tke",
        })
    }
}

impl Pool {
    pub(super) fn life_state(&self) -> &'static str {
        match self.phase {
            PoolPhase::Creating { .. } => "creating",
            PoolPhase::Normal => "normal",
            PoolPhase::Updating { .. } => "updating",
            PoolPhase::Deleting { .. } => "deleting",
        }
    }

    pub(super) fn json(&self, cluster_id: &str) -> Value {
        let count = |manual: bool| {
            let n = self.instances.iter().filter(|i| i.manual == manual).count();
            json!({"Joining": 0, "Initializing": 0, "Normal": n, "Total": n})
        };
        json!({
            "NodePoolId": self.id,
            "Name": self.name,
            "ClusterInstanceId": cluster_id,
            "LifeState": self.life_state(),
            "LaunchConfigurationId": format!("asc-{}", &self.id[3..]),
            "AutoscalingGroupId": format!("asg-{}", &self.id[3..]),
            "Labels": self.labels,
            "Taints": self.taints,
            "NodeCountSummary": {"ManuallyAdded": count(true), "AutoscalingAdded": count(false)},
            "AutoscalingGroupStatus": if self.autoscale { "enabled" } else { "disabled" },
            "MaxNodesNum": self.max,
            "MinNodesNum": self.min,
            "DesiredNodesNum": self.desired,
            "NodePoolOs": "tlinux2.4x86_64",
            "OsCustomizeType": "GENERAL",
            "DeletionProtection": false,
        })
    }

    /// Scaled instances follow the desired size; manually added ones stay.
    pub(super) fn reconcile(&mut self, seq: &mut u64) {
        let scaled = self.instances.iter().filter(|i| !i.manual).count() as i64;
        for _ in scaled..self.desired {
            *seq += 1;
            self.instances.push(Instance {
                id: new_id("ins"),
                lan_ip: format!("10.0.{}.{}", *seq / 250, *seq % 250 + 2),
                manual: false,
            });
        }
        for _ in self.desired..scaled {
            if let Some(at) = self.instances.iter().rposition(|i| !i.manual) {
                self.instances.remove(at);
            }
        }
    }
}

impl World {
    /// Applies every transition whose time has come.
    pub(super) fn settle(&mut self, now: Instant) {
        let seq = &mut self.seq;
        self.clusters.retain(|_, cluster| {
            let mut keep = true;
            match &mut cluster.phase {
                Phase::Creating { until, fail } if now >= *until => {
                    cluster.phase = if fail.is_some() {
                        Phase::Abnormal
                    } else {
                        Phase::Running
                    };
                }
                Phase::Upgrading { until, to, fail } if now >= *until => {
                    if fail.is_none() {
                        cluster.version = std::mem::take(to);
                        cluster.phase = Phase::Running;
                    } else {
                        cluster.phase = Phase::Abnormal;
                    }
                }
                Phase::Deleting { until, fail } if now >= *until => {
                    if fail.is_some() {
                        cluster.phase = Phase::Abnormal;
                    } else {
                        keep = false;
                    }
                }
                _ => {}
            }
            if matches!(cluster.extranet, Endpoint::Opening(until) if now >= until) {
                cluster.extranet = Endpoint::Open;
            }
            cluster.pools.retain(|_, pool| {
                match &mut pool.phase {
                    PoolPhase::Creating { until, fail } if now >= *until => {
                        if fail.is_some() {
                            return false;
                        }
                        pool.phase = PoolPhase::Normal;
                        pool.reconcile(seq);
                    }
                    PoolPhase::Updating {
                        until,
                        previous,
                        fail,
                    } if now >= *until => {
                        if fail.is_some() {
                            pool.desired = *previous;
                        }
                        pool.phase = PoolPhase::Normal;
                        pool.reconcile(seq);
                    }
                    PoolPhase::Deleting { until, fail } if now >= *until => {
                        if fail.is_none() {
                            return false;
                        }
                        pool.phase = PoolPhase::Normal;
                    }
                    _ => {}
                }
                true
            });
            keep
        });
    }
}
