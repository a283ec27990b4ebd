//! In-place rewrites of a parsed frame: MAC addresses, TTL, NAT of an
//! address and port with incremental checksums, the NAT of an ICMP error
//! and its quoted packet, tunnel encapsulation.
//!
//! Every function takes the frame and the [`PacketInfo`] that
//! [`wire::parse`](crate::wire::parse) returned for it, so the offsets it
//! writes at were checked by the parser: no function here can index out of
//! bounds on a frame the parser accepted.

use xvs_conntrack::{Addr, Af};

use super::frame::Frame;
use crate::wire::ethernet::ether_type;
use crate::wire::{
    IcmpPacket, InnerInfo, Ipv4Packet, OuterRepr, PacketInfo, checksum, ip_proto, ipv4, ipv6,
};

/// Offset of the IPv4 TTL / IPv6 hop limit in the IP header.
const fn ttl_offset(af: Af) -> usize {
    match af {
        Af::V4 => 8,
        Af::V6 => 7,
    }
}

/// Offset of the IPv4 header checksum.
const IPV4_CHECKSUM: usize = 10;

/// Offset of the source address in the IP header; the destination follows.
const fn src_offset(af: Af) -> usize {
    match af {
        Af::V4 => 12,
        Af::V6 => 8,
    }
}

/// Offset of the checksum in a TCP (16) or UDP (6) header.
const fn l4_checksum_offset(proto: u8) -> usize {
    if proto == ip_proto::TCP { 16 } else { 6 }
}

/// Writes the Ethernet destination and source addresses.
#[inline]
pub fn set_macs(data: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    data[0..6].copy_from_slice(&dst);
    data[6..12].copy_from_slice(&src);
}

#[inline]
fn read16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn write16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Decrements the TTL (IPv4, with the header checksum) or hop limit (IPv6)
/// of the IP header at `l3`. The caller checked that it is above 1 (and
/// the parser that the header is there; a short buffer is left alone).
#[inline]
pub fn decrement_ttl(data: &mut [u8], l3: usize, af: Af) {
    let at = ttl_offset(af);
    match af {
        Af::V4 => {
            let Some(h) = data.get_mut(l3..l3 + IPV4_CHECKSUM + 2) else {
                return;
            };
            h[at] = h[at].wrapping_sub(1);
            // RFC 1624 eqn. 3 for the TTL, the high byte of its 16-bit word,
            // going down by one: ~m + m' is 0xFEFF, so
            // HC' = ~(~HC + 0xFEFF), folded (as Linux's ip_decrease_ttl).
            let c = u16::from_be_bytes([h[IPV4_CHECKSUM], h[IPV4_CHECKSUM + 1]]);
            let sum = u32::from(!c) + 0xFEFF;
            let sum = (sum & 0xffff) + (sum >> 16);
            h[IPV4_CHECKSUM..].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        }
        Af::V6 => {
            if let Some(hops) = data.get_mut(l3 + at) {
                *hops = hops.wrapping_sub(1);
            }
        }
    }
}

/// Which endpoint of a packet a NAT rewrite changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Source address and port (NAT replies: real server -> VIP).
    Src,
    /// Destination address and port (NAT requests: VIP -> real server).
    Dst,
}

/// Rewrites the address of an IP header at `l3` (`side`) to `new`, updating
/// the IPv4 header checksum; returns the old address. `new` must be of the
/// header's family.
#[inline]
fn set_ip_addr(data: &mut [u8], l3: usize, af: Af, side: Side, new: &Addr) -> Addr {
    let at = l3
        + src_offset(af)
        + match (side, af) {
            (Side::Src, _) => 0,
            (Side::Dst, Af::V4) => 4,
            (Side::Dst, Af::V6) => 16,
        };
    match af {
        Af::V4 => {
            let old: [u8; 4] = data[at..at + 4].try_into().unwrap_or_default();
            let new4 = new.v4_octets();
            data[at..at + 4].copy_from_slice(&new4);
            let c = read16(data, l3 + IPV4_CHECKSUM);
            let c = checksum::update_u32(c, u32::from_be_bytes(old), u32::from_be_bytes(new4));
            write16(data, l3 + IPV4_CHECKSUM, c);
            Addr::v4(old)
        }
        Af::V6 => {
            let old: [u8; 16] = data[at..at + 16].try_into().unwrap_or_default();
            data[at..at + 16].copy_from_slice(&new.0);
            Addr::v6(old)
        }
    }
}

/// NAT of a TCP or UDP packet: the `side` address and port become `addr`
/// and `port`; the IPv4 header checksum and the transport checksum (its
/// pseudo-header covers the address) are updated incrementally, and a UDP
/// checksum of 0 stays 0 (RFC 768).
#[inline]
pub fn nat(data: &mut [u8], info: &PacketInfo, side: Side, addr: &Addr, port: u16) {
    let old = set_ip_addr(data, info.l3_off, info.af, side, addr);
    let l4 = info.l4_off;
    let port_at = l4 + if side == Side::Src { 0 } else { 2 };
    let old_port = read16(data, port_at);
    write16(data, port_at, port);
    let at = l4 + l4_checksum_offset(info.proto);
    let c = read16(data, at);
    let update =
        |c: u16| checksum::update_u16(checksum::update_addr(c, &old, addr), old_port, port);
    let c = if info.proto == ip_proto::UDP {
        checksum::udp_update(c, update)
    } else {
        update(c)
    };
    write16(data, at, c);
}

