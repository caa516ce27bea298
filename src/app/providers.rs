//! The vendor adapters this server offers, built from their settings. This is the one place that
//! names every provider: the service layer only sees the `ProviderRegistry` and the credential
//! kinds each provider declares.

use std::sync::Arc;

use crate::{
    adapters::{
        VendorHttp,
        cluster::{ClusterProvider, ProviderRegistry, ack, rancher, tke},
        registry::{self, RegistryProviders, acr, harbor, oci, tcr},
    },
    config::VendorSettings,
    net::OutboundPolicy,
    service::secrets::credentials::AcceptedCredentials,
};

pub(super) struct Providers {
    pub clusters: ProviderRegistry,
    /// The registry providers (built-in adapters, then any the settings add).
    pub registries: RegistryProviders,
    /// Which credential kinds each provider (cluster or registry) takes.
    pub credentials: AcceptedCredentials,
}

/// Builds every provider from its settings. Fails on a bad Rancher CA bundle.
pub(super) fn build(
    settings: &VendorSettings,
    extra_registries: &RegistryProviders,
    outbound: &Arc<OutboundPolicy>,
) -> anyhow::Result<Providers> {
    let shared = VendorHttp::new(settings.transport.clone(), None)
        .map_err(|err| anyhow::anyhow!("vendor HTTP client: {err}"))?;
    let rancher_http = settings.rancher.http(&settings.transport, &shared)?;
    // In the order credential errors list them.
    let clusters: [Arc<dyn ClusterProvider>; 3] = [
        Arc::new(ack::AckProvider::new(
            shared.clone(),
            settings.ack.endpoint.clone(),
        )),
        Arc::new(tke::TkeProvider::new(
            shared.clone(),
            settings.tke.endpoint.clone(),
        )),
        Arc::new(rancher::RancherProvider::new(
            rancher_http,
            settings.rancher.url.clone(),
        )),
    ];
    // Registries: OCI and Harbor check every address they dial against the outbound policy;
    // ACR's and TCR's management APIs are the clouds' own endpoints.
    let mut registry_providers = registry::providers(
        settings.transport.clone(),
        outbound.clone(),
        oci::OciSettings::default(),
        harbor::HarborSettings::default(),
    )
    .with(acr::provider(shared.clone(), acr::AcrConfig::default()))
    .with(tcr::provider(shared.clone(), tcr::TcrConfig::default()))
    .with(tcr::personal_provider(shared, tcr::TcrConfig::default()));
    for extra in extra_registries.all() {
        registry_providers = registry_providers.with(extra.clone());
    }
    let mut registry = ProviderRegistry::default();
    let mut credentials = AcceptedCredentials::default();
    for provider in clusters {
        credentials = credentials.with(provider.id(), provider.credential_kinds());
        registry = registry.with(provider);
    }
    for provider in registry_providers.all() {
        credentials = credentials.with(provider.id(), provider.credential_kinds());
    }
    Ok(Providers {
        clusters: registry,
        registries: registry_providers,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credential kinds each provider takes, written out by hand from the vendors' docs:
    /// the vault refuses any other kind for that provider.
    #[test]
    fn every_provider_declares_the_credential_kinds_it_takes() {
        use crate::adapters::CredentialKind;
        use crate::adapters::CredentialKind::{
            AccessKey, Anonymous, ApiKey, RobotToken, UsernamePassword,
        };
        let outbound = Arc::new(
            crate::net::OutboundSettings::default().policy("127.0.0.1:50051".parse().unwrap()),
        );
        let providers = build(
            &VendorSettings::default(),
            &RegistryProviders::default(),
            &outbound,
        )
        .unwrap();
        let expected: [(&str, &[CredentialKind]); 8] = [
            ("ack", &[AccessKey]),
            ("tke", &[AccessKey]),
            ("rancher", &[ApiKey]),
            ("harbor", &[UsernamePassword, RobotToken]),
            ("acr", &[AccessKey]),
            ("tcr", &[AccessKey]),
            ("tcr-personal", &[AccessKey]),
            ("oci", &[Anonymous, UsernamePassword]),
        ];
        for (id, kinds) in expected {
            assert_eq!(providers.credentials.kinds(id), Some(kinds), "{id}");
        }
        assert_eq!(providers.credentials.kinds("gcp"), None);
        let clusters: Vec<&str> = providers.clusters.all().map(|p| p.id()).collect();
        assert_eq!(clusters, ["ack", "rancher", "tke"]);
        let registries: Vec<&str> = providers.registries.all().map(|p| p.id()).collect();
        assert_eq!(registries, ["acr", "harbor", "oci", "tcr", "tcr-personal"]);
    }
}
