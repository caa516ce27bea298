//! ack simulator (being written).
