//! ICMP and ICMPv6 errors the director sends itself: built in place from the
//! packet they answer, which they quote.

use xvs_conntrack::{Addr, Af};

use super::frame::Frame;
use super::rewrite::icmp_overhead;
use crate::wire::{IcmpPacket, Ipv4Repr, Ipv6Repr, PacketInfo, icmp, ip_proto, ipv4, ipv6};

/// The error to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Port unreachable (ICMPv6: destination unreachable, port unreachable).
    PortUnreachable,
    /// Fragmentation needed with the next-hop MTU (ICMPv6: packet too big).
    TooBig(u16),
    /// Time exceeded in transit (TTL or hop limit).
    TtlExceeded,
}

/// The largest ICMP error Linux sends: 576 bytes for IPv4 (RFC 1812 4.3.2.3),
/// the minimum MTU of 1280 for IPv6 (RFC 4443 2.4).
const fn max_len(af: Af) -> usize {
    match af {
        Af::V4 => 576,
        Af::V6 => 1280,
    }
}

/// Whether an ICMP error may be sent to `a`: never to an unspecified,
/// multicast, broadcast or loopback source (RFC 1812 4.3.2.7, RFC 4443
/// 2.4 (e)).
pub fn may_answer(a: &Addr) -> bool {
    if a.is_v4() {
        let o = a.v4_octets();
        !(o[0] == 0 || o[0] == 127 || o[0] >= 224)
    } else {
        let o = a.0;
        !(o == [0; 16] || o[0] == 0xff || o == std::net::Ipv6Addr::LOCALHOST.octets())
    }
}

/// Turns the frame into `err` about the packet it holds, sent from `from`
/// back to the packet's source through the MAC address it came from. The
/// quote is the start of the original IP packet, as much as fits the
/// family's maximum error size. False, frame untouched, when the headroom
/// is too small.
pub fn build(
    frame: &mut Frame<'_>,
    info: &PacketInfo,
    from: &Addr,
    err: IcmpError,
    ident: u16,
) -> bool {
    let af = info.af;
    let over = icmp_overhead(af);
    let quote = info.ip_len.min(max_len(af) - over);
    if !frame.push_front(over) {
        return false;
    }
    let l3 = info.l3_off;
    let data = frame.data_mut();
    data.copy_within(over..over + l3, 0);
    // Back where it came from: swap the Ethernet addresses.
    let (dst, rest) = data.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
    let msg_len = icmp::HEADER_LEN + quote;
    let (ty, code, rest) = match (af, err) {
        (Af::V4, IcmpError::PortUnreachable) => (icmp::v4::DEST_UNREACH, 3, 0),
        (Af::V4, IcmpError::TooBig(mtu)) => (
            icmp::v4::DEST_UNREACH,
            icmp::v4::CODE_FRAG_NEEDED,
            u32::from(mtu),
        ),
        (Af::V4, IcmpError::TtlExceeded) => (icmp::v4::TIME_EXCEEDED, 0, 0),
        (Af::V6, IcmpError::PortUnreachable) => (icmp::v6::DEST_UNREACH, 4, 0),
        (Af::V6, IcmpError::TooBig(mtu)) => (icmp::v6::PACKET_TOO_BIG, 0, u32::from(mtu)),
        (Af::V6, IcmpError::TtlExceeded) => (icmp::v6::TIME_EXCEEDED, 0, 0),
    };
    let hdr = &mut data[l3..];
    match af {
        Af::V4 => {
            let repr = Ipv4Repr {
                src_addr: from.v4_octets(),
                dst_addr: info.src.v4_octets(),
                protocol: ip_proto::ICMP,
                total_len: (ipv4::HEADER_LEN + msg_len) as u16,
                ident,
                dont_frag: false,
                ttl: 64,
                // Linux sends errors with IPTOS_PREC_INTERNETCONTROL.
                tos: 0xc0,
            };
            if let Some(h) = hdr.first_chunk_mut::<{ ipv4::HEADER_LEN }>() {
                repr.emit(h);
            }
        }
        Af::V6 => {
            let repr = Ipv6Repr {
                src_addr: from.0,
                dst_addr: info.src.0,
                next_header: ip_proto::ICMPV6,
                payload_len: msg_len as u16,
                hop_limit: 64,
                traffic_class: 0,
            };
            if let Some(h) = hdr.first_chunk_mut::<{ ipv6::HEADER_LEN }>() {
                repr.emit(h);
            }
        }
    }
    let ip_hdr = over - icmp::HEADER_LEN;
    let start = l3 + ip_hdr;
    let mut msg = IcmpPacket::new_unchecked(&mut data[start..start + msg_len]);
    msg.set_msg_type(ty);
    msg.set_msg_code(code);
    msg.set_rest_of_header(rest);
    match af {
        Af::V4 => msg.fill_checksum_v4(),
        Af::V6 => msg.fill_checksum_v6(from, &info.src),
    }
    frame.set_len(l3 + over + quote)
}

