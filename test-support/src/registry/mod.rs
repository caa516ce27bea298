//! Real container registries for tests: a registry process per test ([`TestRegistry`]:
//! CNCF Distribution v3.1.2 or Debian's docker-registry 2.8, anonymous, htpasswd or bearer
//! tokens), our own token issuer ([`TokenIssuer`]), and a pusher ([`Pusher`]) that puts real
//! images, indexes, Helm charts, signatures and SBOMs into them through the registry API; and
//! [`login`], which logs in and pulls or pushes the way a container runtime does, to prove what
//! a credential really allows.

pub mod archive;
pub mod login;
pub mod process;
pub mod push;
pub mod scenario;
pub mod token;

pub use process::{LoggedRequest, RegistryAuth, RegistryKind, RegistryOptions, TestRegistry};
pub use push::{Pushed, Pusher, digest_of};
pub use token::{TokenIssuer, TokenSigner};
