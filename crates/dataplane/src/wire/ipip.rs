//! IP-in-IP encapsulation, for the TUN forwarding method: the director puts
//! an IPv4 header in front of the client's packet, addressed to the real
//! server, which strips it and answers the client directly.

use xvs_conntrack::{Addr, Af};

use super::ipv4::{self, Ipv4Repr};
use super::ipv6::{self, Ipv6Repr};
use super::{PacketInfo, ip_proto};

/// Bytes the encapsulation adds in front of the inner IP header.
pub const OVERHEAD: usize = ipv4::HEADER_LEN;

/// The outer IPv4 header that carries the parsed packet `inner` from the
/// director (`src`) to a real server (`dst`), built as IPVS's
/// `ip_vs_tunnel_xmit` builds it:
///
/// - protocol 4 for an IPv4 inner packet (RFC 2003), 41 for IPv6 (RFC 4213);
/// - total length [`OVERHEAD`] + `inner.ip_len` (Ethernet padding stays out);
/// - TOS and TTL copied from the inner header (DSCP and ECN alike, the
///   "normal mode" of RFC 6040);
/// - DF copied from an IPv4 inner packet, clear for IPv6; no options;
/// - identification `ident`, which the caller picks (a per-core counter).
///
/// `None` when the encapsulated packet would exceed 65535 bytes. Write the
/// header with [`Ipv4Repr::emit`] into the [`OVERHEAD`] bytes in front of the
/// inner IP header, after moving the Ethernet header and VLAN tags into the
/// headroom; the innermost EtherType becomes IPv4 (it was IPv6 for an IPv6
/// inner packet).
pub fn ipip_outer(src: [u8; 4], dst: [u8; 4], ident: u16, inner: &PacketInfo) -> Option<Ipv4Repr> {
    let total_len = u16::try_from(OVERHEAD + inner.ip_len).ok()?;
    let protocol = match inner.af {
        Af::V4 => ip_proto::IPIP,
        Af::V6 => ip_proto::IPV6,
    };
    Some(Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        total_len,
        ident,
        dont_frag: inner.df,
        ttl: inner.ttl,
        tos: inner.tos,
    })
}

/// An outer header of either family: IPv4 (RFC 2003, 4in4 and 6in4) or IPv6
/// (RFC 2473, 4in6 and 6in6), as IPVS picks by the real server's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuterRepr {
    /// An IPv4 outer header.
    V4(Ipv4Repr),
    /// An IPv6 outer header.
    V6(Ipv6Repr),
}

impl OuterRepr {
    /// Bytes the header takes: 20 or 40.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            OuterRepr::V4(_) => ipv4::HEADER_LEN,
            OuterRepr::V6(_) => ipv6::HEADER_LEN,
        }
    }

    /// Never empty; for symmetry with [`len`](Self::len).
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header into the first [`len`](Self::len) bytes of `out`
    /// (which must hold that many).
    #[inline]
    pub fn emit(&self, out: &mut [u8]) {
        match self {
            OuterRepr::V4(r) => {
                if let Some(h) = out.first_chunk_mut::<{ ipv4::HEADER_LEN }>() {
                    r.emit(h);
                }
            }
            OuterRepr::V6(r) => {
                if let Some(h) = out.first_chunk_mut::<{ ipv6::HEADER_LEN }>() {
                    r.emit(h);
                }
            }
        }
    }
}

