//! Flotilla: one gRPC API for Kubernetes clusters across cloud vendors.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod agent;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod kube;
pub mod net;
pub mod proto;
pub mod service;
pub mod store;
pub mod telemetry;
