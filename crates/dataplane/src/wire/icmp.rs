//! ICMP (RFC 792) and ICMPv6 (RFC 4443) messages, which share one header
//! layout: type, code, checksum and a 32-bit rest-of-header word.

use xvs_conntrack::Addr;

use super::{ParseError, checksum, ip_proto};

/// Length of the ICMP / ICMPv6 header, rest-of-header word included.
pub const HEADER_LEN: usize = 8;

/// ICMPv4 message types and codes.
pub mod v4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable (an error).
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench (an error; deprecated by RFC 6633, still related to a
    /// connection by IPVS).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect: quotes a packet but is not an error the director acts on.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded (an error).
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem (an error).
    pub const PARAM_PROBLEM: u8 = 12;
    /// Destination unreachable code: fragmentation needed and DF set; the
    /// next-hop MTU is in [`IcmpPacket::next_hop_mtu`](super::IcmpPacket::next_hop_mtu).
    pub const CODE_FRAG_NEEDED: u8 = 4;

    /// Whether a message of type `msg_type` is an error that quotes the
    /// packet that caused it: destination unreachable, source quench, time
    /// exceeded, parameter problem.
    #[inline]
    pub fn is_error(msg_type: u8) -> bool {
        matches!(
            msg_type,
            DEST_UNREACH | SOURCE_QUENCH | TIME_EXCEEDED | PARAM_PROBLEM
        )
    }
}

/// ICMPv6 message types.
pub mod v6 {
    /// Destination unreachable (an error).
    pub const DEST_UNREACH: u8 = 1;
    /// Packet too big (an error); the MTU is the rest-of-header word.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded (an error).
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem (an error).
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;

    /// Whether a message of type `msg_type` is one of the four errors of
    /// RFC 4443 that quote the packet that caused them.
    #[inline]
    pub fn is_error(msg_type: u8) -> bool {
        matches!(msg_type, DEST_UNREACH..=PARAM_PROBLEM)
    }
}

mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub const DATA: usize = 8;
}

/// A view of an ICMP or ICMPv6 message.
///
/// After [`check_len`](Self::check_len) the buffer holds the 8-byte header.
/// The buffer should end where the IP packet ends: the checksum covers the
/// whole message. For error messages [`data`](Self::data) is the quoted packet,
/// as much of it as the sender kept (at least the IP header and 8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic if it is
    /// shorter than the header.
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the header: `TruncatedIcmp` if not.
    pub fn check_len(&self) -> Result<(), ParseError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(ParseError::TruncatedIcmp);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The rest-of-header word: identifier and sequence number of an echo,
    /// the MTU of an ICMPv6 packet too big, the pointer of a parameter
    /// problem, zero (or the next-hop MTU) for the other errors.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::REST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The next-hop MTU of an ICMPv4 "fragmentation needed" (RFC 1191): the
    /// low 16 bits of the rest-of-header word.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::NEXT_HOP_MTU];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Whether the checksum of an ICMPv4 message (over the message alone) is
    /// right.
    #[inline]
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }

    /// Whether the checksum of an ICMPv6 message (over the pseudo-header of
    /// `src` and `dst` and the message) is right.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &Addr, dst: &Addr) -> bool {
        checksum::verify_transport(src, dst, ip_proto::ICMPV6, self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> IcmpPacket<&'a T> {
    /// The bytes after the header: the quoted packet of an error, the data
    /// of an echo.
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum as given.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the rest-of-header word.
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the next-hop MTU of an ICMPv4 "fragmentation needed" (the low 16
    /// bits of the rest-of-header word; the high 16 are left alone).
    #[inline]
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        self.buffer.as_mut()[field::NEXT_HOP_MTU].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes the ICMPv4 checksum over the whole buffer and stores it.
    #[inline]
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(sum);
    }

    /// Computes the ICMPv6 checksum over the pseudo-header of `src` and `dst`
    /// and the whole buffer, and stores it.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Addr, dst: &Addr) {
        self.set_checksum(0);
        let sum = checksum::transport(src, dst, ip_proto::ICMPV6, self.buffer.as_ref());
        self.set_checksum(sum);
    }

    /// The bytes after the header, writable (to rewrite a quoted packet).
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fragmentation needed, next-hop MTU 1400, quoting the first 28 bytes of
    /// an IPv4/UDP packet.
    const FRAG_NEEDED: [u8; 36] = [
        0x03, 0x04, // destination unreachable, fragmentation needed
        0x00, 0x00, // checksum (filled below)
        0x00, 0x00, 0x05, 0x78, // unused, next-hop MTU 1400
        0x45, 0x00, 0x05, 0xdc, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, // IPv4 ...
        0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, // ... 10.0.0.1 -> 10.0.0.2
        0x30, 0x39, 0x00, 0x35, 0x05, 0xc8, 0x00, 0x00, // UDP 12345 -> 53
    ];

    #[test]
    fn literal_fields_v4() {
        let mut buf = FRAG_NEEDED;
        IcmpPacket::new_checked(&mut buf[..])
            .unwrap()
            .fill_checksum_v4();
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (p.msg_type(), p.msg_code()),
            (v4::DEST_UNREACH, v4::CODE_FRAG_NEEDED)
        );
        assert!(v4::is_error(p.msg_type()));
        assert_eq!(p.rest_of_header(), 1400);
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.data().len(), 28);
        assert_eq!(p.data()[0], 0x45);
        assert!(p.verify_checksum_v4());
        let ep = etherparse::Icmpv4Slice::from_slice(&buf).unwrap();
        assert_eq!(ep.checksum(), ep.icmp_type().calc_checksum(ep.payload()));
        assert_eq!(p.checksum(), ep.checksum());
    }

    #[test]
    fn packet_too_big_v6() {
        let (src, dst) = (Addr::v6([0x20; 16]), Addr::v6([0xfe; 16]));
        let mut buf = [0u8; 48];
        let mut p = IcmpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_msg_type(v6::PACKET_TOO_BIG);
        p.set_msg_code(0);
        p.set_rest_of_header(1280);
        p.data_mut()[0] = 0x60;
        p.fill_checksum_v6(&src, &dst);
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert!(v6::is_error(p.msg_type()) && !v6::is_error(v6::ECHO_REQUEST));
        assert_eq!(p.rest_of_header(), 1280);
        assert!(p.verify_checksum_v6(&src, &dst));
        assert!(!p.verify_checksum_v6(&src, &Addr::v6([0xfd; 16])));
        let ep = etherparse::Icmpv6Slice::from_slice(&buf).unwrap();
        let expected = ep
            .icmp_type()
            .calc_checksum(src.0, dst.0, ep.payload())
            .unwrap();
        assert_eq!(p.checksum(), expected);
    }

    #[test]
    fn setters() {
        let mut buf = FRAG_NEEDED;
        let mut p = IcmpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_next_hop_mtu(1280);
        assert_eq!(p.rest_of_header(), 1280);
        p.set_msg_type(v4::TIME_EXCEEDED);
        p.set_msg_code(0);
        assert!(!v4::is_error(v4::REDIRECT) && v4::is_error(p.msg_type()));
    }

    #[test]
    fn truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                IcmpPacket::new_checked(&FRAG_NEEDED[..len]).unwrap_err(),
                ParseError::TruncatedIcmp
            );
        }
    }
}
