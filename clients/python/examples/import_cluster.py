"""Import a cluster from a kubeconfig: python import_cluster.py CLUSTER_ID KUBECONFIG_FILE"""

import sys
from pathlib import Path

import flotilla
from flotilla.v1 import cluster_pb2, cluster_service_pb2


def import_cluster(client: flotilla.Client, cluster_id: str, kubeconfig: Path) -> cluster_pb2.Cluster:
    request = cluster_service_pb2.ImportClusterRequest(
        cluster_id=cluster_id,
        kubeconfig=cluster_service_pb2.KubeconfigSource(kubeconfig=kubeconfig.read_bytes()),
    )
    return client.clusters.ImportCluster(request).cluster


if __name__ == "__main__":
    with flotilla.Client() as client:  # FLOTILLA_ADDR and FLOTILLA_TOKEN from the environment
        cluster = import_cluster(client, sys.argv[1], Path(sys.argv[2]))
        print(cluster.id, cluster_pb2.ClusterState.Name(cluster.state))
