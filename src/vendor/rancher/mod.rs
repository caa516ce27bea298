//! rancher adapter (being written).
