//! The one table of every RPC and what it needs. A test fails when an RPC in the proto is
//! missing here, so no call can slip through unclassified.

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Every read, logs and event streams.
    Read,
    /// Workload changes: apply, scale, restart, delete workloads and resources, cordon, drain;
    /// registry content: create and delete namespaces, delete repositories, artifacts and tags.
    Operate,
    /// Everything else: clusters, credentials, registry definitions, pull secrets, tokens, the
    /// audit log.
    Admin,
    /// The in-cluster agent's calls (AgentService): no API token and no role grants them; the
    /// service itself checks the registration token or agent credential.
    Agent,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Operate => "operate",
            Permission::Admin => "admin",
            Permission::Agent => "agent",
        }
    }
}

/// How one RPC is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub permission: Permission,
    /// Changes something: always audited.
    pub mutating: bool,
    /// Not about one cluster (it can widen what a caller reaches): a cluster-scoped token may
    /// not call it.
    pub global: bool,
}

const fn read() -> Rule {
    Rule {
        permission: Permission::Read,
        mutating: false,
        global: false,
    }
}
const fn operate() -> Rule {
    Rule {
        permission: Permission::Operate,
        mutating: true,
        global: false,
    }
}
/// Registry content (namespaces, repositories, artifacts): operators keep registries tidy as
/// they keep workloads, but a registry spans clusters, so a cluster-scoped token may not.
const fn operate_global() -> Rule {
    Rule {
        permission: Permission::Operate,
        mutating: true,
        global: true,
    }
}
const fn admin() -> Rule {
    Rule {
        permission: Permission::Admin,
        mutating: true,
        global: false,
    }
}
const fn admin_global() -> Rule {
    Rule {
        permission: Permission::Admin,
        mutating: true,
        global: true,
    }
}
/// Authenticated by the agent service with agent secrets, never with API tokens.
const fn agent() -> Rule {
    Rule {
        permission: Permission::Agent,
        mutating: false,
        global: true,
    }
}
const fn admin_read_global() -> Rule {
    Rule {
        permission: Permission::Admin,
        mutating: false,
        global: true,
    }
}

