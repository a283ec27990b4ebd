//! xvs schedulers.
#![forbid(unsafe_code)]
