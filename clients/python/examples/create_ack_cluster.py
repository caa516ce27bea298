"""Create an ACK cluster and wait for it:
python create_ack_cluster.py CLUSTER_ID CREDENTIAL_ID REGION KUBERNETES_VERSION"""

import sys
import uuid

import flotilla
from flotilla.v1 import cluster_pb2, cluster_service_pb2, operation_pb2


def create_and_wait(
    client: flotilla.Client, cluster_id: str, credential_id: str, region: str, version: str
) -> operation_pb2.Operation:
    spec = cluster_pb2.ClusterSpec(
        region=region,
        credential_id=credential_id,
        kubernetes_version=version,
        ack=cluster_pb2.AckClusterConfig(cluster_type="ManagedKubernetes", cluster_spec="ack.pro.small"),
    )
    request = cluster_service_pb2.CreateClusterRequest(
        cluster_id=cluster_id, provider="ack", spec=spec, request_id=str(uuid.uuid4())
    )
    operation = client.clusters.CreateCluster(request).operation
    return client.wait_operation(operation.id, timeout=600)  # raises OperationFailedError


if __name__ == "__main__":
    with flotilla.Client() as client:
        try:
            done = create_and_wait(client, *sys.argv[1:5])
            print(done.id, operation_pb2.OperationState.Name(done.state))
        except flotilla.OperationFailedError as err:
            print(f"failed: {err.reason}: {err.message}", file=sys.stderr)
            sys.exit(1)
