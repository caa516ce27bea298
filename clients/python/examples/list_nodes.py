"""List a cluster's nodes, page after page: python list_nodes.py CLUSTER_ID"""

import sys

import flotilla
from flotilla.v1 import node_service_pb2


def node_names(client: flotilla.Client, cluster_id: str) -> list[str]:
    request = node_service_pb2.ListNodesRequest(cluster_id=cluster_id, page_size=100)
    return [node.name for node in client.list_nodes(request)]  # follows next_page_token


if __name__ == "__main__":
    with flotilla.Client() as client:
        print("\n".join(node_names(client, sys.argv[1])))
