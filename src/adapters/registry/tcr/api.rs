//! What the TCR clients share: Tencent Cloud's API as one key in one region, and the item-offset
//! cursor behind TCR's page-number paging.

use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::{
    client::{self, Envelope, MAX_PAGE_SIZE, Target},
    error::VENDOR,
};
use crate::adapters::{
    LimitKey, VendorHttp,
    error::{ErrorClass, Result, VendorError},
    registry::PageRequest,
    transport::Idempotency,
};

const DEFAULT_PAGE_SIZE: u32 = 20;

pub(super) fn invalid(
    operation: &'static str,
    code: &str,
    message: impl Into<String>,
) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        code,
        message,
    )
}

/// Tencent Cloud's API as one key in one region: signs, sends, unwraps `Response`.
pub(super) struct Api {
    pub(super) http: VendorHttp,
    pub(super) key: LimitKey,
    pub(super) endpoint: String,
    pub(super) region: String,
    pub(super) secret_id: String,
    pub(super) secret_key: Zeroizing<String>,
}

impl Api {
    pub(super) async fn call<T, B>(
        &self,
        action: &'static str,
        idempotency: Idempotency,
        body: &B,
    ) -> Result<T>
    where
        T: DeserializeOwned,
        B: serde::Serialize + Sync,
    {
        let target = Target {
            endpoint: &self.endpoint,
            region: &self.region,
            secret_id: &self.secret_id,
            secret_key: &self.secret_key,
        };
        let raw = client::send(&self.http, &self.key, action, idempotency, |timestamp| {
            client::action_request(&target, action, body, timestamp)
        })
        .await?;
        let envelope: Envelope<T> = raw.json(VENDOR, action)?;
        Ok(envelope.response)
    }
}

/// An item-offset cursor (`o/<offset>`); the vendor's paging is derived from it per call.
pub(super) fn decode_offset(operation: &'static str, page: &PageRequest) -> Result<u64> {
    match page.cursor.as_deref() {
        None => Ok(0),
        Some(text) => text
            .strip_prefix("o/")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                invalid(
                    operation,
                    "BadCursor",
                    "the page cursor is not one this list gave",
                )
            }),
    }
}

pub(super) fn encode_offset(offset: u64) -> String {
    format!("o/{offset}")
}

pub(super) fn page_size(page: &PageRequest) -> u32 {
    match page.size {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    }
}

/// Where a page-number API starts for an item offset: `(page number from 1, items to skip)`.
pub(super) fn page_window(offset: u64, size: u32) -> (u32, usize) {
    let size = u64::from(size.max(1));
    ((offset / size + 1) as u32, (offset % size) as usize)
}

/// The page after `offset` + `taken` items, when there is one.
pub(super) fn next_cursor(offset: u64, taken: usize, total: u64) -> Option<String> {
    let reached = offset + taken as u64;
    (taken > 0 && reached < total).then(|| encode_offset(reached))
}
