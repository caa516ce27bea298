//! The TKE adapter's settings (`--tke-endpoint`, `FLOTILLA_TKE_ENDPOINT`, `tke_endpoint`).

/// Where TKE is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Base URL used instead of `https://tke.tencentcloudapi.com` (a proxy, or a simulator in
    /// tests); the region still goes in `X-TC-Region`.
    pub endpoint: Option<String>,
}
