//! Alibaba Cloud Container Registry Enterprise Edition (ACR EE, API `cr` `2018-12-01`, RPC
//! style: every action is `POST /` with its parameters in the query, vendor-apis.md §4).
//!
//! - `config`: the provider's settings (an API endpoint override for tests).
//! - `client`: pure, signed request builders (V3 `ACS3-HMAC-SHA256`, the signer ACK uses, from
//!   `signing::alibaba`), the response shapes, and the one `send`.
//! - `spec`: ACR's name rules and the registry target checks, applied before any call.
//! - `backend`: `AcrProvider` (the `RegistryProvider`) and `AcrClient` (the `RegistryClient`).
//! - `error`: `parse_error`: POP error bodies, `IsSuccess=false` on HTTP 200, throttling hints.
//!
//! Paging: ListNamespace pages by `PageNo` (the cursor is an item offset turned into a page
//! number); ListRepository and ListRepoTag page by `NextToken` (the cursor carries the token).
//! `TotalCount` comes as a string. Repository operations are keyed by `RepoId`, looked up by
//! name with GetRepository.
//!
//! Not here, and why: ACR's chart API is not in our vendor notes, so charts answer
//! Unsupported; deleting an artifact by digest has no documented action (only DeleteRepoTag),
//! so it answers Unsupported too; media types and platforms need the OCI data plane.

pub mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod spec;

use std::sync::Arc;

pub use backend::{AcrClient, AcrProvider};
pub use config::AcrConfig;

use crate::adapters::{VendorHttp, registry::RegistryProvider};

/// The `acr` provider, ready to add to `RegistryProviders`.
pub fn provider(http: VendorHttp, config: AcrConfig) -> Arc<dyn RegistryProvider> {
    Arc::new(AcrProvider::new(http, config))
}
