//! Vendor errors met synchronously (node pool reads, validation calls) in the service's terms,
//! following the class → code table in api-patterns.md (except TIMEOUT, which is UNAVAILABLE
//! with a retry hint: the service layer has no deadline error, and the caller can retry).

use crate::adapters::{ErrorClass, VendorError};
use crate::service::Error;

pub fn to_service(err: VendorError) -> Error {
    let message = format!(
        "{} {} failed: {}{}",
        err.vendor,
        err.operation,
        if err.code.is_empty() {
            String::new()
        } else {
            format!("{}: ", err.code)
        },
        err.message
    );
    let reason = err.class.as_str();
    match err.class {
        ErrorClass::CredentialsInvalid
        | ErrorClass::CredentialsForbidden
        | ErrorClass::DependencyBlocked
        | ErrorClass::WebhookBlocking
        | ErrorClass::Unsupported => Error::FailedPrecondition { reason, message },
        ErrorClass::QuotaExceeded | ErrorClass::CapacityUnavailable => {
            Error::ResourceExhausted { reason, message }
        }
        ErrorClass::InvalidConfiguration => Error::InvalidArgument {
            field: "spec".into(),
            reason: message,
        },
        ErrorClass::VendorNotFound => Error::NotFoundMessage(message),
        ErrorClass::RateLimited
        | ErrorClass::VendorUnavailable
        | ErrorClass::Timeout
        | ErrorClass::DependencyPending
        | ErrorClass::TransientConfiguration
        | ErrorClass::CleanupBlocked => Error::Unavailable {
            reason,
            message,
            retry_after: Some(err.retry_after.unwrap_or(std::time::Duration::from_secs(1))),
        },
        ErrorClass::Unknown => Error::Internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(class: ErrorClass) -> Error {
        to_service(VendorError::new(
            class,
            "acme",
            "DescribeClusterNodePools",
            "Code.X",
            "said",
        ))
    }

    #[test]
    fn classes_map_to_the_documented_codes() {
        assert!(matches!(
            error(ErrorClass::CredentialsInvalid),
            Error::FailedPrecondition {
                reason: "CREDENTIALS_INVALID",
                ..
            }
        ));
        assert!(matches!(
            error(ErrorClass::QuotaExceeded),
            Error::ResourceExhausted {
                reason: "QUOTA_EXCEEDED",
                ..
            }
        ));
        assert!(matches!(
            error(ErrorClass::RateLimited),
            Error::Unavailable {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            error(ErrorClass::VendorNotFound),
            Error::NotFoundMessage(_)
        ));
        assert!(matches!(
            error(ErrorClass::InvalidConfiguration),
            Error::InvalidArgument { .. }
        ));
        let Error::FailedPrecondition { message, .. } = error(ErrorClass::CredentialsForbidden)
        else {
            panic!("forbidden is a precondition");
        };
        assert_eq!(
            message,
            "acme DescribeClusterNodePools failed: Code.X: said"
        );
    }
}
