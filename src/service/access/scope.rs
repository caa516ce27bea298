//! Who a call is made for.

/// Who a call is made for: the caller's token, name and role, and the clusters it may see
/// (`clusters: None` for all). Every use case that reaches a cluster takes one, so what a
/// caller may see and do is decided from it, never from a handler.
pub type Scope = crate::auth::Principal;
