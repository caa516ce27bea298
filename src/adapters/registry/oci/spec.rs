//! The distribution spec's rules and shapes, pure: repository names, tags and digests, the
//! media types a manifest can have, what kind of artifact a manifest is, and the platforms of
//! an index. Nothing here sends.

use serde::Deserialize;

use crate::adapters::registry::ArtifactKind;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";

/// Every manifest media type we read, for `Accept`: without it a registry may convert to (or
/// refuse with) the old schema 1.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Repository names: path components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`
/// (distribution spec, "Pulling manifests"), at most 255 characters in all.
pub fn check_repository_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("a repository name has 1 to 255 characters".into());
    }
    for component in name.split('/') {
        check_component(component).map_err(|why| {
            format!("{why} (each `/`-separated part of a repository name is lowercase letters and digits, separated by `.`, `_`, `__` or dashes)")
        })?;
    }
    Ok(())
}

/// A namespace here is the first component of repository names: one component.
pub fn check_namespace_name(name: &str) -> Result<(), String> {
    if name.contains('/') {
        return Err(
            "a namespace of a plain OCI registry is one path component, without `/`".into(),
        );
    }
    check_component(name).map_err(|why| {
        format!("{why} (a namespace is lowercase letters and digits, separated by `.`, `_`, `__` or dashes)")
    })
}

fn check_component(component: &str) -> Result<(), String> {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() {
        return Err("an empty path component".into());
    }
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(format!(
            "{component:?} must start and end with a letter or digit"
        ));
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return Err(format!("{component:?} has the separator {separator:?}"));
        }
    }
    Ok(())
}

/// Tags: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_tag(reference: &str) -> bool {
    let bytes = reference.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `sha256:` + 64 lowercase hex digits (the only algorithm these registries use), or `sha512:`.
pub fn is_digest(reference: &str) -> bool {
    let Some((algorithm, hex)) = reference.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The namespace of a repository: its first path component (for a one-component name, the
/// name itself).
pub fn namespace_of(repository: &str) -> &str {
    repository.split('/').next().unwrap_or(repository)
}

/// Whether `repository` is in `namespace`.
pub fn in_namespace(repository: &str, namespace: &str) -> bool {
    namespace_of(repository) == namespace
}

/// The tag-schema fallback of the referrers API: `sha256-<hex>` names the subject, and cosign
/// adds `.sig`, `.att` and `.sbom`. Returns the suffix ("" for the bare OCI referrers tag).
pub fn referrers_tag_suffix(tag: &str) -> Option<&str> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, suffix) = rest.split_at(rest.len().min(64));
    let hex_ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    hex_ok.then_some(suffix)
}

/// A descriptor in a manifest or an index.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image manifest or an index (the fields of both; which one is in `media_type`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
}

impl Manifest {
    /// The media type: the body's own, else the response's `Content-Type`.
    pub fn effective_media_type(&self, content_type: &str) -> String {
        self.media_type
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                content_type
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
    }

    pub fn is_index(&self, media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }

    /// `artifactType`, else the config's media type (the OCI 1.1 rule).
    pub fn artifact_type(&self) -> String {
        self.artifact_type
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| self.config.as_ref().map(|c| c.media_type.clone()))
            .unwrap_or_default()
    }

    /// Size of the manifest and everything it references directly.
    pub fn total_size(&self, manifest_bytes: u64) -> u64 {
        manifest_bytes
            + self.config.as_ref().map_or(0, |c| c.size)
            + self.layers.iter().map(|l| l.size).sum::<u64>()
            + self.manifests.iter().map(|m| m.size).sum::<u64>()
    }

    /// "os/arch[/variant]" of each manifest in an index, without the "unknown/unknown" entries
    /// that build attestations use.
    pub fn platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter_map(|m| m.platform.as_ref())
            .filter(|p| !(p.os == "unknown" && p.architecture == "unknown"))
            .map(|p| match &p.variant {
                Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
                _ => format!("{}/{}", p.os, p.architecture),
            })
            .collect()
    }
}

/// What an artifact is, from its manifest media type, artifact type and a tag it has.
pub fn artifact_kind(
    media_type: &str,
    artifact_type: &str,
    layer_types: &[&str],
    tag: Option<&str>,
) -> ArtifactKind {
    let lower = artifact_type.to_ascii_lowercase();
    if artifact_type == HELM_CONFIG {
        return ArtifactKind::HelmChart;
    }
    if lower.contains("spdx") || lower.contains("cyclonedx") || lower.contains("sbom") {
        return ArtifactKind::Sbom;
    }
    if lower.contains("signature")
        || lower.contains("cosign.artifact.sig")
        || layer_types
            .iter()
            .any(|l| l.contains("cosign.simplesigning"))
    {
        return ArtifactKind::Signature;
    }
    match tag.and_then(referrers_tag_suffix) {
        Some(".sig") => return ArtifactKind::Signature,
        Some(".sbom") => return ArtifactKind::Sbom,
        _ => {}
    }
    if layer_types
        .iter()
        .any(|l| l.contains("spdx") || l.contains("cyclonedx"))
    {
        return ArtifactKind::Sbom;
    }
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => ArtifactKind::ImageIndex,
        OCI_MANIFEST | DOCKER_MANIFEST
            if artifact_type.is_empty()
                || artifact_type == "application/vnd.oci.image.config.v1+json"
                || artifact_type == "application/vnd.docker.container.image.v1+json" =>
        {
            ArtifactKind::Image
        }
        _ => ArtifactKind::Other,
    }
}

