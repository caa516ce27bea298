//! The ACR provider's settings.

use serde::Deserialize;

/// How the `acr` provider reaches ACR's management API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcrConfig {
    /// Overrides `https://cr.{region}.aliyuncs.com` for every registry (tests point it at the
    /// simulator). The registry's own `endpoint` is its data plane, named in pull secrets.
    #[serde(default)]
    pub api_endpoint: Option<String>,
}

impl AcrConfig {
    /// The management API's base URL for `region` (already checked by `spec::check_region`).
    pub fn api_endpoint(&self, region: &str) -> String {
        match &self.api_endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
            None => format!("https://cr.{region}.aliyuncs.com"),
        }
    }
}
