//! Connection state synchronisation between directors: what IPVS's sync
//! daemon (`ip_vs_sync.c`, `ipvsadm --start-daemon`) does, with
//! authentication and replay protection.
//!
//! The master director sends the connections it creates and whose state
//! changes; backup directors create or refresh the same entries, so after a
//! failover established TCP connections go on to the same real servers.
//!
//! - [`SyncConn`]: one entry (connection or persistence template) as a plain
//!   value;
//! - [`wire`]: the datagram format (`docs/sync-protocol.md`): header, IPv4
//!   or IPv6 entries, HMAC-SHA256 tag; decoding checks everything before
//!   handing out a zero-copy iterator;
//! - [`Encoder`]: the master's batching of entries into datagrams of at most
//!   `--sync-maxlen` bytes, each sealed with sender id, sequence number,
//!   timestamp and MAC;
//! - [`Verifier`]: the backup's checks (sync id, MAC, format, timestamp,
//!   per-sender anti-replay window) and counters ([`RecvStats`]);
//! - [`Key`]: the shared secret, from a file or bytes;
//! - [`Sender`] / [`Receiver`]: the UDP sockets, multicast on a named
//!   interface or unicast peers.
//!
//! Contracts:
//! - a datagram is self-contained: loss and reordering cost only the
//!   entries of the datagrams lost; nothing is retransmitted (the master
//!   re-sends a connection when its state changes, as IPVS does);
//! - a backup applies only datagrams with a valid MAC under its key, from
//!   its sync group (or any, with sync id 0), each at most once, and not
//!   older than the replay window or the clock tolerance;
//! - no input makes the decoder or the verifier panic;
//! - the format code ([`wire`], [`Encoder`], [`Verifier`]) does no I/O and
//!   reads no clock (time is an argument); encoding allocates nothing per
//!   entry or datagram.
//!
//! ```
//! use xvs_conntrack::{Addr, Fwd, Proto, TcpState};
//! use xvs_sync::{Encoder, Key, SyncConn, Verifier, VerifierConfig, wire};
//!
//! let key = Key::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
//! // Master: sync group 1, random sender id, the default datagram size.
//! let mut enc = Encoder::with_random_id(key.clone(), 1, wire::DEFAULT_MAXLEN).unwrap();
//! // Backup: only group 1.
//! let cfg = VerifierConfig { syncid: 1, ..VerifierConfig::default() };
//! let mut backup = Verifier::new(key, cfg);
//!
//! let now = 1_700_000_000_000; // wall clock, ms
//! let mut datagrams = Vec::new();
//! for port in 0..100u16 {
//!     let c = SyncConn {
//!         proto: Proto::Tcp,
//!         caddr: Addr::v4([198, 51, 100, 7]),
//!         cport: 10_000 + port,
//!         vaddr: Addr::v4([192, 0, 2, 1]),
//!         vport: 80,
//!         daddr: Addr::v4([10, 0, 0, 2]),
//!         dport: 80,
//!         fwd: Fwd::Route,
//!         state: TcpState::Established,
//!         flags: 0,
//!         timeout_ms: 900_000,
//!         fwmark: 0,
//!     };
//!     if let Some(d) = enc.push(&c, now) {
//!         datagrams.push(d.to_vec()); // a socket would send it here
//!     }
//! }
//! datagrams.extend(enc.finish(now).map(<[u8]>::to_vec));
//! assert_eq!(datagrams.len(), 3); // 44 + 44 + 12
//!
//! let mut applied = 0;
//! for d in datagrams.iter().rev() {
//!     // Reordered: still accepted, each once.
//!     applied += backup.verify(d, now + 5).unwrap().entries().count();
//! }
//! assert_eq!(applied, 100);
//! assert!(backup.verify(&datagrams[0], now + 6).is_err());
//! assert_eq!(backup.stats().replayed, 1);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod conn;
pub mod encoder;
pub mod key;
pub mod socket;
pub mod verifier;
pub mod wire;

#[cfg(test)]
mod tests;

pub use conn::{SYNC_FLAGS, SyncConn};
pub use encoder::{Encoder, EncoderStats, random_sender_id};
pub use key::{Key, KeyError};
pub use socket::{Multicast, Receiver, Recv, SendStats, Sender};
pub use verifier::{RecvStats, Reject, Verifier, VerifierConfig};
pub use wire::{Datagram, WireError};
