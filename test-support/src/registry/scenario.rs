//! The content the OCI registry tests push, the same for the adapter tests
//! (`tests/registry/oci.rs`) and the RegistryService tests (`tests/registry/oci_rpc.rs`): three
//! namespaces, an image with two tags, a Docker-format image, an index of two platforms, a
//! signature and an SBOM of `v1` (by the `sha256-<hex>` tag schema), and two versions of a Helm
//! chart.

use super::{Pushed, Pusher};

/// What [`push_content`] pushed.
pub struct Content {
    /// `team/app:v1` (also tagged `latest`).
    pub v1: Pushed,
    /// `team/app:v2-docker`, Docker schema 2.
    pub docker: Pushed,
    /// `team/app:multi`, an index of linux/amd64 and linux/arm64/v8.
    pub multi: Pushed,
    pub signature: Pushed,
    pub sbom: Pushed,
    /// `charts/nginx:1.0.0` and `:1.2.0`.
    pub chart_100: Pushed,
    pub chart_120: Pushed,
}

/// Pushes the content above; also `team/web:1` and `other/thing:x`.
pub async fn push_content(pusher: &Pusher) -> Content {
    let v1 = pusher
        .push_image("team/app", Some("v1"), "linux/amd64", "one")
        .await;
    pusher.tag("team/app", "latest", &v1).await;
    let docker = pusher
        .push_docker_image("team/app", "v2-docker", "two")
        .await;
    let multi = pusher
        .push_index("team/app", "multi", &["linux/amd64", "linux/arm64/v8"])
        .await;
    let signature = pusher.push_signature("team/app", &v1).await;
    let sbom = pusher.push_sbom("team/app", &v1).await;
    pusher
        .push_image("team/web", Some("1"), "linux/amd64", "web")
        .await;
    pusher
        .push_image("other/thing", Some("x"), "linux/amd64", "thing")
        .await;
    let chart_100 = pusher
        .push_chart("charts/nginx", "nginx", "1.0.0", "1.25.0", "A web server")
        .await;
    let chart_120 = pusher
        .push_chart(
            "charts/nginx",
            "nginx",
            "1.2.0",
            "1.27.1",
            "A faster web server",
        )
        .await;
    Content {
        v1,
        docker,
        multi,
        signature,
        sbom,
        chart_100,
        chart_120,
    }
}
