//! Services whose RPCs this server does not implement yet. Every RPC answers UNIMPLEMENTED with
//! a message naming it (see build.rs); nothing pretends to work.

use super::pb::{
    operation_service_server::OperationService, registry_service_server::RegistryService,
};

pub struct RegistryApi;
impl RegistryService for RegistryApi {}

pub struct OperationApi;
impl OperationService for OperationApi {}
