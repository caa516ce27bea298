//! Vendor errors met synchronously (node pool reads, validation calls) in the service's terms,
//! following the class → code table in api-patterns.md.

use super::Error;
use crate::vendor::{ErrorClass, VendorError};

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
            Error::FailedPrecondition { reason, message }
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
