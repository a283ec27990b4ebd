//! xvs control plane: the ipvsadm language as data, shared by `xvsd` and
//! `xvsadm`.
//!
//! This crate turns an ipvsadm command line ([`parse_args`]) or
//! `ipvsadm-save` / `ipvsadm-restore` text ([`parse_restore`]) into typed
//! [`Command`]s, and commands back into canonical `ipvsadm -S` lines
//! ([`save_line`]). It resolves no host name; port names come from
//! `/etc/services` ([`Services`]).
//!
//! The admin protocol is defined here once, for both sides:
//! - [`state`]: the director's state as the daemon reports it (services,
//!   real servers, counters, rates, connections, timeouts, sync daemons),
//!   and its conversion back to commands (`-S`);
//! - [`list`]: ipvsadm's `-L` output, byte for byte, and `--json`;
//! - [`rate`]: IPVS's rate estimator, pure;
//! - [`proto`]: requests and responses, JSON lines in a versioned envelope;
//! - [`server`]: the Unix socket server `xvsd` runs, around the daemon's
//!   [`server::Handler`];
//! - [`client`]: the client side, as the `xvsadm` binary uses it;
//! - [`model`]: the reference semantics of applying commands (ipvsadm's
//!   error messages, atomic batches).
//!
//! Contracts:
//! - the language is ipvsadm 1.31's: the same short and long options, the
//!   same defaults (scheduler `wlc`, direct routing `-g`, weight 1,
//!   persistence 300 s), the same rules on which options go with which
//!   command; the deliberate differences are listed in [`grammar`];
//! - every command [`parse_args`] returns passes [`Command::validate`];
//! - save then restore is the identity: for every command `c` that
//!   validates and changes the director, `parse_restore(&save_line(&c,
//!   true))` is `[c]`, and `parse_args(&to_args(&c))` is `c` for every
//!   command;
//! - an error is one line ([`GrammarError`]), which `xvsadm` prints before
//!   exiting with status 2.
//!
//! ```
//! use xvs_ctl::{Command, DestOpts, parse_args, parse_restore, save_line};
//! use xvs_conntrack::Fwd;
//!
//! let add = parse_args(&["-a", "-t", "192.0.2.1:80", "-r", "10.0.0.2:8080", "-m", "-w", "3"])?;
//! let Command::AddDest { svc, dest } = &add else { unreachable!() };
//! assert_eq!(svc.to_string(), "TCP  192.0.2.1:80");
//! assert_eq!((dest.port, dest.fwd, dest.weight), (8080, Fwd::Masq, 3));
//! assert_eq!(save_line(&add, true), "-a -t 192.0.2.1:80 -r 10.0.0.2:8080 -m -w 3");
//!
//! // Direct routing cannot change the port: as ipvsadm, the real server
//! // takes the service's.
//! let dr = parse_args(&["-a", "-t", "192.0.2.1:80", "-r", "10.0.0.3:8080"])?;
//! assert_eq!(save_line(&dr, true), "-a -t 192.0.2.1:80 -r 10.0.0.3:80 -g -w 1");
//!
//! let text = "-A -t 192.0.2.1:80 -s rr -p\n-a -t 192.0.2.1:80 -r 10.0.0.2 -g -w 1\n";
//! let cmds = parse_restore(text).map_err(|(line, e)| format!("line {line}: {e}"))?;
//! assert_eq!(save_line(&cmds[0], true), "-A -t 192.0.2.1:80 -s rr -p 300");
//!
//! let err = parse_args(&["-A", "-t", "www.example.com:80"]).unwrap_err();
//! assert!(err.to_string().contains("does not resolve host names"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod cmd;
mod error;
pub mod grammar;
pub mod list;
pub mod model;
pub mod proto;
pub mod rate;
pub mod restore;
pub mod save;
mod serde_ext;
pub mod server;
mod services;
pub mod state;

pub use cmd::{
    Command, DaemonOpts, DestOpts, HealthCheck, HostPort, ListOpts, Pe, ServiceOpts, SvcKey,
    SyncState, TunCsum, TunType,
};
pub use error::GrammarError;
pub use grammar::{help_text, parse_args, parse_args_with};
pub use restore::{parse_restore, parse_restore_with};
pub use save::{save_line, save_line_with, save_text, to_args};
pub use services::Services;
