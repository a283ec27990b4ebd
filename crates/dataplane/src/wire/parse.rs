//! The one-pass frame parser: [`parse`] reads a frame once into a
//! [`PacketInfo`].

use xvs_conntrack::{Addr, Af};

use super::ethernet::{EthernetFrame, VlanTag, ether_type};
use super::icmp::{self, IcmpPacket};
use super::ipv4::{self, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::tcp::TcpPacket;
use super::udp::{self, UdpPacket};
use super::{FragKind, ParseError, ip_proto};

/// What the pipeline needs to know about a frame: where its headers are, the
/// flow it belongs to and the fields that decide how it is handled. Offsets
/// are from the start of the frame, so the frame can be rewritten in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// Number of VLAN tags (0, 1 or 2).
    pub vlan_count: u8,
    /// Tag control information of the VLAN tags, outermost first; 0 where
    /// absent.
    pub vlan_tci: [u16; 2],
    /// Offset of the IP header (14, 18 or 22).
    pub l3_off: usize,
    /// Address family.
    pub af: Af,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// IP protocol of the transport header: the IPv4 protocol, or the IPv6
    /// next header after the extension headers (an [`ip_proto`] number).
    pub proto: u8,
    /// Length of the IP packet: the IPv4 total length, or 40 plus the IPv6
    /// payload length. The frame may hold padding beyond it.
    pub ip_len: usize,
    /// IPv4 time to live or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 type of service or IPv6 traffic class (DSCP and ECN).
    pub tos: u8,
    /// The IPv4 Don't Fragment flag; false for IPv6, which has none.
    pub df: bool,
    /// Whether the packet is a fragment, and which kind.
    pub frag: FragKind,
    /// Offset of the transport header (after IPv4 options or IPv6 extension
    /// headers); of the fragment data for a non-first fragment.
    pub l4_off: usize,
    /// Bytes from `l4_off` to the end of the IP packet.
    pub l4_len: usize,
    /// TCP or UDP source port; 0 for other protocols and non-first fragments.
    pub sport: u16,
    /// TCP or UDP destination port; 0 for other protocols and non-first
    /// fragments.
    pub dport: u16,
    /// TCP flags (see [`tcp::flags`](super::tcp::flags)); 0 when not TCP.
    pub tcp_flags: u8,
    /// ICMP or ICMPv6 message type; 0 when not ICMP.
    pub icmp_type: u8,
    /// ICMP or ICMPv6 message code; 0 when not ICMP.
    pub icmp_code: u8,
    /// The packet quoted by an ICMP error (ICMPv4 destination unreachable,
    /// source quench, time exceeded, parameter problem; ICMPv6 types 1-4).
    pub inner: Option<InnerInfo>,
}

/// The packet quoted by an ICMP or ICMPv6 error: the packet the error is
/// about, which the director sent (or forwarded) in the other direction.
/// It is cut short by the sender, so only its headers are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerInfo {
    /// Offset of the quoted IP header in the frame.
    pub l3_off: usize,
    /// Address family (always that of the ICMP message carrying it).
    pub af: Af,
    /// Source address of the quoted packet.
    pub src: Addr,
    /// Destination address of the quoted packet.
    pub dst: Addr,
    /// IP protocol of the quoted packet (after IPv6 extension headers).
    pub proto: u8,
    /// Whether the quoted packet is a fragment, and which kind.
    pub frag: FragKind,
    /// Offset of the quoted transport header in the frame.
    pub l4_off: usize,
    /// Quoted transport bytes present: up to the quoted IP length or the end
    /// of the ICMP message, whichever comes first.
    pub l4_len: usize,
    /// Quoted TCP or UDP source port, when at least 8 bytes of the transport
    /// header are quoted (RFC 792) and the quoted packet is not a non-first
    /// fragment; 0 otherwise.
    pub sport: u16,
    /// Quoted TCP or UDP destination port, under the same conditions; 0
    /// otherwise.
    pub dport: u16,
}

/// Parses an Ethernet frame carrying IPv4 or IPv6 in one pass.
///
/// Reads the Ethernet header and up to two VLAN tags, the IP header (IPv4:
/// header checksum verified; IPv6: extension headers walked, see
/// [`ipv6::walk_ext_headers`]), then the transport header: ports and flags of
/// TCP, ports of UDP, type and code of ICMP / ICMPv6 with the checksum
/// verified and, for errors, the quoted packet's headers. A non-first
/// fragment stops after the IP header (ports 0); the pipeline decides what
/// to do with it. Other transport protocols are not looked into.
///
/// The IP length, not the frame length, bounds the transport header: bytes
/// after it are Ethernet padding. TCP and UDP checksums are not verified
/// (incremental rewrites carry a wrong checksum over unchanged, as in IPVS).
///
/// Never allocates and never panics; every `Err` is a drop reason.
pub fn parse(frame: &[u8]) -> Result<PacketInfo, ParseError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    let mut vlan_tci = [0u16; 2];
    let mut vlan_count = 0u8;
    for tci in &mut vlan_tci {
        if !matches!(ethertype, ether_type::VLAN | ether_type::QINQ) {
            break;
        }
        let tag = VlanTag::new_checked(rest)?;
        *tci = tag.tci();
        vlan_count += 1;
        ethertype = tag.ethertype();
        rest = tag.payload();
    }
    let l2 = Link {
        vlan_count,
        vlan_tci,
        l3_off: frame.len() - rest.len(),
    };
    match ethertype {
        ether_type::IPV4 => parse_ipv4(rest, l2),
        ether_type::IPV6 => parse_ipv6(rest, l2),
        _ => Err(ParseError::UnsupportedEthertype),
    }
}

