//! xvs data plane.
#![deny(unsafe_code)]
pub mod netlink;
pub mod service;
pub mod wire;
