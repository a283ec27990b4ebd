//! Packet views and the one-pass frame parser.
//!
//! # Contracts
//!
//! - **Views over borrowed bytes.** [`EthernetFrame`], [`VlanTag`],
//!   [`Ipv4Packet`], [`Ipv6Packet`], [`Ipv6ExtHeader`], [`TcpPacket`],
//!   [`UdpPacket`] and [`IcmpPacket`] wrap a buffer (`T: AsRef<[u8]>`, a UMEM
//!   frame or a slice of it) and read or write fields at fixed offsets, kept
//!   in one private `field` module per header. Nothing is copied and no
//!   header struct is ever cast over the bytes. Getters need `AsRef<[u8]>`,
//!   setters `AsMut<[u8]>`.
//! - **Check once, then no panics.** `new_checked` (or `check_len` after
//!   `new_unchecked`) validates the lengths a view relies on; after it
//!   passed, no accessor panics. `new_unchecked` alone skips the check and
//!   its accessors may panic on a short buffer.
//! - **Parse once.** [`parse()`] reads a frame in one pass into a small `Copy`
//!   [`PacketInfo`] (addresses, ports, offsets, flags): the pipeline looks
//!   the connection up with it, then rewrites the same frame in place
//!   through the views and the incremental updates of [`checksum`]. It never
//!   allocates and never panics, whatever the input.
//! - **Errors are drop reasons.** [`ParseError`] is a fieldless enum; each
//!   variant is a reason to drop a frame with a counter of its own
//!   ([`ParseError::as_str`] names it, [`ParseError::ALL`] sizes the counter
//!   array). The views' `check_len` return the same variants.
//! - **Fuzzed.** [`parse()`] takes any byte slice: the `wire_parse` fuzz
//!   target (`fuzz/`, `docs/fuzzing.md`) checks its offsets and, against a
//!   reference sum, the checksums it verifies; the tests run the same over
//!   random and mutated frames.
//! - **Writers write every byte.** Frames are reused, so [`Ipv4Repr::emit`]
//!   (the IP-in-IP outer header of [`ipip_outer`]) never trusts what the
//!   buffer held before.
//!
//! # Example
//!
//! ```
//! use xvs_conntrack::{Addr, Af};
//! use xvs_dataplane::wire::{self, FragKind, ParseError, TcpPacket, checksum, ip_proto, tcp};
//!
//! // A TCP SYN 192.0.2.1:54321 -> 198.51.100.10:80, padded to 60 bytes.
//! let mut frame = [0u8; 60];
//! frame[..54].copy_from_slice(&[
//!     2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet
//!     0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x4e, 0x91, // IPv4
//!     192, 0, 2, 1, 198, 51, 100, 10,
//!     0xd4, 0x31, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, // TCP
//!     0xef, 0x20, 0x00, 0x00,
//! ]);
//!
//! let info = wire::parse(&frame)?;
//! assert_eq!((info.af, info.proto), (Af::V4, ip_proto::TCP));
//! assert_eq!((info.src, info.sport), (Addr::v4([192, 0, 2, 1]), 54321));
//! assert_eq!((info.dst, info.dport), (Addr::v4([198, 51, 100, 10]), 80));
//! assert_eq!(info.tcp_flags, tcp::flags::SYN);
//! assert_eq!((info.ip_len, info.l4_len, info.frag), (40, 20, FragKind::None));
//!
//! // Rewrite the destination port in place, updating the checksum
//! // incrementally; a full recomputation agrees.
//! let mut seg = TcpPacket::new_checked(&mut frame[info.l4_off..][..info.l4_len])?;
//! seg.set_dst_port(8080);
//! seg.set_checksum(checksum::update_u16(seg.checksum(), info.dport, 8080));
//! assert!(seg.verify_checksum(&info.src, &info.dst));
//!
//! // Errors are drop reasons with stable counter names.
//! assert_eq!(wire::parse(&frame[..20]), Err(ParseError::TruncatedIpv4));
//! assert_eq!(ParseError::TruncatedIpv4.as_str(), "truncated_ipv4");
//! # Ok::<(), ParseError>(())
//! ```

pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipip;
pub mod ipv4;
pub mod ipv6;
mod parse;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod tests;

pub use ethernet::{EthernetFrame, VlanTag};
pub use icmp::IcmpPacket;
pub use ipip::{OuterRepr, ipip_outer, tunnel_outer};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6ExtHeader, Ipv6Packet, Ipv6Repr};
pub use parse::{InnerInfo, PacketInfo, parse};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;

/// IP protocol numbers (IPv4 protocol, IPv6 next header) the director knows.
pub mod ip_proto {
    /// IPv6 hop-by-hop options (an extension header).
    pub const HOPOPTS: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulated in IP (IP-in-IP).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IP.
    pub const IPV6: u8 = 41;
    /// IPv6 routing header (an extension header).
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header (an extension header).
    pub const IPV6_FRAG: u8 = 44;
    /// Encapsulating security payload (ends the extension header walk).
    pub const ESP: u8 = 50;
    /// Authentication header (an extension header).
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 no next header.
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options (an extension header).
    pub const IPV6_OPTS: u8 = 60;
}

/// Whether an IP packet is a fragment, and which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragKind {
    /// A whole packet (including an IPv6 atomic fragment, RFC 6946).
    None,
    /// The first fragment: offset 0, more fragments follow. It holds the
    /// transport header, but not all of what the header covers.
    First,
    /// A later fragment: no transport header, so no ports.
    NonFirst,
}

/// Why a frame could not be parsed: each variant is a drop reason with a
/// counter of its own.
///
/// Variants are ordered by layer; [`ParseError::index`] numbers them from 0
/// in the order of [`ParseError::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ParseError {
    /// Shorter than the Ethernet header and its VLAN tags.
    #[error("frame shorter than its Ethernet header and VLAN tags")]
    TruncatedEthernet,
    /// The EtherType after at most two VLAN tags is neither IPv4 nor IPv6
    /// (a third tag counts as unsupported).
    #[error("EtherType is neither IPv4 nor IPv6")]
    UnsupportedEthertype,
    /// Shorter than 20 bytes, than the IPv4 header length, or than the total
    /// length (the kernel's `InTruncatedPkts`).
    #[error("IPv4 packet truncated")]
    TruncatedIpv4,
    /// The IPv4 version field is not 4.
    #[error("IPv4 version field is not 4")]
    BadIpv4Version,
    /// The IPv4 header length (IHL) is below 5.
    #[error("IPv4 header length below 20 bytes")]
    BadIpv4Ihl,
    /// The IPv4 total length is below the header length.
    #[error("IPv4 total length below the header length")]
    BadIpv4TotalLen,
    /// The IPv4 header checksum is wrong.
    #[error("IPv4 header checksum is wrong")]
    BadIpv4Checksum,
    /// Shorter than 40 bytes or than 40 plus the payload length.
    #[error("IPv6 packet truncated")]
    TruncatedIpv6,
    /// The IPv6 version field is not 6.
    #[error("IPv6 version field is not 6")]
    BadIpv6Version,
    /// The IPv6 source or destination is an IPv4-mapped address
    /// (`::ffff:a.b.c.d`): not an address on the wire (Linux drops such a
    /// source), and the director, which keeps IPv4 addresses mapped, would
    /// take it for `a.b.c.d`.
    #[error("IPv6 source or destination is an IPv4-mapped address")]
    MappedIpv6Address,
    /// An IPv6 extension header runs past the payload.
    #[error("IPv6 extension header truncated")]
    TruncatedIpv6ExtHeader,
    /// More than [`ipv6::MAX_EXT_HEADERS`] extension headers.
    #[error("IPv6 extension header chain too long")]
    Ipv6ExtChainTooLong,
    /// Shorter than 20 bytes or than the TCP data offset.
    #[error("TCP header truncated")]
    TruncatedTcp,
    /// The TCP data offset is below 5.
    #[error("TCP data offset below 5")]
    BadTcpDataOffset,
    /// Shorter than the 8-byte UDP header.
    #[error("UDP header truncated")]
    TruncatedUdp,
    /// The UDP length field is below 8 or beyond the IP payload.
    #[error("UDP length below 8 or beyond the IP payload")]
    BadUdpLength,
    /// Shorter than the 8-byte ICMP header.
    #[error("ICMP header truncated")]
    TruncatedIcmp,
    /// The ICMP or ICMPv6 checksum is wrong.
    #[error("ICMP checksum is wrong")]
    BadIcmpChecksum,
    /// The packet quoted by an ICMP error is shorter than its IP header or
    /// its IPv6 extension headers.
    #[error("packet quoted by an ICMP error truncated")]
    TruncatedIcmpInner,
    /// The packet quoted by an ICMP error is not of the message's family,
    /// its IPv4 header or total length is shorter than 20 bytes, or its
    /// IPv6 addresses are IPv4-mapped.
    #[error("packet quoted by an ICMP error is malformed")]
    BadIcmpInner,
}

