//! The sync datagram format, version 1.
//!
//! One UDP datagram is self-contained: a header, whole entries, and a MAC
//! over everything before it. Nothing refers to another datagram, so a lost
//! or late one costs only its own entries (the master re-sends live
//! connections as they change and the backups' entries expire on their own).
//! All integers are big-endian; nothing is aligned (fields are read by
//! offset, never through a cast struct).
//!
//! ```text
//! datagram:  header (28) | entry | entry | ... | MAC (16)
//!
//! header     offset  size  field
//!            0       4     magic "XVSY"
//!            4       1     version = 1
//!            5       1     syncid (ipvsadm --syncid; 0 = none)
//!            6       2     entry count
//!            8       4     sender id (random, chosen when the sender starts)
//!            12      8     sequence number (per sender, +1 per datagram, from 0)
//!            20      8     timestamp: sender's wall clock, ms since the Unix epoch
//!
//! entry      offset  size  field
//!            0       1     type: 4 (IPv4 addresses) or 6 (IPv6 addresses)
//!            1       1     length of the whole entry: 32 (type 4) or 68 (type 6)
//!            2       1     protocol (IANA number: 6 TCP, 17 UDP, 132 SCTP, 0 any)
//!            3       1     forwarding method (0 NAT, 2 tunnel, 3 direct routing)
//!            4       1     TCP state (IPVS numbering, 0..=10)
//!            5       1     flags: 0x01 template, 0x02 persistent, 0x04 no output yet
//!            6       2     client port
//!            8       2     virtual port
//!            10      2     real server port
//!            12      4     fwmark (0 = none)
//!            16      4     time left before expiry, ms
//!            20      4|16  client address
//!            24|36   4|16  virtual address
//!            28|52   4|16  real server address
//!
//! MAC        the first 16 bytes of HMAC-SHA256(key, every byte before the MAC)
//! ```
//!
//! An entry takes the IPv4 form when its three addresses are IPv4 (conntrack
//! holds them IPv4-mapped), else the IPv6 form with the 16-byte [`Addr`]s as
//! they are (a tunnel from an IPv4 service to an IPv6 real server is an
//! IPv6 entry with mapped client and virtual addresses).
//!
//! Decoding ([`open`]) checks, in order: the length (at least a header and a
//! MAC), the magic, the version, the MAC (constant-time), then every entry
//! (type, length, protocol, method, state, flag bits) and the count. Each
//! failure is its own [`WireError`]; no input panics. Only then does
//! [`Datagram::entries`] iterate, without copying, over the checked bytes.
//! The syncid and the sequence number are the receiver's business
//! ([`crate::Verifier`]).
//!
//! `docs/sync-protocol.md` has the same tables, the reasoning and the
//! comparison with IPVS's own format.

use hmac::Mac;
use xvs_conntrack::{Addr, Fwd, Proto, TcpState};

use crate::conn::SyncConn;
use crate::key::Key;
use xvs_conntrack::conn::flags;

/// The first four bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"XVSY";
/// The format version this crate reads and writes.
pub const VERSION: u8 = 1;
/// Header length.
pub const HEADER_LEN: usize = 28;
/// MAC length (HMAC-SHA256 truncated to 128 bits).
pub const MAC_LEN: usize = 16;
/// Bytes of a datagram that are not entries.
pub const OVERHEAD: usize = HEADER_LEN + MAC_LEN;
/// Length of an entry with IPv4 addresses.
pub const ENTRY_V4_LEN: usize = 32;
/// Length of an entry with IPv6 addresses.
pub const ENTRY_V6_LEN: usize = 68;
/// Entry type byte of the IPv4 form.
pub const TYPE_V4: u8 = 4;
/// Entry type byte of the IPv6 form.
pub const TYPE_V6: u8 = 6;
/// The smallest datagram limit an encoder accepts: room for one IPv6 entry.
pub const MIN_MAXLEN: usize = OVERHEAD + ENTRY_V6_LEN;
/// The largest UDP payload over IPv4 (65535 - 20 - 8), as ipvsadm's
/// `--sync-maxlen` bound.
pub const MAX_DATAGRAM_LEN: usize = 65_507;
/// The default datagram limit: a 1500-byte MTU less the IPv6 and UDP headers
/// (1500 - 40 - 8), so the default fits over IPv4 and IPv6 alike without
/// fragmentation: 44 IPv4 or 20 IPv6 entries.
pub const DEFAULT_MAXLEN: usize = 1452;

