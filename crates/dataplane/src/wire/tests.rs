//! Tests of [`parse`] over whole frames: literal frames, round trips with
//! frames built by etherparse, every truncation of valid frames, malformed
//! headers, and arbitrary bytes.

use etherparse::{
    IpAuthHeader, IpDscp, IpEcn, IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv4Options,
    Ipv6Extensions, Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader,
    Ipv6RoutingExtensions, PacketBuilder, TcpHeader, icmpv4, icmpv6,
};
use proptest::prelude::*;
use xvs_conntrack::{Addr, Af};

use super::ethernet::ether_type;
use super::*;

const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const V4_CLIENT: [u8; 4] = [192, 0, 2, 1];
const V4_VIP: [u8; 4] = [198, 51, 100, 10];
const V6_CLIENT: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];
const V6_VIP: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
];

// ---------------------------------------------------------------------------
// Frame construction
// ---------------------------------------------------------------------------

/// VLAN tagging of a test frame (TCIs).
#[derive(Clone, Copy, Debug)]
enum Vlan {
    Untagged,
    Single(u16),
    /// 802.1ad S-tag, then 802.1Q C-tag.
    Double(u16, u16),
}

impl Vlan {
    fn count(self) -> u8 {
        match self {
            Vlan::Untagged => 0,
            Vlan::Single(_) => 1,
            Vlan::Double(..) => 2,
        }
    }

    fn tcis(self) -> [u16; 2] {
        match self {
            Vlan::Untagged => [0, 0],
            Vlan::Single(a) => [a, 0],
            Vlan::Double(a, b) => [a, b],
        }
    }
}

/// The Ethernet header and VLAN tags for an IP packet of version `version`.
fn l2(vlan: Vlan, version: u8) -> Vec<u8> {
    let ethertype = if version == 4 {
        ether_type::IPV4
    } else {
        ether_type::IPV6
    };
    let mut v = [MAC_DST, MAC_SRC].concat();
    match vlan {
        Vlan::Untagged => {}
        Vlan::Single(a) => {
            v.extend(ether_type::VLAN.to_be_bytes());
            v.extend(a.to_be_bytes());
        }
        Vlan::Double(a, b) => {
            v.extend(ether_type::QINQ.to_be_bytes());
            v.extend(a.to_be_bytes());
            v.extend(ether_type::VLAN.to_be_bytes());
            v.extend(b.to_be_bytes());
        }
    }
    v.extend(ethertype.to_be_bytes());
    v
}

/// A frame: Ethernet and VLAN tags, the IP packet `ip`, `padding` zero bytes.
fn frame(vlan: Vlan, ip: &[u8], padding: usize) -> Vec<u8> {
    let mut v = l2(vlan, ip[0] >> 4);
    v.extend_from_slice(ip);
    v.resize(v.len() + padding, 0);
    v
}

/// An IPv4 header for etherparse: TTL, TOS, options (a multiple of 4 bytes).
fn v4_header(src: [u8; 4], dst: [u8; 4], ttl: u8, tos: u8, options: &[u8]) -> IpHeaders {
    let mut h = Ipv4Header::new(0, ttl, IpNumber::TCP, src, dst).unwrap();
    h.dscp = IpDscp::try_new(tos >> 2).unwrap();
    h.ecn = IpEcn::try_new(tos & 3).unwrap();
    h.identification = 0x4242;
    h.options = Ipv4Options::try_from(options).unwrap();
    IpHeaders::Ipv4(h, Default::default())
}

/// An IPv6 header for etherparse with extension headers `exts`.
fn v6_header(src: [u8; 16], dst: [u8; 16], hops: u8, tc: u8, exts: Ipv6Extensions) -> IpHeaders {
    let h = Ipv6Header {
        traffic_class: tc,
        flow_label: Ipv6FlowLabel::try_new(0x1_2345).unwrap(),
        payload_length: 0,
        next_header: IpNumber::TCP,
        hop_limit: hops,
        source: src,
        destination: dst,
    };
    IpHeaders::Ipv6(h, exts)
}

/// Hop-by-hop (8), destination options (16), routing (8), fragment (8) and
/// AH (16): 56 bytes. The fragment header is atomic unless `frag` says
/// otherwise: (offset in 8-byte units, more fragments).
fn all_exts(frag: (u16, bool)) -> Ipv6Extensions {
    let raw = |len: usize| Ipv6RawExtHeader::new_raw(IpNumber(0), &vec![0; len]).unwrap();
    Ipv6Extensions {
        hop_by_hop_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber(0), &[1, 4, 0, 0, 0, 0]).unwrap(),
        ),
        destination_options: Some(raw(14)),
        routing: Some(Ipv6RoutingExtensions {
            routing: Ipv6RawExtHeader::new_raw(IpNumber(0), &[4, 0, 0, 0, 0, 0]).unwrap(),
            final_destination_options: None,
        }),
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber(0),
            IpFragOffset::try_new(frag.0).unwrap(),
            frag.1,
            0xabcd,
        )),
        auth: Some(IpAuthHeader::new(IpNumber(0), 0x100, 1, &[0; 4]).unwrap()),
    }
}

/// Length of [`all_exts`].
const ALL_EXTS_LEN: usize = 8 + 16 + 8 + 8 + 16;

/// A transport header for the builder.
#[derive(Clone, Debug)]
enum L4 {
    /// Ports, flags (the eight bits), raw options.
    Tcp(u16, u16, u8, Vec<u8>),
    Udp(u16, u16),
    Icmpv4(etherparse::Icmpv4Type),
    Icmpv6(etherparse::Icmpv6Type),
}

fn tcp_header(sport: u16, dport: u16, flags: u8, options: &[u8]) -> TcpHeader {
    let mut h = TcpHeader::new(sport, dport, 0x0102_0304, 64240);
    h.fin = flags & tcp::flags::FIN != 0;
    h.syn = flags & tcp::flags::SYN != 0;
    h.rst = flags & tcp::flags::RST != 0;
    h.psh = flags & tcp::flags::PSH != 0;
    h.ack = flags & tcp::flags::ACK != 0;
    h.urg = flags & tcp::flags::URG != 0;
    h.ece = flags & tcp::flags::ECE != 0;
    h.cwr = flags & tcp::flags::CWR != 0;
    h.set_options_raw(options).unwrap();
    h
}

/// An IP packet built by etherparse (lengths, next headers and checksums
/// filled in by it).
fn ip_packet(ip: IpHeaders, l4: &L4, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ip(ip);
    let mut v = Vec::new();
    match l4.clone() {
        L4::Tcp(s, d, f, o) => b.tcp_header(tcp_header(s, d, f, &o)).write(&mut v, payload),
        L4::Udp(s, d) => b.udp(s, d).write(&mut v, payload),
        L4::Icmpv4(t) => b.icmpv4(t).write(&mut v, payload),
        L4::Icmpv6(t) => b.icmpv6(t).write(&mut v, payload),
    }
    .unwrap();
    v
}

