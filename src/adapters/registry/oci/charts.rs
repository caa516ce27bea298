//! Helm charts stored as OCI artifacts (`helm push oci://…`): a repository is a chart when its
//! newest version tag is a manifest with the Helm config media type; the config blob (Chart.yaml
//! as JSON) gives the version, app version and description.

use super::{
    backend::OciRegistry,
    error::VENDOR,
    spec::{self, Manifest},
};
use crate::adapters::{ErrorClass, Result, VendorError, registry::Chart};

impl OciRegistry {
    /// The chart in `repository`: its newest version's config, if it is a Helm chart.
    pub(super) async fn chart_of(&self, repository: &str) -> Result<Option<Chart>> {
        let operation = "ListCharts";
        let mut tags = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match self
                .name_page(
                    operation,
                    Some(repository),
                    self.client.settings.max_page,
                    cursor.as_deref(),
                )
                .await
            {
                Ok(page) => page,
                Err(err) if err.is_not_found() => return Ok(None),
                Err(err) => return Err(err),
            };
            cursor = page.names.last().cloned();
            tags.extend(
                page.names
                    .into_iter()
                    .filter(|t| spec::referrers_tag_suffix(t).is_none()),
            );
            if !page.more {
                break;
            }
        }
        let Some(newest) = tags
            .iter()
            .max_by(|a, b| spec::compare_versions(a, b))
            .cloned()
        else {
            return Ok(None);
        };
        let (manifest, _, _, _) = self.get_manifest(operation, repository, &newest).await?;
        if manifest.artifact_type() != spec::HELM_CONFIG {
            return Ok(None);
        }
        let config = self.chart_config(operation, repository, &manifest).await?;
        let namespace = spec::namespace_of(repository).to_string();
        Ok(Some(Chart {
            name: chart_name(repository),
            namespace,
            latest_version: config.version.unwrap_or(newest),
            description: config.description.unwrap_or_default(),
            version_count: Some(tags.len() as u64),
            updated: None,
        }))
    }

    pub(super) async fn chart_config(
        &self,
        operation: &'static str,
        repository: &str,
        manifest: &Manifest,
    ) -> Result<HelmConfig> {
        let Some(config) = &manifest.config else {
            return Ok(HelmConfig::default());
        };
        let blob = self.get_blob(operation, repository, &config.digest).await?;
        serde_json::from_slice(&blob).map_err(|err| {
            VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                operation,
                "MalformedChartConfig",
                format!("the chart's config blob does not parse: {err}"),
            )
        })
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HelmConfig {
    #[serde(default)]
    pub(super) version: Option<String>,
    #[serde(default)]
    pub(super) app_version: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
}

/// The chart's name within its namespace: the repository without its first component (a
/// one-component repository is its own namespace and name).
pub(super) fn chart_name(repository: &str) -> String {
    repository
        .split_once('/')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| repository.to_string())
}
