//! What a Kubernetes failure means to a caller of Flotilla.

use std::time::Duration;

use crate::kube::ClusterError;
use crate::service::Error;

/// Maps a failed call to a cluster: 404 → NOT_FOUND, 403 → PERMISSION_DENIED (the API server's
/// message names the identity that lacked the permission), 409 → ALREADY_EXISTS or ABORTED,
/// 422 → INVALID_ARGUMENT with the field causes, unreachable → UNAVAILABLE with RetryInfo.
pub fn from_cluster(cluster_id: &str, err: ClusterError) -> Error {
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

    #[test]
    fn kubernetes_statuses_keep_their_meaning() {
        let cases: Vec<(ClusterError, &str)> = vec![
            (
                ClusterError::NotFound("pods \"x\" not found".into()),
                "NotFoundMessage",
            ),
            (
                ClusterError::Forbidden("User \"u\" cannot list pods".into()),
                "PermissionDenied",
            ),
            (
                ClusterError::Conflict {
                    message: "exists".into(),
                    already_exists: true,
                },
                "AlreadyExists",
            ),
            (
                ClusterError::Conflict {
                    message: "the object has been modified".into(),
                    already_exists: false,
                },
                "Aborted",
            ),
            (
                ClusterError::Invalid {
                    message: "invalid".into(),
                    causes: vec![("spec.replicas".into(), "must be >= 0".into())],
                },
                "InvalidFields",
            ),
            (
                ClusterError::Api {
                    code: 429,
                    message: "slow down".into(),
                    retry_after_seconds: Some(3),
                },
                "Unavailable",
            ),
            (ClusterError::Unreachable("refused".into()), "Unavailable"),
        ];
        for (err, expected) in cases {
            let mapped = from_cluster("c1", err);
            let name = format!("{mapped:?}");
            assert!(name.starts_with(expected), "{name}");
            if let Error::PermissionDenied(message) = &mapped {
                assert!(message.contains("User \"u\""), "names the identity");
            }
            if let Error::InvalidFields { violations, .. } = &mapped {
                assert_eq!(violations[0].0, "spec.replicas");
            }
            if let Error::Unavailable { retry_after, .. } = &mapped {
                assert!(retry_after.is_some(), "RetryInfo");
            }
        }
    }
}