/// Flag bits on the wire (independent of conntrack's in-memory numbering).
mod wire_flags {
    pub const TEMPLATE: u8 = 0x01;
    pub const PERSISTENT: u8 = 0x02;
    pub const NOOUTPUT: u8 = 0x04;
    pub const ALL: u8 = TEMPLATE | PERSISTENT | NOOUTPUT;
}

/// Field offsets (the smoltcp way: one place, ranges by name).
mod field {
    use std::ops::Range;

    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const SYNCID: usize = 5;
    pub const COUNT: Range<usize> = 6..8;
    pub const SENDER: Range<usize> = 8..12;
    pub const SEQ: Range<usize> = 12..20;
    pub const TIMESTAMP: Range<usize> = 20..28;

    pub const E_TYPE: usize = 0;
    pub const E_LEN: usize = 1;
    pub const E_PROTO: usize = 2;
    pub const E_FWD: usize = 3;
    pub const E_STATE: usize = 4;
    pub const E_FLAGS: usize = 5;
    pub const E_CPORT: Range<usize> = 6..8;
    pub const E_VPORT: Range<usize> = 8..10;
    pub const E_DPORT: Range<usize> = 10..12;
    pub const E_FWMARK: Range<usize> = 12..16;
    pub const E_TIMEOUT: Range<usize> = 16..20;
    pub const E_ADDRS: usize = 20;
}

// Entry counts of the largest datagrams fit the 16-bit count field, and the
// entry lengths match the field table.
const _: () = assert!((MAX_DATAGRAM_LEN - OVERHEAD) / ENTRY_V4_LEN <= u16::MAX as usize);
const _: () = assert!(ENTRY_V4_LEN == field::E_ADDRS + 3 * 4);
const _: () = assert!(ENTRY_V6_LEN == field::E_ADDRS + 3 * 16);
const _: () = assert!(ENTRY_V6_LEN <= u8::MAX as usize);

/// Why a datagram was rejected. Offsets count from the datagram's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than a header and a MAC.
    #[error("datagram of {len} bytes is shorter than header and MAC ({OVERHEAD})")]
    Truncated {
        /// Its length.
        len: usize,
    },
    /// Not an xvs sync datagram (an IPVS one, for instance).
    #[error("bad magic: not an xvs sync datagram")]
    BadMagic,
    /// A version this build does not read.
    #[error("unknown sync format version {0}")]
    UnknownVersion(u8),
    /// The MAC does not match: forged, corrupted, or signed with another key.
    #[error("bad MAC (forged, corrupted, or another key)")]
    BadMac,
    /// The bytes left for an entry are fewer than its header or its length.
    #[error("entry at offset {offset} runs past the end of the datagram")]
    TruncatedEntry {
        /// Offset of the entry.
        offset: usize,
    },
    /// An entry type other than 4 and 6.
    #[error("unknown entry type {ty} at offset {offset}")]
    UnknownEntryType {
        /// Offset of the entry.
        offset: usize,
        /// The type byte.
        ty: u8,
    },
    /// An entry length that is not its type's.
    #[error("entry of type {ty} at offset {offset} has length {len}")]
    BadEntryLength {
        /// Offset of the entry.
        offset: usize,
        /// The type byte.
        ty: u8,
        /// The length byte.
        len: u8,
    },
    /// A protocol number the director does not track.
    #[error("unknown protocol {proto} in entry at offset {offset}")]
    UnknownProto {
        /// Offset of the entry.
        offset: usize,
        /// The protocol byte.
        proto: u8,
    },
    /// A forwarding method other than 0, 2, 3.
    #[error("unknown forwarding method {fwd} in entry at offset {offset}")]
    UnknownFwd {
        /// Offset of the entry.
        offset: usize,
        /// The method byte.
        fwd: u8,
    },
    /// A TCP state above 10.
    #[error("unknown TCP state {state} in entry at offset {offset}")]
    UnknownState {
        /// Offset of the entry.
        offset: usize,
        /// The state byte.
        state: u8,
    },
    /// Flag bits this version does not define.
    #[error("unknown flag bits {flags:#04x} in entry at offset {offset}")]
    UnknownFlags {
        /// Offset of the entry.
        offset: usize,
        /// The flags byte.
        flags: u8,
    },
    /// The header's count differs from the entries present.
    #[error("header counts {declared} entries, the datagram holds {found}")]
    CountMismatch {
        /// The header's count.
        declared: u16,
        /// Entries found.
        found: usize,
    },
}

