//! UDP datagrams (RFC 768).

use xvs_conntrack::Addr;

use super::{ParseError, checksum, ip_proto};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram.
///
/// After [`check_len`](Self::check_len) the length field lies between 8 and
/// the buffer length; [`payload`](Self::payload) and the checksum end at the
/// length field, which may be shorter than the IP payload (the kernel trims
/// the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic if it is
    /// shorter than the header or the length field says.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths: `TruncatedUdp` when the buffer is shorter than the
    /// header, `BadUdpLength` when the length field is below 8 or beyond the
    /// buffer (the kernel's "short packet"; this includes the length 0 of an
    /// IPv6 jumbogram, which is not supported).
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::TruncatedUdp);
        }
        let udp_len = usize::from(self.len());
        if udp_len < HEADER_LEN || udp_len > len {
            return Err(ParseError::BadUdpLength);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// The length field: header and payload, in bytes.
    #[inline]
    pub fn len(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Whether the datagram carries no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum as stored (0: none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Whether the checksum over the pseudo-header of `src` and `dst` and the
    /// datagram (up to its length field) is right. An IPv4 checksum of 0 means
    /// "none" and passes; on IPv6 it fails (RFC 8200 section 8.1).
    #[inline]
    pub fn verify_checksum(&self, src: &Addr, dst: &Addr) -> bool {
        if self.checksum() == 0 {
            return src.is_v4();
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::verify_transport(src, dst, ip_proto::UDP, datagram)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The payload: after the header, up to the length field.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::SRC_PORT], value);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::DST_PORT], value);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::LENGTH], value);
    }

    /// Sets the checksum as given (see [`fill_checksum`](Self::fill_checksum)
    /// and [`checksum::udp_update`]).
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Computes the checksum over the pseudo-header of `src` and `dst` and the
    /// datagram (up to its length field) and stores it; a computed 0 is
    /// stored as `0xffff`, since 0 means "none".
    #[inline]
    pub fn fill_checksum(&mut self, src: &Addr, dst: &Addr) {
        self.set_checksum(0);
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        let sum = match checksum::transport(src, dst, ip_proto::UDP, datagram) {
            0 => 0xffff,
            sum => sum,
        };
        self.set_checksum(sum);
    }

    /// The payload, writable: after the header, up to the length field.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS-sized header with 4 bytes of payload and 2 bytes beyond the
    /// length field.
    const DATAGRAM: [u8; 14] = [
        0x30, 0x39, // source port 12345
        0x00, 0x35, // destination port 53
        0x00, 0x0c, // length 12
        0x00, 0x00, // checksum (none)
        0x61, 0x62, 0x63, 0x64, // payload
        0xee, 0xee, // beyond the length field
    ];

    #[test]
    fn literal_fields() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (12345, 53));
        assert_eq!((p.len(), p.is_empty()), (12, false));
        assert_eq!(p.checksum(), 0);
        assert_eq!(p.payload(), b"abcd");
        let (s4, d4) = (Addr::v4([10, 0, 0, 1]), Addr::v4([10, 0, 0, 2]));
        assert!(p.verify_checksum(&s4, &d4), "IPv4: zero means none");
        let (s6, d6) = (Addr::v6([1; 16]), Addr::v6([2; 16]));
        assert!(!p.verify_checksum(&s6, &d6), "IPv6: zero is invalid");
    }

    #[test]
    fn fill_checksum_matches_etherparse() {
        let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut buf = DATAGRAM;
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum(&Addr::v4(src), &Addr::v4(dst));
        let ep = etherparse::UdpHeaderSlice::from_slice(&buf)
            .unwrap()
            .to_header();
        assert_eq!(
            ep.calc_checksum_ipv4_raw(src, dst, b"abcd").unwrap(),
            ep.checksum
        );
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(&Addr::v4(src), &Addr::v4(dst)));
    }

    /// A datagram whose checksum computes to 0 is sent with 0xffff.
    #[test]
    fn computed_zero_is_sent_as_ffff() {
        let (src, dst) = (Addr::v4([0, 0, 0, 0]), Addr::v4([0, 0, 0, 0]));
        // Pseudo-header sum: protocol 17 + length 10 = 0x001b; header: length
        // 0x000a; payload word w. Choose w so the total is 0xffff.
        let w: u16 = 0xffff - 0x001b - 0x000a;
        let mut buf = [0, 0, 0, 0, 0, 10, 0, 0, (w >> 8) as u8, w as u8];
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum(&src, &dst);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(&src, &dst));
    }

    #[test]
    fn check_len_errors() {
        for len in 0..8 {
            assert_eq!(
                UdpPacket::new_checked(&DATAGRAM[..len]).unwrap_err(),
                ParseError::TruncatedUdp
            );
        }
        for len in 8..12 {
            assert_eq!(
                UdpPacket::new_checked(&DATAGRAM[..len]).unwrap_err(),
                ParseError::BadUdpLength
            );
        }
        for field in [0u8, 7] {
            let mut bad = DATAGRAM;
            bad[5] = field;
            assert_eq!(
                UdpPacket::new_checked(&bad[..]).unwrap_err(),
                ParseError::BadUdpLength
            );
        }
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = [0xffu8; 11];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(7);
        p.set_dst_port(9);
        p.set_len(11);
        p.payload_mut().copy_from_slice(b"xyz");
        let (src, dst) = (Addr::v6([0xfe; 16]), Addr::v6([0x20; 16]));
        p.fill_checksum(&src, &dst);
        let ep = etherparse::UdpHeaderSlice::from_slice(&buf)
            .unwrap()
            .to_header();
        assert_eq!((ep.source_port, ep.destination_port, ep.length), (7, 9, 11));
        assert_eq!(
            ep.calc_checksum_ipv6_raw(src.0, dst.0, b"xyz").unwrap(),
            ep.checksum
        );
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        assert!(p.verify_checksum(&src, &dst));
        p.set_checksum(0x1234);
        assert_eq!(p.checksum(), 0x1234);
    }
}
