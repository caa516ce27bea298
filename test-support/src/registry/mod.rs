//! Real container registries for tests: a registry process per test ([`TestRegistry`]:
//! CNCF Distribution v3.1.2 or Debian's docker-registry 2.8, anonymous, htpasswd or bearer
//! tokens), our own token issuer ([`TokenIssuer`]), and a pusher ([`Pusher`]) that puts real
//! images, indexes, Helm charts, signatures and SBOMs into them through the registry API.

pub mod archive;
pub mod process;
pub mod push;
pub mod token;

pub use process::{LoggedRequest, RegistryAuth, RegistryKind, RegistryOptions, TestRegistry};
pub use push::{Pushed, Pusher, digest_of};
pub use token::TokenIssuer;
