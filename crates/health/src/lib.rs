//! Health checks of real servers, off the data plane: keepalived's
//! checkers and virtual-server policy for xvs.
//!
//! | module | what |
//! |---|---|
//! | [`spec`] | `Check`, `Timing`, `ServicePolicy`: serde and a compact text form |
//! | [`probe`] | the four checkers: TCP connect, HTTP GET (+ MD5 digest), UDP, MISC command |
//!
//! Every check ends within its timeout, and nothing a server sends can
//! make it panic or allocate without bound.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod http;
mod net;
pub mod probe;
pub mod spec;

pub use probe::{Outcome, probe};
pub use spec::{Check, ServicePolicy, SpecError, Timing};