/// Fills the IPv4 header checksum of the IP packet in `frame` at `l3_off`.
fn fix_ipv4_checksum(frame: &mut [u8], l3_off: usize) {
    Ipv4Packet::new_unchecked(&mut frame[l3_off..]).fill_checksum();
}

// ---------------------------------------------------------------------------
// Cases: valid frames with the layout the parser must find in them
// ---------------------------------------------------------------------------

/// What the transport layer of a case looks like.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// TCP with this header length.
    Tcp(usize),
    /// UDP with this length field.
    Udp(usize),
    /// An ICMP message that is not an error.
    IcmpInfo,
    /// An ICMP error quoting an IP header of this length (IPv4 options or
    /// IPv6 extension headers included) with TCP or UDP after it.
    IcmpError(usize),
    /// A protocol the parser does not look into.
    Other,
}

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    vlan: Vlan,
    af: Af,
    /// IPv4 header length (options included) or 40.
    ip_hdr: usize,
    /// IPv6 extension header bytes.
    ext: usize,
    /// The IP packet's length (the frame may hold padding after it).
    ip_len: usize,
    layout: Layout,
}

impl Case {
    fn l3_off(&self) -> usize {
        14 + 4 * usize::from(self.vlan.count())
    }

    fn l4_off(&self) -> usize {
        self.l3_off() + self.ip_hdr + self.ext
    }
}

fn v4_case(
    name: &'static str,
    vlan: Vlan,
    options: &[u8],
    l4: L4,
    payload: &[u8],
    padding: usize,
    layout: Layout,
) -> Case {
    let ip = ip_packet(
        v4_header(V4_CLIENT, V4_VIP, 64, 0x2e, options),
        &l4,
        payload,
    );
    Case {
        name,
        frame: frame(vlan, &ip, padding),
        vlan,
        af: Af::V4,
        ip_hdr: 20 + options.len(),
        ext: 0,
        ip_len: ip.len(),
        layout,
    }
}

fn v6_case(
    name: &'static str,
    vlan: Vlan,
    exts: Ipv6Extensions,
    ext: usize,
    l4: L4,
    payload: &[u8],
    layout: Layout,
) -> Case {
    let ip = ip_packet(v6_header(V6_CLIENT, V6_VIP, 64, 0xb8, exts), &l4, payload);
    Case {
        name,
        frame: frame(vlan, &ip, 0),
        vlan,
        af: Af::V6,
        ip_hdr: 40,
        ext,
        ip_len: ip.len(),
        layout,
    }
}

/// A quoted packet: the first `keep` bytes of a packet the director sent.
fn quote(ip: IpHeaders, l4: L4, keep: usize) -> Vec<u8> {
    let mut p = ip_packet(ip, &l4, b"the payload nobody quotes in full");
    p.truncate(keep);
    p
}

const TCP_OPTS: [u8; 12] = [2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]; // MSS, NOP, SACKOK, WS
const IPV4_OPTS: [u8; 8] = [0x94, 4, 0, 0, 1, 1, 1, 0]; // router alert, NOPs, EOL

fn cases() -> Vec<Case> {
    let syn = tcp::flags::SYN;
    let v4_echo = etherparse::Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 7, seq: 1 });
    let v6_echo = etherparse::Icmpv6Type::EchoRequest(etherparse::IcmpEchoHeader { id: 7, seq: 1 });
    let frag_needed = etherparse::Icmpv4Type::DestinationUnreachable(
        icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
    );
    let ttl_exceeded =
        etherparse::Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit);
    let too_big = etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 };
    let port_unreach =
        etherparse::Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::Port);
    // Packets the director sent to a real server, quoted back by a router.
    let quoted_v4_tcp = quote(
        v4_header(V4_CLIENT, [10, 0, 0, 5], 1, 0, &IPV4_OPTS),
        L4::Tcp(40000, 8080, syn, TCP_OPTS.to_vec()),
        28 + 8, // header with options and 8 bytes, as RFC 792 asks
    );
    let quoted_v4_udp = quote(
        v4_header(V4_VIP, V4_CLIENT, 1, 0, &[]),
        L4::Udp(53, 33000),
        200,
    );
    let quoted_v6_tcp = quote(
        v6_header(V6_CLIENT, V6_VIP, 1, 0, Default::default()),
        L4::Tcp(40000, 443, syn, vec![]),
        1000,
    );
    let hop = Ipv6Extensions {
        hop_by_hop_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber(0), &[1, 4, 0, 0, 0, 0]).unwrap(),
        ),
        ..Default::default()
    };
    let quoted_v6_udp = quote(
        v6_header(V6_VIP, V6_CLIENT, 1, 0, hop),
        L4::Udp(53, 33000),
        40 + 8 + 8,
    );

    vec![
        v4_case(
            "v4 tcp",
            Vlan::Untagged,
            &[],
            L4::Tcp(54321, 80, syn, vec![]),
            b"",
            6,
            Layout::Tcp(20),
        ),
        v4_case(
            "v4 tcp vlan options",
            Vlan::Single(0x2064),
            &IPV4_OPTS,
            L4::Tcp(
                54321,
                443,
                tcp::flags::ACK | tcp::flags::PSH,
                TCP_OPTS.to_vec(),
            ),
            b"GET / HTTP/1.0\r\n\r\n",
            0,
            Layout::Tcp(32),
        ),
        v4_case(
            "v4 udp qinq",
            Vlan::Double(100, 200),
            &[],
            L4::Udp(5353, 53),
            b"query",
            13,
            Layout::Udp(13),
        ),
        v4_case(
            "v4 icmp echo",
            Vlan::Untagged,
            &[],
            L4::Icmpv4(v4_echo),
            b"ping",
            0,
            Layout::IcmpInfo,
        ),
        v4_case(
            "v4 frag needed quoting tcp",
            Vlan::Untagged,
            &[],
            L4::Icmpv4(frag_needed),
            &quoted_v4_tcp,
            0,
            Layout::IcmpError(28),
        ),
        v4_case(
            "v4 ttl exceeded quoting udp",
            Vlan::Single(5),
            &IPV4_OPTS,
            L4::Icmpv4(ttl_exceeded),
            &quoted_v4_udp,
            0,
            Layout::IcmpError(20),
        ),
        v6_case(
            "v6 tcp",
            Vlan::Untagged,
            Default::default(),
            0,
            L4::Tcp(54321, 80, syn, vec![]),
            b"",
            Layout::Tcp(20),
        ),
        v6_case(
            "v6 udp all extension headers",
            Vlan::Single(1),
            all_exts((0, false)),
            ALL_EXTS_LEN,
            L4::Udp(5353, 53),
            b"query",
            Layout::Udp(13),
        ),
        v6_case(
            "v6 tcp options extension headers",
            Vlan::Double(1, 2),
            all_exts((0, false)),
            ALL_EXTS_LEN,
            L4::Tcp(1, 2, tcp::flags::FIN | tcp::flags::ACK, TCP_OPTS.to_vec()),
            b"bye",
            Layout::Tcp(32),
        ),
        v6_case(
            "v6 icmp echo",
            Vlan::Single(9),
            Default::default(),
            0,
            L4::Icmpv6(v6_echo),
            b"ping",
            Layout::IcmpInfo,
        ),
        v6_case(
            "v6 packet too big quoting tcp",
            Vlan::Untagged,
            Default::default(),
            0,
            L4::Icmpv6(too_big),
            &quoted_v6_tcp,
            Layout::IcmpError(40),
        ),
        v6_case(
            "v6 port unreachable quoting udp behind hop-by-hop",
            Vlan::Untagged,
            Default::default(),
            0,
            L4::Icmpv6(port_unreach),
            &quoted_v6_udp,
            Layout::IcmpError(48),
        ),
        other_case(),
    ]
}