/// The link-layer part of a [`PacketInfo`].
struct Link {
    vlan_count: u8,
    vlan_tci: [u16; 2],
    l3_off: usize,
}

// The IP parsers build the whole `PacketInfo` and let the transport parser
// fill its part in place: assembling it from partial structs instead costs a
// third of the parse time in store-to-load forwarding stalls (16-byte
// addresses written in pieces, then copied whole).

/// Parses the IPv4 packet after the link layer `l2`.
fn parse_ipv4(packet: &[u8], l2: Link) -> Result<PacketInfo, ParseError> {
    if packet.first().is_some_and(|b| b >> 4 != 4) {
        return Err(ParseError::BadIpv4Version);
    }
    let ip = Ipv4Packet::new_checked(packet)?;
    if !ip.verify_checksum() {
        return Err(ParseError::BadIpv4Checksum);
    }
    let l4 = ip.payload();
    let mut info = PacketInfo {
        vlan_count: l2.vlan_count,
        vlan_tci: l2.vlan_tci,
        l3_off: l2.l3_off,
        af: Af::V4,
        src: Addr::v4(ip.src_addr()),
        dst: Addr::v4(ip.dst_addr()),
        proto: ip.protocol(),
        ip_len: usize::from(ip.total_len()),
        ttl: ip.ttl(),
        tos: ip.tos(),
        df: ip.dont_frag(),
        frag: ipv4_frag(&ip),
        l4_off: l2.l3_off + ip.header_len(),
        l4_len: l4.len(),
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        inner: None,
    };
    parse_transport(&mut info, l4)?;
    Ok(info)
}

fn ipv4_frag<T: AsRef<[u8]>>(ip: &Ipv4Packet<T>) -> FragKind {
    if ip.frag_offset() != 0 {
        FragKind::NonFirst
    } else if ip.more_frags() {
        FragKind::First
    } else {
        FragKind::None
    }
}

/// Parses the IPv6 packet, extension headers included, after the link layer
/// `l2`.
fn parse_ipv6(packet: &[u8], l2: Link) -> Result<PacketInfo, ParseError> {
    if packet.first().is_some_and(|b| b >> 4 != 6) {
        return Err(ParseError::BadIpv6Version);
    }
    let ip = Ipv6Packet::new_checked(packet)?;
    let payload = ip.payload();
    let upper = ipv6::walk_ext_headers(ip.next_header(), payload)?;
    let l4 = &payload[upper.offset..];
    let mut info = PacketInfo {
        vlan_count: l2.vlan_count,
        vlan_tci: l2.vlan_tci,
        l3_off: l2.l3_off,
        af: Af::V6,
        src: Addr::v6(ip.src_addr()),
        dst: Addr::v6(ip.dst_addr()),
        proto: upper.protocol,
        ip_len: ipv6::HEADER_LEN + payload.len(),
        ttl: ip.hop_limit(),
        tos: ip.traffic_class(),
        df: false,
        frag: upper.frag,
        l4_off: l2.l3_off + ipv6::HEADER_LEN + upper.offset,
        l4_len: l4.len(),
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        inner: None,
    };
    parse_transport(&mut info, l4)?;
    Ok(info)
}

