//! rancher simulator (being written).