/// The header of a datagram, as a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Sync group id (`--syncid`).
    pub syncid: u8,
    /// Number of entries.
    pub count: u16,
    /// The sender's random id.
    pub sender: u32,
    /// The sender's sequence number for this datagram.
    pub seq: u64,
    /// Sender's wall clock when the datagram was sealed, ms since the epoch.
    pub timestamp_ms: u64,
}

impl Header {
    /// Reads the header of `bytes` without authenticating anything: checks
    /// the length (header and MAC), the magic and the version.
    ///
    /// Use [`open`] to get at the entries; this is for filtering before the
    /// MAC (the receiver drops other sync groups' datagrams this way).
    pub fn peek(bytes: &[u8]) -> Result<Header, WireError> {
        if bytes.len() < OVERHEAD {
            return Err(WireError::Truncated { len: bytes.len() });
        }
        if bytes[field::MAGIC] != MAGIC {
            return Err(WireError::BadMagic);
        }
        if bytes[field::VERSION] != VERSION {
            return Err(WireError::UnknownVersion(bytes[field::VERSION]));
        }
        Ok(Header {
            syncid: bytes[field::SYNCID],
            count: be16(&bytes[field::COUNT]),
            sender: be32(&bytes[field::SENDER]),
            seq: be64(&bytes[field::SEQ]),
            timestamp_ms: be64(&bytes[field::TIMESTAMP]),
        })
    }

    /// Writes the header (magic and version included).
    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[field::MAGIC].copy_from_slice(&MAGIC);
        out[field::VERSION] = VERSION;
        out[field::SYNCID] = self.syncid;
        out[field::COUNT].copy_from_slice(&self.count.to_be_bytes());
        out[field::SENDER].copy_from_slice(&self.sender.to_be_bytes());
        out[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        out[field::TIMESTAMP].copy_from_slice(&self.timestamp_ms.to_be_bytes());
    }
}

/// The encoded length of an entry: [`ENTRY_V4_LEN`] or [`ENTRY_V6_LEN`].
#[inline]
pub fn entry_len(c: &SyncConn) -> usize {
    if c.is_v4() {
        ENTRY_V4_LEN
    } else {
        ENTRY_V6_LEN
    }
}

