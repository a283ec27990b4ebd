//! xvs data plane.
#![deny(unsafe_code)]
