//! Administration: the audit log.

pub mod audit_events;
