//! Image pull secrets: a `kubernetes.io/dockerconfigjson` Secret for one registry in one
//! namespace, and the ServiceAccount that references it. Flotilla owns what it writes (a label
//! and the registry annotation say so) and never overwrites a Secret it did not write.

use std::collections::BTreeMap;

use ::kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::{
    ByteString,
    api::core::v1::{Secret, ServiceAccount},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde_json::json;
use zeroize::Zeroizing;

use super::{ClusterError, connect::classify};

type Result<T, E = ClusterError> = std::result::Result<T, E>;

pub const SECRET_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub const DATA_KEY: &str = ".dockerconfigjson";
/// The label on every Secret Flotilla writes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "flotilla";
/// Which registry the Secret is for.
pub const REGISTRY_ANNOTATION: &str = "flotilla.dev/registry";
/// When the credential inside expires (RFC 3339), when it does.
pub const EXPIRES_ANNOTATION: &str = "flotilla.dev/expires";

/// What one pull secret holds.
pub struct PullSecret<'a> {
    pub name: &'a str,
    pub registry_id: &'a str,
    /// The registry host, as image references name it ("harbor.example.com:8443").
    pub server: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    /// RFC 3339 expiry of the credential, when it has one.
    pub expires: Option<String>,
}

/// What writing one Secret did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Unchanged,
}

impl Written {
    /// The name the API reports ("created", "updated", "unchanged").
    pub fn as_str(self) -> &'static str {
        match self {
            Written::Created => "created",
            Written::Updated => "updated",
            Written::Unchanged => "unchanged",
        }
    }
}

/// Why a Secret was not written although the cluster answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A Secret of that name exists and Flotilla did not write it.
    NotOurs,
    /// A Secret of that name exists for another registry.
    OtherRegistry(String),
}

/// The `.dockerconfigjson` document: `{"auths":{server:{username,password,auth}}}`.
pub fn docker_config_json(server: &str, username: &str, password: &str) -> Zeroizing<Vec<u8>> {
    let auth = Zeroizing::new(STANDARD.encode(format!("{username}:{password}")));
    let doc = json!({
        "auths": {
            server: { "username": username, "password": password, "auth": auth.as_str() }
        }
    });
    Zeroizing::new(serde_json::to_vec(&doc).unwrap_or_default())
}

fn secret_object(secret: &PullSecret<'_>, namespace: &str) -> Secret {
    let mut labels = BTreeMap::new();
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
    let mut annotations = BTreeMap::new();
    annotations.insert(
        REGISTRY_ANNOTATION.to_string(),
        secret.registry_id.to_string(),
    );
    if let Some(expires) = &secret.expires {
        annotations.insert(EXPIRES_ANNOTATION.to_string(), expires.clone());
    }
    let payload = docker_config_json(secret.server, secret.username, secret.password);
    Secret {
        metadata: ObjectMeta {
            name: Some(secret.name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.to_string()),
        data: Some(BTreeMap::from([(
            DATA_KEY.to_string(),
            ByteString(payload.to_vec()),
        )])),
        ..Secret::default()
    }
}

/// Whether `existing` may be replaced by a pull secret for `registry_id`.
pub fn ownership(existing: &Secret, registry_id: &str) -> Result<(), Refused> {
    let meta = &existing.metadata;
    let ours = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY);
    if !ours {
        return Err(Refused::NotOurs);
    }
    match meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(REGISTRY_ANNOTATION))
    {
        Some(other) if other != registry_id => Err(Refused::OtherRegistry(other.clone())),
        _ => Ok(()),
    }
}

/// Whether `existing` already holds exactly what `wanted` would write.
fn same_content(existing: &Secret, wanted: &Secret) -> bool {
    existing.type_ == wanted.type_
        && existing.data == wanted.data
        && existing.metadata.annotations == wanted.metadata.annotations
}

/// Writes the pull secret into `namespace`: creates it, replaces the one Flotilla wrote
/// before, or leaves it when it already holds the same. A Secret of that name that Flotilla did
/// not write (or wrote for another registry) is left alone: `Ok(Err(Refused))`.
pub async fn write(
    client: &Client,
    namespace: &str,
    secret: &PullSecret<'_>,
) -> Result<std::result::Result<Written, Refused>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let wanted = secret_object(secret, namespace);
    match api.get_opt(secret.name).await.map_err(classify)? {
        None => {
            api.create(&PostParams::default(), &wanted)
                .await
                .map_err(classify)?;
            Ok(Ok(Written::Created))
        }
        Some(existing) => {
            if let Err(refused) = ownership(&existing, secret.registry_id) {
                return Ok(Err(refused));
            }
            if same_content(&existing, &wanted) {
                return Ok(Ok(Written::Unchanged));
            }
            let mut replacement = wanted;
            // Replace exactly the version read: a concurrent writer makes this a conflict.
            replacement.metadata.resource_version = existing.metadata.resource_version;
            api.replace(secret.name, &PostParams::default(), &replacement)
                .await
                .map_err(classify)?;
            Ok(Ok(Written::Updated))
        }
    }
}

