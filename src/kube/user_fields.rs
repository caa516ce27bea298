//! Whether an apply changed anything of the user's: the fields of their manifest and those our
//! field manager owned before, compared between the object before and after. Server-side apply
//! rewrites its own bookkeeping (managedFields, resourceVersion) on every call, so those alone
//! must never make an apply look like a change.

use serde_json::Value;

/// Field manager of every apply: ownership of applied fields is recorded under this name.
pub const FIELD_MANAGER: &str = "flotilla";

/// Whether `before` and `after` agree on every field the user owns: the fields of the applied
/// `manifest` and those our field manager owned before (so a field the user dropped from their
/// manifest, which the apply removes, counts as a change). Status, resourceVersion, generation
/// and managedFields are the server's, not the user's; fields only other writers own (a
/// controller's annotation, say) are theirs.
pub fn user_fields_equal(manifest: &Value, before: &Value, after: &Value) -> bool {
    let mut paths = Vec::new();
    manifest_paths(manifest, &mut Vec::new(), &mut paths);
    if let Some(owned) = owned_fields(before) {
        fields_v1_paths(owned, &mut Vec::new(), &mut paths);
    }
    paths.sort();
    paths.dedup();
    paths
        .iter()
        .filter(|path| !is_bookkeeping(path))
        .all(|path| {
            let pointer = json_pointer(path);
            before.pointer(&pointer) == after.pointer(&pointer)
        })
}

fn is_bookkeeping(path: &[String]) -> bool {
    match path {
        [] => true,
        [top, ..] if top == "status" => true,
        [meta, field, ..] if meta == "metadata" => {
            matches!(
                field.as_str(),
                "managedFields" | "resourceVersion" | "generation"
            )
        }
        _ => false,
    }
}

/// Paths of the manifest's leaves; a list is a leaf (it is compared whole).
fn manifest_paths(value: &Value, prefix: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (key, child) in fields {
                prefix.push(key.clone());
                manifest_paths(child, prefix, paths);
                prefix.pop();
            }
        }
        _ => paths.push(prefix.clone()),
    }
}

/// The `fieldsV1` set our field manager's apply owned, if any.
fn owned_fields(object: &Value) -> Option<&Value> {
    object
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|entry| {
            entry.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
                && entry.get("operation").and_then(Value::as_str) == Some("Apply")
                && entry
                    .get("subresource")
                    .is_none_or(|s| s.as_str() == Some(""))
        })?
        .get("fieldsV1")
}

/// Paths of a `fieldsV1` set. `f:<name>` descends into a field; a list item (`k:`, `v:`, `i:`)
/// makes the list a leaf, compared whole, as [`manifest_paths`] does.
fn fields_v1_paths(set: &Value, prefix: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
    let Some(fields) = set.as_object() else {
        paths.push(prefix.clone());
        return;
    };
    let mut leaf = fields.is_empty();
    for (key, child) in fields {
        match key.strip_prefix("f:") {
            Some(name) => {
                prefix.push(name.to_string());
                fields_v1_paths(child, prefix, paths);
                prefix.pop();
            }
            // "." (the field itself) or a list item.
            None => leaf = true,
        }
    }
    if leaf {
        paths.push(prefix.clone());
    }
}

/// RFC 6901 pointer of a path.
fn json_pointer(path: &[String]) -> String {
    path.iter()
        .map(|part| format!("/{}", part.replace('~', "~0").replace('/', "~1")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_users_fields_decide_a_change() {
        let manifest = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "ns", "labels": {"app": "x"}},
            "data": {"k": "v"}
        });
        let live = |data: Value, extra_annotation: bool, owned: Value| {
            let mut object = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "a", "namespace": "ns", "labels": {"app": "x"},
                    "resourceVersion": "1",
                    "managedFields": [{"manager": FIELD_MANAGER, "operation": "Apply",
                                       "fieldsV1": owned, "time": "2026-01-01T00:00:00Z"}]
                },
                "data": data,
                "status": {"anything": 1}
            });
            if extra_annotation {
                object["metadata"]["annotations"] = serde_json::json!({"controller/rev": "2"});
            }
            object
        };
        let owned =
            serde_json::json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}});
        let before = live(serde_json::json!({"k": "v"}), false, owned.clone());
        let mut after = live(serde_json::json!({"k": "v"}), true, owned.clone());
        after["metadata"]["resourceVersion"] = "2".into();
        after["metadata"]["managedFields"][0]["time"] = "2026-01-02T00:00:00Z".into();
        after["status"] = serde_json::json!({"anything": 2});
        assert!(
            user_fields_equal(&manifest, &before, &after),
            "bookkeeping, status and other writers' fields are not the user's"
        );
        let edited = live(serde_json::json!({"k": "w"}), false, owned.clone());
        assert!(!user_fields_equal(&manifest, &before, &edited));
        // A field the user owned and dropped from the manifest is removed: a change.
        let owned_more = serde_json::json!({"f:data": {"f:k": {}, "f:gone": {}}});
        let before = live(
            serde_json::json!({"k": "v", "gone": "1"}),
            false,
            owned_more,
        );
        let after = live(serde_json::json!({"k": "v"}), false, owned);
        assert!(!user_fields_equal(&manifest, &before, &after));
    }

    #[test]
    fn fields_v1_lists_are_compared_whole() {
        let set = serde_json::json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}}, "f:replicas": {}}});
        let mut paths = Vec::new();
        fields_v1_paths(&set, &mut Vec::new(), &mut paths);
        paths.sort();
        assert_eq!(
            paths,
            vec![
                vec!["spec".to_string(), "containers".to_string()],
                vec!["spec".to_string(), "replicas".to_string()],
            ]
        );
        assert_eq!(json_pointer(&["a/b".into(), "c~d".into()]), "/a~1b/c~0d");
    }
}
