//! TCP segments (RFC 9293).

use xvs_conntrack::Addr;

use super::{ParseError, checksum, ip_proto};

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;

/// The eight flag bits of the TCP header (the low byte of the data offset
/// and flags word), as in [`TcpPacket::flags`].
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECN echo (RFC 3168).
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced (RFC 3168).
    pub const CWR: u8 = 0x80;
}

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// A view of a TCP segment: header, options and payload.
///
/// After [`check_len`](Self::check_len) the buffer holds the whole header,
/// options included. The buffer should end where the IP packet ends (as
/// [`Ipv4Packet::payload`](super::ipv4::Ipv4Packet::payload) does), since the
/// payload and checksum cover everything up to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic if it is
    /// shorter than the header.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths, as the kernel's `tcp_v4_rcv` does: `TruncatedTcp`
    /// when the buffer is shorter than 20 bytes or than the data offset says,
    /// `BadTcpDataOffset` when the data offset is below 5.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::TruncatedTcp);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(ParseError::BadTcpDataOffset);
        }
        if len < header_len {
            return Err(ParseError::TruncatedTcp);
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

    /// The sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// The acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// The header length in bytes (data offset x 4): 20 to 60.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The eight flag bits; test them with the [`flags`] constants.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The window size.
    #[inline]
    pub fn window_len(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    /// The checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        read16(&self.buffer.as_ref()[field::URGENT])
    }

    /// Whether the checksum over the pseudo-header of `src` and `dst` and the
    /// whole buffer is right.
    #[inline]
    pub fn verify_checksum(&self, src: &Addr, dst: &Addr) -> bool {
        checksum::verify_transport(src, dst, ip_proto::TCP, self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The options: the header bytes after the first 20.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the header length in bytes (a multiple of 4 from 20 to 60); the
    /// reserved bits are cleared.
    #[inline]
    pub fn set_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((header_len / 4) as u8) << 4;
    }

    /// Sets the eight flag bits.
    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets the window size.
    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::WIN_SIZE], value);
    }

    /// Sets the checksum as given (see [`fill_checksum`](Self::fill_checksum)
    /// and the incremental updates in [`checksum`]).
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        write16(&mut self.buffer.as_mut()[field::URGENT], value);
    }

    /// Computes the checksum over the pseudo-header of `src` and `dst` and the
    /// whole buffer, and stores it.
    #[inline]
    pub fn fill_checksum(&mut self, src: &Addr, dst: &Addr) {
        self.set_checksum(0);
        let sum = checksum::transport(src, dst, ip_proto::TCP, self.buffer.as_ref());
        self.set_checksum(sum);
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

#[inline]
fn read16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn read32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[inline]
fn write16(b: &mut [u8], value: u16) {
    b.copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN with one option (MSS 1460) and no payload.
    const SEGMENT: [u8; 24] = [
        0xd4, 0x31, // source port 54321
        0x00, 0x50, // destination port 80
        0x01, 0x02, 0x03, 0x04, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgment number
        0x60, // data offset 6
        0x02, // SYN
        0xfa, 0xf0, // window 64240
        0x00, 0x00, // checksum (filled below)
        0x00, 0x00, // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    fn addrs() -> (Addr, Addr) {
        (Addr::v4([192, 0, 2, 1]), Addr::v4([198, 51, 100, 80]))
    }

    #[test]
    fn literal_fields() {
        let (src, dst) = addrs();
        let mut buf = SEGMENT;
        TcpPacket::new_checked(&mut buf[..])
            .unwrap()
            .fill_checksum(&src, &dst);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (54321, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (0x01020304, 0));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), flags::SYN);
        assert_eq!((p.window_len(), p.urgent_at()), (64240, 0));
        assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(&src, &dst));
        assert!(!p.verify_checksum(&dst, &dst));
        let ep = etherparse::TcpHeaderSlice::from_slice(&buf).unwrap();
        let expected = ep
            .calc_checksum_ipv4_raw(src.v4_octets(), dst.v4_octets(), &[])
            .unwrap();
        assert_eq!(p.checksum(), expected);
    }

    #[test]
    fn check_len_errors() {
        for len in 0..24 {
            assert_eq!(
                TcpPacket::new_checked(&SEGMENT[..len]).unwrap_err(),
                ParseError::TruncatedTcp,
                "{len}"
            );
        }
        for off in 0..5 {
            let mut bad = SEGMENT;
            bad[12] = off << 4;
            assert_eq!(
                TcpPacket::new_checked(&bad[..]).unwrap_err(),
                ParseError::BadTcpDataOffset
            );
        }
    }

    #[test]
    fn setters_round_trip() {
        let (src, dst) = (Addr::v6([0x20; 16]), Addr::v6([0xfd; 16]));
        let mut buf = [0xffu8; 23];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq_number(3);
        p.set_ack_number(4);
        p.set_header_len(20);
        p.set_flags(flags::ACK | flags::PSH | flags::FIN);
        p.set_window_len(5);
        p.set_urgent_at(6);
        p.payload_mut().copy_from_slice(b"abc");
        p.fill_checksum(&src, &dst);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        let ep = etherparse::TcpHeaderSlice::from_slice(&buf).unwrap();
        assert_eq!((ep.source_port(), ep.destination_port()), (1, 2));
        assert_eq!((ep.sequence_number(), ep.acknowledgment_number()), (3, 4));
        assert!(ep.ack() && ep.psh() && ep.fin() && !ep.syn());
        assert_eq!((ep.window_size(), ep.urgent_pointer()), (5, 6));
        let expected = ep.calc_checksum_ipv6_raw(src.0, dst.0, b"abc").unwrap();
        assert_eq!(p.checksum(), expected);
        assert_eq!(p.payload(), b"abc");
        assert!(p.verify_checksum(&src, &dst));
    }
}
