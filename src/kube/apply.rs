//! Server-side apply of YAML or JSON manifests: parse every document on its own (so one bad
//! document is reported by index instead of failing the rest), expand `List` kinds, apply
//! Namespaces and CustomResourceDefinitions first, then everything else in document order.
//!
//! Objects are applied one at a time in order, as `kubectl apply` does, because order can matter
//! to admission (a LimitRange before the Pods it defaults, a webhook before what it checks).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use ::kube::{
    Api, Client,
    api::{DynamicObject, Patch, PatchParams, ValidationDirective},
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use super::{
    ClusterError,
    error::classify,
    resources::{KindCache, ResourceError, strip_managed_fields},
};

pub use super::user_fields::FIELD_MANAGER;

/// How long an apply waits, in all, for freshly applied CRDs to be served.
const CRD_READY_TIMEOUT: Duration = Duration::from_secs(20);
const CRD_POLL: Duration = Duration::from_millis(100);

/// Namespace of namespaced objects when neither the document nor the request names one.
const DEFAULT_NAMESPACE: &str = "default";

/// One object to apply, as its document gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub document_index: i32,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// As written in the document; may be empty.
    pub namespace: String,
    body: Value,
}

impl Manifest {
    /// The object as the document gave it (for policy checks before anything is applied).
    pub fn body(&self) -> &Value {
        &self.body
    }
}

/// A document (or List item) that cannot be applied, with as much of its identity as is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub document_index: i32,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub message: String,
}

/// One entry of a parsed manifest stream, in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Object(Manifest),
    Rejected(Rejected),
}

/// A parsed manifest stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// Non-empty documents (comment-only documents are skipped and not counted).
    pub documents: usize,
    /// One per object (List items expanded) or rejected document, in document order.
    pub entries: Vec<Entry>,
}

/// Parses a `---`-separated stream of YAML or JSON documents. Never fails as a whole: a document
/// that is not YAML, or lacks apiVersion, kind or metadata.name, becomes a [`Rejected`] entry.
/// `document_index` is the 0-based position among non-empty documents; List items share their
/// List's index.
pub fn parse(text: &str) -> Parsed {
    let documents = split_documents(text);
    let mut entries = Vec::with_capacity(documents.len());
    for (index, document) in documents.iter().enumerate() {
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        match parse_document(document) {
            Ok(value) => expand(index, value, &mut entries),
            Err(message) => entries.push(Entry::Rejected(Rejected {
                document_index: index,
                api_version: String::new(),
                kind: String::new(),
                name: String::new(),
                namespace: String::new(),
                message,
            })),
        }
    }
    Parsed {
        documents: documents.len(),
        entries,
    }
}

/// Documents of a YAML stream, split on `---` lines (a separator line may carry content after
/// the marker, as in `--- {"kind": ...}`). A document at the top level of a manifest is a mapping,
/// whose continuation lines are indented, so a `---` at column 0 is always a separator.
fn split_documents(text: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let is_separator = line.strip_prefix("---").is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_whitespace())
        });
        if is_separator {
            documents.push(&text[start..offset]);
            start = offset + 3;
        }
        offset += line.len();
    }
    documents.push(&text[start..]);
    documents.retain(|d| !is_blank(d));
    documents
}

/// Only whitespace, comments and a `...` end marker.
fn is_blank(document: &str) -> bool {
    document.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "..."
    })
}

fn parse_document(document: &str) -> Result<Value, String> {
    // JSON is also YAML, but serde_json is faster and its messages are clearer to a JSON user.
    if document.trim_start().starts_with('{') {
        return match serde_json::from_str(document) {
            Ok(value) => Ok(value),
            Err(json_err) => {
                serde_saphyr::from_str_with_options(document, super::yaml_limits::options())
                    .map_err(|_| format!("not valid JSON or YAML: {json_err}"))
            }
        };
    }
    serde_saphyr::from_str_with_options(document, super::yaml_limits::options())
        .map_err(|err| format!("not valid YAML: {err}"))
}