/// IPv4 carrying GRE (47), which the parser does not look into.
fn other_case() -> Case {
    let mut c = v4_case(
        "v4 gre",
        Vlan::Untagged,
        &[],
        L4::Udp(1, 2),
        b"gre body",
        0,
        Layout::Other,
    );
    c.frame[14 + 9] = 47;
    fix_ipv4_checksum(&mut c.frame, 14);
    c
}

// ---------------------------------------------------------------------------
// Expected results
// ---------------------------------------------------------------------------

/// What parse must return for `case`'s frame cut to `len` bytes.
fn expect_frame_cut(case: &Case, len: usize) -> Result<(), ParseError> {
    if len < case.l3_off() {
        Err(ParseError::TruncatedEthernet)
    } else if len < case.l3_off() + case.ip_len {
        Err(match case.af {
            Af::V4 => ParseError::TruncatedIpv4,
            Af::V6 => ParseError::TruncatedIpv6,
        })
    } else {
        Ok(())
    }
}

/// What parse must return for `case`'s IP packet cut to `n` bytes (its length
/// field and checksums fixed up to match).
fn expect_ip_cut(case: &Case, n: usize) -> Result<(), ParseError> {
    if n < case.ip_hdr {
        return Err(ParseError::BadIpv4TotalLen); // IPv4 only: IPv6 cuts start at 40
    }
    if n < case.ip_hdr + case.ext {
        return Err(ParseError::TruncatedIpv6ExtHeader);
    }
    let l4 = n - case.ip_hdr - case.ext;
    match case.layout {
        Layout::Tcp(hdr) if l4 < hdr => Err(ParseError::TruncatedTcp),
        Layout::Udp(_) if l4 < 8 => Err(ParseError::TruncatedUdp),
        Layout::Udp(len) if l4 < len => Err(ParseError::BadUdpLength),
        Layout::IcmpInfo | Layout::IcmpError(_) if l4 < 8 => Err(ParseError::TruncatedIcmp),
        Layout::IcmpError(inner_hdr) if l4 - 8 < inner_hdr => Err(ParseError::TruncatedIcmpInner),
        _ => Ok(()),
    }
}

/// `case`'s frame with its IP packet cut to `n` bytes: IP length field,
/// IPv4 header checksum and ICMP checksum made to match, so only the cut
/// can make parse fail.
fn cut_ip(case: &Case, n: usize) -> Vec<u8> {
    let l3 = case.l3_off();
    // The IPv4 header stays whole: only the length field says it is short.
    let mut f = case.frame[..l3 + n.max(case.ip_hdr)].to_vec();
    match case.af {
        Af::V4 => {
            let mut ip = Ipv4Packet::new_unchecked(&mut f[l3..]);
            ip.set_total_len(n as u16);
            ip.fill_checksum();
        }
        Af::V6 => Ipv6Packet::new_unchecked(&mut f[l3..]).set_payload_len((n - 40) as u16),
    }
    let l4 = case.l4_off();
    if matches!(case.layout, Layout::IcmpInfo | Layout::IcmpError(_)) && f.len() >= l4 + 8 {
        let mut msg = IcmpPacket::new_unchecked(&mut f[l4..]);
        match case.af {
            Af::V4 => msg.fill_checksum_v4(),
            Af::V6 => msg.fill_checksum_v6(&Addr::v6(V6_CLIENT), &Addr::v6(V6_VIP)),
        }
    }
    f
}

