"""Python client of the Flotilla control plane.

The generated messages and gRPC stubs of `flotilla.v1` are in the subpackage `flotilla.v1`
(`from flotilla.v1 import cluster_service_pb2, cluster_service_pb2_grpc`), regenerated from proto/ by
scripts/gen-clients; the `google.rpc` error detail types come from googleapis-common-protos
(`from google.rpc import error_details_pb2`).
"""
