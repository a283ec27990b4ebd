//! Health checks of real servers, off the data plane: keepalived's
//! checkers and virtual-server policy for xvs.
//!
//! The daemon hands a [`Monitor`] the set of [`Target`]s to check (a
//! service id, a real server, a [`Check`] and its [`Timing`]) and receives
//! up/down [`Transition`]s on a [`Sink`]. It then applies each service's
//! [`ServicePolicy`] with the pure [`policy::evaluate`] (weight 0 or
//! removal, quorum with hysteresis, sorry server) and programs the result
//! into the data plane. Optionally, a [`feedback::FeedbackAgent`] polls the
//! real servers' load endpoints and moves their weights (the LVS paper's
//! dynamic feedback).
//!
//! | module | what | threads |
//! |---|---|---|
//! | [`spec`] | `Check`, `Timing`, `ServicePolicy`: serde and a compact text form | none |
//! | [`probe`](mod@probe) | the four checkers: TCP connect, HTTP GET (+ MD5 digest), UDP, MISC command | the caller's |
//! | [`monitor`] | scheduler, worker pool, rise/fall, transitions | its own |
//! | [`policy`] | the effective set of a service | none |
//! | [`feedback`] | agent replies, the weight law, the polling agent | its own |
//!
//! # Contracts
//!
//! - **Transitions.** Each change of a target's state produces exactly one
//!   [`Transition`]: `fall` failures in a row take an up target down,
//!   `rise` successes in a row bring a down one up. A new target starts up
//!   (down with [`Timing::alpha`], until its first success) and no
//!   transition reports that initial state. While up, a change of the
//!   `misc_dynamic` weight is reported too (`up: true`, new `weight`).
//! - **Bounded checks.** Every check ends within its `timeout` (connect,
//!   request and reply as a whole; MISC commands are killed with their
//!   process group). A hung server holds one worker for at most that long;
//!   the pool grows while checks wait (see [`monitor`]).
//! - **Hostile servers.** Nothing a server sends can panic the monitor or
//!   make it allocate without bound: the HTTP head is limited to 16 KiB,
//!   bodies to [`probe::MAX_BODY`] (digest) or [`feedback::MAX_REPLY`]
//!   (agent), chunked framing is decoded with bounded lines.
//! - **Stopping.** [`Monitor::stop`] and [`feedback::FeedbackAgent::stop`]
//!   return within a few tens of milliseconds whatever the checks in
//!   progress, and nothing reaches a sink after they return.
//! - **No root.** Checks use ordinary sockets and `/bin/sh`; nothing here
//!   needs privileges.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use crossbeam::channel;
//! use xvs_health::{Check, Monitor, ServicePolicy, Target, TargetKey, Timing, Transition};
//! use xvs_health::policy::{Server, evaluate};
//!
//! // A real server that refuses connections: the port of a closed listener.
//! let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
//!
//! let (tx, rx) = channel::unbounded::<Transition>();
//! let monitor = Monitor::start(Arc::new(tx), 2);
//! monitor.configure(vec![Target {
//!     key: TargetKey { service: "web".into(), addr },
//!     check: Check::parse("tcp")?,
//!     timing: Timing::parse("interval=50ms,timeout=200ms,fall=2")?,
//! }]);
//!
//! let t = rx.recv_timeout(std::time::Duration::from_secs(5))?;
//! assert!(!t.up);
//! assert_eq!(t.detail, "connect refused");
//! monitor.stop();
//!
//! // The daemon then computes what the data plane should see.
//! let policy = ServicePolicy::parse("sorry=127.0.0.1:8080")?;
//! let d = evaluate(&policy, &[Server { addr, weight: 1, up: t.up, dynamic_weight: t.weight }], Some(true));
//! assert_eq!(d.servers, vec![(addr, None)]);
//! assert_eq!(d.sorry, policy.sorry_server);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod feedback;
mod health;
mod http;
pub mod monitor;
mod net;
pub mod policy;
pub mod probe;
pub mod spec;

pub use monitor::{Monitor, Sink, Target, TargetKey, TargetStatus, Transition};
pub use probe::{Outcome, probe};
pub use spec::{Check, Feedback, ServicePolicy, SpecError, Timing};
