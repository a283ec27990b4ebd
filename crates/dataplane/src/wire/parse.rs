//! The one-pass frame parser: [`parse`] reads a frame once into a
//! [`PacketInfo`].

use xvs_conntrack::{Addr, Af};

use super::ethernet::{EthernetFrame, VlanTag, ether_type};
use super::icmp::{self, IcmpPacket};
use super::ipv4::{self, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::tcp::TcpPacket;
use super::udp::{self, UdpPacket};
use super::{FragKind, ParseError, checksum, ip_proto};

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
/// header checksum verified; IPv6: IPv4-mapped addresses refused,
/// extension headers walked, see [`ipv6::walk_ext_headers`]), then the
/// transport header: ports and flags of
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
    if let Some(info) = parse_common(frame) {
        return Ok(info);
    }
    parse_general(frame)
}

/// Offsets of the common case [`parse_common`] reads: untagged Ethernet,
/// then a 20-byte IPv4 header.
mod common {
    pub const ETHERTYPE: usize = 12;
    pub const IP: usize = 14;
    pub const VER_IHL: usize = IP;
    pub const TOS: usize = IP + 1;
    pub const TOTAL_LEN: usize = IP + 2;
    pub const FLAGS_FRAG: usize = IP + 6;
    pub const TTL: usize = IP + 8;
    pub const PROTO: usize = IP + 9;
    pub const SRC: usize = IP + 12;
    pub const DST: usize = IP + 16;
    pub const L4: usize = IP + 20;
    /// Bytes read: up to the end of a minimal TCP header.
    pub const SPAN: usize = L4 + 20;
}

