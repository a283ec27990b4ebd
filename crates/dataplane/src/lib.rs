//! xvs data plane.
#![deny(unsafe_code)]
pub mod cli;
pub mod daemon;
pub mod director;
pub mod netlink;
pub mod pipeline;
pub mod service;
pub mod wire;
pub mod worker;
pub mod xdp;
#[allow(unsafe_code)]
pub mod xsk;
