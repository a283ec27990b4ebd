//! The xvs connection table.
#![forbid(unsafe_code)]

pub mod addr;
pub mod dest;

pub use addr::{Addr, Af, ConnKey, Proto, ReplyKey};
pub use dest::{DestId, DestSlot, DestTable};