/// Writes one entry at the start of `out` and returns its length, or `None`
/// (writing nothing) when `out` is shorter than [`entry_len`]. Flag bits
/// outside [`crate::SYNC_FLAGS`] are not carried.
#[inline]
pub fn encode_entry(c: &SyncConn, out: &mut [u8]) -> Option<usize> {
    let v4 = c.is_v4();
    let len = if v4 { ENTRY_V4_LEN } else { ENTRY_V6_LEN };
    let e = out.get_mut(..len)?;
    e[field::E_TYPE] = if v4 { TYPE_V4 } else { TYPE_V6 };
    e[field::E_LEN] = len as u8;
    e[field::E_PROTO] = c.proto as u8;
    e[field::E_FWD] = c.fwd as u8;
    e[field::E_STATE] = c.state as u8;
    e[field::E_FLAGS] = flags_to_wire(c.flags);
    e[field::E_CPORT].copy_from_slice(&c.cport.to_be_bytes());
    e[field::E_VPORT].copy_from_slice(&c.vport.to_be_bytes());
    e[field::E_DPORT].copy_from_slice(&c.dport.to_be_bytes());
    e[field::E_FWMARK].copy_from_slice(&c.fwmark.to_be_bytes());
    e[field::E_TIMEOUT].copy_from_slice(&c.timeout_ms.to_be_bytes());
    let addrs = &mut e[field::E_ADDRS..];
    if v4 {
        addrs[0..4].copy_from_slice(&c.caddr.v4_octets());
        addrs[4..8].copy_from_slice(&c.vaddr.v4_octets());
        addrs[8..12].copy_from_slice(&c.daddr.v4_octets());
    } else {
        addrs[0..16].copy_from_slice(&c.caddr.0);
        addrs[16..32].copy_from_slice(&c.vaddr.0);
        addrs[32..48].copy_from_slice(&c.daddr.0);
    }
    Some(len)
}

/// Reads the entry at the start of `bytes`; returns it and its length.
/// Error offsets are `base` plus the offset in `bytes`.
pub fn decode_entry(bytes: &[u8], base: usize) -> Result<(SyncConn, usize), WireError> {
    let offset = base;
    let (Some(&ty), Some(&len)) = (bytes.get(field::E_TYPE), bytes.get(field::E_LEN)) else {
        return Err(WireError::TruncatedEntry { offset });
    };
    let want = match ty {
        TYPE_V4 => ENTRY_V4_LEN,
        TYPE_V6 => ENTRY_V6_LEN,
        _ => return Err(WireError::UnknownEntryType { offset, ty }),
    };
    if usize::from(len) != want {
        return Err(WireError::BadEntryLength { offset, ty, len });
    }
    let Some(e) = bytes.get(..want) else {
        return Err(WireError::TruncatedEntry { offset });
    };
    let proto = e[field::E_PROTO];
    let proto = Proto::from_number(proto).ok_or(WireError::UnknownProto { offset, proto })?;
    let fwd = match e[field::E_FWD] {
        0 => Fwd::Masq,
        2 => Fwd::Tunnel,
        3 => Fwd::Route,
        fwd => return Err(WireError::UnknownFwd { offset, fwd }),
    };
    let state = e[field::E_STATE];
    let state = *TcpState::ALL
        .get(usize::from(state))
        .ok_or(WireError::UnknownState { offset, state })?;
    let wflags = e[field::E_FLAGS];
    if wflags & !wire_flags::ALL != 0 {
        return Err(WireError::UnknownFlags {
            offset,
            flags: wflags,
        });
    }
    let a = &e[field::E_ADDRS..];
    let (caddr, vaddr, daddr) = if ty == TYPE_V4 {
        (addr4(&a[0..4]), addr4(&a[4..8]), addr4(&a[8..12]))
    } else {
        (addr6(&a[0..16]), addr6(&a[16..32]), addr6(&a[32..48]))
    };
    let conn = SyncConn {
        proto,
        caddr,
        cport: be16(&e[field::E_CPORT]),
        vaddr,
        vport: be16(&e[field::E_VPORT]),
        daddr,
        dport: be16(&e[field::E_DPORT]),
        fwd,
        state,
        flags: flags_from_wire(wflags),
        timeout_ms: be32(&e[field::E_TIMEOUT]),
        fwmark: be32(&e[field::E_FWMARK]),
    };
    Ok((conn, want))
}

/// Fills the last [`MAC_LEN`] bytes of `datagram` with the MAC of the bytes
/// before them. The datagram must be at least [`OVERHEAD`] long.
pub fn seal(datagram: &mut [u8], key: &Key) -> Result<(), WireError> {
    let len = datagram.len();
    if len < OVERHEAD {
        return Err(WireError::Truncated { len });
    }
    let (body, tag) = datagram.split_at_mut(len - MAC_LEN);
    let mut mac = key.mac();
    mac.update(body);
    tag.copy_from_slice(&mac.finalize().into_bytes()[..MAC_LEN]);
    Ok(())
}

