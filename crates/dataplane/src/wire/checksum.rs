//! The internet checksum (RFC 1071), pseudo-header sums and incremental
//! updates (RFC 1624).
//!
//! Sums are one's complement sums of big-endian 16-bit words, folded to 16
//! bits and not complemented ([`sum`], [`pseudo_header`]); they combine with
//! [`add`]. A checksum as stored in a header is the complement of the sum of
//! everything it covers, its own field counted as zero ([`checksum`],
//! [`transport`]). A header whose stored checksum is right sums, checksum
//! field included, to `0xffff` ([`verify_transport`]).
//!
//! When the director rewrites addresses or ports it does not re-sum the
//! packet: [`update_u16`], [`update_u32`] and [`update_addr`] adjust the
//! stored checksum with RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, which
//! gives the same value as a full recomputation (including the `0x0000` /
//! `0xffff` corner case that the older RFC 1141 formula gets wrong).
//! [`udp_update`] adds the UDP rules on top.

use xvs_conntrack::Addr;

/// Adds `b` to `a` with end-around carry (one's complement addition in 64
/// bits; `2^64 ≡ 1 (mod 0xffff)`, so the 16-bit residue is preserved).
#[inline(always)]
fn add64(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// Folds a 64-bit one's complement accumulator to 16 bits: the two halves
/// added with end-around carry, twice. (When a carry comes out, the sum
/// left is at most `2^n - 2`, so adding the carry back cannot carry again.)
#[inline(always)]
fn fold(acc: u64) -> u16 {
    let (lo, carry) = (acc as u32).overflowing_add((acc >> 32) as u32);
    let acc = lo + u32::from(carry);
    let (lo, carry) = (acc as u16).overflowing_add((acc >> 16) as u16);
    lo + u16::from(carry)
}

/// The one's complement sum of `data` read as big-endian 16-bit words, an odd
/// final byte padded with a zero byte, folded to 16 bits.
///
/// The sum is taken over native-endian words and byte-swapped once at the
/// end, which RFC 1071 section 2(B) shows equal to summing big-endian words.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    let mut acc = 0u64;
    let mut rest = data;
    // Runs of 64-byte blocks: 4-byte words added into a u64 without carries,
    // a loop the compiler vectorises. Batches of at most 2^16 words cannot
    // overflow the u64.
    while rest.len() >= 64 {
        let (batch, tail) = rest.split_at((rest.len() & !63).min(1 << 18));
        let batch_sum: u64 = batch
            .chunks_exact(4)
            .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .sum();
        acc = add64(acc, batch_sum);
        rest = tail;
    }
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        acc = add64(acc, u64::from_ne_bytes(*word));
        rest = tail;
    }
    if let Some((word, tail)) = rest.split_first_chunk::<4>() {
        acc = add64(acc, u64::from(u32::from_ne_bytes(*word)));
        rest = tail;
    }
    if let Some((word, tail)) = rest.split_first_chunk::<2>() {
        acc = add64(acc, u64::from(u16::from_ne_bytes(*word)));
        rest = tail;
    }
    if let [last] = rest {
        acc = add64(acc, u64::from(u16::from_ne_bytes([*last, 0])));
    }
    u16::from_be_bytes(fold(acc).to_ne_bytes())
}

/// One's complement addition of two folded sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// The RFC 1071 checksum of `data`: the complement of [`sum`]. Over a header
/// whose checksum field is zero this is the value to store; over a header
/// with a correct checksum it is zero.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// The sum of the IPv4 pseudo-header (RFC 793, RFC 768): source, destination,
/// protocol and the transport length.
#[inline]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, len: u16) -> u16 {
    let acc = u64::from(u32::from_be_bytes(src))
        + u64::from(u32::from_be_bytes(dst))
        + u64::from(protocol)
        + u64::from(len);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source,
/// destination, the 32-bit upper-layer length and the next header value.
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, len: u32) -> u16 {
    let acc = u64::from(add(sum(src), sum(dst)))
        + u64::from(len >> 16)
        + u64::from(len & 0xffff)
        + u64::from(next_header);
    fold(acc)
}

