//! Health checks of real servers, off the data plane: keepalived's
//! checkers and virtual-server policy for xvs.
//!
//! [`spec`] holds the configuration types: what to check ([`Check`]), how
//! often ([`Timing`]) and what a service does with the results
//! ([`ServicePolicy`]), with serde and a compact text form.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod spec;

pub use spec::{Check, ServicePolicy, SpecError, Timing};
