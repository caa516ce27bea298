"""The client scenario again with flotilla.AsyncClient (grpc.aio): async generators for paging,
logs and events, await wait_operation. Expected answers from kubectl and the ACK simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Harness, wire_pod_logs
from test_scenario import deployment, wait_for_pod

import flotilla
from flotilla.v1 import (
    cluster_pb2,
    cluster_service_pb2,
    credential_service_pb2,
    log_stream_pb2,
    node_service_pb2,
    operation_pb2,
    workload_pb2,
    workload_service_pb2,
)


def client_for(harness: Harness) -> flotilla.AsyncClient:
    return flotilla.AsyncClient(harness.addr, token=harness.token, insecure=True)


def import_request(cluster_id: str, kubeconfig: Path) -> cluster_service_pb2.ImportClusterRequest:
    return cluster_service_pb2.ImportClusterRequest(
        cluster_id=cluster_id,
        kubeconfig=cluster_service_pb2.KubeconfigSource(kubeconfig=kubeconfig.read_bytes()),
    )


@pytest.mark.asyncio
async def test_async_scenario(
    harness: Harness, run_id: str, namespace: str, second_kubeconfig: Path
) -> None:
    first, second = f"pya-{run_id}-a", f"pya-{run_id}-b"
    kubeconfig = Path(harness.env["FLOTILLA_TEST_KUBECONFIG"])
    async with client_for(harness) as client:
        try:
            imported = (await client.clusters.ImportCluster(import_request(first, kubeconfig))).cluster
            assert imported.state == cluster_pb2.CLUSTER_STATE_RUNNING
            await client.clusters.ImportCluster(import_request(second, second_kubeconfig))

            ids = [c.id async for c in client.list_clusters(cluster_service_pb2.ListClustersRequest(page_size=1))]
            assert len(ids) == len(set(ids)) and {first, second} <= set(ids)
            expected = sorted(n["metadata"]["name"] for n in harness.kubectl_json("get", "nodes")["items"])
            nodes = client.list_nodes(node_service_pb2.ListNodesRequest(cluster_id=first, page_size=1))
            assert sorted([n.name async for n in nodes]) == expected

            applied = await client.workloads.ApplyManifests(workload_service_pb2.ApplyManifestsRequest(
                cluster_id=first, namespace=namespace, manifests=deployment("api", 1),
            ))
            assert [r.outcome for r in applied.results] == [workload_service_pb2.APPLY_OUTCOME_CREATED]
            api = harness.kubectl_json("get", "deployment", "api", "-n", namespace)
            assert api["metadata"]["uid"] and api["spec"]["replicas"] == 1

            pod = wait_for_pod(harness, namespace, "api")
            log = wire_pod_logs(harness, namespace, pod)
            log.append(f"before {run_id}")
            entries = client.follow_pod_logs(first, namespace, pod, timeout=60)
            assert (await anext(entries)).content == f"before {run_id}"
            log.append(f"during {run_id}")
            assert (await anext(entries)).content == f"during {run_id}"
            await entries.aclose()

            await client.workloads.ScaleWorkload(workload_service_pb2.ScaleWorkloadRequest(
                cluster_id=first, namespace=namespace, kind=workload_pb2.WORKLOAD_KIND_DEPLOYMENT,
                name="api", replicas=3,
            ))
            assert harness.kubectl_json("get", "deployment", "api", "-n", namespace)["spec"]["replicas"] == 3
            watch = client.logs.WatchEvents(
                log_stream_pb2.WatchEventsRequest(cluster_id=first, namespace=namespace), timeout=60
            )
            scaled = None
            async for message in watch:
                if message.event.reason == "ScalingReplicaSet" and "to 3" in message.event.message:
                    scaled = message.event
                    break
            watch.cancel()
            assert scaled is not None
            from_api = harness.kubectl_json(
                "get", "events", "-n", namespace, "--field-selector", "reason=ScalingReplicaSet"
            )["items"]
            assert scaled.name in [e["metadata"]["name"] for e in from_api]

            with pytest.raises(flotilla.InvalidArgumentError) as bad:
                [n async for n in client.list_nodes(node_service_pb2.ListNodesRequest(cluster_id=""))]
            assert bad.value.field == "cluster_id"
            with pytest.raises(flotilla.NotFoundError) as missing:
                await client.clusters.GetCluster(cluster_service_pb2.GetClusterRequest(cluster_id=f"pya-{run_id}-x"))
            assert missing.value.reason == "NOT_FOUND" and missing.value.metadata["kind"] == "cluster"
        finally:
            for cluster_id in (first, second):
                try:
                    await client.clusters.DeleteCluster(cluster_service_pb2.DeleteClusterRequest(cluster_id=cluster_id))
                except flotilla.NotFoundError:
                    pass
        assert not {first, second} & {c.id async for c in client.list_clusters()}


@pytest.mark.asyncio
async def test_async_create_ack_cluster_and_wait(harness: Harness, run_id: str) -> None:
    cluster_id, credential_id = f"pya-{run_id}-ack", f"pya-{run_id}-ack-key"
    env = harness.env
    before = {c["id"] for c in harness.sim_clusters("ack")}
    async with client_for(harness) as client:
        await client.credentials.CreateCredential(credential_service_pb2.CreateCredentialRequest(
            credential_id=credential_id, provider="ack",
            secret=credential_service_pb2.CredentialSecret(access_key=credential_service_pb2.AccessKeySecret(
                access_key_id=env["FLOTILLA_SIM_ACK_ACCESS_KEY_ID"],
                access_key_secret=env["FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"],
            )),
        ))
        try:
            spec = cluster_pb2.ClusterSpec(
                region=env["FLOTILLA_SIM_ACK_REGION"], credential_id=credential_id,
                kubernetes_version=env["FLOTILLA_SIM_ACK_KUBERNETES_VERSION"],
                ack=cluster_pb2.AckClusterConfig(
                    cluster_type=env["FLOTILLA_SIM_ACK_CLUSTER_TYPE"],
                    cluster_spec=env["FLOTILLA_SIM_ACK_CLUSTER_SPEC"],
                ),
            )
            created = await client.clusters.CreateCluster(cluster_service_pb2.CreateClusterRequest(
                cluster_id=cluster_id, provider="ack", spec=spec, request_id=f"pya-{run_id}",
            ))
            done = await client.wait_operation(created.operation.id, timeout=120)
            assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED
            cluster = (await client.clusters.GetCluster(
                cluster_service_pb2.GetClusterRequest(cluster_id=cluster_id)
            )).cluster
            assert cluster.state == cluster_pb2.CLUSTER_STATE_RUNNING
            new = [c for c in harness.sim_clusters("ack") if c["id"] not in before]
            assert [(c["id"], c["state"]) for c in new] == [(cluster.vendor_cluster_id, "running")], json.dumps(new)
        finally:
            try:
                answer = await client.clusters.DeleteCluster(
                    cluster_service_pb2.DeleteClusterRequest(cluster_id=cluster_id, destroy=True)
                )
                if answer.HasField("operation"):
                    await client.wait_operation(answer.operation.id, timeout=120)
            except flotilla.NotFoundError:
                pass
            await client.credentials.DeleteCredential(
                credential_service_pb2.DeleteCredentialRequest(credential_id=credential_id)
            )
    # Destroyed at the vendor too: the simulator no longer lists it as a live cluster.
    left = {c["id"]: c["state"] for c in harness.sim_clusters("ack")}
    assert left.get(cluster.vendor_cluster_id, "deleted") == "deleted"
