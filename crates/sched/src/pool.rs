//! Pieces every scheduler shares: the destination list as the schedulers keep
//! it, the "may take a new connection" test, the IPVS load formulas, address
//! folding, hashing and a small random number generator.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use xvs_conntrack::{Addr, DestId, DestSlot, DestTable};

use crate::DestInfo;

/// Cursor value for "the list head": no destination chosen yet (IPVS keeps a
/// pointer to `svc->destinations` itself for this).
pub(crate) const HEAD: usize = usize::MAX;

/// Sentinel for "no destination" in bucket and lookup tables.
pub(crate) const NONE: u32 = u32::MAX;

/// A fresh, process-wide unique number for one `update`, so a worker's
/// [`crate::PickState`] notices that the tables it points into were rebuilt.
pub(crate) fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// The destination list in the order the control plane gave it (the order
/// IPVS walks `svc->destinations`), split into the two columns the pick
/// paths read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pool {
    ids: Vec<DestId>,
    /// Weights as configured; negative values (which IPVS rejects) are held
    /// as 0.
    weights: Vec<i32>,
}

impl Pool {
    pub(crate) fn new(dests: &[DestInfo]) -> Pool {
        Pool {
            ids: dests.iter().map(|d| d.id).collect(),
            weights: dests.iter().map(|d| d.weight.max(0)).collect(),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    #[inline]
    pub(crate) fn ids(&self) -> &[DestId] {
        &self.ids
    }

    #[inline]
    pub(crate) fn weights(&self) -> &[i32] {
        &self.weights
    }

    /// Weight of destination `i`, 0 when `i` is out of range.
    #[inline]
    pub(crate) fn weight(&self, i: usize) -> i32 {
        self.weights.get(i).copied().unwrap_or(0)
    }

    /// The shared counters of destination `i`; an out-of-range `i` gets the
    /// table's always-unavailable slot.
    #[inline]
    pub(crate) fn slot<'t>(&self, dests: &'t DestTable, i: usize) -> &'t DestSlot {
        dests.get(self.ids.get(i).copied().unwrap_or(DestId::MAX))
    }

    /// Whether destination `i` may take a new connection (see [`usable`]).
    #[inline]
    pub(crate) fn usable(&self, dests: &DestTable, i: usize) -> bool {
        usable(self.slot(dests, i), self.weight(i))
    }

    /// `(index, weight, slot)` of every destination that may take a new
    /// connection, in list order.
    #[inline]
    pub(crate) fn usable_iter<'s, 't>(
        &'s self,
        dests: &'t DestTable,
    ) -> impl Iterator<Item = (usize, i32, &'t DestSlot)> + use<'s, 't> {
        self.ids
            .iter()
            .zip(&self.weights)
            .enumerate()
            .filter_map(move |(i, (&id, &w))| {
                let s = dests.get(id);
                usable(s, w).then_some((i, w, s))
            })
    }

    /// Whether any destination may take a new connection.
    pub(crate) fn any_usable(&self, dests: &DestTable) -> bool {
        self.usable_iter(dests).next().is_some()
    }
}

/// IPVS's test for a destination that may take a new connection: a positive
/// weight (0 is quiescent) and no `IP_VS_DEST_F_OVERLOAD`. On top of the
/// kernel, a slot the control plane already retired is skipped too: in the
/// kernel a deleted destination is unlinked from the list before anyone can
/// schedule to it, here the list is a snapshot that may trail the retirement
/// by one publication.
#[inline]
pub(crate) fn usable(slot: &DestSlot, weight: i32) -> bool {
    weight > 0 && slot.is_available() && !slot.is_overloaded()
}

/// `ip_vs_dest_conn_overhead`: active connections weigh 256 inactive ones.
/// Computed in 64 bits, so it cannot wrap the way the kernel's `int` can.
#[inline]
pub(crate) fn conn_overhead(slot: &DestSlot) -> u64 {
    (u64::from(slot.active()) << 8) + u64::from(slot.inactive())
}

/// The expected-delay numerator of sed and nq: active connections plus the
/// one being scheduled.
#[inline]
pub(crate) fn sed_overhead(slot: &DestSlot) -> u64 {
    u64::from(slot.active()) + 1
}