/// The pseudo-header sum for addresses of either family: IPv4 when `src` is
/// IPv4-mapped, IPv6 otherwise. `len` is the transport length (header and
/// payload); IPv4 lengths are taken modulo 2^16, which an IPv4 packet cannot
/// exceed.
#[inline]
pub fn pseudo_header(src: &Addr, dst: &Addr, protocol: u8, len: usize) -> u16 {
    if src.is_v4() {
        pseudo_header_v4(src.v4_octets(), dst.v4_octets(), protocol, len as u16)
    } else {
        pseudo_header_v6(&src.0, &dst.0, protocol, len as u32)
    }
}

/// The checksum to store in a TCP, UDP or ICMPv6 header: covers the
/// pseudo-header and `segment` (transport header and payload), whose checksum
/// field must be zero. UDP stores a result of 0 as `0xffff`; see
/// [`UdpPacket::fill_checksum`](super::udp::UdpPacket::fill_checksum).
#[inline]
pub fn transport(src: &Addr, dst: &Addr, protocol: u8, segment: &[u8]) -> u16 {
    !add(
        pseudo_header(src, dst, protocol, segment.len()),
        sum(segment),
    )
}

/// Whether the checksum stored in a TCP, UDP or ICMPv6 `segment` is right.
/// (An IPv4 UDP checksum of 0, meaning "none", is not special here; see
/// [`UdpPacket::verify_checksum`](super::udp::UdpPacket::verify_checksum).)
#[inline]
pub fn verify_transport(src: &Addr, dst: &Addr, protocol: u8, segment: &[u8]) -> bool {
    add(
        pseudo_header(src, dst, protocol, segment.len()),
        sum(segment),
    ) == 0xffff
}

/// RFC 1624 eqn. 3 over 16-bit words: the checksum `check` after the words
/// `old` are replaced with the words `new`.
#[inline(always)]
fn update_words<const N: usize>(check: u16, old: [u16; N], new: [u16; N]) -> u16 {
    let mut acc = u64::from(!check);
    for (o, n) in old.into_iter().zip(new) {
        acc += u64::from(!o) + u64::from(n);
    }
    !fold(acc)
}

/// The checksum `check` after a covered 16-bit field changed from `old` to
/// `new` (a port, an IPv4 identification, a TTL/protocol word).
#[inline]
pub fn update_u16(check: u16, old: u16, new: u16) -> u16 {
    update_words(check, [old], [new])
}

/// The checksum `check` after a covered 32-bit field at an even offset changed
/// from `old` to `new` (an IPv4 address, a TCP sequence number).
#[inline]
pub fn update_u32(check: u16, old: u32, new: u32) -> u16 {
    let words = |v: u32| [(v >> 16) as u16, v as u16];
    update_words(check, words(old), words(new))
}

/// The checksum `check` after a covered IPv6 address changed from `old` to
/// `new`.
#[inline]
pub fn update_v6_addr(check: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    let words = |a: &[u8; 16]| {
        let mut w = [0u16; 8];
        for (w, pair) in w.iter_mut().zip(a.chunks_exact(2)) {
            *w = u16::from_be_bytes([pair[0], pair[1]]);
        }
        w
    };
    update_words(check, words(old), words(new))
}

/// The checksum `check` after a covered address changed from `old` to `new`:
/// the four octets of an IPv4 address (when `old` is IPv4-mapped), all
/// sixteen of an IPv6 one. Both addresses must be of the same family.
#[inline]
pub fn update_addr(check: u16, old: &Addr, new: &Addr) -> u16 {
    if old.is_v4() {
        update_u32(
            check,
            u32::from_be_bytes(old.v4_octets()),
            u32::from_be_bytes(new.v4_octets()),
        )
    } else {
        update_v6_addr(check, &old.0, &new.0)
    }
}

