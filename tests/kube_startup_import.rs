//! `flotilla serve --import-kubeconfig PATH`: every context is imported at start-up, clusters
//! already present and unusable contexts are skipped.

use flotilla_test_support as support;

use flotilla::proto::{self as pb, cluster_service_client::ClusterServiceClient};
use support::{kube as kenv, kubeconfigs, server::TestServer};

#[tokio::test]
async fn imports_each_context_once_and_skips_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = kenv::env().dir().join("pki");
    // Three contexts: embedded admin credentials; the same cluster through file references
    // (allowed for a file the operator gave on the command line); and an exec user.
    let kubeconfig = format!(
        r#"apiVersion: v1
kind: Config
current-context: main
clusters:
- name: local
  cluster: {{server: "{server}", certificate-authority: "{ca}"}}
users:
- name: files
  user: {{client-certificate: "{cert}", client-key: "{key}"}}
- name: runs-a-command
  user:
    exec: {{apiVersion: client.authentication.k8s.io/v1, command: /bin/true}}
contexts:
- name: main
  context: {{cluster: local, user: files}}
- name: same-cluster-again
  context: {{cluster: local, user: files}}
- name: exec-context
  context: {{cluster: local, user: runs-a-command}}
"#,
        server = kubeconfigs::server(),
        ca = pki.join("ca.crt").display(),
        cert = pki.join("admin.crt").display(),
        key = pki.join("admin.key").display(),
    );
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, kubeconfig).expect("write kubeconfig");

    let server = TestServer::start_with(|s| s.import_kubeconfig = vec![path]).await;
    let mut client = ClusterServiceClient::new(server.channel().await);
    let list = client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<&str> = list.clusters.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["main"], "one cluster, named after its context");
    let status = list.clusters[0].status.as_ref().expect("status");
    assert!(status.reachable);
    assert_eq!(status.node_count, 3);
    assert_eq!(server.store().await.count_secrets().await.unwrap(), 1);
    server.shutdown().await;
}
