//! The ACK adapter's settings (`--ack-endpoint`, `FLOTILLA_ACK_ENDPOINT`, `ack_endpoint`).

/// Where ACK is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Base URL used instead of the regional `https://cs.<region>.aliyuncs.com` (a proxy, or a
    /// simulator in tests).
    pub endpoint: Option<String>,
}
