//! Services whose RPCs this server does not implement yet. Every RPC answers UNIMPLEMENTED with
//! a message naming it (see build.rs); nothing pretends to work.

use super::pb::{
    log_stream_server::LogStream, node_service_server::NodeService,
    operation_service_server::OperationService, registry_service_server::RegistryService,
    workload_service_server::WorkloadService,
};

pub struct NodeApi;
impl NodeService for NodeApi {}

pub struct WorkloadApi;
impl WorkloadService for WorkloadApi {}

pub struct RegistryApi;
impl RegistryService for RegistryApi {}

pub struct LogStreamApi;
impl LogStream for LogStreamApi {}

pub struct OperationApi;
impl OperationService for OperationApi {}
