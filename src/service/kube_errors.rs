//! What a Kubernetes failure means to a caller of Flotilla: the one mapping from
//! [`ClusterError`] (and [`ResourceError`], which wraps it) to the service error.
//!
//! The same Kubernetes failure means different things at different stages, which is why
//! [`from_cluster`] takes the [`Stage`]: a 404 while *connecting* says the server URL does not
//! lead to a Kubernetes API (the stored or given access is wrong: FAILED_PRECONDITION), while a
//! 404 on a *call* says the object the caller named does not exist (NOT_FOUND).

use std::time::Duration;

use crate::kube::{ClusterError, CredentialPart, resources::ResourceError};
use crate::service::Error;

/// What Flotilla was doing when the cluster failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage<'a> {
    /// Connecting with access the caller just gave (import, credential update). `field` is the
    /// request field that carried it (`source.token` or `source.kubeconfig.kubeconfig`); bad
    /// input is INVALID_ARGUMENT naming the most precise field, anything else is as `Connect`.
    Source { field: &'a str },
    /// Building a client from stored access, probing it, or checking what it may do: every
    /// failure is about the cluster's access, so FAILED_PRECONDITION (UNAVAILABLE when the
    /// server cannot be reached) with the failure's stable reason.
    Connect,
    /// A call on a caller's behalf: Kubernetes' own status keeps its meaning — 404 → NOT_FOUND,
    /// 403 → PERMISSION_DENIED (the API server's message names the identity that lacked the
    /// permission), 409 → ALREADY_EXISTS or ABORTED, 422 → INVALID_ARGUMENT with the field
    /// causes, throttled or unreachable → UNAVAILABLE with RetryInfo.
    Call { cluster_id: &'a str },
}

/// The one mapping of a cluster failure, decided by what Flotilla was doing (see [`Stage`]).
pub fn from_cluster(stage: Stage<'_>, err: ClusterError) -> Error {
    match stage {
        Stage::Source { field } => on_source(field, err),
        Stage::Connect => on_connect(err),
        Stage::Call { cluster_id } => on_call(cluster_id, err),
    }
}

/// A generic-resource failure (any apiVersion/kind) on a call: bad input names its field, a
/// kind the cluster does not serve is NOT_FOUND (like the API server's own 404 for it), and
/// the cluster's failures are as [`Stage::Call`].
pub fn from_resource(cluster_id: &str, err: ResourceError) -> Error {
    match err {
        ResourceError::BadApiVersion(_) => Error::invalid("api_version", err.to_string()),
        ResourceError::BadKind(_) | ResourceError::Unsupported { .. } => {
            Error::invalid("kind", err.to_string())
        }
        ResourceError::ClusterScoped { .. } | ResourceError::NamespaceRequired { .. } => {
            Error::invalid("namespace", err.to_string())
        }
        ResourceError::UnknownKind { .. } => {
            Error::NotFoundMessage(format!("cluster {cluster_id:?}: {err}"))
        }
        ResourceError::Cluster(err) => from_cluster(Stage::Call { cluster_id }, err),
    }
}

/// A failed page of a generic-resource list: as [`from_resource`], except that 410 Gone means
/// the API server compacted past the snapshot the page token points into.
pub fn from_resource_page(cluster_id: &str, err: ResourceError) -> Error {
    match err {
        ResourceError::Cluster(ClusterError::Api { code: 410, .. }) => Error::invalid(
            "page_token",
            "has expired (the cluster no longer keeps that snapshot); start again from the \
             first page",
        ),
        other => from_resource(cluster_id, other),
    }
}

fn on_source(field: &str, err: ClusterError) -> Error {
    let field = match &err {
        ClusterError::InvalidServer(_) if field == "source.token" => "source.token.server",
        ClusterError::BadCredential { part, .. } if field == "source.token" => match part {
            CredentialPart::CaCertificate => "source.token.ca_pem",
            _ => "source.token.bearer_token",
        },
        ClusterError::InvalidServer(_) | ClusterError::BadCredential { .. } => field,
        _ => return on_connect(err),
    };
    // Inside a kubeconfig, the message names the kubeconfig's own field.
    Error::invalid(field, err.to_string())
}

fn on_connect(err: ClusterError) -> Error {
    let reason = err.reason();
    match err {
        ClusterError::InvalidServer(_) => Error::invalid("source.token.server", err.to_string()),
        ClusterError::BadCredential { part, .. } => {
            let field = match part {
                CredentialPart::CaCertificate => "source.token.ca_pem",
                CredentialPart::BearerToken => "source.token.bearer_token",
                CredentialPart::ClientCertificate | CredentialPart::ClientKey => {
                    "source.kubeconfig.kubeconfig"
                }
            };
            Error::invalid(field, err.to_string())
        }
        ClusterError::Unreachable(_) | ClusterError::Timeout(_) => Error::Unavailable {
            reason,
            message: err.to_string(),
            retry_after: None,
        },
        ClusterError::AddressNotAllowed(_)
        | ClusterError::NotFound(_)
        | ClusterError::Conflict { .. }
        | ClusterError::Invalid { .. }
        | ClusterError::Tls(_)
        | ClusterError::Unauthorized(_)
        | ClusterError::Forbidden(_)
        | ClusterError::Api { .. }
        | ClusterError::Other(_) => Error::FailedPrecondition {
            reason,
            message: err.to_string(),
        },
    }
}

fn on_call(cluster_id: &str, err: ClusterError) -> Error {
    match err {
        ClusterError::NotFound(message) => Error::NotFoundMessage(message),
        ClusterError::Forbidden(message) => {
            Error::PermissionDenied(format!("cluster {cluster_id:?} refused: {message}"))
        }
        ClusterError::Conflict {
            message,
            already_exists: true,
        } => Error::AlreadyExists {
            reason: "ALREADY_EXISTS",
            message,
        },
        ClusterError::Conflict { message, .. } => Error::Aborted(message),
        ClusterError::Invalid { message, causes } => Error::InvalidFields {
            message,
            violations: causes,
        },
        ClusterError::Api {
            code: 400, message, ..
        } => Error::InvalidFields {
            message,
            violations: Vec::new(),
        },
        ClusterError::Api {
            code,
            message,
            retry_after_seconds,
        } if code == 429 || code >= 500 => Error::Unavailable {
            reason: "CLUSTER_API_UNAVAILABLE",
            message: format!("cluster {cluster_id:?} answered {code}: {message}"),
            retry_after: Some(Duration::from_secs(u64::from(
                retry_after_seconds.unwrap_or(1),
            ))),
        },
        ClusterError::Unreachable(_) | ClusterError::Timeout(_) => Error::Unavailable {
            reason: "CLUSTER_UNREACHABLE",
            message: format!("cluster {cluster_id:?}: {err}"),
            retry_after: Some(Duration::from_secs(5)),
        },
        other => Error::FailedPrecondition {
            reason: other.reason(),
            message: format!("cluster {cluster_id:?}: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variant, and the reason or field it carries: what a client sees as code, ErrorInfo
    /// reason or BadRequest field.
    fn shape(err: &Error) -> (&'static str, String) {
        match err {
            Error::NotFoundMessage(_) => ("NotFoundMessage", String::new()),
            Error::PermissionDenied(_) => ("PermissionDenied", String::new()),
            Error::AlreadyExists { reason, .. } => ("AlreadyExists", reason.to_string()),
            Error::Aborted(_) => ("Aborted", String::new()),
            Error::InvalidFields { violations, .. } => (
                "InvalidFields",
                violations.first().map(|v| v.0.clone()).unwrap_or_default(),
            ),
            Error::InvalidArgument { field, .. } => ("InvalidArgument", field.clone()),
            Error::FailedPrecondition { reason, .. } => ("FailedPrecondition", reason.to_string()),
            Error::Unavailable { reason, .. } => ("Unavailable", reason.to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn api(code: u16) -> ClusterError {
        ClusterError::Api {
            code,
            message: format!("answered {code}"),
            retry_after_seconds: None,
        }
    }

    fn bad(part: CredentialPart) -> ClusterError {
        ClusterError::BadCredential {
            part,
            reason: "does not parse".into(),
        }
    }

    /// Every failure of one stage, and what a caller must see for it (written out by hand from
    /// the documented behaviour, not derived from the mapping).
    fn table(stage: Stage<'_>) -> Vec<(ClusterError, (&'static str, &'static str))> {
        let on_call = matches!(stage, Stage::Call { .. });
        let precondition = |reason| ("FailedPrecondition", reason);
        vec![
            (
                ClusterError::NotFound("pods \"x\" not found".into()),
                if on_call {
                    ("NotFoundMessage", "")
                } else {
                    precondition("NOT_FOUND")
                },
            ),
            (
                ClusterError::Forbidden("User \"u\" cannot list pods".into()),
                if on_call {
                    ("PermissionDenied", "")
                } else {
                    precondition("CLUSTER_PERMISSION_DENIED")
                },
            ),
            (
                ClusterError::Conflict {
                    message: "exists".into(),
                    already_exists: true,
                },
                if on_call {
                    ("AlreadyExists", "ALREADY_EXISTS")
                } else {
                    precondition("CONFLICT")
                },
            ),
            (
                ClusterError::Conflict {
                    message: "the object has been modified".into(),
                    already_exists: false,
                },
                if on_call {
                    ("Aborted", "")
                } else {
                    precondition("CONFLICT")
                },
            ),
            (
                ClusterError::Invalid {
                    message: "invalid".into(),
                    causes: vec![("spec.replicas".into(), "must be >= 0".into())],
                },
                if on_call {
                    ("InvalidFields", "spec.replicas")
                } else {
                    precondition("INVALID")
                },
            ),
            (
                api(400),
                if on_call {
                    ("InvalidFields", "")
                } else {
                    precondition("CLUSTER_API_ERROR")
                },
            ),
            (
                api(429),
                if on_call {
                    ("Unavailable", "CLUSTER_API_UNAVAILABLE")
                } else {
                    precondition("CLUSTER_API_ERROR")
                },
            ),
            (
                api(503),
                if on_call {
                    ("Unavailable", "CLUSTER_API_UNAVAILABLE")
                } else {
                    precondition("CLUSTER_API_ERROR")
                },
            ),
            (api(410), precondition("CLUSTER_API_ERROR")),
            (
                ClusterError::Unreachable("connection refused".into()),
                ("Unavailable", "CLUSTER_UNREACHABLE"),
            ),
            (
                ClusterError::Timeout(Duration::from_secs(3)),
                (
                    "Unavailable",
                    if on_call {
                        "CLUSTER_UNREACHABLE"
                    } else {
                        "CLUSTER_TIMEOUT"
                    },
                ),
            ),
            (
                ClusterError::Tls("unknown issuer".into()),
                precondition("TLS_VERIFICATION_FAILED"),
            ),
            (
                ClusterError::Unauthorized("token expired".into()),
                precondition("CLUSTER_CREDENTIALS_REJECTED"),
            ),
            (
                ClusterError::AddressNotAllowed("127.0.0.9 is denied".into()),
                precondition("ADDRESS_NOT_ALLOWED"),
            ),
            (
                ClusterError::Other("boom".into()),
                precondition("CLUSTER_ERROR"),
            ),
        ]
    }

    fn check(stage: Stage<'_>) {
        for (err, (variant, detail)) in table(stage) {
            let text = err.to_string();
            let mapped = from_cluster(stage, err);
            assert_eq!(
                shape(&mapped),
                (variant, detail.to_string()),
                "{stage:?}: {text}"
            );
        }
    }

    #[test]
    fn on_a_call_kubernetes_statuses_keep_their_meaning() {
        check(Stage::Call { cluster_id: "c1" });
        let denied = from_cluster(
            Stage::Call { cluster_id: "c1" },
            ClusterError::Forbidden("User \"u\" cannot list pods".into()),
        );
        assert!(
            denied.to_string().contains("User \"u\""),
            "names the identity"
        );
        for (err, after) in [
            (ClusterError::Unreachable("refused".into()), 5),
            (
                ClusterError::Api {
                    code: 429,
                    message: "slow down".into(),
                    retry_after_seconds: Some(3),
                },
                3,
            ),
            (api(500), 1),
        ] {
            match from_cluster(Stage::Call { cluster_id: "c1" }, err) {
                Error::Unavailable { retry_after, .. } => {
                    assert_eq!(retry_after, Some(Duration::from_secs(after)), "RetryInfo")
                }
                other => panic!("{other:?}"),
            }
        }
        let other = from_cluster(Stage::Call { cluster_id: "c1" }, api(410));
        assert!(other.to_string().starts_with("cluster \"c1\": "), "{other}");
    }

    #[test]
    fn while_connecting_every_failure_is_about_the_access() {
        check(Stage::Connect);
        match from_cluster(Stage::Connect, ClusterError::Unreachable("refused".into())) {
            Error::Unavailable { retry_after, .. } => assert_eq!(retry_after, None),
            other => panic!("{other:?}"),
        }
        let fields = [
            (
                ClusterError::InvalidServer("has no host".into()),
                "source.token.server",
            ),
            (bad(CredentialPart::CaCertificate), "source.token.ca_pem"),
            (
                bad(CredentialPart::BearerToken),
                "source.token.bearer_token",
            ),
            (
                bad(CredentialPart::ClientCertificate),
                "source.kubeconfig.kubeconfig",
            ),
            (
                bad(CredentialPart::ClientKey),
                "source.kubeconfig.kubeconfig",
            ),
        ];
        for (err, field) in fields {
            assert_eq!(
                shape(&from_cluster(Stage::Connect, err)),
                ("InvalidArgument", field.to_string())
            );
        }
    }

    #[test]
    fn given_access_names_the_request_field_it_came_in() {
        // Anything but bad input is as when connecting with stored access.
        check(Stage::Source {
            field: "source.token",
        });
        let token = Stage::Source {
            field: "source.token",
        };
        let kubeconfig = Stage::Source {
            field: "source.kubeconfig.kubeconfig",
        };
        let cases = [
            (
                token,
                ClusterError::InvalidServer("x".into()),
                "source.token.server",
            ),
            (
                token,
                bad(CredentialPart::CaCertificate),
                "source.token.ca_pem",
            ),
            (
                token,
                bad(CredentialPart::BearerToken),
                "source.token.bearer_token",
            ),
            (
                token,
                bad(CredentialPart::ClientKey),
                "source.token.bearer_token",
            ),
            (
                kubeconfig,
                ClusterError::InvalidServer("x".into()),
                "source.kubeconfig.kubeconfig",
            ),
            (
                kubeconfig,
                bad(CredentialPart::CaCertificate),
                "source.kubeconfig.kubeconfig",
            ),
        ];
        for (stage, err, field) in cases {
            assert_eq!(
                shape(&from_cluster(stage, err)),
                ("InvalidArgument", field.to_string()),
                "{stage:?}"
            );
        }
    }

    #[test]
    fn resource_failures_name_their_field_and_unknown_kinds_are_not_found() {
        let unknown = from_resource(
            "dev",
            ResourceError::UnknownKind {
                api_version: "example.com/v1".into(),
                kind: "Widget".into(),
            },
        );
        assert!(
            matches!(&unknown, Error::NotFoundMessage(m) if m.contains("Widget") && m.contains("dev")),
            "{unknown:?}"
        );
        let cases: Vec<(ResourceError, (&str, &str))> = vec![
            (
                ResourceError::BadApiVersion("a/b/c".into()),
                ("InvalidArgument", "api_version"),
            ),
            (
                ResourceError::BadKind("lower".into()),
                ("InvalidArgument", "kind"),
            ),
            (
                ResourceError::Unsupported {
                    kind: "Binding".into(),
                    verb: "list",
                },
                ("InvalidArgument", "kind"),
            ),
            (
                ResourceError::ClusterScoped {
                    kind: "Node".into(),
                },
                ("InvalidArgument", "namespace"),
            ),
            (
                ResourceError::NamespaceRequired {
                    kind: "ConfigMap".into(),
                },
                ("InvalidArgument", "namespace"),
            ),
            (
                ResourceError::Cluster(ClusterError::NotFound("configmaps \"x\"".into())),
                ("NotFoundMessage", ""),
            ),
            (
                ResourceError::Cluster(api(410)),
                ("FailedPrecondition", "CLUSTER_API_ERROR"),
            ),
        ];
        for (err, (variant, detail)) in cases {
            let text = err.to_string();
            assert_eq!(
                shape(&from_resource("dev", err)),
                (variant, detail.to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn an_expired_list_snapshot_asks_for_the_first_page() {
        assert_eq!(
            shape(&from_resource_page("dev", ResourceError::Cluster(api(410)))),
            ("InvalidArgument", "page_token".to_string())
        );
        assert_eq!(
            shape(&from_resource_page("dev", ResourceError::Cluster(api(503)))),
            ("Unavailable", "CLUSTER_API_UNAVAILABLE".to_string())
        );
        assert_eq!(
            shape(&from_resource_page(
                "dev",
                ResourceError::BadKind("x".into())
            )),
            ("InvalidArgument", "kind".to_string())
        );
    }
}
