//! The vendor adapters this server offers, built from their settings. This is the one place that
//! names every provider: the service layer only sees the `ProviderRegistry` and the credential
//! kinds each provider declares.

use std::sync::Arc;

use crate::{
    adapters::{
        CredentialKind, VendorHttp,
        cluster::{ClusterProvider, ProviderRegistry, ack, rancher, tke},
        registry::RegistryProviders,
    },
    config::VendorSettings,
    service::secrets::credentials::AcceptedCredentials,
};

/// Registry products credentials can be stored for before their adapters are wired. Each line
/// goes when its adapter joins `registry_providers`, which then declares the kinds itself.
const UNWIRED_REGISTRY_PRODUCTS: [(&str, &[CredentialKind]); 4] = [
    (
        "harbor",
        &[CredentialKind::UsernamePassword, CredentialKind::RobotToken],
    ),
    (
        "acr",
        &[CredentialKind::AccessKey, CredentialKind::UsernamePassword],
    ),
    (
        "tcr",
        &[CredentialKind::AccessKey, CredentialKind::UsernamePassword],
    ),
    (
        "oci",
        &[CredentialKind::UsernamePassword, CredentialKind::RobotToken],
    ),
];

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
        Arc::new(tke::TkeProvider::new(shared, settings.tke.endpoint.clone())),
        Arc::new(rancher::RancherProvider::new(
            rancher_http,
            settings.rancher.url.clone(),
        )),
    ];
    let mut registry_providers = RegistryProviders::default();
    for extra in extra_registries.all() {
        registry_providers = registry_providers.with(extra.clone());
    }
    let mut registry = ProviderRegistry::default();
    let mut credentials = AcceptedCredentials::default();
    for provider in clusters {
        credentials = credentials.with(provider.id(), provider.credential_kinds());
        registry = registry.with(provider);
    }
    for (id, kinds) in UNWIRED_REGISTRY_PRODUCTS {
        credentials = credentials.with(id, kinds);
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

    /// The table the credential vault used to hard-code, written out by hand: moving the rule
    /// into the providers must not change what is accepted.
    #[test]
    fn every_provider_declares_the_credential_kinds_it_takes() {
        use CredentialKind::{AccessKey, ApiKey, RobotToken, UsernamePassword};
        let providers = build(&VendorSettings::default(), &RegistryProviders::default()).unwrap();
        let expected: [(&str, &[CredentialKind]); 7] = [
            ("ack", &[AccessKey]),
            ("tke", &[AccessKey]),
            ("rancher", &[ApiKey]),
            ("harbor", &[UsernamePassword, RobotToken]),
            ("acr", &[AccessKey, UsernamePassword]),
            ("tcr", &[AccessKey, UsernamePassword]),
            ("oci", &[UsernamePassword, RobotToken]),
        ];
        for (id, kinds) in expected {
            assert_eq!(providers.credentials.kinds(id), Some(kinds), "{id}");
        }
        assert_eq!(providers.credentials.kinds("gcp"), None);
        let clusters: Vec<&str> = providers.clusters.all().map(|p| p.id()).collect();
        assert_eq!(clusters, ["ack", "rancher", "tke"]);
    }
}