/// Validates one document; a `List` (kind ending in "List" with an `items` array) becomes one
/// entry per item.
fn expand(index: i32, value: Value, entries: &mut Vec<Entry>) {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if !is_list {
        entries.push(manifest(index, value));
        return;
    }
    if let Some(Value::Array(items)) = value.as_object().and_then(|o| o.get("items")).cloned() {
        for item in items {
            let nested = item
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && item.get("items").is_some();
            entries.push(if nested {
                rejected(index, &item, "a List inside a List is not supported".into())
            } else {
                manifest(index, item)
            });
        }
    }
}

fn manifest(index: i32, mut body: Value) -> Entry {
    if !body.is_object() {
        return rejected(
            index,
            &body,
            "the document is not a mapping (an object with apiVersion, kind and metadata)".into(),
        );
    }
    let text = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let identity = [
        ("/apiVersion", "apiVersion"),
        ("/kind", "kind"),
        ("/metadata/name", "metadata.name"),
        ("/metadata/namespace", "metadata.namespace"),
    ];
    // YAML reads unquoted y, n, yes, no, on, off, true, false and numbers as non-strings.
    if let Some((_, field)) = identity
        .iter()
        .find(|(pointer, _)| body.pointer(pointer).is_some_and(|v| !v.is_string()))
    {
        return rejected(
            index,
            &body,
            format!(
                "{field} must be a string; quote it (YAML reads y, n, yes, no, on, off and numbers as other types)"
            ),
        );
    }
    let missing = identity[..3]
        .iter()
        .filter(|(pointer, _)| text(&body, pointer).is_empty())
        .map(|(_, name)| *name)
        .collect::<Vec<_>>();
    if !missing.is_empty() {
        let mut message = format!("missing {}", missing.join(", "));
        if missing.contains(&"metadata.name") {
            message.push_str(" (server-side apply needs a name; generateName cannot be used)");
        }
        return rejected(index, &body, message);
    }
    // A manifest copied from `kubectl get -o yaml` carries managedFields, which apply refuses.
    strip_managed_fields(&mut body);
    Entry::Object(Manifest {
        document_index: index,
        api_version: text(&body, "/apiVersion"),
        kind: text(&body, "/kind"),
        name: text(&body, "/metadata/name"),
        namespace: text(&body, "/metadata/namespace"),
        body,
    })
}

fn rejected(index: i32, body: &Value, message: String) -> Entry {
    let text = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Entry::Rejected(Rejected {
        document_index: index,
        api_version: text("/apiVersion"),
        kind: text("/kind"),
        name: text("/metadata/name"),
        namespace: text("/metadata/namespace"),
        message,
    })
}

/// Namespaces and CRDs first: the objects that follow may live in them or be of their kinds.
fn is_foundation(manifest: &Manifest) -> bool {
    (manifest.api_version == "v1" && manifest.kind == "Namespace") || is_crd(manifest)
}

fn is_crd(manifest: &Manifest) -> bool {
    manifest.kind == "CustomResourceDefinition"
        && manifest.api_version.starts_with("apiextensions.k8s.io/")
}

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// For namespaced objects whose document names no namespace; empty means "default".
    pub namespace: String,
    pub dry_run: bool,
    pub force_conflicts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    Failed,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub document_index: i32,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub outcome: Outcome,
    /// Why, when failed (the API server's message when it refused).
    pub message: String,
    pub resource_version: String,
}

impl Applied {
    fn failed(manifest: &Manifest, namespace: String, message: String) -> Applied {
        Applied {
            document_index: manifest.document_index,
            api_version: manifest.api_version.clone(),
            kind: manifest.kind.clone(),
            namespace,
            name: manifest.name.clone(),
            outcome: Outcome::Failed,
            message,
            resource_version: String::new(),
        }
    }
}

impl From<Rejected> for Applied {
    fn from(r: Rejected) -> Applied {
        Applied {
            document_index: r.document_index,
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
            outcome: Outcome::Failed,
            message: r.message,
            resource_version: String::new(),
        }
    }
}