/// Every RPC of every Flotilla service.
pub const TABLE: &[(&str, Rule)] = &[
    ("/flotilla.v1.ClusterService/ImportCluster", admin_global()),
    ("/flotilla.v1.ClusterService/CreateCluster", admin_global()),
    ("/flotilla.v1.ClusterService/GetCluster", read()),
    ("/flotilla.v1.ClusterService/ListClusters", read()),
    ("/flotilla.v1.ClusterService/UpdateCluster", admin()),
    (
        "/flotilla.v1.ClusterService/UpdateClusterCredentials",
        admin(),
    ),
    ("/flotilla.v1.ClusterService/UpgradeCluster", admin()),
    (
        "/flotilla.v1.ClusterService/ListVendorClusters",
        admin_read_global(),
    ),
    ("/flotilla.v1.ClusterService/RegisterCluster", admin()),
    (
        "/flotilla.v1.ClusterService/CreateAgentRegistration",
        admin_global(),
    ),
    ("/flotilla.v1.ClusterService/DeleteCluster", admin()),
    ("/flotilla.v1.ClusterService/ListProviders", read()),
    ("/flotilla.v1.NodeService/ListNodes", read()),
    ("/flotilla.v1.NodeService/GetNode", read()),
    ("/flotilla.v1.NodeService/CordonNode", operate()),
    ("/flotilla.v1.NodeService/UncordonNode", operate()),
    ("/flotilla.v1.NodeService/DrainNode", operate()),
    ("/flotilla.v1.NodeService/ListNodePools", read()),
    ("/flotilla.v1.NodeService/GetNodePool", read()),
    ("/flotilla.v1.NodeService/CreateNodePool", admin()),
    ("/flotilla.v1.NodeService/UpdateNodePool", admin()),
    ("/flotilla.v1.NodeService/DeleteNodePool", admin()),
    ("/flotilla.v1.NodeService/AddNodes", admin()),
    ("/flotilla.v1.NodeService/RemoveNodes", admin()),
    ("/flotilla.v1.WorkloadService/ListWorkloads", read()),
    ("/flotilla.v1.WorkloadService/GetWorkload", read()),
    ("/flotilla.v1.WorkloadService/ScaleWorkload", operate()),
    ("/flotilla.v1.WorkloadService/RestartWorkload", operate()),
    ("/flotilla.v1.WorkloadService/DeleteWorkload", operate()),
    ("/flotilla.v1.WorkloadService/ListPods", read()),
    ("/flotilla.v1.WorkloadService/GetPod", read()),
    ("/flotilla.v1.WorkloadService/DeletePod", operate()),
    ("/flotilla.v1.WorkloadService/ApplyManifests", operate()),
    ("/flotilla.v1.WorkloadService/ListResources", read()),
    ("/flotilla.v1.WorkloadService/GetResource", read()),
    ("/flotilla.v1.WorkloadService/DeleteResource", operate()),
    ("/flotilla.v1.WorkloadService/ListResourceKinds", read()),
    ("/flotilla.v1.WorkloadService/ListEvents", read()),
    (
        "/flotilla.v1.RegistryService/CreateRegistry",
        admin_global(),
    ),
    ("/flotilla.v1.RegistryService/GetRegistry", read()),
    ("/flotilla.v1.RegistryService/ListRegistries", read()),
    (
        "/flotilla.v1.RegistryService/DeleteRegistry",
        admin_global(),
    ),
    (
        "/flotilla.v1.RegistryService/ListRegistryNamespaces",
        read(),
    ),
    (
        "/flotilla.v1.RegistryService/CreateRegistryNamespace",
        operate_global(),
    ),
    (
        "/flotilla.v1.RegistryService/DeleteRegistryNamespace",
        operate_global(),
    ),
    ("/flotilla.v1.RegistryService/ListRepositories", read()),
    (
        "/flotilla.v1.RegistryService/DeleteRepository",
        operate_global(),
    ),
    ("/flotilla.v1.RegistryService/ListArtifacts", read()),
    (
        "/flotilla.v1.RegistryService/DeleteArtifact",
        operate_global(),
    ),
    ("/flotilla.v1.RegistryService/ListCharts", read()),
    ("/flotilla.v1.RegistryService/ListChartVersions", read()),
    ("/flotilla.v1.RegistryService/SyncPullSecret", admin()),
    (
        "/flotilla.v1.RegistryService/UpdateRegistry",
        admin_global(),
    ),
    ("/flotilla.v1.RegistryService/ListRegistryProviders", read()),
    ("/flotilla.v1.RegistryService/GetArtifact", read()),
    ("/flotilla.v1.RegistryService/ListTags", read()),
    ("/flotilla.v1.LogStream/StreamPodLogs", read()),
    ("/flotilla.v1.LogStream/StreamWorkloadLogs", read()),
    ("/flotilla.v1.LogStream/WatchEvents", read()),
    ("/flotilla.v1.OperationService/GetOperation", read()),
    ("/flotilla.v1.OperationService/ListOperations", read()),
    ("/flotilla.v1.OperationService/WatchOperation", read()),
    ("/flotilla.v1.OperationService/CancelOperation", admin()),
    ("/flotilla.v1.OperationService/RetryOperation", admin()),
    (
        "/flotilla.v1.CredentialService/CreateCredential",
        admin_global(),
    ),
    (
        "/flotilla.v1.CredentialService/GetCredential",
        admin_read_global(),
    ),
    (
        "/flotilla.v1.CredentialService/ListCredentials",
        admin_read_global(),
    ),
    (
        "/flotilla.v1.CredentialService/RotateCredential",
        admin_global(),
    ),
    (
        "/flotilla.v1.CredentialService/DeleteCredential",
        admin_global(),
    ),
    ("/flotilla.v1.AdminService/CreateApiToken", admin_global()),
    (
        "/flotilla.v1.AdminService/ListApiTokens",
        admin_read_global(),
    ),
    ("/flotilla.v1.AdminService/RevokeApiToken", admin_global()),
    (
        "/flotilla.v1.AdminService/ListAuditEvents",
        admin_read_global(),
    ),
    ("/flotilla.v1.AgentService/RegisterAgent", agent()),
    ("/flotilla.v1.AgentService/OpenTunnel", agent()),
];

/// Paths anyone may call: health checks and reflection.
pub fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}

/// The rule for a full method path, such as `/flotilla.v1.ClusterService/GetCluster`.
pub fn rule(path: &str) -> Option<Rule> {
    lookup(path).map(|(_, rule)| rule)
}

/// The table's own copy of a method path, and its rule: one hash lookup per call.
pub fn lookup(path: &str) -> Option<(&'static str, Rule)> {
    use std::{collections::HashMap, sync::OnceLock};
    static BY_PATH: OnceLock<HashMap<&'static str, Rule>> = OnceLock::new();
    BY_PATH
        .get_or_init(|| TABLE.iter().copied().collect())
        .get_key_value(path)
        .map(|(path, rule)| (*path, *rule))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Every RPC declared in the proto has a rule, and every rule names a real RPC.
    #[test]
    fn table_covers_every_rpc_in_the_proto() {
        let fds = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut declared = Vec::new();
        for file in fds.file.iter().filter(|f| f.package() == "flotilla.v1") {
            for service in &file.service {
                for method in &service.method {
                    declared.push(format!("/flotilla.v1.{}/{}", service.name(), method.name()));
                }
            }
        }
        let missing: Vec<_> = declared.iter().filter(|m| rule(m).is_none()).collect();
        assert!(
            missing.is_empty(),
            "RPCs without a permission rule: {missing:?}"
        );
        let stale: Vec<_> = TABLE
            .iter()
            .filter(|(p, _)| !declared.iter().any(|d| d == p))
            .collect();
        assert!(
            stale.is_empty(),
            "rules for RPCs that do not exist: {stale:?}"
        );
    }
}
