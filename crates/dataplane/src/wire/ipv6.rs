//! IPv6 packets (RFC 8200) and the walk over their extension headers.

use super::{FragKind, ParseError, ip_proto};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// How many extension headers [`walk_ext_headers`] follows before it gives up
/// (`Ipv6ExtChainTooLong`). RFC 8200 order allows at most seven distinct
/// kinds (destination options twice); eight leaves one to spare.
pub const MAX_EXT_HEADERS: usize = 8;

mod field {
    use core::ops::Range;

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// A view of an IPv6 packet.
///
/// After [`check_len`](Self::check_len) the buffer holds the fixed header and
/// the payload length it announces; [`payload`](Self::payload) ends there, so
/// Ethernet padding is never taken for payload. Jumbograms (payload length 0
/// with a hop-by-hop jumbo option) are not supported: their payload is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic if it is
    /// shorter than the header or the payload length says.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths, as the kernel's `ipv6_rcv` does: `TruncatedIpv6`
    /// when the buffer is shorter than the fixed header or than the header
    /// plus the payload length. The version is not checked here.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(ParseError::TruncatedIpv6);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn ver_tc_flow(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VER_TC_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The version field (6 for IPv6).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    /// The traffic class: DSCP (6 bits) and ECN (2 bits).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    /// The flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// The payload length: extension headers and upper-layer data, in bytes.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The next header: the first extension header or the upper-layer
    /// protocol (an [`ip_proto`] number).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 16] {
        read16b(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 16] {
        read16b(&self.buffer.as_ref()[field::DST_ADDR])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload: the payload-length bytes after the fixed header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, the traffic class and the flow label (its low 20 bits).
    #[inline]
    pub fn set_ver_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let word = (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, value: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = value;
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 16]) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr);
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: [u8; 16]) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr);
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// An IPv6 header without extension headers for the director to write: the
/// outer header of an IPv6 tunnel (see
/// [`tunnel_outer`](super::ipip::tunnel_outer)) or of an ICMPv6 message it
/// originates. [`emit`](Self::emit) writes every byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: [u8; 16],
    /// Destination address.
    pub dst_addr: [u8; 16],
    /// Next header.
    pub next_header: u8,
    /// Payload length (everything after the 40-byte header).
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class (DSCP and ECN).
    pub traffic_class: u8,
}

impl Ipv6Repr {
    /// Writes the header into `header`: version 6, flow label 0.
    pub fn emit(&self, header: &mut [u8; HEADER_LEN]) {
        let mut packet = Ipv6Packet::new_unchecked(&mut header[..]);
        packet.set_ver_tc_flow(self.traffic_class, 0);
        packet.set_payload_len(self.payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

fn read16b(b: &[u8]) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(b);
    out
}

mod ext_field {
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
}

/// Length of an IPv6 fragment header.
pub const FRAG_HEADER_LEN: usize = 8;

/// A view of an IPv6 extension header of any kind the walk follows:
/// hop-by-hop options, routing, destination options (length in 8-byte units
/// after the first 8), fragment (8 bytes) and authentication (AH, RFC 4302:
/// length in 4-byte units after the first 8). The kind is the next-header
/// value that announced it, so the view carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    /// Wraps `buffer`, an extension header of `kind` (an [`ip_proto`] number),
    /// without checking its length; accessors may panic if the buffer is
    /// shorter than the header.
    pub const fn new_unchecked(buffer: T, kind: u8) -> Self {
        Ipv6ExtHeader { buffer, kind }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T, kind: u8) -> Result<Self, ParseError> {
        let header = Self::new_unchecked(buffer, kind);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the whole header:
    /// `TruncatedIpv6ExtHeader` if not.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < 2 || len < self.header_len() {
            return Err(ParseError::TruncatedIpv6ExtHeader);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The kind of header (the next-header value that announced it).
    #[inline]
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The next header after this one.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[ext_field::NXT_HDR]
    }

    /// The length of this header in bytes, from its kind and length field.
    #[inline]
    pub fn header_len(&self) -> usize {
        match self.kind {
            ip_proto::IPV6_FRAG => FRAG_HEADER_LEN,
            ip_proto::AH => (usize::from(self.buffer.as_ref()[ext_field::LENGTH]) + 2) * 4,
            _ => (usize::from(self.buffer.as_ref()[ext_field::LENGTH]) + 1) * 8,
        }
    }

    fn frag_word(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// For a fragment header: the fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        self.frag_word() & 0xfff8
    }

    /// For a fragment header: the More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.frag_word() & 1 != 0
    }

