//! The xvs connection table: what IPVS calls `ip_vs_conn`.
//!
//! Every packet the director handles goes through here. The crate gives:
//! - [`ConnKey`] / [`ReplyKey`]: a connection seen from the client side and,
//!   for NAT, from the real server side; IPv4 and IPv6 in one [`Addr`] form;
//! - [`Conn`]: the 128-byte entry (checked at compile time);
//! - [`ConnTable`]: a sharded table with a hard capacity, both NAT
//!   directions indexed in the same shard, IPVS's TCP state machine and
//!   timeouts, persistence templates, and expiry on a timer wheel driven by
//!   a `now` in milliseconds that the caller passes in (no clock is read
//!   here, so tests control time);
//! - [`DestTable`]: per-destination active/inactive/persistent counts that
//!   the table keeps exactly as IPVS does and the schedulers read.
//!
//! Contracts: no operation panics on any input; the packet path
//! ([`ConnTable::lookup_in`], [`ConnTable::lookup_out`]) takes one shard lock
//! for one lookup and allocates nothing; [`ConnTable::insert`] allocates at
//! most one 32 KiB slab chunk per 256 new entries (none with
//! [`TableConfig::prealloc`]); the table never holds more than its capacity.
//!
//! ```
//! use std::sync::Arc;
//! use xvs_conntrack::*;
//!
//! let dests = Arc::new(DestTable::new(8));
//! dests.configure(0, 1, 0, 0);
//! let table = ConnTable::new(TableConfig::default(), dests.clone());
//! let key = ConnKey {
//!     proto: Proto::Tcp,
//!     caddr: Addr::v4([198, 51, 100, 7]),
//!     cport: 40000,
//!     vaddr: Addr::v4([192, 0, 2, 1]),
//!     vport: 80,
//! };
//! let new = NewConn {
//!     key,
//!     daddr: Addr::v4([10, 0, 0, 2]),
//!     dport: 80,
//!     dest: 0,
//!     fwd: Fwd::Route,
//!     template: None,
//! };
//! assert_eq!(table.lookup_in(0, &key, tcp_flags::SYN, 60), InLookup::Miss);
//! table.insert(0, &new, tcp_flags::SYN, 60).unwrap();
//! let InLookup::Hit(c) = table.lookup_in(1, &key, tcp_flags::ACK, 52) else { panic!() };
//! assert_eq!(c.state, TcpState::Established);
//! assert_eq!(dests.get(0).active(), 1);
//! // Fifteen minutes of silence later the entry is gone.
//! assert_eq!(table.expire(1 + 901_000, usize::MAX), 1);
//! assert_eq!(dests.get(0).active(), 0);
//! ```
#![forbid(unsafe_code)]

pub mod addr;
pub mod conn;
pub mod dest;
pub mod state;
pub mod table;

pub use addr::{Addr, Af, ConnKey, Proto, ReplyKey};
pub use conn::{Conn, Fwd};
pub use dest::{DestId, DestSlot, DestTable};
pub use state::{Dir, TcpState, Timeouts, tcp_flags};
pub use table::{
    ConnId, ConnTable, ConnView, InLookup, InsertError, Inserted, Installed, NewConn, NewTemplate,
    SYNC_PERIOD, SYNC_THRESHOLD, Settings, Synced, TableConfig,
};
