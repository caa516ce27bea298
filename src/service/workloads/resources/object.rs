//! The value every generic-resource call returns: one object of any kind, as the caller may
//! see it. A leaf, so the role rules (`access::policy`) can redact it without depending on the
//! resource use cases.

use std::collections::BTreeMap;

use crate::kube::resources::Object;

/// One object of any kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub resource_version: String,
    pub create_millis: Option<i64>,
    /// The whole object as JSON, managedFields removed.
    pub json: String,
}

impl From<Object> for Resource {
    fn from(o: Object) -> Resource {
        Resource {
            api_version: o.api_version,
            kind: o.kind,
            namespace: o.namespace,
            name: o.name,
            uid: o.uid,
            labels: o.labels,
            annotations: o.annotations,
            resource_version: o.resource_version,
            create_millis: o.create_millis,
            json: o.json,
        }
    }
}