/// Checks what `parse` found in a frame of `case` (possibly cut) against the
/// layout, with `etherparse` as the oracle for field values.
fn check_info(case: &Case, frame: &[u8], info: &PacketInfo) {
    let name = case.name;
    assert_eq!(info.vlan_count, case.vlan.count(), "{name}");
    assert_eq!(info.vlan_tci, case.vlan.tcis(), "{name}");
    assert_eq!(info.l3_off, case.l3_off(), "{name}");
    assert_eq!(info.af, case.af, "{name}");
    assert_eq!(info.l4_off, case.l4_off(), "{name}");
    assert_eq!(
        info.l4_off + info.l4_len,
        info.l3_off + info.ip_len,
        "{name}"
    );
    assert!(info.l3_off + info.ip_len <= frame.len(), "{name}");
    assert_eq!(info.frag, FragKind::None, "{name}");
    assert_eq!(info.addrs_from(frame), (info.src, info.dst), "{name}");
    let short = &frame[..info.l3_off + 4];
    assert_eq!(info.addrs_from(short), (info.src, info.dst), "{name}");

    let ep = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
    match ep.net.unwrap() {
        etherparse::NetSlice::Ipv4(ip) => {
            let h = ip.header();
            assert_eq!(info.src, Addr::v4(h.source()), "{name}");
            assert_eq!(info.dst, Addr::v4(h.destination()), "{name}");
            assert_eq!(info.proto, h.protocol().0, "{name}");
            assert_eq!(info.ip_len, usize::from(h.total_len()), "{name}");
            assert_eq!(info.ttl, h.ttl(), "{name}");
            assert_eq!(info.tos, (h.dcp().value() << 2) | h.ecn().value(), "{name}");
            assert_eq!(info.df, h.dont_fragment(), "{name}");
        }
        etherparse::NetSlice::Ipv6(ip) => {
            let h = ip.header();
            assert_eq!(info.src, Addr::v6(h.source()), "{name}");
            assert_eq!(info.dst, Addr::v6(h.destination()), "{name}");
            assert_eq!(info.proto, ip.payload().ip_number.0, "{name}");
            assert_eq!(info.ip_len, 40 + usize::from(h.payload_length()), "{name}");
            assert_eq!(info.ttl, h.hop_limit(), "{name}");
            assert_eq!(info.tos, h.traffic_class(), "{name}");
            assert!(!info.df, "{name}");
        }
        etherparse::NetSlice::Arp(_) => unreachable!(),
    }
    match (case.layout, ep.transport) {
        (Layout::Tcp(_), Some(etherparse::TransportSlice::Tcp(t))) => {
            assert_eq!(
                (info.sport, info.dport),
                (t.source_port(), t.destination_port()),
                "{name}"
            );
            assert_eq!(info.tcp_flags, t.slice()[13], "{name}");
            assert_eq!(info.l4_len, t.slice().len(), "{name}");
        }
        (Layout::Udp(_), Some(etherparse::TransportSlice::Udp(u))) => {
            assert_eq!(
                (info.sport, info.dport),
                (u.source_port(), u.destination_port()),
                "{name}"
            );
            assert_eq!(info.tcp_flags, 0, "{name}");
        }
        (Layout::IcmpInfo | Layout::IcmpError(_), Some(etherparse::TransportSlice::Icmpv4(m))) => {
            assert_eq!(
                (info.icmp_type, info.icmp_code),
                (m.type_u8(), m.code_u8()),
                "{name}"
            );
            check_inner(case, info, m.payload());
        }
        (Layout::IcmpInfo | Layout::IcmpError(_), Some(etherparse::TransportSlice::Icmpv6(m))) => {
            assert_eq!(
                (info.icmp_type, info.icmp_code),
                (m.type_u8(), m.code_u8()),
                "{name}"
            );
            check_inner(case, info, m.payload());
        }
        (Layout::Other, _) => {
            assert_eq!(
                (info.sport, info.dport, info.icmp_type),
                (0, 0, 0),
                "{name}"
            );
            assert_eq!(info.inner, None, "{name}");
        }
        (layout, t) => panic!("{name}: {layout:?} but etherparse found {t:?}"),
    }
    if !matches!(case.layout, Layout::IcmpInfo | Layout::IcmpError(_)) {
        assert_eq!(
            (info.icmp_type, info.icmp_code, info.inner),
            (0, 0, None),
            "{name}"
        );
    }
}

