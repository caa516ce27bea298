//! The TCR providers' settings.

use serde::Deserialize;

/// Which TCR product a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// `tcr`: instances (`tcr-…`), namespaces, repositories, images, instance tokens.
    Enterprise,
    /// `tcr-personal`: the `…Personal` actions, one registry per account and region.
    Personal,
}

/// How the TCR providers reach Tencent Cloud's API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcrConfig {
    /// Overrides `https://tcr.tencentcloudapi.com` (tests point it at the simulator). The
    /// registry's own `endpoint` is its data plane, named in pull secrets.
    #[serde(default)]
    pub api_endpoint: Option<String>,
}

pub const DEFAULT_API_ENDPOINT: &str = "https://tcr.tencentcloudapi.com";

impl TcrConfig {
    pub fn api_endpoint(&self) -> String {
        self.api_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_API_ENDPOINT)
            .trim_end_matches('/')
            .to_string()
    }
}
