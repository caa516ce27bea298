//! tke adapter (being written).