/// Reads the transport header `l4` into the transport fields of `info`,
/// whose network fields are set.
fn parse_transport(info: &mut PacketInfo, l4: &[u8]) -> Result<(), ParseError> {
    if info.frag == FragKind::NonFirst {
        return Ok(());
    }
    match (info.proto, info.af) {
        (ip_proto::TCP, _) => {
            let tcp = TcpPacket::new_checked(l4)?;
            info.sport = tcp.src_port();
            info.dport = tcp.dst_port();
            info.tcp_flags = tcp.flags();
        }
        (ip_proto::UDP, _) => {
            // A first fragment holds the header but not the length it names.
            let udp = if info.frag == FragKind::First {
                if l4.len() < udp::HEADER_LEN {
                    return Err(ParseError::TruncatedUdp);
                }
                UdpPacket::new_unchecked(l4)
            } else {
                UdpPacket::new_checked(l4)?
            };
            info.sport = udp.src_port();
            info.dport = udp.dst_port();
        }
        (ip_proto::ICMP, Af::V4) | (ip_proto::ICMPV6, Af::V6) => {
            let msg = IcmpPacket::new_checked(l4)?;
            // A fragment's checksum covers the reassembled message.
            if info.frag == FragKind::None {
                let ok = match info.af {
                    Af::V4 => msg.verify_checksum_v4(),
                    Af::V6 => msg.verify_checksum_v6(&info.src, &info.dst),
                };
                if !ok {
                    return Err(ParseError::BadIcmpChecksum);
                }
            }
            info.icmp_type = msg.msg_type();
            info.icmp_code = msg.msg_code();
            let is_error = match info.af {
                Af::V4 => icmp::v4::is_error(info.icmp_type),
                Af::V6 => icmp::v6::is_error(info.icmp_type),
            };
            if is_error {
                let quote_off = info.l4_off + icmp::HEADER_LEN;
                info.inner = Some(match info.af {
                    Af::V4 => parse_inner_v4(msg.data(), quote_off)?,
                    Af::V6 => parse_inner_v6(msg.data(), quote_off)?,
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// Parses the IPv4 packet quoted by an ICMP error at frame offset `l3_off`.
/// The quote is cut short, so its total length is not checked against it.
fn parse_inner_v4(quote: &[u8], l3_off: usize) -> Result<InnerInfo, ParseError> {
    if quote.first().is_some_and(|b| b >> 4 != 4) {
        return Err(ParseError::BadIcmpInner);
    }
    if quote.len() < ipv4::HEADER_LEN {
        return Err(ParseError::TruncatedIcmpInner);
    }
    let ip = Ipv4Packet::new_unchecked(quote);
    let header_len = ip.header_len();
    if header_len < ipv4::HEADER_LEN {
        return Err(ParseError::BadIcmpInner);
    }
    if quote.len() < header_len {
        return Err(ParseError::TruncatedIcmpInner);
    }
    let total_len = usize::from(ip.total_len());
    if total_len < header_len {
        return Err(ParseError::BadIcmpInner);
    }
    let l4 = &quote[header_len..total_len.min(quote.len())];
    let (proto, frag) = (ip.protocol(), ipv4_frag(&ip));
    let (sport, dport) = quoted_ports(proto, frag, l4);
    Ok(InnerInfo {
        l3_off,
        af: Af::V4,
        src: Addr::v4(ip.src_addr()),
        dst: Addr::v4(ip.dst_addr()),
        proto,
        frag,
        l4_off: l3_off + header_len,
        l4_len: l4.len(),
        sport,
        dport,
    })
}

/// Parses the IPv6 packet quoted by an ICMPv6 error at frame offset
/// `l3_off`, extension headers included. The quote is cut short, so its
/// payload length is not checked against it.
fn parse_inner_v6(quote: &[u8], l3_off: usize) -> Result<InnerInfo, ParseError> {
    if quote.first().is_some_and(|b| b >> 4 != 6) {
        return Err(ParseError::BadIcmpInner);
    }
    if quote.len() < ipv6::HEADER_LEN {
        return Err(ParseError::TruncatedIcmpInner);
    }
    let ip = Ipv6Packet::new_unchecked(quote);
    let end = (ipv6::HEADER_LEN + usize::from(ip.payload_len())).min(quote.len());
    let payload = &quote[ipv6::HEADER_LEN..end];
    let upper = ipv6::walk_ext_headers(ip.next_header(), payload).map_err(|e| match e {
        ParseError::TruncatedIpv6ExtHeader => ParseError::TruncatedIcmpInner,
        e => e,
    })?;
    let l4 = &payload[upper.offset..];
    let (sport, dport) = quoted_ports(upper.protocol, upper.frag, l4);
    Ok(InnerInfo {
        l3_off,
        af: Af::V6,
        src: Addr::v6(ip.src_addr()),
        dst: Addr::v6(ip.dst_addr()),
        proto: upper.protocol,
        frag: upper.frag,
        l4_off: l3_off + ipv6::HEADER_LEN + upper.offset,
        l4_len: l4.len(),
        sport,
        dport,
    })
}

/// The ports of a quoted TCP or UDP header `l4`: read when at least 8 bytes
/// are quoted and the quoted packet is not a non-first fragment, else 0.
fn quoted_ports(proto: u8, frag: FragKind, l4: &[u8]) -> (u16, u16) {
    match l4 {
        [s0, s1, d0, d1, _, _, _, _, ..]
            if matches!(proto, ip_proto::TCP | ip_proto::UDP) && frag != FragKind::NonFirst =>
        {
            (
                u16::from_be_bytes([*s0, *s1]),
                u16::from_be_bytes([*d0, *d1]),
            )
        }
        _ => (0, 0),
    }
}
