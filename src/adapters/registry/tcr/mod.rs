//! Tencent Container Registry (API `tcr` `2019-09-24`, vendor-apis.md §3), two providers from
//! one folder: `tcr` (Enterprise Edition: instance-scoped, every call names `RegistryId`) and
//! `tcr-personal` (Personal Edition: region-scoped, the `…Personal` actions, no instance).
//!
//! - `config`: the providers' settings (an API endpoint override for tests).
//! - `client`: pure TC3-signed request builders (the signer TKE uses, `signing::tencent`),
//!   request and response shapes, the one `send`.
//! - `spec`: TCR's name rules and the registry target checks, applied before any call.
//! - `backend`: `TcrProvider` for both editions and `TcrClient` (Enterprise).
//! - `personal`: `PersonalClient` (Personal Edition).
//! - `error`: `parse_error`: the `Response.Error` envelope on HTTP 200, throttling.
//!
//! Paging: Enterprise DescribeNamespaces / DescribeRepositories / DescribeImages take `Offset`
//! as a **page number** (from 1); the cursor is an item offset turned into a page number here.
//! Personal lists take item offsets. Neither edition documents a chart API, and neither deletes
//! a manifest by digest (DeleteImage takes a tag), so those answer Unsupported.

mod api;
pub mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod personal;
pub mod spec;

use std::sync::Arc;

pub use backend::{TcrClient, TcrProvider};
pub use config::{Edition, TcrConfig};

use crate::adapters::{VendorHttp, registry::RegistryProvider};

/// The `tcr` (Enterprise) provider, ready to add to `RegistryProviders`.
pub fn provider(http: VendorHttp, config: TcrConfig) -> Arc<dyn RegistryProvider> {
    Arc::new(TcrProvider::new(http, config, Edition::Enterprise))
}

/// The `tcr-personal` provider.
pub fn personal_provider(http: VendorHttp, config: TcrConfig) -> Arc<dyn RegistryProvider> {
    Arc::new(TcrProvider::new(http, config, Edition::Personal))
}