    /// For a fragment header: the identification.
    #[inline]
    pub fn frag_ident(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6ExtHeader<&'a T> {
    /// The bytes after this header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// Where the extension header chain of an IPv6 packet leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Upper {
    /// The upper-layer protocol: TCP, UDP, ICMPv6 or any other value that is
    /// not an extension header the walk follows (ESP, no next header, ...).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 payload.
    pub offset: usize,
    /// Whether the packet is a fragment. The walk stops at the fragment
    /// header of a non-first fragment: what follows is not a header.
    pub frag: FragKind,
}

/// Whether `next_header` names an extension header [`walk_ext_headers`]
/// follows.
#[inline]
pub fn is_ext_header(next_header: u8) -> bool {
    matches!(
        next_header,
        ip_proto::HOPOPTS
            | ip_proto::IPV6_ROUTE
            | ip_proto::IPV6_FRAG
            | ip_proto::AH
            | ip_proto::IPV6_OPTS
    )
}

/// Walks the extension headers of an IPv6 packet whose fixed header announced
/// `next_header`, over its `payload`.
///
/// Follows hop-by-hop, routing, destination options, fragment and AH
/// headers, at most [`MAX_EXT_HEADERS`] of them (`Ipv6ExtChainTooLong` past
/// that), and stops at the first other value. A fragment header with offset 0
/// and More Fragments set makes a first fragment (the walk goes on: RFC 7112
/// puts the whole chain in it); offset 0 without More Fragments is an atomic
/// fragment (RFC 6946), taken as a whole packet; a non-zero offset stops the
/// walk. `TruncatedIpv6ExtHeader` when a header runs past the payload.
#[inline]
pub fn walk_ext_headers(mut next_header: u8, payload: &[u8]) -> Result<Ipv6Upper, ParseError> {
    let mut rest = payload;
    let mut offset = 0;
    let mut frag = FragKind::None;
    let mut seen = 0;
    while is_ext_header(next_header) {
        if seen == MAX_EXT_HEADERS {
            return Err(ParseError::Ipv6ExtChainTooLong);
        }
        seen += 1;
        let header = Ipv6ExtHeader::new_checked(rest, next_header)?;
        offset += header.header_len();
        rest = header.payload();
        next_header = header.next_header();
        if header.kind() == ip_proto::IPV6_FRAG {
            if header.frag_offset() != 0 {
                frag = FragKind::NonFirst;
                break;
            }
            if header.more_frags() {
                frag = FragKind::First;
            }
        }
    }
    Ok(Ipv6Upper {
        protocol: next_header,
        offset,
        frag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed header with the chain hop-by-hop (8) -> destination options
    /// (16) -> fragment (8, first) -> UDP (8), then 2 bytes of padding.
    const PACKET: [u8; 82] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, traffic class 0xb8, flow 0x12345
        0x00, 0x28, // payload length 40
        0x00, // hop-by-hop
        0x3f, // hop limit 63
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // 2001:db8::2
        60, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop: next dest opts, PadN
        44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // dest opts, 16 bytes
        17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, // fragment: offset 0, M
        0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP 12345 -> 53
        0x00, 0x00, // padding
    ];

    #[test]
    fn literal_fields() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 40);
        assert_eq!(p.next_header(), ip_proto::HOPOPTS);
        assert_eq!(p.hop_limit(), 63);
        assert_eq!(p.src_addr()[..4], [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(p.dst_addr()[15], 2);
        assert_eq!(p.payload().len(), 40, "padding excluded");
        let ep = etherparse::Ipv6HeaderSlice::from_slice(&PACKET).unwrap();
        assert_eq!(ep.flow_label().value(), p.flow_label());
        assert_eq!(ep.traffic_class(), p.traffic_class());
    }

    #[test]
    fn ext_header_views() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        let hop = Ipv6ExtHeader::new_checked(p.payload(), ip_proto::HOPOPTS).unwrap();
        assert_eq!(
            (hop.header_len(), hop.next_header()),
            (8, ip_proto::IPV6_OPTS)
        );
        let dst = Ipv6ExtHeader::new_checked(hop.payload(), ip_proto::IPV6_OPTS).unwrap();
        assert_eq!(
            (dst.header_len(), dst.next_header()),
            (16, ip_proto::IPV6_FRAG)
        );
        let frag = Ipv6ExtHeader::new_checked(dst.payload(), ip_proto::IPV6_FRAG).unwrap();
        assert_eq!(frag.kind(), ip_proto::IPV6_FRAG);
        assert_eq!((frag.header_len(), frag.next_header()), (8, ip_proto::UDP));
        assert_eq!((frag.frag_offset(), frag.more_frags()), (0, true));
        assert_eq!(frag.frag_ident(), 0xdeadbeef);
        assert_eq!(frag.payload().len(), 8);
        // AH counts 4-byte units after the first two: length 4 -> 24 bytes.
        let ah = [ip_proto::TCP, 4, 0, 0, 0, 0, 0, 1];
        let ah = Ipv6ExtHeader::new_unchecked(&ah[..], ip_proto::AH);
        assert_eq!(ah.header_len(), 24);
        assert_eq!(ah.check_len(), Err(ParseError::TruncatedIpv6ExtHeader));
    }

    #[test]
    fn walk() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        let upper = walk_ext_headers(p.next_header(), p.payload()).unwrap();
        assert_eq!(
            upper,
            Ipv6Upper {
                protocol: ip_proto::UDP,
                offset: 32,
                frag: FragKind::First
            }
        );
        // Non-first fragment: the walk stops at the fragment header.
        let mut buf = PACKET;
        buf[66..68].copy_from_slice(&[0x05, 0xc9]); // offset 1480, M
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        let upper = walk_ext_headers(p.next_header(), p.payload()).unwrap();
        assert_eq!(
            upper,
            Ipv6Upper {
                protocol: ip_proto::UDP,
                offset: 32,
                frag: FragKind::NonFirst
            }
        );
        // Atomic fragment: a whole packet.
        buf[66..68].copy_from_slice(&[0, 0]);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            walk_ext_headers(p.next_header(), p.payload()).unwrap().frag,
            FragKind::None
        );
        // No extension header at all.
        assert_eq!(
            walk_ext_headers(ip_proto::TCP, &[]).unwrap(),
            Ipv6Upper {
                protocol: ip_proto::TCP,
                offset: 0,
                frag: FragKind::None
            }
        );
    }

    #[test]
    fn walk_errors() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        for len in 0..32 {
            assert_eq!(
                walk_ext_headers(p.next_header(), &p.payload()[..len]),
                Err(ParseError::TruncatedIpv6ExtHeader),
                "{len}"
            );
        }
        // Eight destination options headers pass; nine do not.
        let chain = |n: usize| {
            let mut v = Vec::new();
            for i in 0..n {
                let next = if i + 1 == n {
                    ip_proto::TCP
                } else {
                    ip_proto::IPV6_OPTS
                };
                v.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
            v
        };
        let upper = walk_ext_headers(ip_proto::IPV6_OPTS, &chain(8)).unwrap();
        assert_eq!((upper.protocol, upper.offset), (ip_proto::TCP, 64));
        assert_eq!(
            walk_ext_headers(ip_proto::IPV6_OPTS, &chain(9)),
            Err(ParseError::Ipv6ExtChainTooLong)
        );
    }

    #[test]
    fn check_len_errors() {
        for len in 0..80 {
            assert_eq!(
                Ipv6Packet::new_checked(&PACKET[..len]).unwrap_err(),
                ParseError::TruncatedIpv6,
                "{len}"
            );
        }
        assert!(Ipv6Packet::new_checked(&PACKET[..80]).is_ok());
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = [0xffu8; 48];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_ver_tc_flow(0x2e, 0xffff_abcd);
        p.set_payload_len(8);
        p.set_next_header(ip_proto::UDP);
        p.set_hop_limit(9);
        p.set_src_addr([1; 16]);
        p.set_dst_addr([2; 16]);
        p.payload_mut().fill(0);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0x2e, 0xfabcd)
        );
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (8, ip_proto::UDP, 9)
        );
        assert_eq!((p.src_addr(), p.dst_addr()), ([1; 16], [2; 16]));
        assert_eq!(p.payload(), &[0; 8]);
    }
}
