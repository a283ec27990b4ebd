//! IPv4 packets (RFC 791), options included.

use super::ParseError;
use super::checksum;

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Don't Fragment, in the flags and fragment offset word.
const FLAG_DF: u16 = 0x4000;
/// More Fragments, in the flags and fragment offset word.
const FLAG_MF: u16 = 0x2000;
/// The fragment offset (in 8-byte units), in the flags and fragment offset word.
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
///
/// After [`check_len`](Self::check_len) the buffer holds the whole header
/// (options included) and the total length lies between the header length and
/// the buffer length; [`payload`](Self::payload) ends at the total length, so
/// Ethernet padding is never taken for payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic if it is
    /// shorter than the header or the total length says.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths, as the kernel's `ip_rcv_core` does:
    ///
    /// - `TruncatedIpv4`: the buffer is shorter than 20 bytes, than the header
    ///   length (IHL), or than the total length;
    /// - `BadIpv4Ihl`: the IHL is below 5;
    /// - `BadIpv4TotalLen`: the total length is below the header length.
    ///
    /// The version is not checked here.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::TruncatedIpv4);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(ParseError::BadIpv4Ihl);
        }
        if len < header_len {
            return Err(ParseError::TruncatedIpv4);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(ParseError::BadIpv4TotalLen);
        }
        if len < total_len {
            return Err(ParseError::TruncatedIpv4);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL x 4): 20 to 60.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The type of service byte: DSCP (6 bits) and ECN (2 bits).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// The differentiated services code point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// The explicit congestion notification bits.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// The total length: header and payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::IDENT])
    }

    fn flags_offset(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::FLG_OFF])
    }

    /// The Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// The More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) * 8
    }

    /// The time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload (an [`ip_proto`](super::ip_proto) number).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 4] {
        read4(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 4] {
        read4(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Whether the header checksum is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The options: the header bytes after the first 20.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload: from the end of the header to the total length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version and the header length (in bytes, a multiple of 4
    /// from 20 to 60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, version: u8, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = (version << 4) | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets the type of service byte (DSCP and ECN).
    #[inline]
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::TOS] = value;
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::LENGTH], value);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::IDENT], value);
    }

    /// Sets the flags and fragment offset word: DF, MF and the offset in bytes
    /// (a multiple of 8 below 65536).
    #[inline]
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut word = (offset / 8) & OFFSET_MASK;
        if dont_frag {
            word |= FLAG_DF;
        }
        if more_frags {
            word |= FLAG_MF;
        }
        write16(&mut self.buffer.as_mut()[field::FLG_OFF], word);
    }

    /// Sets the time to live.
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol of the payload.
    #[inline]
    pub fn set_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = value;
    }

    /// Sets the header checksum as given (see also
    /// [`fill_checksum`](Self::fill_checksum) and
    /// [`checksum::update_u32`]).
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 4]) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr);
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: [u8; 4]) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr);
    }

    /// Computes the header checksum and stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(sum);
    }

    /// The payload, writable: from the end of the header to the total length.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// An option-less IPv4 header for the director to write: the outer header of
/// IP-in-IP (see [`ipip_outer`](super::ipip::ipip_outer)) or of a packet it
/// originates. An owned value, so [`emit`](Self::emit) writes every byte of
/// the header and never trusts what a reused frame held before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: [u8; 4],
    /// Destination address.
    pub dst_addr: [u8; 4],
    /// Protocol of the payload.
    pub protocol: u8,
    /// Total length: the 20-byte header and the payload.
    pub total_len: u16,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// Time to live.
    pub ttl: u8,
    /// Type of service (DSCP and ECN).
    pub tos: u8,
}

