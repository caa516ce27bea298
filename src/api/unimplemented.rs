//! Services whose RPCs this server does not implement yet. Every RPC answers UNIMPLEMENTED with
//! a message naming it (see build.rs); nothing pretends to work.

use super::pb::registry_service_server::RegistryService;

pub struct RegistryApi;
impl RegistryService for RegistryApi {}
