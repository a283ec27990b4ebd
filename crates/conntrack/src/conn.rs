//! The 128-byte connection entry.

use crate::addr::{Addr, ConnKey, Proto, ReplyKey};
use crate::dest::DestId;
use crate::state::TcpState;

/// How packets of a connection reach the real server (IPVS's forwarding
/// methods; the numbers match `IP_VS_CONN_F_MASQ/TUNNEL/DROUTE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Fwd {
    /// NAT (`-m`, "Masq"): rewrite addresses and ports both ways.
    Masq = 0,
    /// IP-in-IP tunnel (`-i`, "Tunnel").
    Tunnel = 2,
    /// Direct routing (`-g`, "Route"): rewrite the destination MAC only.
    Route = 3,
}

impl Fwd {
    /// From the stored byte; unknown values read as `Route`.
    #[inline]
    pub fn from_u8(v: u8) -> Fwd {
        match v {
            0 => Fwd::Masq,
            2 => Fwd::Tunnel,
            _ => Fwd::Route,
        }
    }

    /// The name `ipvsadm -L` prints in the Forward column.
    pub fn name(self) -> &'static str {
        match self {
            Fwd::Masq => "Masq",
            Fwd::Tunnel => "Tunnel",
            Fwd::Route => "Route",
        }
    }
}

/// Connection flag bits (a subset of IPVS's `IP_VS_CONN_F_*`, renumbered).
pub mod flags {
    /// A persistence template, not a connection.
    pub const TEMPLATE: u16 = 1 << 0;
    /// Counted as inactive on its destination.
    pub const INACTIVE: u16 = 1 << 1;
    /// No output packet seen yet on a non-NAT connection (input-only TCP table).
    pub const NOOUTPUT: u16 = 1 << 2;
    /// Created under a persistent service.
    pub const PERSISTENT: u16 = 1 << 3;
    /// Reachable by its in-direction key.
    pub const HASHED_IN: u16 = 1 << 4;
    /// Reachable by its reply key (NAT).
    pub const HASHED_OUT: u16 = 1 << 5;
    /// Controlled by a template (the `control` field names it).
    pub const CONTROLLED: u16 = 1 << 6;
    /// Created by connection sync rather than by a packet.
    pub const SYNCED: u16 = 1 << 7;
    /// Slot is in use (cleared on free).
    pub const LIVE: u16 = 1 << 15;
}

/// Marks "no slot" in the intrusive links.
pub(crate) const NIL: u32 = u32::MAX;

/// One connection (or persistence template), exactly 128 bytes: two cache
/// lines, the first with everything a lookup compares, the second with what
/// a hit updates.
///
/// The fields of the intrusive links (hash chains, timer wheel, template
/// control) are private to the table.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Conn {
    // --- line 0: identity (read by every lookup)
    /// Client address.
    pub caddr: Addr,
    /// Virtual address (fwmark templates: the mark, as an IPv4-mapped address).
    pub vaddr: Addr,
    /// Real server address.
    pub daddr: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real server port.
    pub dport: u16,
    pub(crate) proto: u8,
    pub(crate) state: u8,
    pub(crate) fwd: u8,
    pub(crate) _pad: u8,
    /// `flags::*` bits.
    pub flags: u16,
    /// Destination slot in the [`crate::DestTable`].
    pub dest: DestId,
    // --- line 1: per-packet updates and links
    /// Expiry time in milliseconds of the caller's clock.
    pub expires: u64,
    /// Current timeout in milliseconds (expiry is refreshed to now + timeout).
    pub timeout_ms: u32,
    /// Template: number of connections it controls. Connection: the
    /// template's [`crate::ConnId`] when `CONTROLLED`.
    pub(crate) control: u32,
    /// Packets client -> server.
    pub in_pkts: u64,
    /// Bytes client -> server.
    pub in_bytes: u64,
    /// Packets server -> client (NAT).
    pub out_pkts: u64,
    /// Bytes server -> client (NAT).
    pub out_bytes: u64,
    pub(crate) next_in: u32,
    pub(crate) next_out: u32,
    pub(crate) tw_prev: u32,
    pub(crate) tw_next: u32,
}

const _: () = assert!(std::mem::size_of::<Conn>() == 128);
const _: () = assert!(std::mem::align_of::<Conn>() == 64);

impl Conn {
    pub(crate) const EMPTY: Conn = Conn {
        caddr: Addr::UNSPECIFIED,
        vaddr: Addr::UNSPECIFIED,
        daddr: Addr::UNSPECIFIED,
        cport: 0,
        vport: 0,
        dport: 0,
        proto: 0,
        state: 0,
        fwd: 0,
        _pad: 0,
        flags: 0,
        dest: 0,
        expires: 0,
        timeout_ms: 0,
        control: 0,
        in_pkts: 0,
        in_bytes: 0,
        out_pkts: 0,
        out_bytes: 0,
        next_in: NIL,
        next_out: NIL,
        tw_prev: NIL,
        tw_next: NIL,
    };

    /// Transport protocol.
    #[inline]
    pub fn proto(&self) -> Proto {
        Proto::from_number(self.proto).unwrap_or(Proto::Any)
    }

    /// TCP state (other protocols stay in `None`; listings show them by
    /// protocol name, as ipvsadm does).
    #[inline]
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_u8(self.state)
    }

    /// Forwarding method.
    #[inline]
    pub fn fwd(&self) -> Fwd {
        Fwd::from_u8(self.fwd)
    }

    /// Whether this entry is a persistence template.
    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }

    /// The in-direction key.
    #[inline]
    pub fn key(&self) -> ConnKey {
        ConnKey {
            proto: self.proto(),
            caddr: self.caddr,
            cport: self.cport,
            vaddr: self.vaddr,
            vport: self.vport,
        }
    }

    /// The reply-direction key.
    #[inline]
    pub fn reply_key(&self) -> ReplyKey {
        ReplyKey {
            proto: self.proto(),
            caddr: self.caddr,
            cport: self.cport,
            daddr: self.daddr,
            dport: self.dport,
        }
    }

    /// For a template: how many connections it controls.
    #[inline]
    pub fn controlled(&self) -> u32 {
        if self.is_template() { self.control } else { 0 }
    }

    #[inline]
    pub(crate) fn matches_in(&self, k: &ConnKey) -> bool {
        self.cport == k.cport
            && self.vport == k.vport
            && self.proto == k.proto as u8
            && self.caddr == k.caddr
            && self.vaddr == k.vaddr
    }

    #[inline]
    pub(crate) fn matches_out(&self, k: &ReplyKey) -> bool {
        self.cport == k.cport
            && self.dport == k.dport
            && self.proto == k.proto as u8
            && self.caddr == k.caddr
            && self.daddr == k.daddr
    }
}
