"""Every List RPC as a generator of its items (sync) and an async generator (asyncio).

Paged RPCs follow `next_page_token` until the server returns none; the few unpaged List RPCs
(providers, vendor clusters) yield their one answer's items, so every List RPC reads the same
way. Each method takes the request message (page_size, filters...) and the per-page timeout.
Hand-written to keep each signature explicit; tests/test_lists.py walks the service descriptors
and fails when a List RPC has no method here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from flotilla._paging import apaginate, aunpaged, paginate, unpaged
from flotilla.v1 import admin_service_pb2
from flotilla.v1 import cluster_pb2
from flotilla.v1 import cluster_service_pb2
from flotilla.v1 import credential_service_pb2
from flotilla.v1 import node_service_pb2
from flotilla.v1 import operation_pb2
from flotilla.v1 import operation_service_pb2
from flotilla.v1 import registry_service_pb2
from flotilla.v1 import workload_pb2
from flotilla.v1 import workload_service_pb2

if TYPE_CHECKING:
    from flotilla.v1.admin_service_pb2_grpc import AdminServiceAsyncStub, AdminServiceStub
    from flotilla.v1.cluster_service_pb2_grpc import ClusterServiceAsyncStub, ClusterServiceStub
    from flotilla.v1.credential_service_pb2_grpc import (
        CredentialServiceAsyncStub,
        CredentialServiceStub,
    )
    from flotilla.v1.node_service_pb2_grpc import NodeServiceAsyncStub, NodeServiceStub
    from flotilla.v1.operation_service_pb2_grpc import (
        OperationServiceAsyncStub,
        OperationServiceStub,
    )
    from flotilla.v1.registry_service_pb2_grpc import RegistryServiceAsyncStub, RegistryServiceStub
    from flotilla.v1.workload_service_pb2_grpc import WorkloadServiceAsyncStub, WorkloadServiceStub


class ListMethods:
    """The List generators of `flotilla.Client`."""

    admin: AdminServiceStub
    clusters: ClusterServiceStub
    credentials: CredentialServiceStub
    nodes: NodeServiceStub
    operations: OperationServiceStub
    registries: RegistryServiceStub
    workloads: WorkloadServiceStub

    def list_api_tokens(
        self,
        request: admin_service_pb2.ListApiTokensRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[admin_service_pb2.ApiToken]:
        """Every item of `AdminService.ListApiTokens`, page after page."""
        return paginate(
            self.admin.ListApiTokens,
            request or admin_service_pb2.ListApiTokensRequest(),
            lambda r: r.tokens,
            timeout,
        )

    def list_audit_events(
        self,
        request: admin_service_pb2.ListAuditEventsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[admin_service_pb2.AuditEvent]:
        """Every item of `AdminService.ListAuditEvents`, page after page."""
        return paginate(
            self.admin.ListAuditEvents,
            request or admin_service_pb2.ListAuditEventsRequest(),
            lambda r: r.events,
            timeout,
        )

    def list_clusters(
        self,
        request: cluster_service_pb2.ListClustersRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[cluster_pb2.Cluster]:
        """Every item of `ClusterService.ListClusters`, page after page."""
        return paginate(
            self.clusters.ListClusters,
            request or cluster_service_pb2.ListClustersRequest(),
            lambda r: r.clusters,
            timeout,
        )

    def list_providers(
        self,
        request: cluster_service_pb2.ListProvidersRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[cluster_service_pb2.Provider]:
        """Every item of `ClusterService.ListProviders`."""
        return unpaged(
            self.clusters.ListProviders,
            request or cluster_service_pb2.ListProvidersRequest(),
            lambda r: r.providers,
            timeout,
        )

    def list_vendor_clusters(
        self,
        request: cluster_service_pb2.ListVendorClustersRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[cluster_service_pb2.VendorCluster]:
        """Every item of `ClusterService.ListVendorClusters`."""
        return unpaged(
            self.clusters.ListVendorClusters,
            request or cluster_service_pb2.ListVendorClustersRequest(),
            lambda r: r.clusters,
            timeout,
        )

    def list_credentials(
        self,
        request: credential_service_pb2.ListCredentialsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[credential_service_pb2.Credential]:
        """Every item of `CredentialService.ListCredentials`, page after page."""
        return paginate(
            self.credentials.ListCredentials,
            request or credential_service_pb2.ListCredentialsRequest(),
            lambda r: r.credentials,
            timeout,
        )

    def list_nodes(
        self,
        request: node_service_pb2.ListNodesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[node_service_pb2.Node]:
        """Every item of `NodeService.ListNodes`, page after page."""
        return paginate(
            self.nodes.ListNodes,
            request or node_service_pb2.ListNodesRequest(),
            lambda r: r.nodes,
            timeout,
        )

    def list_node_pools(
        self,
        request: node_service_pb2.ListNodePoolsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[node_service_pb2.NodePool]:
        """Every item of `NodeService.ListNodePools`, page after page."""
        return paginate(
            self.nodes.ListNodePools,
            request or node_service_pb2.ListNodePoolsRequest(),
            lambda r: r.node_pools,
            timeout,
        )

    def list_operations(
        self,
        request: operation_service_pb2.ListOperationsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[operation_pb2.Operation]:
        """Every item of `OperationService.ListOperations`, page after page."""
        return paginate(
            self.operations.ListOperations,
            request or operation_service_pb2.ListOperationsRequest(),
            lambda r: r.operations,
            timeout,
        )

    def list_registries(
        self,
        request: registry_service_pb2.ListRegistriesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.Registry]:
        """Every item of `RegistryService.ListRegistries`, page after page."""
        return paginate(
            self.registries.ListRegistries,
            request or registry_service_pb2.ListRegistriesRequest(),
            lambda r: r.registries,
            timeout,
        )

    def list_registry_namespaces(
        self,
        request: registry_service_pb2.ListRegistryNamespacesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.RegistryNamespace]:
        """Every item of `RegistryService.ListRegistryNamespaces`, page after page."""
        return paginate(
            self.registries.ListRegistryNamespaces,
            request or registry_service_pb2.ListRegistryNamespacesRequest(),
            lambda r: r.namespaces,
            timeout,
        )

    def list_repositories(
        self,
        request: registry_service_pb2.ListRepositoriesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.Repository]:
        """Every item of `RegistryService.ListRepositories`, page after page."""
        return paginate(
            self.registries.ListRepositories,
            request or registry_service_pb2.ListRepositoriesRequest(),
            lambda r: r.repositories,
            timeout,
        )

    def list_artifacts(
        self,
        request: registry_service_pb2.ListArtifactsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.Artifact]:
        """Every item of `RegistryService.ListArtifacts`, page after page."""
        return paginate(
            self.registries.ListArtifacts,
            request or registry_service_pb2.ListArtifactsRequest(),
            lambda r: r.artifacts,
            timeout,
        )

    def list_charts(
        self,
        request: registry_service_pb2.ListChartsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.Chart]:
        """Every item of `RegistryService.ListCharts`, page after page."""
        return paginate(
            self.registries.ListCharts,
            request or registry_service_pb2.ListChartsRequest(),
            lambda r: r.charts,
            timeout,
        )

    def list_chart_versions(
        self,
        request: registry_service_pb2.ListChartVersionsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.ChartVersion]:
        """Every item of `RegistryService.ListChartVersions`, page after page."""
        return paginate(
            self.registries.ListChartVersions,
            request or registry_service_pb2.ListChartVersionsRequest(),
            lambda r: r.versions,
            timeout,
        )

    def list_registry_providers(
        self,
        request: registry_service_pb2.ListRegistryProvidersRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[registry_service_pb2.RegistryProvider]:
        """Every item of `RegistryService.ListRegistryProviders`."""
        return unpaged(
            self.registries.ListRegistryProviders,
            request or registry_service_pb2.ListRegistryProvidersRequest(),
            lambda r: r.providers,
            timeout,
        )

    def list_tags(
        self,
        request: registry_service_pb2.ListTagsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[str]:
        """Every item of `RegistryService.ListTags`, page after page."""
        return paginate(
            self.registries.ListTags,
            request or registry_service_pb2.ListTagsRequest(),
            lambda r: r.tags,
            timeout,
        )

    def list_workloads(
        self,
        request: workload_service_pb2.ListWorkloadsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[workload_pb2.Workload]:
        """Every item of `WorkloadService.ListWorkloads`, page after page."""
        return paginate(
            self.workloads.ListWorkloads,
            request or workload_service_pb2.ListWorkloadsRequest(),
            lambda r: r.workloads,
            timeout,
        )

    def list_pods(
        self,
        request: workload_service_pb2.ListPodsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[workload_pb2.Pod]:
        """Every item of `WorkloadService.ListPods`, page after page."""
        return paginate(
            self.workloads.ListPods,
            request or workload_service_pb2.ListPodsRequest(),
            lambda r: r.pods,
            timeout,
        )

    def list_resources(
        self,
        request: workload_service_pb2.ListResourcesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[workload_pb2.Resource]:
        """Every item of `WorkloadService.ListResources`, page after page."""
        return paginate(
            self.workloads.ListResources,
            request or workload_service_pb2.ListResourcesRequest(),
            lambda r: r.resources,
            timeout,
        )

    def list_resource_kinds(
        self,
        request: workload_service_pb2.ListResourceKindsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[workload_service_pb2.ResourceKind]:
        """Every item of `WorkloadService.ListResourceKinds`."""
        return unpaged(
            self.workloads.ListResourceKinds,
            request or workload_service_pb2.ListResourceKindsRequest(),
            lambda r: r.kinds,
            timeout,
        )

    def list_events(
        self,
        request: workload_service_pb2.ListEventsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[workload_pb2.Event]:
        """Every item of `WorkloadService.ListEvents`, page after page."""
        return paginate(
            self.workloads.ListEvents,
            request or workload_service_pb2.ListEventsRequest(),
            lambda r: r.events,
            timeout,
        )


class AsyncListMethods:
    """The List async generators of `flotilla.AsyncClient`."""

    admin: AdminServiceAsyncStub
    clusters: ClusterServiceAsyncStub
    credentials: CredentialServiceAsyncStub
    nodes: NodeServiceAsyncStub
    operations: OperationServiceAsyncStub
    registries: RegistryServiceAsyncStub
    workloads: WorkloadServiceAsyncStub

    def list_api_tokens(
        self,
        request: admin_service_pb2.ListApiTokensRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[admin_service_pb2.ApiToken]:
        """Every item of `AdminService.ListApiTokens`, page after page."""
        return apaginate(
            self.admin.ListApiTokens,
            request or admin_service_pb2.ListApiTokensRequest(),
            lambda r: r.tokens,
            timeout,
        )

    def list_audit_events(
        self,
        request: admin_service_pb2.ListAuditEventsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[admin_service_pb2.AuditEvent]:
        """Every item of `AdminService.ListAuditEvents`, page after page."""
        return apaginate(
            self.admin.ListAuditEvents,
            request or admin_service_pb2.ListAuditEventsRequest(),
            lambda r: r.events,
            timeout,
        )

    def list_clusters(
        self,
        request: cluster_service_pb2.ListClustersRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[cluster_pb2.Cluster]:
        """Every item of `ClusterService.ListClusters`, page after page."""
        return apaginate(
            self.clusters.ListClusters,
            request or cluster_service_pb2.ListClustersRequest(),
            lambda r: r.clusters,
            timeout,
        )

    def list_providers(
        self,
        request: cluster_service_pb2.ListProvidersRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[cluster_service_pb2.Provider]:
        """Every item of `ClusterService.ListProviders`."""
        return aunpaged(
            self.clusters.ListProviders,
            request or cluster_service_pb2.ListProvidersRequest(),
            lambda r: r.providers,
            timeout,
        )

    def list_vendor_clusters(
        self,
        request: cluster_service_pb2.ListVendorClustersRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[cluster_service_pb2.VendorCluster]:
        """Every item of `ClusterService.ListVendorClusters`."""
        return aunpaged(
            self.clusters.ListVendorClusters,
            request or cluster_service_pb2.ListVendorClustersRequest(),
            lambda r: r.clusters,
            timeout,
        )

    def list_credentials(
        self,
        request: credential_service_pb2.ListCredentialsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[credential_service_pb2.Credential]:
        """Every item of `CredentialService.ListCredentials`, page after page."""
        return apaginate(
            self.credentials.ListCredentials,
            request or credential_service_pb2.ListCredentialsRequest(),
            lambda r: r.credentials,
            timeout,
        )

    def list_nodes(
        self,
        request: node_service_pb2.ListNodesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[node_service_pb2.Node]:
        """Every item of `NodeService.ListNodes`, page after page."""
        return apaginate(
            self.nodes.ListNodes,
            request or node_service_pb2.ListNodesRequest(),
            lambda r: r.nodes,
            timeout,
        )

    def list_node_pools(
        self,
        request: node_service_pb2.ListNodePoolsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[node_service_pb2.NodePool]:
        """Every item of `NodeService.ListNodePools`, page after page."""
        return apaginate(
            self.nodes.ListNodePools,
            request or node_service_pb2.ListNodePoolsRequest(),
            lambda r: r.node_pools,
            timeout,
        )

    def list_operations(
        self,
        request: operation_service_pb2.ListOperationsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[operation_pb2.Operation]:
        """Every item of `OperationService.ListOperations`, page after page."""
        return apaginate(
            self.operations.ListOperations,
            request or operation_service_pb2.ListOperationsRequest(),
            lambda r: r.operations,
            timeout,
        )

    def list_registries(
        self,
        request: registry_service_pb2.ListRegistriesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[registry_service_pb2.Registry]:
        """Every item of `RegistryService.ListRegistries`, page after page."""
        return apaginate(
            self.registries.ListRegistries,
            request or registry_service_pb2.ListRegistriesRequest(),
            lambda r: r.registries,
            timeout,
        )

    def list_registry_namespaces(
        self,
        request: registry_service_pb2.ListRegistryNamespacesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[registry_service_pb2.RegistryNamespace]:
        """Every item of `RegistryService.ListRegistryNamespaces`, page after page."""
        return apaginate(
            self.registries.ListRegistryNamespaces,
            request or registry_service_pb2.ListRegistryNamespacesRequest(),
            lambda r: r.namespaces,
            timeout,
        )

    def list_repositories(
        self,
        request: registry_service_pb2.ListRepositoriesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[registry_service_pb2.Repository]:
        """Every item of `RegistryService.ListRepositories`, page after page."""
        return apaginate(
            self.registries.ListRepositories,
            request or registry_service_pb2.ListRepositoriesRequest(),
            lambda r: r.repositories,
            timeout,
        )

    def list_artifacts(
        self,
        request: registry_service_pb2.ListArtifactsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[registry_service_pb2.Artifact]:
        """Every item of `RegistryService.ListArtifacts`, page after page."""
        return apaginate(
            self.registries.ListArtifacts,
            request or registry_service_pb2.ListArtifactsRequest(),
            lambda r: r.artifacts,
            timeout,
        )

    def list_charts(
        self,
        request: registry_service_pb2.ListChartsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[registry_service_pb2.Chart]:
        """Every item of `RegistryService.ListCharts`, page after page."""
        return apaginate(
            self.registries.ListCharts,
            request or registry_service_pb2.ListChartsRequest(),
            lambda r: r.charts,
            timeout,
        )

    def list_chart_versions(
        self,
        request: registry_service_pb2.ListChartVersionsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[registry_service_pb2.ChartVersion]:
        """Every item of `RegistryService.ListChartVersions`, page after page."""
        return apaginate(
            self.registries.ListChartVersions,
            request or registry_service_pb2.ListChartVersionsRequest(),
            lambda r: r.versions,
            timeout,
        )

    def list_registry_providers(
        self,
        request: registry_service_pb2.ListRegistryProvidersRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[registry_service_pb2.RegistryProvider]:
        """Every item of `RegistryService.ListRegistryProviders`."""
        return aunpaged(
            self.registries.ListRegistryProviders,
            request or registry_service_pb2.ListRegistryProvidersRequest(),
            lambda r: r.providers,
            timeout,
        )

    def list_tags(
        self,
        request: registry_service_pb2.ListTagsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[str]:
        """Every item of `RegistryService.ListTags`, page after page."""
        return apaginate(
            self.registries.ListTags,
            request or registry_service_pb2.ListTagsRequest(),
            lambda r: r.tags,
            timeout,
        )

    def list_workloads(
        self,
        request: workload_service_pb2.ListWorkloadsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[workload_pb2.Workload]:
        """Every item of `WorkloadService.ListWorkloads`, page after page."""
        return apaginate(
            self.workloads.ListWorkloads,
            request or workload_service_pb2.ListWorkloadsRequest(),
            lambda r: r.workloads,
            timeout,
        )

    def list_pods(
        self,
        request: workload_service_pb2.ListPodsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[workload_pb2.Pod]:
        """Every item of `WorkloadService.ListPods`, page after page."""
        return apaginate(
            self.workloads.ListPods,
            request or workload_service_pb2.ListPodsRequest(),
            lambda r: r.pods,
            timeout,
        )

    def list_resources(
        self,
        request: workload_service_pb2.ListResourcesRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[workload_pb2.Resource]:
        """Every item of `WorkloadService.ListResources`, page after page."""
        return apaginate(
            self.workloads.ListResources,
            request or workload_service_pb2.ListResourcesRequest(),
            lambda r: r.resources,
            timeout,
        )

    def list_resource_kinds(
        self,
        request: workload_service_pb2.ListResourceKindsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[workload_service_pb2.ResourceKind]:
        """Every item of `WorkloadService.ListResourceKinds`."""
        return aunpaged(
            self.workloads.ListResourceKinds,
            request or workload_service_pb2.ListResourceKindsRequest(),
            lambda r: r.kinds,
            timeout,
        )

    def list_events(
        self,
        request: workload_service_pb2.ListEventsRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[workload_pb2.Event]:
        """Every item of `WorkloadService.ListEvents`, page after page."""
        return apaginate(
            self.workloads.ListEvents,
            request or workload_service_pb2.ListEventsRequest(),
            lambda r: r.events,
            timeout,
        )
