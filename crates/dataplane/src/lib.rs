//! xvs data plane.
#![deny(unsafe_code)]
pub mod service;
pub mod wire;
