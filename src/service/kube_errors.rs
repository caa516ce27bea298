//! What a Kubernetes failure means to a caller of Flotilla.

use std::time::Duration;

use super::Error;
use crate::kube::ClusterError;

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