/// NAT of an ICMP error and the packet it quotes, as IPVS's
/// `ip_vs_nat_icmp`:
///
/// - toward the real server ([`Side::Dst`]): the outer destination (the VIP)
///   and the quoted source address and port become the real server's;
/// - toward the client ([`Side::Src`]): the outer source (the real server)
///   and the quoted destination address and port become the VIP's.
///
/// The quoted IPv4 header checksum and the outer checksums are recomputed
/// or updated; the quoted transport checksum is left alone (the quote is
/// usually cut short, and IPVS does the same). The quoted packet's ports
/// must be present (`inner.l4_len >= 8`).
pub fn nat_icmp(
    data: &mut [u8],
    info: &PacketInfo,
    inner: &InnerInfo,
    side: Side,
    addr: &Addr,
    port: u16,
) {
    set_ip_addr(data, info.l3_off, info.af, side, addr);
    // The quoted packet travelled the other way.
    let quoted = match side {
        Side::Dst => Side::Src,
        Side::Src => Side::Dst,
    };
    set_ip_addr(data, inner.l3_off, inner.af, quoted, addr);
    if inner.af == Af::V4 {
        let mut ip = Ipv4Packet::new_unchecked(&mut data[inner.l3_off..inner.l4_off]);
        ip.fill_checksum();
    }
    let port_at = inner.l4_off + if quoted == Side::Src { 0 } else { 2 };
    write16(data, port_at, port);
    let end = info.l3_off + info.ip_len;
    let mut msg = IcmpPacket::new_unchecked(&mut data[info.l4_off..end]);
    match info.af {
        Af::V4 => msg.fill_checksum_v4(),
        Af::V6 => {
            let (src, dst) = match side {
                Side::Src => (*addr, info.dst),
                Side::Dst => (info.src, *addr),
            };
            msg.fill_checksum_v6(&src, &dst);
        }
    }
}

/// Encapsulates the parsed packet in `outer`: moves the Ethernet header and
/// VLAN tags `outer.len()` bytes into the headroom, sets the innermost
/// EtherType to the outer family's, writes the outer header and cuts any
/// Ethernet padding. False, and the frame untouched, when the headroom is
/// too small.
pub fn encapsulate(frame: &mut Frame<'_>, info: &PacketInfo, outer: &OuterRepr) -> bool {
    let n = outer.len();
    if !frame.push_front(n) {
        return false;
    }
    let l3 = info.l3_off;
    let data = frame.data_mut();
    data.copy_within(n..n + l3, 0);
    let et = match outer {
        OuterRepr::V4(_) => ether_type::IPV4,
        OuterRepr::V6(_) => ether_type::IPV6,
    };
    write16(data, l3 - 2, et);
    outer.emit(&mut data[l3..l3 + n]);
    frame.set_len(l3 + n + info.ip_len)
}

/// Bytes an ICMP error of family `af` adds in front of the packet it quotes.
pub const fn icmp_overhead(af: Af) -> usize {
    match af {
        Af::V4 => ipv4::HEADER_LEN + crate::wire::icmp::HEADER_LEN,
        Af::V6 => ipv6::HEADER_LEN + crate::wire::icmp::HEADER_LEN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TTL shortcut gives what the general RFC 1624 update gives, for
    /// every checksum value and TTL, and leaves other bytes alone.
    #[test]
    fn ttl_shortcut_matches_the_general_update() {
        for ttl in 2..=255u8 {
            for c in (0..=u16::MAX).step_by(if ttl % 17 == 0 { 1 } else { 251 }) {
                let mut h = [0x45u8, 0, 0, 60, 0, 0, 0x40, 0, ttl, 6, 0, 0, 1, 2, 3, 4];
                h[10..12].copy_from_slice(&c.to_be_bytes());
                let mut frame = [0xaau8; 14].to_vec();
                frame.extend_from_slice(&h);
                decrement_ttl(&mut frame, 14, Af::V4);
                let old = u16::from_be_bytes([ttl, 6]);
                let new = u16::from_be_bytes([ttl - 1, 6]);
                let want = checksum::update_u16(c, old, new);
                assert_eq!(frame[14 + 8], ttl - 1);
                assert_eq!(read16(&frame, 14 + 10), want, "ttl {ttl} check {c:#06x}");
                assert_eq!(&frame[..14], &[0xaa; 14]);
                assert_eq!(&frame[14 + 12..], &h[12..]);
            }
        }
    }

    #[test]
    fn hop_limit_and_short_buffers() {
        let mut v6 = vec![0u8; 14 + 40];
        v6[14 + 7] = 64;
        decrement_ttl(&mut v6, 14, Af::V6);
        assert_eq!(v6[14 + 7], 63);
        let mut short = vec![0x45u8; 20];
        decrement_ttl(&mut short, 14, Af::V4);
        assert_eq!(short, vec![0x45u8; 20], "a header cut short is left alone");
    }
}
