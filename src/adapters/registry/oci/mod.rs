//! Any OCI registry (the distribution API: CNCF Distribution, Debian's docker-registry, Zot, …).
//!
//! - `client`: pure request builders, the one `send` with the token flow and basic auth.
//! - `backend`: `OciProvider`, the `RegistryProvider`; paging absorbed (sorted, cursor = last name).
//! - `listing`: catalog and tag lists paged whatever the registry does with `n`/`last`.
//! - `charts`: Helm charts found among a repository's tags.
//! - `spec`: name rules, manifest shapes, media type → `ArtifactKind`.
//! - `config`: `OciSettings`.
//! - `error`: `parse_error`, distribution error codes classified once.

pub mod backend;
mod charts;
pub mod client;
pub mod config;
pub mod error;
mod listing;
pub mod spec;

pub use backend::OciProvider;
pub use config::OciSettings;
