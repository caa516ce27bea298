//! Rotating the master key while the server runs: every secret ends up under the new key, and
//! the running server keeps decrypting (it re-reads the key file when it meets the new key).

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::{
    crypto::{KeySource, Keyring},
    proto::{self as pb, cluster_service_client::ClusterServiceClient},
    service::secrets::rotation::rotate_master_key,
};
use support::{kubeconfigs, server::TestServer};

#[tokio::test]
async fn rotation_reencrypts_everything_without_stopping_readers() {
    let server = TestServer::start_with(|s| s.probe_interval = Duration::from_secs(1)).await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    client
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "rot".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import");

    // "Another process": its own keyring on the same file, its own store connection.
    let store = server.store().await;
    let other = Keyring::load(KeySource::File {
        path: server.settings.data_dir.join("master.keys"),
        create: false,
    })
    .expect("key file");
    let before = other.current_key_id();
    let report = rotate_master_key(&store, &other).await.expect("rotate");
    assert_ne!(report.new_key_id, before);
    assert_eq!(report.resealed, 1);
    assert_eq!(report.skipped, 0);
    assert!(
        store
            .secret_ids_not_under_key(&report.new_key_id)
            .await
            .unwrap()
            .is_empty(),
        "every secret is under the new key"
    );
    assert_eq!(other.key_ids(), vec![before, report.new_key_id.clone()]);

    // Changing the cluster makes the server rebuild its client, which decrypts the secret that
    // is now under a key it has not loaded yet.
    let changed = client
        .update_cluster(pb::UpdateClusterRequest {
            cluster: Some(pb::Cluster {
                id: "rot".into(),
                display_name: "Rotated".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner()
        .cluster
        .expect("cluster");
    let probed_before = changed
        .status
        .and_then(|s| s.last_probe_time)
        .expect("probed");
    let started = Instant::now();
    loop {
        let status = client
            .get_cluster(pb::GetClusterRequest {
                cluster_id: "rot".into(),
            })
            .await
            .expect("get")
            .into_inner()
            .cluster
            .and_then(|c| c.status)
            .expect("status");
        let probed = status.last_probe_time.expect("probe time");
        if probed != probed_before {
            assert!(status.reachable, "probe after rotation: {status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no new probe");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}
