//! ack adapter (being written).