/// Applies every entry and reports each, in the order applied: Namespaces and CRDs, then the rest
/// in document order. One object failing does not stop the others, except when the cluster stops
/// answering: then the remaining objects are reported as not applied instead of each waiting
/// out its own timeout.
pub async fn apply(
    kinds: &KindCache,
    cluster_id: &str,
    client: &Client,
    parsed: Parsed,
    options: &ApplyOptions,
) -> Vec<Applied> {
    let (foundation, rest): (Vec<Entry>, Vec<Entry>) = parsed
        .entries
        .into_iter()
        .partition(|entry| matches!(entry, Entry::Object(m) if is_foundation(m)));
    let mut run = Run {
        kinds,
        cluster_id,
        client,
        options,
        stopped: None,
        unknown: HashMap::new(),
        results: Vec::with_capacity(foundation.len() + rest.len()),
    };
    let mut crds = Vec::new();
    for entry in foundation {
        if let Entry::Object(manifest) = entry {
            let applied = run.apply_entry(Entry::Object(manifest.clone())).await;
            if is_crd(&manifest) && applied != Outcome::Failed {
                crds.push(manifest);
            }
        }
    }
    if !crds.is_empty() {
        for crd in &crds {
            if let Some(group) = crd.body.pointer("/spec/group").and_then(Value::as_str) {
                kinds.forget_group(cluster_id, group);
            }
        }
        // A dry-run CRD is not created, so there is nothing to wait for.
        if !options.dry_run && run.stopped.is_none() {
            wait_until_served(kinds, cluster_id, client, &crds).await;
        }
    }
    for entry in rest {
        run.apply_entry(entry).await;
    }
    run.results
}

/// State of one apply call.
struct Run<'a> {
    kinds: &'a KindCache,
    cluster_id: &'a str,
    client: &'a Client,
    options: &'a ApplyOptions,
    /// Why the remaining objects are not applied (the cluster stopped answering).
    stopped: Option<String>,
    /// Kinds this run found the cluster does not serve: asked once, not once per object.
    unknown: HashMap<(String, String), ResourceError>,
    results: Vec<Applied>,
}

