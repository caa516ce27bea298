//! Each cloud's request signing, written once and shared by its products: `alibaba` (ACK, ACR)
//! and `tencent` (TKE, TCR). Pure functions: the clock and the nonce are arguments, so the
//! published vectors are checked byte for byte.

pub mod alibaba;
pub mod tencent;
