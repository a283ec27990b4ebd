//! Ethernet II frames and 802.1Q / 802.1ad VLAN tags.

use super::ParseError;

/// EtherType values the director looks at.
pub mod ether_type {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// An 802.1Q VLAN tag (C-tag) follows.
    pub const VLAN: u16 = 0x8100;
    /// An 802.1ad service VLAN tag (S-tag, the outer tag of QinQ) follows.
    pub const QINQ: u16 = 0x88a8;
}

/// Length of an Ethernet II header without VLAN tags.
pub const HEADER_LEN: usize = 14;

mod field {
    use core::ops::Range;

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// A view of an Ethernet II frame: destination and source MAC addresses and
/// the EtherType. When the EtherType is [`ether_type::VLAN`] or
/// [`ether_type::QINQ`], the payload starts with a [`VlanTag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking its length; accessors may panic if it
    /// is shorter than [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the header: `TruncatedEthernet` if not.
    pub fn check_len(&self) -> Result<(), ParseError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(ParseError::TruncatedEthernet);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 6] {
        read6(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The source MAC address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 6] {
        read6(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType (or TPID when a VLAN tag follows).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// The bytes after the header (VLAN tags, then the network packet and any
    /// padding).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

fn read6(b: &[u8]) -> [u8; 6] {
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// Length of a VLAN tag as seen after the TPID: TCI and the next EtherType.
pub const VLAN_TAG_LEN: usize = 4;

mod vlan_field {
    use core::ops::Range;

    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// A view of an 802.1Q / 802.1ad tag: the four bytes that follow a
/// [`ether_type::VLAN`] or [`ether_type::QINQ`] TPID, holding the tag control
/// information (priority, drop eligibility, VLAN id) and the EtherType of what
/// follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Wraps `buffer` without checking its length; accessors may panic if it
    /// is shorter than [`VLAN_TAG_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let tag = Self::new_unchecked(buffer);
        tag.check_len()?;
        Ok(tag)
    }

    /// Checks that the buffer holds the tag: `TruncatedEthernet` if not.
    pub fn check_len(&self) -> Result<(), ParseError> {
        if self.buffer.as_ref().len() < VLAN_TAG_LEN {
            return Err(ParseError::TruncatedEthernet);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole tag control information: PCP (3 bits), DEI (1), VID (12).
    #[inline]
    pub fn tci(&self) -> u16 {
        let b = &self.buffer.as_ref()[vlan_field::TCI];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The priority code point (802.1p class of service).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// The drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// The VLAN identifier.
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType of what follows the tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[vlan_field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanTag<&'a T> {
    /// The bytes after the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[vlan_field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Sets the tag control information.
    #[inline]
    pub fn set_tci(&mut self, value: u16) {
        self.buffer.as_mut()[vlan_field::TCI].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the EtherType of what follows the tag.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        self.buffer.as_mut()[vlan_field::ETHERTYPE].copy_from_slice(&value.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A QinQ header: S-tag VID 100 (PCP 5), C-tag VID 200 (DEI), IPv4.
    const QINQ: [u8; 22] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
        0x88, 0xa8, // TPID S-tag
        0xa0, 0x64, // PCP 5, VID 100
        0x81, 0x00, // TPID C-tag
        0x10, 0xc8, // DEI, VID 200
        0x08, 0x00, // IPv4
    ];

    #[test]
    fn literal_qinq_fields() {
        let eth = EthernetFrame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(eth.dst_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(eth.src_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(eth.ethertype(), ether_type::QINQ);
        let outer = VlanTag::new_checked(eth.payload()).unwrap();
        assert_eq!((outer.pcp(), outer.dei(), outer.vid()), (5, false, 100));
        assert_eq!(outer.ethertype(), ether_type::VLAN);
        let inner = VlanTag::new_checked(outer.payload()).unwrap();
        assert_eq!((inner.pcp(), inner.dei(), inner.vid()), (0, true, 200));
        assert_eq!(inner.tci(), 0x10c8);
        assert_eq!(inner.ethertype(), ether_type::IPV4);
        assert!(inner.payload().is_empty());
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = QINQ;
        let mut eth = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        eth.set_dst_addr([1, 2, 3, 4, 5, 6]);
        eth.set_src_addr([7, 8, 9, 10, 11, 12]);
        eth.set_ethertype(ether_type::VLAN);
        let mut tag = VlanTag::new_checked(&mut eth.payload_mut()[..]).unwrap();
        tag.set_tci(0x2007);
        tag.set_ethertype(ether_type::IPV6);
        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(eth.dst_addr(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(eth.src_addr(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(eth.ethertype(), ether_type::VLAN);
        let tag = VlanTag::new_checked(eth.payload()).unwrap();
        assert_eq!(
            (tag.pcp(), tag.vid(), tag.ethertype()),
            (1, 7, ether_type::IPV6)
        );
    }

    #[test]
    fn truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&QINQ[..len]).unwrap_err(),
                ParseError::TruncatedEthernet
            );
        }
        for len in 0..VLAN_TAG_LEN {
            assert_eq!(
                VlanTag::new_checked(&QINQ[14..14 + len]).unwrap_err(),
                ParseError::TruncatedEthernet
            );
        }
    }
}
