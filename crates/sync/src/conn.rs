//! [`SyncConn`]: one connection (or persistence template) as the master
//! tells the backups about it.

use xvs_conntrack::conn::flags;
use xvs_conntrack::{Addr, Conn, ConnKey, Fwd, Proto, TcpState};

/// The connection flags that travel in a sync entry (conntrack's
/// [`flags`] numbering): whether the entry is a persistence template, whether
/// it was created under a persistent service, and whether a DR/TUN
/// connection is still in the input-only state machine (no reply seen).
///
/// The other bits (table links, `LIVE`, `INACTIVE`, `CONTROLLED`, `SYNCED`)
/// describe one director's table, not the connection: the backup derives its
/// own. [`crate::wire`] drops them when encoding.
pub const SYNC_FLAGS: u16 = flags::TEMPLATE | flags::PERSISTENT | flags::NOOUTPUT;

/// One connection or persistence template, as synced.
///
/// A plain value: the master builds it from its table ([`SyncConn::from_conn`]),
/// [`crate::Encoder`] writes it into a datagram, and the backup gets it back
/// from [`crate::wire::Datagram::entries`] to create or refresh its own entry.
///
/// Addresses use conntrack's 16-byte [`Addr`]; an entry whose three
/// addresses are IPv4 takes the short IPv4 form on the wire (32 bytes instead
/// of 68).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SyncConn {
    /// Transport protocol ([`Proto::Any`] for fwmark persistence templates).
    pub proto: Proto,
    /// Client address (templates: masked by the persistence netmask).
    pub caddr: Addr,
    /// Client port (templates: 0).
    pub cport: u16,
    /// Virtual address (fwmark templates: the mark as an IPv4-mapped address,
    /// as conntrack stores it).
    pub vaddr: Addr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: Addr,
    /// Real server port.
    pub dport: u16,
    /// Forwarding method.
    pub fwd: Fwd,
    /// TCP state; other protocols use [`TcpState::None`].
    pub state: TcpState,
    /// Flag bits in conntrack's numbering; only [`SYNC_FLAGS`] are carried.
    pub flags: u16,
    /// Time left before the entry expires, in milliseconds.
    pub timeout_ms: u32,
    /// Firewall mark of the service, 0 when unused.
    pub fwmark: u32,
}

impl SyncConn {
    /// The entry for a table's connection at `now_ms` (the table's clock):
    /// the timeout sent is the time left, saturated to `u32`; the flags are
    /// reduced to [`SYNC_FLAGS`]; `fwmark` is 0 (conntrack keeps a fwmark
    /// template's mark in `vaddr`; set the field if the caller knows the
    /// service's mark).
    pub fn from_conn(c: &Conn, now_ms: u64) -> SyncConn {
        let left = c.expires.saturating_sub(now_ms);
        SyncConn {
            proto: c.proto(),
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            fwd: c.fwd(),
            state: c.tcp_state(),
            flags: c.flags & SYNC_FLAGS,
            timeout_ms: u32::try_from(left).unwrap_or(u32::MAX),
            fwmark: 0,
        }
    }

    /// Whether this is a persistence template.
    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }

    /// Whether the three addresses are IPv4, so the entry takes the short
    /// form on the wire.
    #[inline]
    pub fn is_v4(&self) -> bool {
        self.caddr.is_v4() && self.vaddr.is_v4() && self.daddr.is_v4()
    }

    /// The in-direction key the backup files the entry under.
    #[inline]
    pub fn key(&self) -> ConnKey {
        ConnKey {
            proto: self.proto,
            caddr: self.caddr,
            cport: self.cport,
            vaddr: self.vaddr,
            vport: self.vport,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        let mut c = SyncConn {
            proto: Proto::Tcp,
            caddr: Addr::v4([198, 51, 100, 7]),
            cport: 40000,
            vaddr: Addr::v4([192, 0, 2, 1]),
            vport: 80,
            daddr: Addr::v4([10, 0, 0, 2]),
            dport: 8080,
            fwd: Fwd::Masq,
            state: TcpState::Established,
            flags: 0,
            timeout_ms: 900_000,
            fwmark: 0,
        };
        assert!(c.is_v4());
        assert!(!c.is_template());
        assert_eq!(c.key().vport, 80);
        // A tunnel to an IPv6 real server makes the entry IPv6-sized.
        c.daddr = Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert!(!c.is_v4());
        c.flags = flags::TEMPLATE;
        assert!(c.is_template());
    }
}