/// The outer header that carries `inner` from the director (`src`) to a
/// real server (`dst`), of the family of the two addresses: for IPv4 what
/// [`ipip_outer`] builds; for IPv6 next header 4 or 41 by the inner family,
/// payload length `inner.ip_len`, traffic class and hop limit copied from
/// the inner header. `None` when the addresses' families differ or the
/// result would not fit its length field.
pub fn tunnel_outer(src: &Addr, dst: &Addr, ident: u16, inner: &PacketInfo) -> Option<OuterRepr> {
    match (src.is_v4(), dst.is_v4()) {
        (true, true) => {
            ipip_outer(src.v4_octets(), dst.v4_octets(), ident, inner).map(OuterRepr::V4)
        }
        (false, false) => Some(OuterRepr::V6(Ipv6Repr {
            src_addr: src.0,
            dst_addr: dst.0,
            next_header: match inner.af {
                Af::V4 => ip_proto::IPIP,
                Af::V6 => ip_proto::IPV6,
            },
            payload_len: u16::try_from(inner.ip_len).ok()?,
            hop_limit: inner.ttl,
            traffic_class: inner.tos,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ipv4Packet, ethernet, parse};
    use etherparse::PacketBuilder;

    const DIRECTOR: [u8; 4] = [192, 0, 2, 10];
    const REAL_SERVER: [u8; 4] = [198, 51, 100, 20];

    /// Encapsulates `frame` (Ethernet, then the inner IP packet and padding)
    /// the way the pipeline will: outer header between Ethernet and inner IP.
    fn encapsulate(frame: &[u8], ident: u16) -> Vec<u8> {
        let info = parse(frame).unwrap();
        let outer = ipip_outer(DIRECTOR, REAL_SERVER, ident, &info).unwrap();
        let mut header = [0xeeu8; OVERHEAD];
        outer.emit(&mut header);
        let mut out = frame[..info.l3_off].to_vec();
        out[info.l3_off - 2..].copy_from_slice(&ethernet::ether_type::IPV4.to_be_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&frame[info.l3_off..info.l3_off + info.ip_len]);
        out
    }

    #[test]
    fn ipv4_inner() {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17)
            .tcp(40000, 80, 1, 1000)
            .write(&mut frame, b"hello")
            .unwrap();
        frame[15] = 0xb9; // TOS: DSCP 46, ECN 1
        frame.extend_from_slice(&[0; 6]); // padding
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
        ip.fill_checksum();
        let inner_ip = frame[14..14 + 45].to_vec();

        let out = encapsulate(&frame, 0x1234);
        let outer = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert!(outer.verify_checksum());
        assert_eq!(outer.protocol(), ip_proto::IPIP);
        assert_eq!(
            (outer.src_addr(), outer.dst_addr()),
            (DIRECTOR, REAL_SERVER)
        );
        assert_eq!(outer.total_len(), 20 + 45);
        assert_eq!(
            (outer.ttl(), outer.tos(), outer.ident()),
            (17, 0xb9, 0x1234)
        );
        assert!(outer.dont_frag(), "etherparse sets DF; copied");
        assert_eq!((outer.more_frags(), outer.frag_offset()), (false, 0));
        assert_eq!(outer.payload(), &inner_ip[..]);

        let ep = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
        let Some(etherparse::NetSlice::Ipv4(v4)) = ep.net else {
            panic!("not IPv4")
        };
        assert_eq!(v4.header().protocol(), etherparse::IpNumber::IPV4);
        assert_eq!(v4.payload().payload, &inner_ip[..]);

        let info = parse(&out).unwrap();
        assert_eq!(
            (info.proto, info.l4_off, info.l4_len),
            (ip_proto::IPIP, 34, 45)
        );
        assert_eq!((info.sport, info.dport), (0, 0));
    }

    #[test]
    fn ipv6_inner() {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .single_vlan(7.try_into().unwrap())
            .ipv6([0x20; 16], [0xfd; 16], 9)
            .udp(5353, 53)
            .write(&mut frame, b"q")
            .unwrap();
        let out = encapsulate(&frame, 7);
        assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 0x07], "VLAN tag kept");
        let outer = Ipv4Packet::new_checked(&out[18..]).unwrap();
        assert!(outer.verify_checksum());
        assert_eq!(outer.protocol(), ip_proto::IPV6);
        assert_eq!(outer.total_len(), 20 + 40 + 9);
        assert_eq!((outer.ttl(), outer.dont_frag()), (9, false));
        assert_eq!(outer.payload(), &frame[18..]);
    }

    #[test]
    fn too_long() {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut frame, &[])
            .unwrap();
        let mut info = parse(&frame).unwrap();
        info.ip_len = 65535 - OVERHEAD;
        assert_eq!(
            ipip_outer(DIRECTOR, REAL_SERVER, 0, &info)
                .unwrap()
                .total_len,
            65535
        );
        info.ip_len += 1;
        assert_eq!(ipip_outer(DIRECTOR, REAL_SERVER, 0, &info), None);
    }
}