impl ParseError {
    /// Every variant, in [`index`](Self::index) order: the rows of a counter
    /// array.
    pub const ALL: &[ParseError] = &[
        ParseError::TruncatedEthernet,
        ParseError::UnsupportedEthertype,
        ParseError::TruncatedIpv4,
        ParseError::BadIpv4Version,
        ParseError::BadIpv4Ihl,
        ParseError::BadIpv4TotalLen,
        ParseError::BadIpv4Checksum,
        ParseError::TruncatedIpv6,
        ParseError::BadIpv6Version,
        ParseError::MappedIpv6Address,
        ParseError::TruncatedIpv6ExtHeader,
        ParseError::Ipv6ExtChainTooLong,
        ParseError::TruncatedTcp,
        ParseError::BadTcpDataOffset,
        ParseError::TruncatedUdp,
        ParseError::BadUdpLength,
        ParseError::TruncatedIcmp,
        ParseError::BadIcmpChecksum,
        ParseError::TruncatedIcmpInner,
        ParseError::BadIcmpInner,
    ];

    /// The position of this variant in [`ALL`](Self::ALL), for indexing a
    /// counter array.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A stable snake_case name, for counters and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParseError::TruncatedEthernet => "truncated_ethernet",
            ParseError::UnsupportedEthertype => "unsupported_ethertype",
            ParseError::TruncatedIpv4 => "truncated_ipv4",
            ParseError::BadIpv4Version => "bad_ipv4_version",
            ParseError::BadIpv4Ihl => "bad_ipv4_ihl",
            ParseError::BadIpv4TotalLen => "bad_ipv4_total_len",
            ParseError::BadIpv4Checksum => "bad_ipv4_checksum",
            ParseError::TruncatedIpv6 => "truncated_ipv6",
            ParseError::BadIpv6Version => "bad_ipv6_version",
            ParseError::MappedIpv6Address => "mapped_ipv6_address",
            ParseError::TruncatedIpv6ExtHeader => "truncated_ipv6_ext_header",
            ParseError::Ipv6ExtChainTooLong => "ipv6_ext_chain_too_long",
            ParseError::TruncatedTcp => "truncated_tcp",
            ParseError::BadTcpDataOffset => "bad_tcp_data_offset",
            ParseError::TruncatedUdp => "truncated_udp",
            ParseError::BadUdpLength => "bad_udp_length",
            ParseError::TruncatedIcmp => "truncated_icmp",
            ParseError::BadIcmpChecksum => "bad_icmp_checksum",
            ParseError::TruncatedIcmpInner => "truncated_icmp_inner",
            ParseError::BadIcmpInner => "bad_icmp_inner",
        }
    }
}