/// The frames nearly all traffic consists of, in one pass behind one
/// bounds check: untagged Ethernet, IPv4 without options, not a fragment,
/// TCP or UDP whose header fits the IP length. Anything else, including
/// every malformed frame, returns `None` and goes to [`parse_general`],
/// which gives the same answer for the frames accepted here (a test
/// checks both on every fixture and on mutations of them).
#[inline(always)]
pub(crate) fn parse_common(frame: &[u8]) -> Option<PacketInfo> {
    use common::*;
    let h: &[u8; SPAN] = frame.first_chunk()?;
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    if be16(ETHERTYPE) != ether_type::IPV4 || h[VER_IHL] != 0x45 {
        return None;
    }
    let ip_len = usize::from(be16(TOTAL_LEN));
    let frag = be16(FLAGS_FRAG);
    // More-fragments or an offset: a fragment. The frame must hold the
    // whole IP packet, and the header must be intact.
    if frag & 0x3fff != 0 || IP + ip_len > frame.len() || checksum::checksum(&h[IP..L4]) != 0 {
        return None;
    }
    let l4_len = ip_len.checked_sub(L4 - IP)?;
    let (sport, dport, tcp_flags) = match h[PROTO] {
        ip_proto::TCP => {
            let data_off = usize::from(h[L4 + 12] >> 4) * 4;
            if l4_len < 20 || data_off < 20 || data_off > l4_len {
                return None;
            }
            (be16(L4), be16(L4 + 2), h[L4 + 13])
        }
        ip_proto::UDP => {
            let udp_len = usize::from(be16(L4 + 4));
            if l4_len < 8 || udp_len < 8 || udp_len > l4_len {
                return None;
            }
            (be16(L4), be16(L4 + 2), 0)
        }
        _ => return None,
    };
    let addr = |at: usize| Addr::v4([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    Some(PacketInfo {
        vlan_count: 0,
        vlan_tci: [0; 2],
        l3_off: IP,
        af: Af::V4,
        src: addr(SRC),
        dst: addr(DST),
        proto: h[PROTO],
        ip_len,
        ttl: h[TTL],
        tos: h[TOS],
        df: frag & 0x4000 != 0,
        frag: FragKind::None,
        l4_off: L4,
        l4_len,
        sport,
        dport,
        tcp_flags,
        icmp_type: 0,
        icmp_code: 0,
        inner: None,
    })
}

/// Every frame [`parse`] accepts, and the reason for each it refuses.
pub(crate) fn parse_general(frame: &[u8]) -> Result<PacketInfo, ParseError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut ethertype = eth.ethertype();
    let mut l3 = eth.payload();
    let mut vlan_tci = [0u16; 2];
    let mut vlan_count = 0u8;
    for tci in &mut vlan_tci {
        if !matches!(ethertype, ether_type::VLAN | ether_type::QINQ) {
            break;
        }
        let tag = VlanTag::new_checked(l3)?;
        *tci = tag.tci();
        vlan_count += 1;
        ethertype = tag.ethertype();
        l3 = tag.payload();
    }
    let l3_off = frame.len() - l3.len();
    let (net, l4) = match ethertype {
        ether_type::IPV4 => parse_ipv4(l3)?,
        ether_type::IPV6 => parse_ipv6(l3)?,
        _ => return Err(ParseError::UnsupportedEthertype),
    };
    let l4_off = l3_off + net.l4_start;
    let t = parse_transport(&net, l3, l4)?;
    // Built in one expression, straight into the return value: the addresses
    // are read from the frame here rather than carried in a partial struct,
    // whose 16-byte copy after byte-wise stores would stall store-to-load
    // forwarding (a third of the parse time when measured).
    Ok(PacketInfo {
        vlan_count,
        vlan_tci,
        l3_off,
        af: net.af,
        src: src_addr(net.af, l3),
        dst: dst_addr(net.af, l3),
        proto: net.proto,
        ip_len: net.ip_len,
        ttl: net.ttl,
        tos: net.tos,
        df: net.df,
        frag: net.frag,
        l4_off,
        l4_len: l4.len(),
        sport: t.sport,
        dport: t.dport,
        tcp_flags: t.tcp_flags,
        icmp_type: t.icmp_type,
        icmp_code: t.icmp_code,
        inner: match t.quote {
            Some(quote) => Some(parse_inner(net.af, quote, l4_off + icmp::HEADER_LEN)?),
            None => None,
        },
    })
}

impl PacketInfo {
    /// The source and destination addresses read again from `frame`, the
    /// frame this was parsed from. Same values as `src` and `dst`; the hot
    /// path builds its connection key with this because a fresh read of the
    /// frame is fast, while a copy of `src`/`dst` just after [`parse`] stored
    /// them waits on store-to-load forwarding. Given a frame too short to
    /// hold the IP header (not the one parsed), it returns `src` and `dst`.
    #[inline(always)]
    pub fn addrs_from(&self, frame: &[u8]) -> (Addr, Addr) {
        let header = match self.af {
            Af::V4 => ipv4::HEADER_LEN,
            Af::V6 => ipv6::HEADER_LEN,
        };
        match frame.get(self.l3_off..) {
            Some(l3) if l3.len() >= header => (src_addr(self.af, l3), dst_addr(self.af, l3)),
            _ => (self.src, self.dst),
        }
    }
}

/// What the IP header says, addresses aside (see [`src_addr`]).
struct Network {
    af: Af,
    proto: u8,
    ip_len: usize,
    ttl: u8,
    tos: u8,
    df: bool,
    frag: FragKind,
    /// Offset of the transport header from the IP header.
    l4_start: usize,
}

/// What the transport layer tells: ports and flags, or the ICMP type, code
/// and the quote of an error.
#[derive(Default)]
struct Transport<'a> {
    sport: u16,
    dport: u16,
    tcp_flags: u8,
    icmp_type: u8,
    icmp_code: u8,
    quote: Option<&'a [u8]>,
}

/// The source address of the IP packet `l3` of family `af`, whose header
/// [`parse`] checked.
#[inline(always)]
fn src_addr(af: Af, l3: &[u8]) -> Addr {
    match af {
        Af::V4 => Addr::v4(Ipv4Packet::new_unchecked(l3).src_addr()),
        Af::V6 => Addr::v6(Ipv6Packet::new_unchecked(l3).src_addr()),
    }
}

/// The destination address of the IP packet `l3` of family `af`, whose
/// header [`parse`] checked.
#[inline(always)]
fn dst_addr(af: Af, l3: &[u8]) -> Addr {
    match af {
        Af::V4 => Addr::v4(Ipv4Packet::new_unchecked(l3).dst_addr()),
        Af::V6 => Addr::v6(Ipv6Packet::new_unchecked(l3).dst_addr()),
    }
}