/// Authenticates and checks a whole datagram (see the module docs for the
/// order of the checks) and returns a view of it.
pub fn open<'a>(bytes: &'a [u8], key: &Key) -> Result<Datagram<'a>, WireError> {
    let header = Header::peek(bytes)?;
    let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    let mut mac = key.mac();
    mac.update(body);
    mac.verify_truncated_left(tag)
        .map_err(|_| WireError::BadMac)?;
    let entries = &body[HEADER_LEN..];
    check_entries(entries, header.count)?;
    Ok(Datagram { header, entries })
}

/// Walks the entries region: every entry well-formed, as many as declared.
fn check_entries(mut rest: &[u8], declared: u16) -> Result<(), WireError> {
    let mut offset = HEADER_LEN;
    let mut found = 0usize;
    while !rest.is_empty() {
        let (_, n) = decode_entry(rest, offset)?;
        rest = &rest[n..];
        offset += n;
        found += 1;
    }
    if found != usize::from(declared) {
        return Err(WireError::CountMismatch { declared, found });
    }
    Ok(())
}

/// An authenticated, well-formed datagram ([`open`] made it).
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    header: Header,
    entries: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Its header.
    #[inline]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Its entries, decoded one at a time from the datagram's bytes.
    #[inline]
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            rest: self.entries,
            left: usize::from(self.header.count),
        }
    }
}

/// Iterator over a checked datagram's entries.
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    rest: &'a [u8],
    left: usize,
}

impl Iterator for Entries<'_> {
    type Item = SyncConn;

    #[inline]
    fn next(&mut self) -> Option<SyncConn> {
        if self.left == 0 {
            return None;
        }
        // `open` checked every entry, so this does not fail; if it did,
        // iteration would just end.
        match decode_entry(self.rest, 0) {
            Ok((c, n)) => {
                self.rest = &self.rest[n..];
                self.left -= 1;
                Some(c)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Entries<'_> {}

/// The datagram limit for a path MTU: the MTU less the IP (20 or 40 bytes)
/// and UDP (8) headers, clamped to [`MIN_MAXLEN`]..=[`MAX_DATAGRAM_LEN`]
/// (IPVS derives `sync_maxlen` from the interface MTU the same way).
pub fn maxlen_for_mtu(mtu: usize, ipv6: bool) -> usize {
    let ip = if ipv6 { 40 } else { 20 };
    mtu.saturating_sub(ip + 8)
        .clamp(MIN_MAXLEN, MAX_DATAGRAM_LEN)
}

fn flags_to_wire(f: u16) -> u8 {
    let mut w = 0;
    if f & flags::TEMPLATE != 0 {
        w |= wire_flags::TEMPLATE;
    }
    if f & flags::PERSISTENT != 0 {
        w |= wire_flags::PERSISTENT;
    }
    if f & flags::NOOUTPUT != 0 {
        w |= wire_flags::NOOUTPUT;
    }
    w
}

fn flags_from_wire(w: u8) -> u16 {
    let mut f = 0;
    if w & wire_flags::TEMPLATE != 0 {
        f |= flags::TEMPLATE;
    }
    if w & wire_flags::PERSISTENT != 0 {
        f |= flags::PERSISTENT;
    }
    if w & wire_flags::NOOUTPUT != 0 {
        f |= flags::NOOUTPUT;
    }
    f
}

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[inline]
fn be64(b: &[u8]) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

#[inline]
fn addr4(b: &[u8]) -> Addr {
    Addr::v4([b[0], b[1], b[2], b[3]])
}

#[inline]
fn addr6(b: &[u8]) -> Addr {
    let mut a = [0; 16];
    a.copy_from_slice(&b[..16]);
    Addr::v6(a)
}
