//! The Rancher adapter's settings (`--rancher-url`, `--rancher-ca-file`, their
//! `FLOTILLA_RANCHER_*` variables and config file keys).

use std::path::PathBuf;

use anyhow::Context;

use crate::adapters::{TransportSettings, VendorHttp};

/// Where the Rancher server is and whom to trust for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The Rancher server URL, such as `https://rancher.example.com`. Rancher has no default:
    /// without one every call fails with `InvalidConfiguration`.
    pub url: Option<String>,
    /// CA bundle (PEM) that signs the server's certificate, when not a public CA.
    pub ca_file: Option<PathBuf>,
}

impl Config {
    /// The HTTP client for Rancher: `shared` (public roots), or one of its own that also trusts
    /// `ca_file`. Fails on a CA file that cannot be read or parsed.
    pub fn http(
        &self,
        transport: &TransportSettings,
        shared: &VendorHttp,
    ) -> anyhow::Result<VendorHttp> {
        let Some(path) = &self.ca_file else {
            return Ok(shared.clone());
        };
        let pem = std::fs::read(path)
            .with_context(|| format!("reading rancher_ca_file {}", path.display()))?;
        VendorHttp::new(transport.clone(), Some(&pem))
            .map_err(|err| anyhow::anyhow!("rancher_ca_file {}: {err}", path.display()))
    }
}
