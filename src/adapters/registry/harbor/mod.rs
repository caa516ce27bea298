//! Harbor v2.0 management API adapter (vendor-apis.md §5, Harbor's `api/v2.0/swagger.yaml`).
//!
//! - Auth: HTTP basic with a Harbor user or a robot account (`robot$name`,
//!   `robot$project+name`); logging in reads `/users/current` (users) and `/systeminfo`.
//! - Namespaces are projects (`repo_count`, `metadata.public`); deleting one that still holds
//!   repositories is Harbor's 412, reported with how many it holds.
//! - Repositories, artifacts (type, media types, tags, platforms of an index, push and pull
//!   times), tags; charts are OCI artifacts of type `CHART` (Chart.yaml in `extra_attrs`).
//! - Pull credentials are pull-only robot accounts (`POST /robots`), revoked by deleting them.
//! - Paging: Harbor's `page`/`page_size` (≤ 100), `X-Total-Count` and `Link` become the
//!   trait's item-offset cursor (`paging.rs`). Repository names are URL-encoded twice in paths.
//! - Errors: `{"errors":[{"code","message"}]}`, see `error.rs`.

mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod model;
pub mod paging;
pub mod spec;

use std::sync::Arc;

pub use backend::{HarborClient, HarborProvider};
pub use config::HarborSettings;

use crate::{
    adapters::{TransportSettings, registry::RegistryProvider},
    net::OutboundPolicy,
};

/// Provider id, as in `Registry.provider`.
const VENDOR: &str = "harbor";

/// The Harbor provider, for the server's `RegistryProviders`.
pub fn harbor_provider(
    transport: TransportSettings,
    policy: Arc<OutboundPolicy>,
    settings: HarborSettings,
) -> Arc<dyn RegistryProvider> {
    Arc::new(HarborProvider::new(transport, policy, settings))
}