/// Adds `secret_name` to the `imagePullSecrets` of ServiceAccount `account` in `namespace`,
/// unless it is there already. Returns whether the account changed.
pub async fn attach(
    client: &Client,
    namespace: &str,
    account: &str,
    secret_name: &str,
) -> Result<bool> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let current = api.get(account).await.map_err(classify)?;
    let mut names: Vec<String> = current
        .image_pull_secrets
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .collect();
    if names.iter().any(|n| n == secret_name) {
        return Ok(false);
    }
    names.push(secret_name.to_string());
    let refs: Vec<_> = names.iter().map(|n| json!({ "name": n })).collect();
    // A merge patch replaces the list whole; the resourceVersion makes a concurrent change a
    // conflict instead of a lost update.
    let patch = json!({
        "metadata": { "resourceVersion": current.metadata.resource_version },
        "imagePullSecrets": refs,
    });
    api.patch(account, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(classify)?;
    Ok(true)
}

/// Deletes the pull secret Flotilla wrote for `registry_id`; a Secret it did not write is left.
/// Returns whether one was deleted.
pub async fn remove(
    client: &Client,
    namespace: &str,
    name: &str,
    registry_id: &str,
) -> Result<bool> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await.map_err(classify)? {
        Some(existing) if ownership(&existing, registry_id).is_ok() => {
            api.delete(name, &Default::default())
                .await
                .map_err(classify)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PullSecret<'static> {
        PullSecret {
            name: "flotilla-reg1",
            registry_id: "reg1",
            server: "registry.example.com:5000",
            username: "robot$pull",
            password: "s3cret",
            expires: Some("2026-12-31T00:00:00Z".into()),
        }
    }

    #[test]
    fn docker_config_json_is_what_the_kubelet_reads() {
        let doc: serde_json::Value =
            serde_json::from_slice(&docker_config_json("r.example:5000", "u", "p:w")).unwrap();
        let entry = &doc["auths"]["r.example:5000"];
        assert_eq!(entry["username"], "u");
        assert_eq!(entry["password"], "p:w");
        // base64("u:p:w"), computed outside the code under test.
        assert_eq!(entry["auth"], "dTpwOnc=");
    }

    #[test]
    fn the_secret_is_typed_labelled_and_annotated() {
        let object = secret_object(&sample(), "team-a");
        assert_eq!(object.type_.as_deref(), Some(SECRET_TYPE));
        assert_eq!(object.metadata.namespace.as_deref(), Some("team-a"));
        let labels = object.metadata.labels.clone().unwrap();
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        let annotations = object.metadata.annotations.clone().unwrap();
        assert_eq!(annotations[REGISTRY_ANNOTATION], "reg1");
        assert_eq!(annotations[EXPIRES_ANNOTATION], "2026-12-31T00:00:00Z");
        assert!(object.data.unwrap().contains_key(DATA_KEY));
    }

    #[test]
    fn only_our_own_secret_for_the_same_registry_is_replaced() {
        let ours = secret_object(&sample(), "ns");
        assert_eq!(ownership(&ours, "reg1"), Ok(()));
        assert_eq!(
            ownership(&ours, "reg2"),
            Err(Refused::OtherRegistry("reg1".into()))
        );
        let mut foreign = ours.clone();
        foreign.metadata.labels = None;
        assert_eq!(ownership(&foreign, "reg1"), Err(Refused::NotOurs));
    }

    #[test]
    fn unchanged_only_when_content_and_expiry_match() {
        let a = secret_object(&sample(), "ns");
        assert!(same_content(&a, &secret_object(&sample(), "ns")));
        let mut renewed = sample();
        renewed.password = "new";
        assert!(!same_content(&a, &secret_object(&renewed, "ns")));
        let mut later = sample();
        later.expires = Some("2027-01-31T00:00:00Z".into());
        assert!(!same_content(&a, &secret_object(&later, "ns")));
    }
}
