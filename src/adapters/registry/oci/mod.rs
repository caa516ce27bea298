//! Any OCI registry (the distribution API: CNCF Distribution, Debian's docker-registry, Zot, …).
//!
//! - `client`: pure request builders, the one `send` with the token flow and basic auth.
//! - `backend`: `OciProvider`, the `RegistryProvider`; paging absorbed (sorted, cursor = last name).
//! - `spec`: name rules, manifest shapes, media type → `ArtifactKind`.
//! - `config`: `OciSettings`.
//! - `error`: `parse_error`, distribution error codes classified once.

pub mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod spec;

pub use backend::OciProvider;
pub use config::OciSettings;
