"""Apply a YAML manifest (server-side apply): python apply_manifest.py CLUSTER_ID NAMESPACE FILE"""

import sys
from pathlib import Path

import flotilla
from flotilla.v1 import workload_service_pb2 as workloads


def apply(client: flotilla.Client, cluster_id: str, namespace: str, manifests: str) -> list[str]:
    request = workloads.ApplyManifestsRequest(
        cluster_id=cluster_id, namespace=namespace, manifests=manifests
    )
    results = client.workloads.ApplyManifests(request).results
    failed = [r for r in results if r.outcome == workloads.APPLY_OUTCOME_FAILED]
    if failed:
        raise RuntimeError(f"{failed[0].object.name}: {failed[0].message}")
    return [f"{r.object.kind}/{r.object.name} {workloads.ApplyOutcome.Name(r.outcome)}" for r in results]


if __name__ == "__main__":
    with flotilla.Client() as client:
        print("\n".join(apply(client, sys.argv[1], sys.argv[2], Path(sys.argv[3]).read_text())))
