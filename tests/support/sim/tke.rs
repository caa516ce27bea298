//! tke simulator (being written).
