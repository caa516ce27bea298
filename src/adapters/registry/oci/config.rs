//! The `oci` adapter's settings: how far it walks a registry on one call. The transport
//! (rate limit, timeouts, retries) is the shared `TransportSettings`.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OciSettings {
    /// Most tags or catalog entries asked for in one request (`n`); a registry may cap lower.
    pub max_page: u32,
    /// A cached token is used until this long before it expires (at most half its life).
    #[serde(with = "secs")]
    pub token_refresh_margin: Duration,
    /// Most catalog entries read to list namespaces (their repository counts need the whole
    /// catalog: plain registries have no namespace API).
    pub max_catalog_walk: u32,
    /// Most repositories looked into for one page of `ListCharts`; the page ends early (with a
    /// cursor) past that.
    pub chart_probes_per_page: u32,
}

impl Default for OciSettings {
    fn default() -> Self {
        OciSettings {
            max_page: 1000,
            token_refresh_margin: Duration::from_secs(30),
            max_catalog_walk: 100_000,
            chart_probes_per_page: 100,
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}
