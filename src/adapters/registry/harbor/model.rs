//! Harbor's JSON shapes (swagger v2.0 definitions, only the fields we read; parsing is tolerant:
//! every field is optional) and their mapping onto the registry trait's value types.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use serde::Deserialize;

use crate::adapters::registry::{Artifact, ArtifactKind, ChartVersion, Namespace, Repository};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Project {
    pub project_id: Option<u64>,
    pub name: String,
    pub creation_time: Option<String>,
    pub repo_count: Option<u64>,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl Project {
    pub fn into_namespace(self) -> Namespace {
        // Metadata values are strings ("true"); accept a JSON bool too.
        let public = match self.metadata.get("public") {
            Some(serde_json::Value::String(s)) => s == "true",
            Some(serde_json::Value::Bool(b)) => *b,
            _ => false,
        };
        Namespace {
            name: self.name,
            public,
            repository_count: self.repo_count,
            created: self.creation_time.as_deref().and_then(parse_time),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HarborRepository {
    /// `<project>/<path>`.
    pub name: String,
    pub artifact_count: Option<u64>,
    pub pull_count: Option<u64>,
    pub update_time: Option<String>,
}

impl HarborRepository {
    pub fn into_repository(self) -> Repository {
        let namespace = self
            .name
            .split_once('/')
            .map(|(p, _)| p.to_string())
            .unwrap_or_default();
        Repository {
            namespace,
            artifact_count: self.artifact_count,
            pull_count: self.pull_count,
            updated: self.update_time.as_deref().and_then(parse_time),
            name: self.name,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HarborArtifact {
    /// `IMAGE`, `CHART`, `CNAB`, `UNKNOWN`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The config media type.
    pub media_type: String,
    pub manifest_media_type: String,
    /// The OCI `artifactType`, where Harbor has it (newer versions).
    pub artifact_type: String,
    pub digest: String,
    pub size: Option<u64>,
    pub push_time: Option<String>,
    pub pull_time: Option<String>,
    pub tags: Option<Vec<HarborTag>>,
    pub references: Option<Vec<HarborReference>>,
    /// For charts: the Chart.yaml fields (`version`, `appVersion`, `description`, …).
    pub extra_attrs: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HarborTag {
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HarborReference {
    pub child_digest: String,
    pub platform: Option<Platform>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const INDEXES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

impl HarborArtifact {
    pub fn is_chart(&self) -> bool {
        self.kind.eq_ignore_ascii_case("CHART") || self.media_type == HELM_CONFIG
    }

    pub fn tag_names(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().flatten().map(|t| t.name.as_str())
    }

    pub fn kind(&self) -> ArtifactKind {
        let types = [self.artifact_type.as_str(), self.media_type.as_str()]
            .join(" ")
            .to_ascii_lowercase();
        if self.is_chart() {
            ArtifactKind::HelmChart
        } else if INDEXES.contains(&self.manifest_media_type.as_str()) {
            ArtifactKind::ImageIndex
        } else if ["cosign", "signature", "notary", "notation"]
            .iter()
            .any(|m| types.contains(m))
        {
            ArtifactKind::Signature
        } else if ["sbom", "spdx", "cyclonedx"]
            .iter()
            .any(|m| types.contains(m))
        {
            ArtifactKind::Sbom
        } else if self.kind.eq_ignore_ascii_case("IMAGE") {
            ArtifactKind::Image
        } else {
            ArtifactKind::Other
        }
    }

    fn extra(&self, key: &str) -> String {
        self.extra_attrs
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// The chart version from Chart.yaml, else the first tag.
    pub fn chart_version(&self) -> String {
        match self.extra("version") {
            v if !v.is_empty() => v,
            _ => self.tag_names().next().unwrap_or_default().to_string(),
        }
    }

    pub fn chart_description(&self) -> String {
        self.extra("description")
    }

    pub fn pushed(&self) -> Option<SystemTime> {
        self.push_time.as_deref().and_then(parse_time)
    }

    pub fn into_chart_version(self) -> ChartVersion {
        ChartVersion {
            version: self.chart_version(),
            app_version: self.extra("appVersion"),
            description: self.chart_description(),
            created: self.pushed(),
            digest: self.digest,
        }
    }

    pub fn into_artifact(self) -> Artifact {
        let kind = self.kind();
        let platforms = self
            .references
            .iter()
            .flatten()
            .filter_map(|r| r.platform.as_ref())
            .map(|p| {
                let mut platform = format!("{}/{}", p.os, p.architecture);
                if !p.variant.is_empty() {
                    platform.push('/');
                    platform.push_str(&p.variant);
                }
                platform
            })
            .collect();
        let artifact_type = if self.artifact_type.is_empty() {
            self.media_type.clone()
        } else {
            self.artifact_type.clone()
        };
        Artifact {
            tags: self.tag_names().map(str::to_string).collect(),
            media_type: self.manifest_media_type.clone(),
            artifact_type,
            kind,
            size_bytes: self.size.unwrap_or_default(),
            platforms,
            pushed: self.pushed(),
            pulled: self.pull_time.as_deref().and_then(parse_time),
            digest: self.digest,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GeneralInfo {
    pub harbor_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Robot {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RobotCreated {
    pub id: u64,
    pub name: String,
    pub secret: String,
    /// Unix seconds; -1 (or absent) is never.
    pub expires_at: Option<i64>,
}

/// Harbor's RFC 3339 times (`2024-05-01T10:00:00.000Z`, or with an offset). Harbor writes Go's
/// zero time (`0001-01-01T00:00:00.000Z`) for "never" (an artifact never pulled): that, and
/// anything before 1970, is `None`.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (clock, offset_seconds) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0i64)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
        (clock, sign * minutes * 60)
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms_parts = hms.splitn(3, ':');
    let hour: i64 = hms_parts.next()?.parse().ok()?;
    let minute: i64 = hms_parts.next()?.parse().ok()?;
    let second: i64 = hms_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<9}").parse().ok()?
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    if seconds < 0 {
        return None;
    }
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds as u64, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), at(0));
        // date -d 2024-05-01T10:00:00Z +%s
        assert_eq!(parse_time("2024-05-01T10:00:00.000Z"), at(1_714_557_600));
        assert_eq!(parse_time("2024-05-01T12:00:00+02:00"), at(1_714_557_600));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), at(951_782_400));
        assert_eq!(
            parse_time("2024-05-01T10:00:00.5Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::new(1_714_557_600, 500_000_000))
        );
        assert_eq!(parse_time("0001-01-01T00:00:00.000Z"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2024-13-01T00:00:00Z"), None);
    }

    /// The shape Harbor returns for a multi-arch image index and for a Helm chart.
    #[test]
    fn artifacts() {
        let index: HarborArtifact = serde_json::from_value(serde_json::json!({
            "id": 7, "type": "IMAGE", "media_type": "application/vnd.oci.image.index.v1+json",
            "manifest_media_type": "application/vnd.oci.image.index.v1+json",
            "digest": "sha256:aa", "size": 1234,
            "push_time": "2024-05-01T10:00:00.000Z", "pull_time": "0001-01-01T00:00:00.000Z",
            "tags": [{"id": 1, "name": "v1"}, {"id": 2, "name": "latest"}],
            "references": [
                {"child_digest": "sha256:bb", "platform": {"os": "linux", "architecture": "amd64"}},
                {"child_digest": "sha256:cc", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
            ],
            "extra_attrs": null
        }))
        .unwrap();
        let artifact = index.into_artifact();
        assert_eq!(artifact.kind, ArtifactKind::ImageIndex);
        assert_eq!(artifact.tags, ["v1", "latest"]);
        assert_eq!(artifact.platforms, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(artifact.pushed, at(1_714_557_600));
        assert_eq!(artifact.pulled, None);
        assert_eq!(artifact.size_bytes, 1234);

        let chart: HarborArtifact = serde_json::from_value(serde_json::json!({
            "type": "CHART", "media_type": HELM_CONFIG,
            "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:dd", "tags": [{"name": "0.1.0"}],
            "extra_attrs": {"apiVersion": "v2", "appVersion": "1.16.0", "description": "A chart", "name": "web", "version": "0.1.0"}
        }))
        .unwrap();
        assert!(chart.is_chart());
        let version = chart.into_chart_version();
        assert_eq!(
            (
                version.version.as_str(),
                version.app_version.as_str(),
                version.description.as_str()
            ),
            ("0.1.0", "1.16.0", "A chart")
        );
        let cosign: HarborArtifact = serde_json::from_value(serde_json::json!({
            "type": "IMAGE", "media_type": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "manifest_media_type": "application/vnd.oci.image.manifest.v1+json"
        }))
        .unwrap();
        assert_eq!(cosign.kind(), ArtifactKind::Signature);
    }

    #[test]
    fn projects() {
        let project: Project = serde_json::from_value(serde_json::json!({
            "project_id": 3, "name": "team", "repo_count": 2, "metadata": {"public": "true"},
            "creation_time": "2024-05-01T10:00:00Z"
        }))
        .unwrap();
        let ns = project.into_namespace();
        assert!(ns.public);
        assert_eq!(ns.repository_count, Some(2));
        assert_eq!(ns.created, at(1_714_557_600));
    }
}
