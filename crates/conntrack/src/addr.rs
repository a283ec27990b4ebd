//! Addresses and keys shared by every layer of the director.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family of a connection or service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Af {
    /// IPv4.
    V4 = 4,
    /// IPv6.
    V6 = 6,
}

/// An IPv4 or IPv6 address in one 16-byte form.
///
/// IPv4 addresses are held IPv4-mapped (`::ffff:a.b.c.d`), so one comparison
/// covers both families and [`Addr::to_ip`] is unambiguous.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Addr(pub [u8; 16]);

impl Addr {
    /// The all-zero address (IPv6 `::`), used for "none".
    pub const UNSPECIFIED: Addr = Addr([0; 16]);

    /// An IPv4 address from its four octets.
    #[inline]
    pub const fn v4(o: [u8; 4]) -> Addr {
        // Built as one 128-bit value (stored as two words), not byte by
        // byte: a later wide load of byte-wise stores stalls store-to-load
        // forwarding, and every packet's key is built this way.
        Addr(((0xffff_u128 << 32) | u32::from_be_bytes(o) as u128).to_be_bytes())
    }

    /// An IPv6 address from its sixteen octets.
    #[inline]
    pub const fn v6(o: [u8; 16]) -> Addr {
        Addr(o)
    }

    /// Whether this is an IPv4-mapped address.
    #[inline]
    pub fn is_v4(&self) -> bool {
        self.0[..10] == [0; 10] && self.0[10] == 0xff && self.0[11] == 0xff
    }

    /// The four octets of an IPv4 address (meaningful only when [`Addr::is_v4`]).
    #[inline]
    pub fn v4_octets(&self) -> [u8; 4] {
        [self.0[12], self.0[13], self.0[14], self.0[15]]
    }

    /// The address family this address belongs to.
    #[inline]
    pub fn af(&self) -> Af {
        if self.is_v4() { Af::V4 } else { Af::V6 }
    }

    /// As a standard library address.
    pub fn to_ip(&self) -> IpAddr {
        if self.is_v4() {
            IpAddr::V4(Ipv4Addr::from(self.v4_octets()))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }

    /// Keeps the first `bits` bits of the address within its family (IPv4:
    /// 0..=32 of the four octets; IPv6: 0..=128), zeroing the rest. This is
    /// the persistence netmask (`-M`).
    pub fn masked(&self, bits: u8) -> Addr {
        let (start, max) = if self.is_v4() {
            (12usize, 32u8)
        } else {
            (0, 128)
        };
        let bits = bits.min(max) as usize;
        let mut out = *self;
        for (i, b) in out.0[start..].iter_mut().enumerate() {
            let lo = i * 8;
            if lo >= bits {
                *b = 0;
            } else if lo + 8 > bits {
                *b &= 0xffu8 << (8 - (bits - lo));
            }
        }
        out
    }
}

impl std::hash::Hash for Addr {
    /// Two words, not a length-prefixed byte stream: half the hasher's work,
    /// and loads of the same width as the stores that built the address.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let w = u128::from_ne_bytes(self.0);
        state.write_u64(w as u64);
        state.write_u64((w >> 64) as u64);
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(a) => Addr::v4(a.octets()),
            IpAddr::V6(a) => Addr::v6(a.octets()),
        }
    }
}

impl From<Ipv4Addr> for Addr {
    fn from(ip: Ipv4Addr) -> Addr {
        Addr::v4(ip.octets())
    }
}

impl From<Ipv6Addr> for Addr {
    fn from(ip: Ipv6Addr) -> Addr {
        Addr::v6(ip.octets())
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_ip(), f)
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_ip(), f)
    }
}

/// Transport protocol of a connection, by IANA protocol number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Proto {
    /// Used by persistence templates of fwmark services (IPVS: `IPPROTO_IP`).
    Any = 0,
    /// TCP.
    Tcp = 6,
    /// UDP.
    Udp = 17,
    /// SCTP (keys and tables are ready; the state machine treats it like UDP
    /// until an SCTP state machine lands).
    Sctp = 132,
}

impl Proto {
    /// From an IP protocol number; `None` for protocols the director does not track.
    pub fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            0 => Some(Proto::Any),
            _ => None,
        }
    }

    /// The name ipvsadm prints (`TCP`, `UDP`, `SCTP`, `IP`).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Any => "IP",
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }
}

/// The key of a connection as seen in the client -> director direction:
/// protocol, client address and port, virtual address and port.
///
/// This is also the flow information schedulers hash on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Transport protocol.
    pub proto: Proto,
    /// Client address.
    pub caddr: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual (service) address.
    pub vaddr: Addr,
    /// Virtual (service) port.
    pub vport: u16,
}

/// The key of a NAT connection's reply direction (real server -> client):
/// the real server's address and port in place of the virtual ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplyKey {
    /// Transport protocol.
    pub proto: Proto,
    /// Client address (the reply's destination).
    pub caddr: Addr,
    /// Client port (the reply's destination port).
    pub cport: u16,
    /// Real server address (the reply's source).
    pub daddr: Addr,
    /// Real server port (the reply's source port).
    pub dport: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trip_and_family() {
        let a = Addr::v4([10, 1, 2, 3]);
        assert_eq!(a.0, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]);
        assert!(a.is_v4());
        assert_eq!(a.af(), Af::V4);
        assert_eq!(a.to_string(), "10.1.2.3");
        assert_eq!(Addr::from(a.to_ip()), a);
        let b: Addr = "2001:db8::1".parse::<IpAddr>().unwrap().into();
        assert_eq!(b.af(), Af::V6);
        assert_eq!(b.to_string(), "2001:db8::1");
    }

    #[test]
    fn netmask_within_family() {
        let a = Addr::v4([192, 168, 77, 201]);
        assert_eq!(a.masked(24), Addr::v4([192, 168, 77, 0]));
        assert_eq!(a.masked(20), Addr::v4([192, 168, 64, 0]));
        assert_eq!(a.masked(32), a);
        assert_eq!(a.masked(0), Addr::v4([0, 0, 0, 0]));
        assert!(a.masked(0).is_v4(), "mask keeps the v4-mapped prefix");
        let b: Addr = "2001:db8:aaaa:bbbb::1".parse::<IpAddr>().unwrap().into();
        let m: Addr = "2001:db8:aaaa::".parse::<IpAddr>().unwrap().into();
        assert_eq!(b.masked(48), m);
        assert_eq!(b.masked(128), b);
    }
}