/// Applies an incremental `update` (for example `|c| update_u16(c, old, new)`)
/// to a UDP checksum with the rules of RFC 768: a checksum of 0 means "none"
/// (IPv4) and is left 0, and a result of 0 is stored as `0xffff`.
///
/// (On IPv6 a zero UDP checksum is invalid, RFC 8200 section 8.1; keeping it
/// zero keeps the packet invalid rather than giving it a wrong checksum.)
#[inline]
pub fn udp_update(check: u16, update: impl FnOnce(u16) -> u16) -> u16 {
    match check {
        0 => 0,
        c => match update(c) {
            0 => 0xffff,
            c => c,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::checksum::Sum16BitWords;
    use proptest::prelude::*;

    /// Sums 16-bit big-endian words one by one, the textbook way.
    fn naive_sum(data: &[u8]) -> u16 {
        let mut acc = 0u32;
        for pair in data.chunks(2) {
            let w = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0xab]), 0xab00);
    }

    /// Found by the `wire_parse` fuzz target (an ICMPv6 message with a
    /// wrong checksum accepted): `fold` added the halves three times
    /// without carrying back the last carry, so an accumulator of
    /// 0xffff_ffff_ffff_0001 (the bytes below, summed as one native word)
    /// folded to 0x1_0000 and was cut to 0 instead of 1.
    #[test]
    fn fold_carries_back_every_carry() {
        let data = [0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(sum(&data), 0x0100);
        assert_eq!(sum(&data), naive_sum(&data));
        for (acc, folded) in [
            (0, 0),
            (0xffff, 0xffff),
            (0x1_0000, 1),
            (0x1_ffff, 0x1),
            (0x1_ffff_0000, 0x1),
            (0xffff_ffff_ffff_0001, 0x1),
            (0xffff_ffff_ffff_fffe, 0xfffe),
            (u64::MAX, 0xffff),
        ] {
            assert_eq!(fold(acc), folded, "{acc:#x}");
        }
    }

    #[test]
    fn ipv4_header_checksum_known_vector() {
        // A real header (Wikipedia "IPv4 header checksum"): checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0);
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(checksum(&h), 0xb861);
    }

    /// RFC 1624 section 3: m = 0x5555 changes to m' = 0x3285 in a header whose
    /// other words sum to 0xcd7a. A full recomputation gives 0x0000; eqn. 3
    /// must too (RFC 1141's eqn. 2 gives 0xffff).
    #[test]
    fn rfc1624_corner_case() {
        let before = [0xcd, 0x7a, 0x55, 0x55, 0x00, 0x00];
        let hc = checksum(&before);
        assert_eq!(hc, 0xdd2f);
        let after = [0xcd, 0x7a, 0x32, 0x85, 0x00, 0x00];
        assert_eq!(checksum(&after), 0x0000);
        assert_eq!(update_u16(hc, 0x5555, 0x3285), 0x0000);
        // And back: from 0x0000 to the original value.
        assert_eq!(update_u16(0x0000, 0x3285, 0x5555), 0xdd2f);
    }

    #[test]
    fn udp_zero_rules() {
        // "No checksum" stays "no checksum", whatever the update.
        assert_eq!(udp_update(0, |c| update_u16(c, 1, 2)), 0);
        // The RFC 1624 corner case computes 0x0000, which UDP sends as 0xffff.
        assert_eq!(
            udp_update(0xdd2f, |c| update_u16(c, 0x5555, 0x3285)),
            0xffff
        );
        // Otherwise the update is the plain one.
        assert_eq!(
            udp_update(0x1234, |c| update_u16(c, 7, 9)),
            update_u16(0x1234, 7, 9)
        );
    }

    #[test]
    fn pseudo_header_dispatch() {
        let (s4, d4) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        assert_eq!(
            pseudo_header(&Addr::v4(s4), &Addr::v4(d4), 6, 40),
            pseudo_header_v4(s4, d4, 6, 40)
        );
        let (s6, d6) = ([0x20; 16], [0xfe; 16]);
        assert_eq!(
            pseudo_header(&Addr::v6(s6), &Addr::v6(d6), 17, 70_000),
            pseudo_header_v6(&s6, &d6, 17, 70_000)
        );
    }

    /// Folds the textbook way: add the carries back until none is left.
    fn naive_fold(mut acc: u64) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// Every accumulator whose halves add up near 2^33, where the carries
    /// pile up, and near the top of the range.
    #[test]
    fn fold_matches_naive_where_carries_pile_up() {
        for low in 0..=0xffff_u64 {
            for acc in [
                u64::MAX - low,
                0xffff_ffff_0000_0000 + (0xffff_u64 << 16) + low,
            ] {
                assert_eq!(fold(acc), naive_fold(acc), "{acc:#x}");
            }
        }
    }

    proptest! {
        #[test]
        fn fold_matches_naive(acc: u64) {
            prop_assert_eq!(fold(acc), naive_fold(acc));
        }

        #[test]
        fn sum_matches_naive_and_etherparse(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(sum(&data), naive_sum(&data));
            let ep = Sum16BitWords::new().add_slice(&data).ones_complement()
                .to_be(); // etherparse sums native-endian words
            prop_assert_eq!(checksum(&data), ep);
        }

        #[test]
        fn sum_is_split_invariant_at_even_offsets(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cut in 0usize..150,
        ) {
            let cut = (cut * 2).min(data.len() & !1);
            prop_assert_eq!(add(sum(&data[..cut]), sum(&data[cut..])), sum(&data));
        }

        #[test]
        fn pseudo_headers_match_etherparse(
            s4: [u8; 4], d4: [u8; 4], s6: [u8; 16], d6: [u8; 16],
            proto: u8, len: u16, len6: u32,
        ) {
            let ep4 = Sum16BitWords::new()
                .add_4bytes(s4).add_4bytes(d4)
                .add_2bytes([0, proto]).add_2bytes(len.to_be_bytes())
                .ones_complement()
                .to_be(); // etherparse sums native-endian words
            prop_assert_eq!(!pseudo_header_v4(s4, d4, proto, len), ep4);
            let ep6 = Sum16BitWords::new()
                .add_16bytes(s6).add_16bytes(d6)
                .add_4bytes(len6.to_be_bytes()).add_2bytes([0, proto])
                .ones_complement()
                .to_be(); // etherparse sums native-endian words
            prop_assert_eq!(!pseudo_header_v6(&s6, &d6, proto, len6), ep6);
        }

        /// Rewriting any covered word, then updating incrementally, equals a
        /// full recomputation, bit for bit (0x0000 vs 0xffff included).
        #[test]
        fn incremental_equals_full(
            mut data in proptest::collection::vec(any::<u8>(), 64..160),
            at in 0usize..20,
            new16: u16, new32: u32, new128: [u8; 16],
        ) {
            let at = at * 2; // even offsets, as every field the director rewrites
            data[0..2].copy_from_slice(&[0, 0]); // the checksum field
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());

            let old16 = u16::from_be_bytes([data[at + 2], data[at + 3]]);
            data[at + 2..at + 4].copy_from_slice(&new16.to_be_bytes());
            let c = update_u16(c, old16, new16);
            prop_assert_eq!(c, full(&mut data));

            let old32 = u32::from_be_bytes(data[at + 2..at + 6].try_into().unwrap());
            data[at + 2..at + 6].copy_from_slice(&new32.to_be_bytes());
            let c = update_u32(c, old32, new32);
            prop_assert_eq!(c, full(&mut data));
            let c4 = update_addr(
                c,
                &Addr::v4(new32.to_be_bytes()),
                &Addr::v4(old32.to_be_bytes()),
            );
            prop_assert_eq!(c4, update_u32(c, new32, old32));

            let old128: [u8; 16] = data[at + 2..at + 18].try_into().unwrap();
            data[at + 2..at + 18].copy_from_slice(&new128);
            let c = update_addr(c, &Addr::v6(old128), &Addr::v6(new128));
            prop_assert_eq!(c, full(&mut data));
        }
    }

    /// The checksum of `data` recomputed from scratch (field at 0..2), with
    /// `data` left unchanged.
    fn full(data: &mut [u8]) -> u16 {
        let stored = [data[0], data[1]];
        data[0..2].copy_from_slice(&[0, 0]);
        let c = checksum(data);
        data[0..2].copy_from_slice(&stored);
        c
    }
}