/// Parses the IPv4 header of `packet`; returns it and the transport bytes.
#[inline(always)]
fn parse_ipv4(packet: &[u8]) -> Result<(Network, &[u8]), ParseError> {
    if packet.first().is_some_and(|b| b >> 4 != 4) {
        return Err(ParseError::BadIpv4Version);
    }
    let ip = Ipv4Packet::new_checked(packet)?;
    if !ip.verify_checksum() {
        return Err(ParseError::BadIpv4Checksum);
    }
    let net = Network {
        af: Af::V4,
        proto: ip.protocol(),
        ip_len: usize::from(ip.total_len()),
        ttl: ip.ttl(),
        tos: ip.tos(),
        df: ip.dont_frag(),
        frag: ipv4_frag(&ip),
        l4_start: ip.header_len(),
    };
    Ok((net, ip.payload()))
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

/// Parses the IPv6 header of `packet` and its extension headers; returns it
/// and the transport bytes.
#[inline(always)]
fn parse_ipv6(packet: &[u8]) -> Result<(Network, &[u8]), ParseError> {
    if packet.first().is_some_and(|b| b >> 4 != 6) {
        return Err(ParseError::BadIpv6Version);
    }
    let ip = Ipv6Packet::new_checked(packet)?;
    if is_mapped(&ip.src_addr()) || is_mapped(&ip.dst_addr()) {
        return Err(ParseError::MappedIpv6Address);
    }
    let payload = ip.payload();
    let upper = ipv6::walk_ext_headers(ip.next_header(), payload)?;
    let net = Network {
        af: Af::V6,
        proto: upper.protocol,
        ip_len: ipv6::HEADER_LEN + payload.len(),
        ttl: ip.hop_limit(),
        tos: ip.traffic_class(),
        df: false,
        frag: upper.frag,
        l4_start: ipv6::HEADER_LEN + upper.offset,
    };
    Ok((net, &payload[upper.offset..]))
}

/// Reads the transport header `l4` of the IP packet `l3` described by `net`.
#[inline(always)]
fn parse_transport<'a>(
    net: &Network,
    l3: &[u8],
    l4: &'a [u8],
) -> Result<Transport<'a>, ParseError> {
    let mut out = Transport::default();
    if net.frag == FragKind::NonFirst {
        return Ok(out);
    }
    match (net.proto, net.af) {
        (ip_proto::TCP, _) => {
            let tcp = TcpPacket::new_checked(l4)?;
            out.sport = tcp.src_port();
            out.dport = tcp.dst_port();
            out.tcp_flags = tcp.flags();
        }
        (ip_proto::UDP, _) => {
            // A first fragment holds the header but not the length it names.
            let udp = if net.frag == FragKind::First {
                if l4.len() < udp::HEADER_LEN {
                    return Err(ParseError::TruncatedUdp);
                }
                UdpPacket::new_unchecked(l4)
            } else {
                UdpPacket::new_checked(l4)?
            };
            out.sport = udp.src_port();
            out.dport = udp.dst_port();
        }
        (ip_proto::ICMP, Af::V4) | (ip_proto::ICMPV6, Af::V6) => {
            let msg = IcmpPacket::new_checked(l4)?;
            // A fragment's checksum covers the reassembled message.
            if net.frag == FragKind::None {
                let ok = match net.af {
                    Af::V4 => msg.verify_checksum_v4(),
                    Af::V6 => msg.verify_checksum_v6(&src_addr(net.af, l3), &dst_addr(net.af, l3)),
                };
                if !ok {
                    return Err(ParseError::BadIcmpChecksum);
                }
            }
            out.icmp_type = msg.msg_type();
            out.icmp_code = msg.msg_code();
            let is_error = match net.af {
                Af::V4 => icmp::v4::is_error(out.icmp_type),
                Af::V6 => icmp::v6::is_error(out.icmp_type),
            };
            if is_error {
                out.quote = Some(msg.data());
            }
        }
        _ => {}
    }
    Ok(out)
}

/// Parses the packet quoted by an ICMP error of family `af` at frame offset
/// `l3_off`.
#[cold]
fn parse_inner(af: Af, quote: &[u8], l3_off: usize) -> Result<InnerInfo, ParseError> {
    match af {
        Af::V4 => parse_inner_v4(quote, l3_off),
        Af::V6 => parse_inner_v6(quote, l3_off),
    }
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
    if is_mapped(&ip.src_addr()) || is_mapped(&ip.dst_addr()) {
        return Err(ParseError::BadIcmpInner);
    }
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

/// Whether an IPv6 address is IPv4-mapped (`::ffff:0:0/96`), what
/// [`Addr::is_v4`] takes for IPv4.
#[inline(always)]
fn is_mapped(a: &[u8; 16]) -> bool {
    Addr::v6(*a).is_v4()
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