/// Turns a TCP segment that no connection takes and that may not start one
/// into the reset the director's kernel would send for it (IPVS accepts such
/// a segment to the local stack, which has no socket there), RFC 9293
/// 3.10.7.1: from the segment's destination back to its source, sequence
/// number the segment's acknowledgment if it has one, else 0 with an
/// acknowledgment of everything the segment occupied. IP options and IPv6
/// extension headers are not carried over. False, frame untouched, when the
/// segment is too short to read.
pub fn build_rst(frame: &mut Frame<'_>, info: &PacketInfo, ident: u16) -> bool {
    use crate::wire::checksum;
    use crate::wire::tcp::flags::{ACK, FIN, RST, SYN};
    let l3 = info.l3_off;
    let l4 = info.l4_off;
    let data = frame.data_mut();
    let Some(seg) = data.get(l4..l4 + 20) else {
        return false;
    };
    let seq = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]);
    let ack = u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]);
    let doff = usize::from(seg[12] >> 4) * 4;
    let payload = info.l4_len.saturating_sub(doff) as u32;
    let flags = info.tcp_flags;
    let (rst_seq, rst_ack, rst_flags) = if flags & ACK != 0 {
        (ack, 0, RST)
    } else {
        let occupied = payload + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        (0, seq.wrapping_add(occupied), RST | ACK)
    };
    // Back where it came from: swap the Ethernet addresses.
    let (dst, rest) = data.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
    let ip_len = match info.af {
        Af::V4 => ipv4::HEADER_LEN,
        Af::V6 => ipv6::HEADER_LEN,
    };
    let Some(hdr) = data.get_mut(l3..l3 + ip_len + 20) else {
        return false;
    };
    match info.af {
        Af::V4 => {
            let repr = Ipv4Repr {
                src_addr: info.dst.v4_octets(),
                dst_addr: info.src.v4_octets(),
                protocol: ip_proto::TCP,
                total_len: (ipv4::HEADER_LEN + 20) as u16,
                ident,
                dont_frag: true,
                ttl: 64,
                tos: 0,
            };
            if let Some(h) = hdr.first_chunk_mut::<{ ipv4::HEADER_LEN }>() {
                repr.emit(h);
            }
        }
        Af::V6 => {
            let repr = Ipv6Repr {
                src_addr: info.dst.0,
                dst_addr: info.src.0,
                next_header: ip_proto::TCP,
                payload_len: 20,
                hop_limit: 64,
                traffic_class: 0,
            };
            if let Some(h) = hdr.first_chunk_mut::<{ ipv6::HEADER_LEN }>() {
                repr.emit(h);
            }
        }
    }
    let t = &mut hdr[ip_len..];
    t[0..2].copy_from_slice(&info.dport.to_be_bytes());
    t[2..4].copy_from_slice(&info.sport.to_be_bytes());
    t[4..8].copy_from_slice(&rst_seq.to_be_bytes());
    t[8..12].copy_from_slice(&rst_ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = rst_flags;
    t[14..20].fill(0);
    let c = checksum::transport(&info.dst, &info.src, ip_proto::TCP, t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    frame.set_len(l3 + ip_len + 20)
}
