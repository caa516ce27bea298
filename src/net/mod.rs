//! Outbound networking shared by every client of caller-supplied addresses: the address policy
//! and the checked connector.

pub mod connector;
pub mod outbound;

pub use connector::{AddressNotAllowed, CheckedConnector, ConnectError};
pub use outbound::{OutboundPolicy, OutboundSettings};
