//! Reference checksums: the RFC 1071 sum written the plain way, over the
//! header bytes as they are in the frame, so that the targets do not check
//! the data plane's checksum code with itself.

/// The one's complement sum of `data` as big-endian 16-bit words (an odd
/// last byte padded with zero), folded to 16 bits.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    for pair in data.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |&b| u64::from(b));
        acc += hi | lo;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Whether data covered by a checksum field (that field included) sums
/// right, `extra` being the pseudo-header's sum.
fn sums_right(extra: u16, data: &[u8]) -> bool {
    let mut acc = u32::from(extra) + u32::from(sum(data));
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc == 0xffff
}

/// Whether the IPv4 header `header` (its whole length) has a right checksum.
pub fn ipv4_header_ok(header: &[u8]) -> bool {
    sums_right(0, header)
}

/// Whether the ICMPv4 message `msg` has a right checksum.
pub fn icmpv4_ok(msg: &[u8]) -> bool {
    sums_right(0, msg)
}

/// Whether the transport segment `seg` (TCP, UDP, ICMPv6) of the IP packet
/// whose header is `ip` has a right checksum, the pseudo-header taken from
/// the header's own addresses and family (IPv4: version 4; IPv6 otherwise).
/// A UDP checksum of 0 means none: right over IPv4, wrong over IPv6
/// (RFC 8200 section 8.1).
pub fn transport_ok(ip: &[u8], proto: u8, seg: &[u8]) -> bool {
    let mut pseudo = Vec::with_capacity(40);
    let v4 = ip[0] >> 4 == 4;
    if proto == 17 && seg.len() >= 8 && seg[6..8] == [0, 0] {
        return v4;
    }
    if v4 {
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    } else {
        pseudo.extend_from_slice(&ip[8..40]);
        pseudo.extend_from_slice(&(seg.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, proto]);
    }
    sums_right(sum(&pseudo), seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }
}