/// Checks the quoted packet of an ICMP error against etherparse's reading of
/// the quote (`quoted`).
fn check_inner(case: &Case, info: &PacketInfo, quoted: &[u8]) {
    let name = case.name;
    let Layout::IcmpError(inner_hdr) = case.layout else {
        assert_eq!(info.inner, None, "{name}");
        return;
    };
    let inner = info.inner.expect(name);
    assert_eq!(inner.l3_off, case.l4_off() + 8, "{name}");
    assert_eq!(inner.l4_off, inner.l3_off + inner_hdr, "{name}");
    assert_eq!(inner.af, case.af, "{name}");
    let lax = etherparse::LaxSlicedPacket::from_ip(quoted).unwrap();
    let (src, dst, proto) = match lax.net.unwrap() {
        etherparse::LaxNetSlice::Ipv4(ip) => {
            let h = ip.header();
            (
                Addr::v4(h.source()),
                Addr::v4(h.destination()),
                ip.payload().ip_number,
            )
        }
        etherparse::LaxNetSlice::Ipv6(ip) => {
            let h = ip.header();
            (
                Addr::v6(h.source()),
                Addr::v6(h.destination()),
                ip.payload().ip_number,
            )
        }
        etherparse::LaxNetSlice::Arp(_) => unreachable!(),
    };
    assert_eq!(
        (inner.src, inner.dst, inner.proto),
        (src, dst, proto.0),
        "{name}"
    );
    let quoted_l4 = quoted.len() - inner_hdr;
    assert!(inner.l4_len <= quoted_l4, "{name}");
    if quoted_l4 >= 8 {
        let l4 = &quoted[inner_hdr..];
        let ports = (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        );
        assert_eq!((inner.sport, inner.dport), ports, "{name}");
        assert_ne!(ports, (0, 0), "{name}");
    } else {
        assert_eq!((inner.sport, inner.dport), (0, 0), "{name}");
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn every_case_parses_and_matches_etherparse() {
    for case in cases() {
        let info = parse(&case.frame).unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        check_info(&case, &case.frame, &info);
    }
}

/// The common-case parser answers for plain IPv4 TCP and UDP, and for
/// every case and every cut of it agrees with the general parser or leaves
/// the frame to it.
#[test]
fn common_path_takes_plain_ipv4_and_agrees_on_every_cut() {
    let mut taken = 0;
    for case in cases() {
        for len in 0..=case.frame.len() {
            let f = &case.frame[..len];
            if let Some(common) = parse::parse_common(f) {
                assert_eq!(
                    Ok(common),
                    parse::parse_general(f),
                    "{} cut to {len}",
                    case.name
                );
                taken += 1;
            }
        }
    }
    assert!(taken > 0, "no case took the common path");
    let tcp = ip_packet(
        v4_header(V4_CLIENT, V4_VIP, 64, 0, &[]),
        &L4::Tcp(40000, 80, 0x10, vec![]),
        &[],
    );
    let udp = ip_packet(
        v4_header(V4_CLIENT, V4_VIP, 64, 0, &[]),
        &L4::Udp(40000, 53),
        &[0; 20],
    );
    for ip in [tcp, udp] {
        let f = frame(Vlan::Untagged, &ip, 0);
        assert!(parse::parse_common(&f).is_some(), "{f:02x?}");
    }
}

/// Every cut of every case's frame fails with the exact error of the layer
/// it cuts into, or (inside Ethernet padding) parses to the same result.
#[test]
fn every_frame_truncation() {
    for case in cases() {
        let full = parse(&case.frame).unwrap();
        for len in 0..=case.frame.len() {
            let got = parse(&case.frame[..len]);
            match expect_frame_cut(&case, len) {
                Ok(()) => assert_eq!(got, Ok(full), "{} cut to {len}", case.name),
                Err(e) => assert_eq!(got, Err(e), "{} cut to {len}", case.name),
            }
        }
    }
}

/// Every cut of every case's IP packet (with consistent lengths and
/// checksums, so the IP layer accepts it) fails with the exact error of the
/// header it cuts into, or parses with the layout intact.
#[test]
fn every_ip_truncation() {
    for case in cases() {
        let start = match case.af {
            Af::V4 => 0,
            Af::V6 => 40,
        };
        for n in start..=case.ip_len {
            let f = cut_ip(&case, n);
            let got = parse(&f);
            match expect_ip_cut(&case, n) {
                Ok(()) => {
                    let info = got.unwrap_or_else(|e| panic!("{} cut to {n}: {e:?}", case.name));
                    assert_eq!(info.ip_len, n, "{}", case.name);
                    check_info(&case, &f, &info);
                }
                Err(e) => assert_eq!(got, Err(e), "{} cut to {n}", case.name),
            }
        }
    }
}

/// A TCP SYN with IPv4 options behind an 802.1Q tag, written out byte by
/// byte and checked field by field.
#[test]
fn literal_ipv4_tcp_frame() {
    let mut f = vec![
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // MACs
        0x81, 0x00, 0xa0, 0x2a, // 802.1Q: PCP 5, VID 42
        0x08, 0x00, // IPv4
        0x46, 0xb8, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x3f, 0x06, 0x00, 0x00, // IHL 6, EF
        0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x0a, // 192.0.2.1 -> 198.51.100.10
        0x94, 0x04, 0x00, 0x00, // router alert
        0xd4, 0x31, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, // TCP
        0x50, 0xc2, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, // SYN, ECE, CWR
        0x00, 0x00, // Ethernet padding
    ];
    fix_ipv4_checksum(&mut f, 18);
    let info = parse(&f).unwrap();
    assert_eq!(
        info,
        PacketInfo {
            vlan_count: 1,
            vlan_tci: [0xa02a, 0],
            l3_off: 18,
            af: Af::V4,
            src: Addr::v4([192, 0, 2, 1]),
            dst: Addr::v4([198, 51, 100, 10]),
            proto: ip_proto::TCP,
            ip_len: 44,
            ttl: 63,
            tos: 0xb8,
            df: true,
            frag: FragKind::None,
            l4_off: 42,
            l4_len: 20,
            sport: 54321,
            dport: 80,
            tcp_flags: tcp::flags::SYN | tcp::flags::ECE | tcp::flags::CWR,
            icmp_type: 0,
            icmp_code: 0,
            inner: None,
        }
    );
    // Flipping one header bit breaks the header checksum.
    f[18 + 8] ^= 1;
    assert_eq!(parse(&f), Err(ParseError::BadIpv4Checksum));
}

/// An ICMPv6 packet too big quoting a UDP datagram, written out byte by byte.
#[test]
fn literal_icmpv6_error_frame() {
    let mut f = vec![
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x38, 0x3a, 0x40, // payload 56, ICMPv6, hop limit 64
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // fe80::1 (a router)
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, // 2001:db8::80 (VIP)
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, // packet too big, MTU 1280
        0x60, 0x00, 0x00, 0x00, 0x05, 0xdc, 0x11, 0x3f, // quoted: payload 1500, UDP
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, // VIP
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // client
        0x00, 0x35, 0x80, 0xe8, 0x05, 0xdc, 0x00, 0x00, // UDP 53 -> 33000
    ];
    let (src, dst) = (Addr::v6(f[22..38].try_into().unwrap()), Addr::v6(V6_VIP));
    IcmpPacket::new_unchecked(&mut f[54..]).fill_checksum_v6(&src, &dst);
    let info = parse(&f).unwrap();
    assert_eq!(
        (info.af, info.proto, info.src, info.dst),
        (Af::V6, ip_proto::ICMPV6, src, dst)
    );
    assert_eq!((info.ip_len, info.l4_off, info.l4_len), (96, 54, 56));
    assert_eq!(
        (info.icmp_type, info.icmp_code),
        (icmp::v6::PACKET_TOO_BIG, 0)
    );
    assert_eq!((info.sport, info.dport, info.tcp_flags), (0, 0, 0));
    assert_eq!(
        info.inner,
        Some(InnerInfo {
            l3_off: 62,
            af: Af::V6,
            src: Addr::v6(V6_VIP),
            dst: Addr::v6(V6_CLIENT),
            proto: ip_proto::UDP,
            frag: FragKind::None,
            l4_off: 102,
            l4_len: 8,
            sport: 53,
            dport: 33000,
        })
    );
    assert_eq!(
        IcmpPacket::new_checked(&f[54..]).unwrap().rest_of_header(),
        1280
    );
    f[60] ^= 0x80; // the MTU, under the checksum
    assert_eq!(parse(&f), Err(ParseError::BadIcmpChecksum));
}

#[test]
fn link_layer_errors() {
    let c = &cases()[0];
    let mut f = c.frame.clone();
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes()); // ARP
    assert_eq!(parse(&f), Err(ParseError::UnsupportedEthertype));
    // A third tag is not followed.
    let ip = &c.frame[14..];
    let mut f = [MAC_DST, MAC_SRC].concat();
    for tpid in [ether_type::QINQ, ether_type::VLAN, ether_type::VLAN] {
        f.extend(tpid.to_be_bytes());
        f.extend(7u16.to_be_bytes());
    }
    f.extend(ether_type::IPV4.to_be_bytes());
    f.extend_from_slice(ip);
    assert_eq!(parse(&f), Err(ParseError::UnsupportedEthertype));
    // Two 802.1Q tags (no 802.1ad) are fine.
    f.drain(12..16);
    assert_eq!(parse(&f).unwrap().vlan_count, 2);
}

#[test]
fn ipv4_header_errors() {
    let c = &cases()[0];
    // These are all found before the checksum is looked at.
    let with = |at: usize, value: u8| {
        let mut f = c.frame.clone();
        f[14 + at] = value;
        parse(&f)
    };
    assert_eq!(with(0, 0x65), Err(ParseError::BadIpv4Version));
    assert_eq!(with(0, 0x44), Err(ParseError::BadIpv4Ihl));
    assert_eq!(with(0, 0x4f), Err(ParseError::TruncatedIpv4));
    assert_eq!(with(3, 19), Err(ParseError::BadIpv4TotalLen));
    assert_eq!(with(3, 100), Err(ParseError::TruncatedIpv4));
    let mut f = c.frame.clone();
    f[14 + 10] ^= 0xff;
    assert_eq!(parse(&f), Err(ParseError::BadIpv4Checksum));
    // IPv6 behind an IPv4 EtherType, and the other way round.
    let v6 = &cases()[6];
    let mut f = v6.frame.clone();
    f[12..14].copy_from_slice(&ether_type::IPV4.to_be_bytes());
    assert_eq!(parse(&f), Err(ParseError::BadIpv4Version));
    let mut f = c.frame.clone();
    f[12..14].copy_from_slice(&ether_type::IPV6.to_be_bytes());
    assert_eq!(parse(&f), Err(ParseError::BadIpv6Version));
}

#[test]
fn ipv6_chain_too_long() {
    // Nine destination options headers, then TCP.
    let mut chain = Vec::new();
    for i in 0..9 {
        let next = if i == 8 {
            ip_proto::TCP
        } else {
            ip_proto::IPV6_OPTS
        };
        chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    chain.extend_from_slice(&tcp_header(1, 2, tcp::flags::SYN, &[]).to_bytes());
    let mut ip = vec![0u8; 40];
    let mut p = Ipv6Packet::new_unchecked(&mut ip[..]);
    p.set_ver_tc_flow(0, 0);
    p.set_payload_len(chain.len() as u16);
    p.set_next_header(ip_proto::IPV6_OPTS);
    ip.extend_from_slice(&chain);
    assert_eq!(
        parse(&frame(Vlan::Untagged, &ip, 0)),
        Err(ParseError::Ipv6ExtChainTooLong)
    );
    // Eight are fine.
    ip[6] = ip_proto::IPV6_OPTS;
    ip.drain(40..48);
    Ipv6Packet::new_unchecked(&mut ip[..]).set_payload_len((chain.len() - 8) as u16);
    let info = parse(&frame(Vlan::Untagged, &ip, 0)).unwrap();
    assert_eq!(
        (info.proto, info.l4_off, info.sport, info.dport),
        (ip_proto::TCP, 14 + 40 + 64, 1, 2)
    );
}

#[test]
fn transport_header_errors() {
    let c = &cases()[0]; // v4 TCP without options
    for off in 0..5u8 {
        let mut f = c.frame.clone();
        f[c.l4_off() + 12] = off << 4;
        assert_eq!(parse(&f), Err(ParseError::BadTcpDataOffset));
    }
    let mut f = c.frame.clone();
    f[c.l4_off() + 12] = 6 << 4; // 24-byte header in a 20-byte segment
    assert_eq!(parse(&f), Err(ParseError::TruncatedTcp));

    let c = &cases()[2]; // v4 UDP, 13 bytes, 13 bytes of padding
    for (len, expect) in [
        (7u16, Err(ParseError::BadUdpLength)),
        (14, Err(ParseError::BadUdpLength)),
        (8, Ok(())),
    ] {
        let mut f = c.frame.clone();
        f[c.l4_off() + 4..c.l4_off() + 6].copy_from_slice(&len.to_be_bytes());
        assert_eq!(parse(&f).map(|_| ()), expect, "UDP length {len}");
    }
    // Padding is not payload: a length reaching into it is wrong.
    assert_eq!(c.frame.len() - c.l3_off() - c.ip_len, 13);
}

#[test]
fn icmp_errors() {
    let c = &cases()[4]; // frag needed quoting TCP
    let mut f = c.frame.clone();
    f[c.l4_off() + 2] ^= 1;
    assert_eq!(parse(&f), Err(ParseError::BadIcmpChecksum));
    let fix = |f: &mut Vec<u8>| IcmpPacket::new_unchecked(&mut f[c.l4_off()..]).fill_checksum_v4();
    let info = parse(&c.frame).unwrap();
    assert_eq!(info.icmp_type, icmp::v4::DEST_UNREACH);
    assert_eq!(info.icmp_code, icmp::v4::CODE_FRAG_NEEDED);
    let icmp = IcmpPacket::new_checked(&c.frame[info.l4_off..]).unwrap();
    assert_eq!(icmp.next_hop_mtu(), 1400);
    let inner = info.inner.unwrap();
    assert_eq!((inner.sport, inner.dport, inner.l4_len), (40000, 8080, 8));
    // The quote is not IPv4.
    let mut f = c.frame.clone();
    f[inner.l3_off] = 0x65;
    fix(&mut f);
    assert_eq!(parse(&f), Err(ParseError::BadIcmpInner));
    // Quoted IHL below 5.
    f[inner.l3_off] = 0x44;
    fix(&mut f);
    assert_eq!(parse(&f), Err(ParseError::BadIcmpInner));
    // Quoted total length below its header length.
    let mut f = c.frame.clone();
    f[inner.l3_off + 2..inner.l3_off + 4].copy_from_slice(&27u16.to_be_bytes());
    fix(&mut f);
    assert_eq!(parse(&f), Err(ParseError::BadIcmpInner));
    // A quoted total length shorter than the quote bounds the quoted L4:
    // 4 bytes of TCP are no ports.
    f[inner.l3_off + 3] = 32;
    fix(&mut f);
    let inner = parse(&f).unwrap().inner.unwrap();
    assert_eq!((inner.l4_len, inner.sport, inner.dport), (4, 0, 0));
    // Redirects quote a packet but are not errors the director handles.
    let mut f = c.frame.clone();
    f[c.l4_off()] = icmp::v4::REDIRECT;
    fix(&mut f);
    let info = parse(&f).unwrap();
    assert_eq!((info.icmp_type, info.inner), (icmp::v4::REDIRECT, None));
    // Parameter problem is one.
    f[c.l4_off()] = icmp::v4::PARAM_PROBLEM;
    fix(&mut f);
    assert!(parse(&f).unwrap().inner.is_some());
}

#[test]
fn icmp_of_the_other_family_is_not_icmp() {
    // ICMPv6 in IPv4 and ICMPv4 in IPv6 are protocols like any other.
    let c = &cases()[3];
    let mut f = c.frame.clone();
    f[14 + 9] = ip_proto::ICMPV6;
    fix_ipv4_checksum(&mut f, 14);
    let info = parse(&f).unwrap();
    assert_eq!(
        (info.proto, info.icmp_type, info.inner),
        (ip_proto::ICMPV6, 0, None)
    );
    let c = &cases()[9];
    let mut f = c.frame.clone();
    f[c.l3_off() + 6] = ip_proto::ICMP;
    let info = parse(&f).unwrap();
    assert_eq!(
        (info.proto, info.icmp_type, info.inner),
        (ip_proto::ICMP, 0, None)
    );
}

/// Found by the `wire_parse` fuzz target: an ICMPv6 message from an
/// IPv4-mapped source (`::ffff:0.79.0.0`) was accepted with a checksum over
/// an IPv4 pseudo-header, since checksums take the family from the address
/// ([`Addr::is_v4`]). Such addresses are not addresses on the wire (Linux
/// drops them as a source) and the director would alias them with IPv4
/// ones: the parser refuses them, in a quoted packet too.
#[test]
fn ipv4_mapped_addresses() {
    let mapped = Addr::v4([0, 79, 0, 0]).0;
    // The fuzzer's frame, reduced: an echo request, its checksum filled by
    // the code that picked the IPv4 pseudo-header.
    let mut f = vec![
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0x40, // payload 8, ICMPv6, hop limit 64
    ];
    f.extend_from_slice(&mapped);
    f.extend_from_slice(&V6_VIP);
    f.extend_from_slice(&[128, 0, 0, 0, 0, 7, 0, 1]);
    let (src, dst) = (Addr::v6(mapped), Addr::v6(V6_VIP));
    IcmpPacket::new_unchecked(&mut f[54..]).fill_checksum_v6(&src, &dst);
    assert_eq!(parse(&f), Err(ParseError::MappedIpv6Address));
    // A mapped destination, and TCP.
    let tcp = L4::Tcp(40000, 80, tcp::flags::SYN, vec![]);
    for (s, d) in [(mapped, V6_VIP), (V6_CLIENT, mapped)] {
        let ip = ip_packet(v6_header(s, d, 64, 0, Default::default()), &tcp, b"x");
        assert_eq!(
            parse(&frame(Vlan::Untagged, &ip, 0)),
            Err(ParseError::MappedIpv6Address)
        );
    }
    // An ICMPv6 error quoting a packet with a mapped address.
    let quoted = ip_packet(
        v6_header(V6_VIP, mapped, 64, 0, Default::default()),
        &L4::Udp(53, 33000),
        b"",
    );
    let mut f = l2(Vlan::Untagged, 6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + quoted.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[ip_proto::ICMPV6, 64]);
    f.extend_from_slice(&V6_CLIENT);
    f.extend_from_slice(&V6_VIP);
    f.extend_from_slice(&[icmp::v6::PACKET_TOO_BIG, 0, 0, 0, 0, 0, 0x05, 0x00]);
    f.extend_from_slice(&quoted);
    let (src, dst) = (Addr::v6(V6_CLIENT), Addr::v6(V6_VIP));
    IcmpPacket::new_unchecked(&mut f[54..]).fill_checksum_v6(&src, &dst);
    assert_eq!(parse(&f), Err(ParseError::BadIcmpInner));
}

/// Found by the `wire_parse` fuzz target: this ICMPv6 message (all ones)
/// has a wrong checksum, but a carry lost in the checksum's fold (see
/// `checksum::tests::fold_carries_back_every_carry`) made it right.
#[test]
fn icmpv6_checksum_fold_regression() {
    let mut f = vec![
        0x02, 0x00, 0x00, 0x00, 0xd0, 0x01, 0xff, 0x00, 0x00, 0x00, 0xc0, 0x01, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0x43, // payload 8, ICMPv6, hop limit 67
        0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, // source
        0xff, 0xff, 0xff, 0xff, 0xff, 0xbd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, // destination
    ];
    f.extend_from_slice(&[0xff; 8 + 5]); // the message, then Ethernet padding
    assert_eq!(parse(&f), Err(ParseError::BadIcmpChecksum));
    // Its right checksum is accepted.
    let (src, dst) = (
        Addr::v6(f[22..38].try_into().unwrap()),
        Addr::v6(f[38..54].try_into().unwrap()),
    );
    IcmpPacket::new_unchecked(&mut f[54..62]).fill_checksum_v6(&src, &dst);
    assert_eq!(parse(&f).map(|i| i.icmp_type), Ok(0xff));
}

#[test]
fn ipv4_fragments() {
    let c = &cases()[1]; // v4 TCP with options and payload
    let l3 = c.l3_off();
    let set = |more: bool, offset: u16| {
        let mut f = c.frame.clone();
        let mut ip = Ipv4Packet::new_unchecked(&mut f[l3..]);
        ip.set_frag(false, more, offset);
        ip.fill_checksum();
        parse(&f).unwrap()
    };
    let first = set(true, 0);
    assert_eq!(
        (first.frag, first.df, first.sport, first.dport),
        (FragKind::First, false, 54321, 443)
    );
    for (more, offset) in [(true, 8), (false, 1480)] {
        let info = set(more, offset);
        assert_eq!(info.frag, FragKind::NonFirst);
        assert_eq!((info.sport, info.dport, info.tcp_flags), (0, 0, 0));
        assert_eq!(
            (info.proto, info.l4_off, info.l4_len),
            (ip_proto::TCP, c.l4_off(), c.ip_len - c.ip_hdr)
        );
    }
    // A non-first fragment too short for a TCP header is not an error.
    let mut f = c.frame[..c.l4_off() + 3].to_vec();
    let mut ip = Ipv4Packet::new_unchecked(&mut f[l3..]);
    ip.set_total_len((c.ip_hdr + 3) as u16);
    ip.set_frag(false, false, 64);
    ip.fill_checksum();
    assert_eq!(parse(&f).unwrap().l4_len, 3);
    // A first fragment of UDP holds less than the UDP length says.
    let c = &cases()[2];
    let mut f = c.frame[..c.l4_off() + 10].to_vec();
    let mut ip = Ipv4Packet::new_unchecked(&mut f[c.l3_off()..]);
    ip.set_total_len(30);
    ip.set_frag(false, true, 0);
    ip.fill_checksum();
    let info = parse(&f).unwrap();
    assert_eq!(
        (info.frag, info.sport, info.dport),
        (FragKind::First, 5353, 53)
    );
    // ... but not less than its header.
    let mut ip = Ipv4Packet::new_unchecked(&mut f[c.l3_off()..]);
    ip.set_total_len(27);
    ip.fill_checksum();
    assert_eq!(parse(&f), Err(ParseError::TruncatedUdp));
}

#[test]
fn ipv6_fragments() {
    let build = |frag: (u16, bool), l4: L4| {
        let ip = ip_packet(
            v6_header(V6_CLIENT, V6_VIP, 9, 0, all_exts(frag)),
            &l4,
            b"0123456789",
        );
        frame(Vlan::Untagged, &ip, 0)
    };
    let info = parse(&build((0, true), L4::Udp(5353, 53))).unwrap();
    assert_eq!(
        (info.frag, info.proto, info.sport, info.dport),
        (FragKind::First, ip_proto::UDP, 5353, 53)
    );
    assert_eq!(info.l4_off, 14 + 40 + ALL_EXTS_LEN);
    // A first fragment of ICMPv6: its checksum covers more than it holds.
    let echo = etherparse::Icmpv6Type::EchoRequest(etherparse::IcmpEchoHeader { id: 1, seq: 2 });
    let mut f = build((0, true), L4::Icmpv6(echo));
    let l4_off = 14 + 40 + ALL_EXTS_LEN;
    f[l4_off + 2] ^= 0xff;
    assert_eq!(parse(&f).unwrap().icmp_type, icmp::v6::ECHO_REQUEST);
    // Non-first: the walk stops at the fragment header (after hop-by-hop,
    // destination options and routing), AH and UDP are not looked at.
    let info = parse(&build((185, false), L4::Udp(5353, 53))).unwrap();
    assert_eq!(info.frag, FragKind::NonFirst);
    assert_eq!((info.proto, info.sport, info.dport), (ip_proto::AH, 0, 0));
    assert_eq!(info.l4_off, 14 + 40 + 8 + 16 + 8 + 8);
}

#[test]
fn walk_stops_at_esp_and_no_next_header() {
    for proto in [ip_proto::ESP, ip_proto::IPV6_NONXT] {
        let c = &cases()[6];
        let mut f = c.frame.clone();
        f[c.l3_off() + 6] = proto;
        let info = parse(&f).unwrap();
        assert_eq!(
            (info.proto, info.l4_off, info.sport),
            (proto, c.l4_off(), 0)
        );
    }
}

#[test]
fn parse_error_table() {
    let all = ParseError::ALL;
    assert_eq!(all.len(), ParseError::BadIcmpInner.index() + 1);
    let mut names = std::collections::HashSet::new();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.index(), i);
        let name = e.as_str();
        assert!(names.insert(name), "{name} twice");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        );
        assert!(!e.to_string().is_empty());
    }
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