impl Ipv4Repr {
    /// Writes the header, checksum included, into `header`: version 4, IHL 5,
    /// no More Fragments, fragment offset 0.
    pub fn emit(&self, header: &mut [u8; HEADER_LEN]) {
        let mut packet = Ipv4Packet::new_unchecked(&mut header[..]);
        packet.set_version_and_header_len(4, HEADER_LEN);
        packet.set_tos(self.tos);
        packet.set_total_len(self.total_len);
        packet.set_ident(self.ident);
        packet.set_frag(self.dont_frag, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[inline]
fn read16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn write16(b: &mut [u8], value: u16) {
    b.copy_from_slice(&value.to_be_bytes());
}

#[inline]
fn read4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip_proto;

    /// 24-byte header (one 4-byte option: router alert), 4 bytes of payload,
    /// then 2 bytes of Ethernet padding.
    const PACKET: [u8; 30] = [
        0x46, // version 4, IHL 6
        0xb9, // DSCP 46 (EF), ECN 1
        0x00, 0x1c, // total length 28
        0x12, 0x34, // identification
        0x40, 0x00, // DF, offset 0
        0x40, // TTL 64
        0x11, // UDP
        0x00, 0x00, // checksum (filled below)
        0x0a, 0x00, 0x00, 0x01, // source
        0xc0, 0xa8, 0x01, 0x02, // destination
        0x94, 0x04, 0x00, 0x00, // option: router alert
        0xde, 0xad, 0xbe, 0xef, // payload
        0x00, 0x00, // padding
    ];

    fn packet() -> [u8; 30] {
        let mut buf = PACKET;
        Ipv4Packet::new_unchecked(&mut buf[..]).fill_checksum();
        buf
    }

    #[test]
    fn literal_fields() {
        let buf = packet();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!((p.tos(), p.dscp(), p.ecn()), (0xb9, 46, 1));
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), ip_proto::UDP);
        assert_eq!(p.src_addr(), [10, 0, 0, 1]);
        assert_eq!(p.dst_addr(), [192, 168, 1, 2]);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef], "padding excluded");
        assert!(p.verify_checksum());
        let ep = etherparse::Ipv4HeaderSlice::from_slice(&buf).unwrap();
        assert_eq!(p.checksum(), ep.to_header().calc_header_checksum());
    }

    #[test]
    fn fragment_fields() {
        let mut buf = packet();
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_frag(false, true, 1480);
        assert!(!p.dont_frag());
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(&buf[6..8], &[0x20, 0xb9]);
    }

    #[test]
    fn check_len_errors() {
        let buf = packet();
        for len in 0..28 {
            assert_eq!(
                Ipv4Packet::new_checked(&buf[..len]).unwrap_err(),
                ParseError::TruncatedIpv4,
                "{len}"
            );
        }
        assert!(Ipv4Packet::new_checked(&buf[..28]).is_ok());
        for ihl in 0..5 {
            let mut bad = buf;
            bad[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
                ParseError::BadIpv4Ihl
            );
        }
        let mut bad = buf;
        bad[0] = 0x4f; // 60-byte header in a 30-byte buffer
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            ParseError::TruncatedIpv4
        );
        let mut bad = buf;
        bad[3] = 23; // total length shorter than the 24-byte header
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            ParseError::BadIpv4TotalLen
        );
        bad[3] = 24; // header only
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap().payload(),
            &[] as &[u8]
        );
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = [0xffu8; 40];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version_and_header_len(4, 20);
        p.set_tos(0x10);
        p.set_total_len(40);
        p.set_ident(7);
        p.set_frag(true, false, 0);
        p.set_ttl(3);
        p.set_protocol(ip_proto::TCP);
        p.set_src_addr([1, 2, 3, 4]);
        p.set_dst_addr([5, 6, 7, 8]);
        p.fill_checksum();
        p.payload_mut().fill(0);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        let ep = etherparse::Ipv4HeaderSlice::from_slice(&buf).unwrap();
        assert_eq!(ep.dcp().value(), 4);
        assert_eq!(ep.total_len(), 40);
        assert_eq!(ep.identification(), 7);
        assert!(ep.dont_fragment());
        assert_eq!(ep.ttl(), 3);
        assert_eq!(ep.protocol(), etherparse::IpNumber::TCP);
        assert_eq!(ep.source(), [1, 2, 3, 4]);
        assert_eq!(ep.destination(), [5, 6, 7, 8]);
        assert_eq!(ep.header_checksum(), ep.to_header().calc_header_checksum());
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0; 20]);
    }

    #[test]
    fn repr_emit_overwrites_everything() {
        let repr = Ipv4Repr {
            src_addr: [192, 0, 2, 1],
            dst_addr: [198, 51, 100, 7],
            protocol: ip_proto::IPIP,
            total_len: 1500,
            ident: 0xbeef,
            dont_frag: true,
            ttl: 63,
            tos: 0x2e,
        };
        let mut header = [0xa5u8; HEADER_LEN];
        repr.emit(&mut header);
        let ep = etherparse::Ipv4HeaderSlice::from_slice(&header)
            .unwrap()
            .to_header();
        assert_eq!(ep.source, repr.src_addr);
        assert_eq!(ep.destination, repr.dst_addr);
        assert_eq!(ep.protocol, etherparse::IpNumber::IPV4);
        assert_eq!(ep.total_len, 1500);
        assert_eq!(ep.identification, 0xbeef);
        assert!(ep.dont_fragment && !ep.more_fragments);
        assert_eq!(ep.fragment_offset.value(), 0);
        assert_eq!(ep.time_to_live, 63);
        assert_eq!((ep.dscp.value(), ep.ecn.value()), (0x0b, 2));
        assert!(ep.options.is_empty());
        assert_eq!(ep.header_checksum, ep.calc_header_checksum());
    }
}
