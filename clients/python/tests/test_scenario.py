"""The client scenario against the live server and the real test control plane, through the
README's examples (sync client): import, page, apply, scale, follow logs, watch events, a bad
request's details, create an ACK cluster at the simulator and wait for its operation."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from apply_manifest import apply
from conftest import Harness, poll_until, wire_pod_logs
from create_ack_cluster import create_and_wait
from follow_logs import follow
from import_cluster import import_cluster
from list_nodes import node_names
from watch_events import watch_events

import flotilla
from flotilla.v1 import (
    cluster_pb2,
    cluster_service_pb2,
    credential_service_pb2,
    node_service_pb2,
    operation_pb2,
    workload_pb2,
    workload_service_pb2,
)


def deployment(name: str, replicas: int) -> str:
    return json.dumps({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "example.com/web:1"}]},
            },
        },
    })


def client_for(harness: Harness) -> flotilla.Client:
    return flotilla.Client(harness.addr, token=harness.token, insecure=True)


def test_import_page_apply_scale_logs_events_errors(
    harness: Harness, run_id: str, namespace: str, second_kubeconfig: Path
) -> None:
    first, second = f"py-{run_id}-a", f"py-{run_id}-b"
    kubeconfig = Path(harness.env["FLOTILLA_TEST_KUBECONFIG"])
    with client_for(harness) as client:
        try:
            # Import the test cluster and the second one (so that pages of one are several).
            assert import_cluster(client, first, kubeconfig).state == cluster_pb2.CLUSTER_STATE_RUNNING
            import_cluster(client, second, second_kubeconfig)

            # Page through clusters one at a time: every id once, ours among them.
            page = client.clusters.ListClusters(cluster_service_pb2.ListClustersRequest(page_size=1))
            assert len(page.clusters) == 1 and page.next_page_token, "one cluster per page"
            ids = [c.id for c in client.list_clusters(cluster_service_pb2.ListClustersRequest(page_size=1))]
            assert len(ids) == len(set(ids)) and {first, second} <= set(ids)

            # Nodes: the same names as the API server's, by the example and page by page.
            expected = sorted(n["metadata"]["name"] for n in harness.kubectl_json("get", "nodes")["items"])
            assert sorted(node_names(client, first)) == expected
            one_by_one = client.list_nodes(node_service_pb2.ListNodesRequest(cluster_id=first, page_size=1))
            assert sorted(n.name for n in one_by_one) == expected

            # Apply a Deployment; the API server has it.
            assert apply(client, first, namespace, deployment("web", 1)) == [
                "Deployment/web APPLY_OUTCOME_CREATED"
            ]
            assert harness.kubectl_json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"] == 1

            # Follow its pod's logs until a line written during the follow arrives.
            pod = wait_for_pod(harness, namespace, "web")
            log = wire_pod_logs(harness, namespace, pod)
            log.append(f"before {run_id}")
            lines = follow(client, first, namespace, pod, timeout=60)
            assert next(lines) == f"before {run_id}"
            log.append(f"during {run_id}")
            assert next(lines) == f"during {run_id}"
            lines.close()  # type: ignore[attr-defined]

            # Scale it; the API server has 2 replicas; the scale event arrives on the watch.
            client.workloads.ScaleWorkload(workload_service_pb2.ScaleWorkloadRequest(
                cluster_id=first, namespace=namespace, kind=workload_pb2.WORKLOAD_KIND_DEPLOYMENT,
                name="web", replicas=2,
            ))
            assert harness.kubectl_json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"] == 2
            events = watch_events(client, first, namespace, timeout=60)
            scaled = next(e for e in events if e.reason == "ScalingReplicaSet" and "to 2" in e.message)
            events.close()  # type: ignore[attr-defined]
            from_api = harness.kubectl_json(
                "get", "events", "-n", namespace, "--field-selector", "reason=ScalingReplicaSet"
            )["items"]
            assert scaled.name in [e["metadata"]["name"] for e in from_api]

            # A bad request: the code, the offending field and its description.
            with pytest.raises(flotilla.InvalidArgumentError) as bad:
                list(client.list_nodes(node_service_pb2.ListNodesRequest(cluster_id=first, page_token="not-a-token")))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert bad.value.field == "page_token" and bad.value.fields == ["page_token"]
            assert bad.value.field_violations[0].description
            # An ErrorInfo reason with its metadata.
            with pytest.raises(flotilla.NotFoundError) as missing:
                client.clusters.GetCluster(cluster_service_pb2.GetClusterRequest(cluster_id=f"py-{run_id}-none"))
            assert missing.value.reason == "NOT_FOUND"
            assert missing.value.metadata == {"kind": "cluster", "id": f"py-{run_id}-none"}
        finally:
            for cluster_id in (first, second):
                detach(client, cluster_id)
        assert not {first, second} & {c.id for c in client.list_clusters()}


def test_create_ack_cluster_and_wait(harness: Harness, run_id: str) -> None:
    cluster_id, credential_id = f"py-{run_id}-ack", f"py-{run_id}-ack-key"
    env = harness.env
    before = {c["id"] for c in harness.sim_clusters("ack")}
    with client_for(harness) as client:
        client.credentials.CreateCredential(credential_service_pb2.CreateCredentialRequest(
            credential_id=credential_id, provider="ack",
            secret=credential_service_pb2.CredentialSecret(access_key=credential_service_pb2.AccessKeySecret(
                access_key_id=env["FLOTILLA_SIM_ACK_ACCESS_KEY_ID"],
                access_key_secret=env["FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"],
            )),
        ))
        try:
            done = create_and_wait(
                client, cluster_id, credential_id,
                env["FLOTILLA_SIM_ACK_REGION"], env["FLOTILLA_SIM_ACK_KUBERNETES_VERSION"],
            )
            assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED
            assert done.type == operation_pb2.OPERATION_TYPE_CREATE_CLUSTER
            cluster = client.clusters.GetCluster(cluster_service_pb2.GetClusterRequest(cluster_id=cluster_id)).cluster
            assert cluster.state == cluster_pb2.CLUSTER_STATE_RUNNING
            # The simulator created exactly one cluster for us and it runs there.
            created = [c for c in harness.sim_clusters("ack") if c["id"] not in before]
            assert [c["id"] for c in created] == [cluster.vendor_cluster_id]
            assert created[0]["state"] == "running"

            # Waiting on a finished operation returns at once; an unknown one is NOT_FOUND.
            assert client.wait_operation(done.id, timeout=10).id == done.id
            with pytest.raises(flotilla.NotFoundError):
                client.wait_operation(f"op-{run_id}-none", timeout=10)
        finally:
            destroy(client, cluster_id)
            client.credentials.DeleteCredential(
                credential_service_pb2.DeleteCredentialRequest(credential_id=credential_id)
            )
    # Destroyed at the vendor too: the simulator no longer lists it as a live cluster.
    left = {c["id"]: c["state"] for c in harness.sim_clusters("ack")}
    assert left.get(cluster.vendor_cluster_id, "deleted") == "deleted"


def wait_for_pod(harness: Harness, namespace: str, app: str) -> str:
    names: list[str] = []

    def scheduled() -> bool:
        pods = harness.kubectl_json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
        names[:] = [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName")]
        return bool(names)

    poll_until(f"a scheduled pod of {namespace}/{app}", 60, scheduled)
    return names[0]


def detach(client: flotilla.Client, cluster_id: str) -> None:
    try:
        client.clusters.DeleteCluster(cluster_service_pb2.DeleteClusterRequest(cluster_id=cluster_id))
    except flotilla.NotFoundError:
        pass


def destroy(client: flotilla.Client, cluster_id: str) -> None:
    try:
        answer = client.clusters.DeleteCluster(
            cluster_service_pb2.DeleteClusterRequest(cluster_id=cluster_id, destroy=True)
        )
    except flotilla.NotFoundError:
        return
    if answer.HasField("operation"):
        client.wait_operation(answer.operation.id, timeout=120)