impl Run<'_> {
    async fn apply_entry(&mut self, entry: Entry) -> Outcome {
        let applied = match entry {
            Entry::Rejected(rejected) => rejected.into(),
            Entry::Object(manifest) => match &self.stopped {
                Some(why) => Applied::failed(
                    &manifest,
                    manifest.namespace.clone(),
                    format!("not applied: {why}"),
                ),
                None => self.apply_one(manifest).await,
            },
        };
        let outcome = applied.outcome;
        self.results.push(applied);
        outcome
    }

    async fn apply_one(&mut self, mut manifest: Manifest) -> Applied {
        let type_key = (manifest.api_version.clone(), manifest.kind.clone());
        let resolved = match self.unknown.get(&type_key) {
            Some(err) => Err(err.clone()),
            None => {
                self.kinds
                    .resolve(
                        self.cluster_id,
                        self.client,
                        &manifest.api_version,
                        &manifest.kind,
                    )
                    .await
            }
        };
        let kind = match resolved {
            Ok(kind) => kind,
            Err(err) => {
                if matches!(err, ResourceError::UnknownKind { .. }) {
                    self.unknown.insert(type_key, err.clone());
                }
                self.note_if_fatal(&err);
                let namespace = manifest.namespace.clone();
                return Applied::failed(&manifest, namespace, err.to_string());
            }
        };
        let namespace = if !kind.namespaced() {
            // Like kubectl: a namespace on a cluster-scoped object means nothing.
            if let Some(meta) = manifest
                .body
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
            {
                meta.remove("namespace");
            }
            String::new()
        } else {
            let namespace = [manifest.namespace.as_str(), &self.options.namespace]
                .into_iter()
                .find(|n| !n.is_empty())
                .unwrap_or(DEFAULT_NAMESPACE)
                .to_string();
            if let Some(meta) = manifest
                .body
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
            {
                meta.insert("namespace".into(), Value::String(namespace.clone()));
            }
            namespace
        };
        let api = kind.api(self.client, &namespace);
        match self.apply_to(&api, &manifest).await {
            Ok((outcome, resource_version)) => Applied {
                document_index: manifest.document_index,
                api_version: manifest.api_version,
                kind: manifest.kind,
                namespace,
                name: manifest.name,
                outcome,
                message: String::new(),
                resource_version,
            },
            Err(err) => {
                let err = ResourceError::Cluster(err);
                self.note_if_fatal(&err);
                Applied::failed(&manifest, namespace, err.to_string())
            }
        }
    }

    /// Applies one object and tells created / configured / unchanged by reading it first.
    async fn apply_to(
        &self,
        api: &Api<DynamicObject>,
        manifest: &Manifest,
    ) -> Result<(Outcome, String), ClusterError> {
        let mut params = PatchParams::apply(FIELD_MANAGER).validation(ValidationDirective::Strict);
        params.force = self.options.force_conflicts;
        params.dry_run = self.options.dry_run;
        let patch = Patch::Apply(&manifest.body);
        if self.options.dry_run {
            // A dry run never writes, so resourceVersion cannot tell a change: compare content.
            let before = api.get_opt(&manifest.name).await.map_err(classify)?;
            let after = api
                .patch(&manifest.name, &params, &patch)
                .await
                .map_err(classify)?;
            let resource_version = after.metadata.resource_version.clone().unwrap_or_default();
            let outcome = match before.map(comparable) {
                None => Outcome::Created,
                Some(before) if before == comparable(after) => Outcome::Unchanged,
                Some(_) => Outcome::Configured,
            };
            return Ok((outcome, resource_version));
        }
        let before = api.get_opt(&manifest.name).await.map_err(classify)?;
        let after = api
            .patch(&manifest.name, &params, &patch)
            .await
            .map_err(classify)?;
        let resource_version = after.metadata.resource_version.clone().unwrap_or_default();
        let outcome = match before {
            None => Outcome::Created,
            // An apply that changes nothing is not written, so its resourceVersion stays the same.
            Some(before)
                if before.metadata.resource_version.as_deref() == Some(&resource_version) =>
            {
                Outcome::Unchanged
            }
            // Written, but perhaps only the server's bookkeeping (managedFields, ownership):
            // the user asks whether anything of theirs changed.
            Some(before) => {
                let before = serde_json::to_value(before).unwrap_or(Value::Null);
                let after = serde_json::to_value(after).unwrap_or(Value::Null);
                if super::user_fields::user_fields_equal(&manifest.body, &before, &after) {
                    Outcome::Unchanged
                } else {
                    Outcome::Configured
                }
            }
        };
        Ok((outcome, resource_version))
    }

    fn note_if_fatal(&mut self, err: &ResourceError) {
        if let ResourceError::Cluster(
            cause @ (ClusterError::Unreachable(_)
            | ClusterError::Timeout(_)
            | ClusterError::Tls(_)
            | ClusterError::Unauthorized(_)),
        ) = err
        {
            self.stopped = Some(format!("an earlier object failed: {cause}"));
        }
    }
}

/// An object with what every write changes (resourceVersion, generation, managedFields) removed.
fn comparable(object: DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    strip_managed_fields(&mut value);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("generation");
    }
    value
}

