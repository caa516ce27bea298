"""Follow a pod's logs: python follow_logs.py CLUSTER_ID NAMESPACE POD"""

import sys
from collections.abc import Iterator

import flotilla


def follow(
    client: flotilla.Client, cluster_id: str, namespace: str, pod: str, timeout: float | None = None
) -> Iterator[str]:
    for entry in client.follow_pod_logs(cluster_id, namespace, pod, timeout=timeout):
        yield entry.content


if __name__ == "__main__":
    with flotilla.Client() as client:
        for line in follow(client, sys.argv[1], sys.argv[2], sys.argv[3]):
            print(line)
