//! Services whose RPCs this server does not implement yet. Every RPC answers UNIMPLEMENTED with
//! a message naming it (see build.rs); nothing pretends to work.

use super::pb::{
    log_stream_server::LogStream, operation_service_server::OperationService,
    registry_service_server::RegistryService,
};

pub struct RegistryApi;
impl RegistryService for RegistryApi {}

pub struct LogStreamApi;
impl LogStream for LogStreamApi {}

pub struct OperationApi;
impl OperationService for OperationApi {}
