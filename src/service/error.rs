//! The service layer's errors: about meaning, not transport. `api::status` turns each one into a
//! `tonic::Status` in one exhaustive match.

use std::time::Duration;

use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named object does not exist (or the caller may not know it does).
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// Something the caller named does not exist; the message says what (Kubernetes objects).
    #[error("{0}")]
    NotFoundMessage(String),
    /// Several fields are wrong (a Kubernetes validation failure): (field, reason) pairs.
    #[error("{message}")]
    InvalidFields {
        message: String,
        violations: Vec<(String, String)>,
    },
    /// A request field is wrong; `field` is its path in the request, such as "page_token".
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The object already exists; `reason` is a stable code for clients.
    #[error("{message}")]
    AlreadyExists {
        reason: &'static str,
        message: String,
    },
    /// The system is not in a state that allows the call; `reason` is a stable code.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    /// A quota or capacity ran out (at a vendor); `reason` is a stable code.
    #[error("{message}")]
    ResourceExhausted {
        reason: &'static str,
        message: String,
    },
    /// A concurrent change won; the caller should re-read and retry.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A dependency (a cluster, a vendor) cannot be reached now.
    #[error("{message}")]
    Unavailable {
        reason: &'static str,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The call exists in the API but this server does not do it (yet, or for this provider).
    #[error("{0}")]
    Unimplemented(String),
    /// The caller's token stopped being valid (revoked or expired) while its stream was open.
    #[error("{0}")]
    Unauthenticated(String),
    /// A bug or an infrastructure failure. Logged in full; callers get a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<crate::crypto::Error> for Error {
    fn from(err: crate::crypto::Error) -> Self {
        Error::Internal(format!("secret encryption: {err}"))
    }
}

impl From<store::Error> for Error {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::AlreadyExists(what) => Error::AlreadyExists {
                reason: "ALREADY_EXISTS",
                message: format!("an object with the same {what} already exists"),
            },
            store::Error::Conflict => Error::Aborted(
                "the object was changed by another request; read it again and retry".into(),
            ),
            store::Error::BadKey => Error::invalid(
                "page_token",
                "is not a token this server issued for this list; start again from the first page",
            ),
            store::Error::Pool(_) | store::Error::Connect(_) => Error::Unavailable {
                reason: "DATABASE_UNAVAILABLE",
                message: "the database is not available right now".into(),
                retry_after: Some(Duration::from_secs(1)),
            },
            other => Error::Internal(other.to_string()),
        }
    }
}