/// Orders chart versions newest first: semver where both parse, else by text.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(v: &str) -> Option<(Vec<u64>, Option<&str>)> {
        let v = v.trim_start_matches('v');
        let v = v.split(['+', '_']).next().unwrap_or(v);
        let (core, pre) = match v.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (v, None),
        };
        let numbers: Option<Vec<u64>> = core.split('.').map(|n| n.parse().ok()).collect();
        numbers.filter(|n| !n.is_empty()).map(|n| (n, pre))
    }
    match (parts(a), parts(b)) {
        (Some((na, pa)), Some((nb, pb))) => na.cmp(&nb).then_with(|| match (pa, pb) {
            // A release is newer than its pre-releases.
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (pa, pb) => pa.cmp(&pb),
        }),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["app", "team/app", "a.b/c_d/e__f/g-h", "a---b", "x0/1y"] {
            assert!(check_repository_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Team/app",
            "team//app",
            "/app",
            "app/",
            "a..b",
            "a___b",
            "-a",
            "a.",
            "a b",
        ] {
            let err = check_repository_name(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(check_repository_name(&"a".repeat(256)).is_err());
        assert!(
            check_namespace_name("team/x")
                .unwrap_err()
                .contains("one path component")
        );
        assert!(check_namespace_name("team").is_ok());
    }

    #[test]
    fn references() {
        assert!(is_tag("v1.2.3_build-7"));
        assert!(is_tag("_x"));
        assert!(!is_tag(".x"));
        assert!(!is_tag(&"a".repeat(129)));
        let hex = "a".repeat(64);
        assert!(is_digest(&format!("sha256:{hex}")));
        assert!(!is_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_digest("sha256:abc"));
        assert!(!is_digest(&format!("md5:{hex}")));
        assert_eq!(
            referrers_tag_suffix(&format!("sha256-{hex}.sig")),
            Some(".sig")
        );
        assert_eq!(referrers_tag_suffix(&format!("sha256-{hex}")), Some(""));
        assert_eq!(referrers_tag_suffix("sha256-abc.sig"), None);
        assert_eq!(namespace_of("team/app/x"), "team");
        assert_eq!(namespace_of("solo"), "solo");
    }

    #[test]
    fn kinds() {
        let oci_config = "application/vnd.oci.image.config.v1+json";
        assert_eq!(
            artifact_kind(OCI_MANIFEST, oci_config, &[], Some("v1")),
            ArtifactKind::Image
        );
        assert_eq!(
            artifact_kind(
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                &[],
                None
            ),
            ArtifactKind::Image
        );
        assert_eq!(
            artifact_kind(OCI_INDEX, "", &[], None),
            ArtifactKind::ImageIndex
        );
        assert_eq!(
            artifact_kind(DOCKER_MANIFEST_LIST, "", &[], None),
            ArtifactKind::ImageIndex
        );
        assert_eq!(
            artifact_kind(OCI_MANIFEST, HELM_CONFIG, &[], Some("1.0.0")),
            ArtifactKind::HelmChart
        );
        assert_eq!(
            artifact_kind(OCI_MANIFEST, "application/spdx+json", &[], None),
            ArtifactKind::Sbom
        );
        assert_eq!(
            artifact_kind(
                OCI_MANIFEST,
                oci_config,
                &["application/vnd.dev.cosign.simplesigning.v1+json"],
                None
            ),
            ArtifactKind::Signature
        );
        let sig = format!("sha256-{}.sig", "b".repeat(64));
        assert_eq!(
            artifact_kind(OCI_MANIFEST, oci_config, &[], Some(&sig)),
            ArtifactKind::Signature
        );
        assert_eq!(
            artifact_kind(OCI_MANIFEST, "application/x-custom", &[], None),
            ArtifactKind::Other
        );
    }

    #[test]
    fn index_platforms_and_sizes() {
        let index: Manifest = serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1","size":100,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2","size":200,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3","size":50,"platform":{"os":"unknown","architecture":"unknown"}}]}"#,
        )
        .unwrap();
        assert_eq!(index.platforms(), vec!["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(index.total_size(10), 360);
        assert!(index.is_index(&index.effective_media_type("")));
    }

    #[test]
    fn versions_order() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("1.10.0", "1.9.0"), Greater);
        assert_eq!(compare_versions("1.0.0", "1.0.0-rc.1"), Greater);
        assert_eq!(compare_versions("v2.0.0", "1.99.99"), Greater);
        assert_eq!(compare_versions("1.0.0_build.1", "1.0.0"), Equal);
    }
}
