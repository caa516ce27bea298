//! Secrets: vendor credentials in the vault, sealing stored rows for their owner, and master key
//! rotation.

pub mod credentials;
pub mod rotation;
pub mod sealed;
