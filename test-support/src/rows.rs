//! Rows to seed a store with directly, for tests and benchmarks that need many clusters without
//! importing them.

use flotilla::store::ClusterRow;

/// An imported, RUNNING cluster `id` with no labels, credentials or spec, created at 1 ms after
/// the epoch. Change what a test needs with struct update syntax:
/// `ClusterRow { provider: "tke".into(), ..imported_cluster("c1") }`.
pub fn imported_cluster(id: &str) -> ClusterRow {
    ClusterRow {
        id: id.into(),
        display_name: id.into(),
        labels: "{}".into(),
        provider: "imported".into(),
        region: String::new(),
        vendor_cluster_id: String::new(),
        state: "RUNNING".into(),
        endpoint: format!("https://{id}.example:6443"),
        kube_system_uid: Some(format!("uid-{id}")),
        credential_id: None,
        access_secret_id: None,
        spec: None,
        warnings: "[]".into(),
        last_operation_id: None,
        version: 1,
        create_time: 1,
        update_time: 1,
        kube_access: "builtin".into(),
    }
}