/// `a_load * b_weight > b_load * a_weight`, that is `a_load / a_weight >
/// b_load / b_weight` for positive weights, without a division and without
/// overflow (the products need up to 72 bits).
#[inline]
pub(crate) fn heavier(a_load: u64, a_weight: i32, b_load: u64, b_weight: i32) -> bool {
    let (aw, bw) = (
        u128::from(a_weight.max(0).unsigned_abs()),
        u128::from(b_weight.max(0).unsigned_abs()),
    );
    u128::from(a_load) * bw > u128::from(b_load) * aw
}

/// The weighted least-load destination, IPVS style: the first usable
/// destination in list order is the candidate, and a later one replaces it
/// only when strictly lighter (`loh * dw > doh * lw`), so ties keep the
/// earlier one. This is `ip_vs_wlc_schedule` with `load` =
/// [`conn_overhead`], `ip_vs_sed_schedule` with [`sed_overhead`], and the
/// fallback of lblc and lblcr.
#[inline]
pub(crate) fn least_weighted(
    pool: &Pool,
    dests: &DestTable,
    load: impl Fn(&DestSlot) -> u64,
) -> Option<usize> {
    let mut least: Option<(usize, u64, i32)> = None;
    for (i, w, s) in pool.usable_iter(dests) {
        let doh = load(s);
        match least {
            Some((_, loh, lw)) if !heavier(loh, lw, doh, w) => {}
            _ => least = Some((i, doh, w)),
        }
    }
    least.map(|(i, _, _)| i)
}

/// The address as the IPVS hashing schedulers see it: an IPv4 address as a
/// host-order `u32` (`ntohl(addr->ip)`), an IPv6 address folded to 32 bits by
/// XOR of its four words (`ip6[0] ^ ip6[1] ^ ip6[2] ^ ip6[3]`, then
/// `ntohl`).
#[inline]
pub(crate) fn fold(addr: &Addr) -> u32 {
    if addr.is_v4() {
        u32::from_be_bytes(addr.v4_octets())
    } else {
        let b = &addr.0;
        let w = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        w(0) ^ w(4) ^ w(8) ^ w(12)
    }
}

/// Knuth's multiplicative constant that IPVS uses in every address hash
/// (`2654435761UL`, about 2^32 / phi).
pub(crate) const GOLDEN: u32 = 2_654_435_761;

/// MurmurHash3's 64-bit finaliser: a bijection on `u64` with full avalanche.
#[inline]
pub(crate) fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// xorshift64* step; `state` must not be 0.
#[inline]
pub(crate) fn xorshift64star(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Greatest common divisor of two positive numbers.
pub(crate) fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// `ip_vs_wrr_gcd_weight` / `ip_vs_mh_gcd_weight`: the GCD of the positive
/// weights, 0 when there are none.
pub(crate) fn gcd_of_positive(weights: impl IntoIterator<Item = i32>) -> i64 {
    weights.into_iter().filter(|&w| w > 0).fold(0, |g, w| {
        if g > 0 {
            gcd(i64::from(w), g)
        } else {
            i64::from(w)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_matches_kernel_layout() {
        assert_eq!(fold(&Addr::v4([10, 1, 2, 3])), 0x0a01_0203);
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        b[12..].copy_from_slice(&[0, 0, 0, 1]);
        assert_eq!(fold(&Addr::v6(b)), 0x2001_0db8 ^ 1);
    }

    #[test]
    fn heavier_is_exact_for_huge_values() {
        let big = u64::from(u32::MAX) << 8;
        assert!(heavier(big, 1, big - 1, 1));
        assert!(!heavier(big, i32::MAX, big, i32::MAX));
        assert!(heavier(3, 2, 1, 1), "3/2 > 1/1");
        assert!(!heavier(2, 2, 1, 1), "2/2 == 1/1 is not heavier");
    }

    #[test]
    fn gcd_of_weights() {
        assert_eq!(gcd_of_positive([4, 0, 6, 8]), 2);
        assert_eq!(gcd_of_positive([0, 0]), 0);
        assert_eq!(gcd_of_positive([7]), 7);
    }
}