/// Waits, bounded by [`CRD_READY_TIMEOUT`] in all, until each CRD is Established and discovery
/// serves its kind, so the objects of it that follow in the same apply resolve.
async fn wait_until_served(
    kinds: &KindCache,
    cluster_id: &str,
    client: &Client,
    crds: &[Manifest],
) {
    let deadline = Instant::now() + CRD_READY_TIMEOUT;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        while Instant::now() < deadline {
            let established = api
                .get_opt(&crd.name)
                .await
                .ok()
                .flatten()
                .is_some_and(|c| {
                    c.status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            tokio::time::sleep(CRD_POLL).await;
        }
        let group = crd.body.pointer("/spec/group").and_then(Value::as_str);
        let kind = crd.body.pointer("/spec/names/kind").and_then(Value::as_str);
        let (Some(group), Some(kind)) = (group, kind) else {
            continue;
        };
        for version in served_versions(&crd.body) {
            let api_version = format!("{group}/{version}");
            while Instant::now() < deadline {
                match kinds.resolve(cluster_id, client, &api_version, kind).await {
                    Ok(_) => break,
                    Err(ResourceError::UnknownKind { .. }) => tokio::time::sleep(CRD_POLL).await,
                    Err(_) => break,
                }
            }
        }
    }
}

fn served_versions(crd: &Value) -> Vec<&str> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(parsed: &Parsed) -> Vec<(i32, String)> {
        parsed
            .entries
            .iter()
            .map(|e| match e {
                Entry::Object(m) => (m.document_index, m.name.clone()),
                Entry::Rejected(r) => (r.document_index, format!("!{}", r.message)),
            })
            .collect()
    }

    #[test]
    fn splits_on_separator_lines_only() {
        let text = "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: |\n    ---not a separator\n---   # trailing comment\n--- {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"}}\n---\n\n...\n";
        let parsed = parse(text);
        assert_eq!(parsed.documents, 2);
        assert_eq!(objects(&parsed), vec![(0, "a".into()), (1, "b".into())]);
    }

    #[test]
    fn crlf_documents_parse() {
        let text = "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: b\r\n";
        assert_eq!(
            objects(&parse(text)),
            vec![(0, "a".into()), (1, "b".into())]
        );
    }

    #[test]
    fn bad_documents_are_rejected_by_index() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\nkey: [unclosed\n---\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: d-\n---\n- just\n- a list\n---\n{\"apiVersion\": \"v1\", \"kind\": \n";
        let parsed = parse(text);
        let got = objects(&parsed);
        assert_eq!(got.len(), 6, "{got:?}");
        assert_eq!(got[0], (0, "a".into()));
        assert!(
            got[1].0 == 1 && got[1].1.starts_with("!not valid YAML"),
            "{got:?}"
        );
        assert!(
            got[2].0 == 2 && got[2].1.contains("missing apiVersion"),
            "{got:?}"
        );
        assert!(
            got[3].0 == 3 && got[3].1.contains("generateName"),
            "{got:?}"
        );
        assert!(
            got[4].0 == 4 && got[4].1.contains("not a mapping"),
            "{got:?}"
        );
        assert!(got[5].0 == 5 && got[5].1.contains("JSON"), "{got:?}");
    }

    #[test]
    fn lists_expand_with_their_document_index() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: why, namespace: other}\n";
        let parsed = parse(text);
        assert_eq!(parsed.documents, 2);
        assert_eq!(
            objects(&parsed),
            vec![(0, "first".into()), (1, "x".into()), (1, "why".into())]
        );
        let Entry::Object(y) = &parsed.entries[2] else {
            panic!("why is an object");
        };
        assert_eq!((y.kind.as_str(), y.namespace.as_str()), ("Secret", "other"));
    }

    #[test]
    fn managed_fields_are_dropped_and_yaml_types_kept() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  managedFields:\n  - manager: kubectl\ndata:\n  port: \"80\"\n";
        let parsed = parse(text);
        let Entry::Object(m) = &parsed.entries[0] else {
            panic!("an object");
        };
        assert!(m.body["metadata"].get("managedFields").is_none());
        assert_eq!(m.body["data"]["port"], Value::String("80".into()));
    }

    #[test]
    fn foundations_are_namespaces_and_crds() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  versions:\n  - {name: v1, served: true}\n  - {name: v0, served: false}\n---\napiVersion: example.com/v1\nkind: Namespace\nmetadata: {name: not-core}\n";
        let parsed = parse(text);
        let found: Vec<bool> = parsed
            .entries
            .iter()
            .map(|e| matches!(e, Entry::Object(m) if is_foundation(m)))
            .collect();
        assert_eq!(found, vec![true, true, false]);
        let Entry::Object(crd) = &parsed.entries[1] else {
            panic!("crd");
        };
        assert_eq!(served_versions(&crd.body), vec!["v1"]);
    }

    #[test]
    fn names_yaml_reads_as_booleans_are_explained() {
        let parsed = parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: no}\n");
        let got = objects(&parsed);
        assert!(
            got[0].1.contains("metadata.name must be a string"),
            "{got:?}"
        );
    }

    #[test]
    fn empty_input_has_no_documents() {
        assert_eq!(parse("").documents, 0);
        assert_eq!(parse("---\n# nothing\n---\n").documents, 0);
    }
}