fn vlan_strategy() -> impl Strategy<Value = Vlan> {
    prop_oneof![
        Just(Vlan::Untagged),
        any::<u16>().prop_map(Vlan::Single),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Vlan::Double(a, b)),
    ]
}

/// Addresses of either family.
fn addrs_strategy() -> impl Strategy<Value = (Addr, Addr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| (Addr::v4(s), Addr::v4(d))),
        (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(s, d)| (Addr::v6(s), Addr::v6(d))),
    ]
}

/// Checks the invariants any successful parse must hold.
fn check_bounds(frame: &[u8], info: &PacketInfo) {
    assert!(info.l3_off + info.ip_len <= frame.len());
    assert!(info.l3_off < info.l4_off);
    assert_eq!(info.l4_off + info.l4_len, info.l3_off + info.ip_len);
    if let Some(inner) = info.inner {
        assert!(inner.l3_off >= info.l4_off + 8);
        assert!(inner.l4_off + inner.l4_len <= info.l3_off + info.ip_len);
    }
}

proptest! {
    /// Frames built by etherparse from random addresses, ports, flags,
    /// payloads, tags and padding parse to exactly what went in.
    #[test]
    fn round_trip(
        vlan in vlan_strategy(),
        (src, dst) in addrs_strategy(),
        tcp in any::<bool>(),
        sport: u16, dport: u16, flags: u8, ttl: u8, tos: u8,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        padding in 0usize..40,
    ) {
        let ip_hdr = if src.is_v4() {
            v4_header(src.v4_octets(), dst.v4_octets(), ttl, tos, &[])
        } else {
            v6_header(src.0, dst.0, ttl, tos, Default::default())
        };
        let l4 = if tcp { L4::Tcp(sport, dport, flags, vec![]) } else { L4::Udp(sport, dport) };
        let ip = ip_packet(ip_hdr, &l4, &payload);
        let f = frame(vlan, &ip, padding);
        let l3_off = 14 + 4 * usize::from(vlan.count());
        let ip_hdr_len = if src.is_v4() { 20 } else { 40 };
        let expected = PacketInfo {
            vlan_count: vlan.count(),
            vlan_tci: vlan.tcis(),
            l3_off,
            af: src.af(),
            src,
            dst,
            proto: if tcp { ip_proto::TCP } else { ip_proto::UDP },
            ip_len: ip.len(),
            ttl,
            tos,
            df: src.is_v4(), // etherparse sets DF
            frag: FragKind::None,
            l4_off: l3_off + ip_hdr_len,
            l4_len: ip.len() - ip_hdr_len,
            sport,
            dport,
            tcp_flags: if tcp { flags } else { 0 },
            icmp_type: 0,
            icmp_code: 0,
            inner: None,
        };
        prop_assert_eq!(parse(&f), Ok(expected));
        // The transport checksum etherparse wrote verifies with our helpers.
        let seg = &f[expected.l4_off..expected.l4_off + expected.l4_len];
        prop_assert!(checksum::verify_transport(&src, &dst, expected.proto, seg));
    }

    /// Arbitrary bytes never make parse panic, and what it accepts stays in
    /// bounds.
    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(info) = parse(&bytes) {
            check_bounds(&bytes, &info);
        }
    }

    /// Valid frames with a few bytes overwritten (a cheap fuzzer that gets
    /// past the checksums now and then) never make parse panic.
    #[test]
    fn mutated_frames(
        which in 0usize..13,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let cases = cases();
        let mut f = cases[which % cases.len()].frame.clone();
        for (at, value) in edits {
            let i = at.index(f.len());
            f[i] = value;
        }
        if let Ok(info) = parse(&f) {
            check_bounds(&f, &info);
        }
    }

    /// The common-case parser agrees with the general one on every frame
    /// it answers for: valid frames with header bytes overwritten and, half
    /// of the time, the IPv4 checksum fixed so the edit gets past it.
    #[test]
    fn common_path_agrees_with_general(
        which in 0usize..64,
        edits in proptest::collection::vec((0usize..60, any::<u8>()), 1..4),
        fix: bool,
    ) {
        let cases = cases();
        let mut f = cases[which % cases.len()].frame.clone();
        for (at, value) in edits {
            if let Some(b) = f.get_mut(at) {
                *b = value;
            }
        }
        if fix && f.len() >= 34 && f[14] >> 4 == 4 {
            let ihl = usize::from(f[14] & 0x0f) * 4;
            if ihl >= 20 && f.len() >= 14 + ihl {
                fix_ipv4_checksum(&mut f, 14);
            }
        }
        let general = parse::parse_general(&f);
        if let Some(common) = parse::parse_common(&f) {
            prop_assert_eq!(Ok(common), general);
        }
        prop_assert_eq!(parse(&f), general);
    }

    /// Random IPv4 header fields survive the view's setters and getters.
    #[test]
    fn ipv4_view_round_trip(
        tos: u8, ident: u16, df: bool, mf: bool, offset in 0u16..0x2000,
        ttl: u8, proto: u8, src: [u8; 4], dst: [u8; 4],
    ) {
        let repr = Ipv4Repr { src_addr: src, dst_addr: dst, protocol: proto, total_len: 20, ident, dont_frag: df, ttl, tos };
        let mut buf = [0u8; 20];
        repr.emit(&mut buf);
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_frag(df, mf, offset * 8);
        p.fill_checksum();
        let h = etherparse::Ipv4HeaderSlice::from_slice(&buf).unwrap();
        prop_assert_eq!((h.dont_fragment(), h.more_fragments()), (df, mf));
        prop_assert_eq!(h.fragments_offset().value(), offset);
        prop_assert_eq!((h.identification(), h.ttl(), h.protocol().0), (ident, ttl, proto));
        prop_assert_eq!((h.source(), h.destination()), (src, dst));
        prop_assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!((p.tos(), p.frag_offset(), p.more_frags()), (tos, offset * 8, mf));
    }
}
