//! The whole forwarding pipeline, `Pipeline::process`, on sequences of
//! arbitrary frames against a fixed director (DR, NAT and TUN services of
//! both families, persistence, fwmark, a service without real servers, an
//! unresolved real server) and a connection table of 16 entries.
//!
//! The input is a configuration byte and records of one frame each
//! (`xvs_fuzz::input`), so connections are created, used, answered from the
//! real server side, expired and refused when the table is full.
//!
//! Invariants (`xvs_fuzz::director`): never panics; a `Pass` leaves the
//! frame untouched; a `Tx` frame parses again with right IPv4 header, ICMP
//! and (where they were right on receipt) TCP/UDP checksums, carries the
//! packet received with the TTL one less (inside the tunnel for TUN), on a
//! known interface to a known next hop; a `Reply` is an ICMP error back to
//! the sender quoting the packet; the frame stays within its buffer; after
//! every timeout the table is empty and no real server counts a
//! connection.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xvs_fuzz::director::run(data);
});
