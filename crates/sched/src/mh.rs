//! Maglev hashing (`ip_vs_mh.c`; Eisenbud et al., "Maglev: A Fast and
//! Reliable Software Network Load Balancer", NSDI'16, section 3.4).

use std::fmt;

use hashbrown::HashMap;
use xvs_conntrack::{Addr, ConnKey, DestId};

use crate::pool::{NONE, Pool, fmix64, fold, gcd_of_positive};
use crate::{DestInfo, PickCx, SchedError, SchedFlags, Scheduler};

/// The two hash keys of `ip_vs_mh` (`generate_hash_secret`): one places a
/// destination's permutation and looks flows up, the other sets the
/// permutation's step.
const KEY1: u64 = 2_654_435_761;
const KEY2: u64 = 2_654_446_892;

/// Maglev consistent-hashing scheduling, as `ip_vs_mh_schedule`.
///
/// Every destination has a permutation of the lookup table's slots,
/// `(offset + j * skip) % M` with `offset` and `skip` hashed from its
/// address and port; the table is filled by letting destinations take
/// turns claiming their next preferred free slot, and a flow goes to the
/// slot its source address hashes to. With `M` prime every permutation
/// visits every slot. The result is an even spread (with equal weights
/// slot counts differ by at most one) and minimal disruption: removing one
/// of `N` destinations moves little more than its own `1/N` of the slots.
///
/// Weights follow the kernel: in each round a destination claims `turns`
/// slots in a row, `turns = (weight / gcd) >> shift`, where `shift` keeps
/// the largest `weight / gcd` within `log2(M) / 2` bits (so a skewed weight
/// set cannot make one destination's run dominate a round). The weight used
/// is the last non-zero one: a destination set to weight 0 keeps its slots
/// (its flows find no server, or fall back, see below) instead of
/// reshuffling the table, and takes them back unchanged when its weight
/// returns, as the kernel's `last_weight` does.
///
/// Flags:
/// - [`SchedFlags::MH_PORT`] (`mh-port`): the source port is added to the
///   address before hashing.
/// - [`SchedFlags::MH_FALLBACK`] (`mh-fallback`): when the slot's
///   destination may not take the connection, slots `hash(addr + port +
///   (slot + k) % M)` are probed for `k = 0, 1, ...` until one holds a
///   usable destination, as `ip_vs_mh_get_fallback`. Without the flag the
///   pick fails.
///
/// Differences from the kernel:
/// - The table has [`Mh::DEFAULT_TABLE_SIZE`] = 65537 slots (Katran's size,
///   and the paper's example) instead of the kernel's default 4093
///   (`CONFIG_IP_VS_MH_TAB_INDEX` = 12); any prime can be chosen with
///   [`Mh::with_table_size`], and `shift` follows the size as in the kernel.
/// - The kernel hashes with `hsiphash` over the 32-bit folded address plus
///   port. Flows are looked up the same way here (fold, add port and probe
///   offset) but mixed with MurmurHash3's 64-bit finaliser; destinations are
///   placed by a hash of their full 128-bit address and port, so two real
///   servers whose folded address plus port happen to be equal (say
///   `10.0.0.1:81` and `10.0.0.2:80`) do not get the same permutation.
/// - The kernel refuses a service with more destinations than slots; here
///   the table is filled anyway and the destinations that get no slot
///   receive no traffic.
#[derive(Clone)]
pub struct Mh {
    flags: SchedFlags,
    size: u32,
    /// `IP_VS_MH_TAB_BITS`: how many bits `weight / gcd` may use.
    weight_bits: u32,
    pool: Pool,
    /// Address and port of each destination, for the permutations.
    addrs: Vec<(Addr, u16)>,
    /// Slot -> destination index; empty when no destination has a weight.
    table: Vec<u32>,
    /// Last non-zero weight of each destination (IPVS `dest->last_weight`).
    last_weight: HashMap<DestId, i32>,
}

impl Mh {
    /// Slots in the lookup table of [`Mh::new`].
    pub const DEFAULT_TABLE_SIZE: usize = 65_537;
    /// Largest accepted table size (64 MiB of table).
    pub const MAX_TABLE_SIZE: usize = 1 << 24;

    /// A Maglev scheduler with a 65537-slot table and no destinations;
    /// `flags` may hold [`SchedFlags::MH_PORT`] and
    /// [`SchedFlags::MH_FALLBACK`].
    pub fn new(flags: SchedFlags) -> Mh {
        Mh {
            flags,
            size: Mh::DEFAULT_TABLE_SIZE as u32,
            weight_bits: weight_bits(Mh::DEFAULT_TABLE_SIZE as u32),
            pool: Pool::default(),
            addrs: Vec::new(),
            table: Vec::new(),
            last_weight: HashMap::new(),
        }
    }

    /// Like [`Mh::new`] with a table of `size` slots, which must be a prime
    /// in `2..=MAX_TABLE_SIZE` (the kernel offers 251 ... 131071).
    pub fn with_table_size(flags: SchedFlags, size: usize) -> Result<Mh, SchedError> {
        if !(2..=Mh::MAX_TABLE_SIZE).contains(&size) || !is_prime(size as u64) {
            return Err(SchedError::BadTableSize(size));
        }
        Ok(Mh {
            size: size as u32,
            weight_bits: weight_bits(size as u32),
            ..Mh::new(flags)
        })
    }

    /// Number of slots in the lookup table.
    pub fn table_size(&self) -> usize {
        self.size as usize
    }

    /// The destination index in each slot, in slot order (empty before the
    /// first destination with a weight).
    pub fn slots(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.table
            .iter()
            .map(|&d| (d != NONE).then_some(d as usize))
    }

    /// The flow's hash value for probe `offset`, as `ip_vs_mh_hashkey`:
    /// the folded address plus port plus offset, mixed with the first key.
    #[inline]
    fn flow_slot(&self, addr_fold: u32, port: u16, offset: u32) -> usize {
        let v = offset.wrapping_add(u32::from(port)).wrapping_add(addr_fold);
        (fmix64(u64::from(v) ^ KEY1) % u64::from(self.size)) as usize
    }

    /// Fills the lookup table from the destinations' permutations
    /// (`ip_vs_mh_permutate` + `ip_vs_mh_populate`).
    ///
    /// Unlike the kernel, which takes turns in the order the destinations
    /// were added, turns go by address and port: when two destinations
    /// want the same free slot in a round, the lower address takes it. So
    /// two directors with the same real servers build the same table
    /// whatever order they were configured in (ECMP scale-out and
    /// failover without sync depend on it).
    fn populate(&mut self, weights: &[i32]) {
        self.table.clear();
        let g = gcd_of_positive(weights.iter().copied());
        if g < 1 {
            return;
        }
        let m = u64::from(self.size);
        let max = i64::from(weights.iter().copied().max().unwrap_or(0));
        let mw = (max / g) as u64;
        let fls = u64::BITS - mw.leading_zeros();
        let shift = fls.saturating_sub(self.weight_bits);

        struct Setup {
            index: u32,
            perm: u64,
            skip: u64,
            turns: u64,
        }
        let mut setup: Vec<Setup> = self
            .addrs
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(index, (&(addr, port), &w))| {
                let lw = i64::from(w.max(0));
                let turns = ((lw / g) as u64) >> shift;
                Setup {
                    index: index as u32,
                    perm: dest_hash(&addr, port, KEY1) % m,
                    skip: dest_hash(&addr, port, KEY2) % (m - 1).max(1) + 1,
                    turns: if turns > 0 { turns } else { u64::from(lw != 0) },
                }
            })
            .collect();
        setup.sort_by_key(|ds| {
            let (addr, port) = self.addrs[ds.index as usize];
            (addr.0, port)
        });

        self.table = vec![NONE; self.size as usize];
        let mut filled = 0u64;
        // At least one destination has turns >= 1 (g >= 1 means some weight
        // is positive), so every round claims at least one slot.
        while filled < m {
            let before = filled;
            for ds in setup.iter_mut() {
                for _ in 0..ds.turns {
                    let mut c = ds.perm;
                    while self.table[c as usize] != NONE {
                        ds.perm += ds.skip;
                        if ds.perm >= m {
                            ds.perm -= m;
                        }
                        c = ds.perm;
                    }
                    self.table[c as usize] = ds.index;
                    filled += 1;
                    if filled == m {
                        return;
                    }
                }
            }
            if filled == before {
                break;
            }
        }
    }

    #[cold]
    fn fallback(&self, cx: &PickCx<'_>, addr_fold: u32, port: u16, ihash: usize) -> Option<usize> {
        // Same answer as the kernel's probe, which would only find nothing
        // after M probes.
        if !self.pool.any_usable(cx.dests) {
            return None;
        }
        let m = self.size as usize;
        for offset in 0..m {
            let roffset = ((offset + ihash) % m) as u32;
            let d = *self.table.get(self.flow_slot(addr_fold, port, roffset))?;
            if d == NONE {
                return None;
            }
            if self.pool.usable(cx.dests, d as usize) {
                return Some(d as usize);
            }
        }
        None
    }
}

/// `IP_VS_MH_TAB_BITS` for a table of `size` slots: half the table's bits
/// (the kernel's `CONFIG_IP_VS_MH_TAB_INDEX / 2`, 6 for 4093; 8 for 65537).
fn weight_bits(size: u32) -> u32 {
    size.max(2).ilog2().div_ceil(2)
}

/// A destination's placement hash: its 128-bit address and port, keyed.
fn dest_hash(addr: &Addr, port: u16, key: u64) -> u64 {
    let (hi, lo) = addr.0.split_at(8);
    let word = |b: &[u8]| b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
    let h = fmix64(key ^ word(hi));
    let h = fmix64(h ^ word(lo));
    fmix64(h ^ u64::from(port) ^ key.rotate_left(32))
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

impl fmt::Debug for Mh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mh")
            .field("flags", &self.flags.display_for("mh"))
            .field("table_size", &self.size)
            .field("pool", &self.pool)
            .field("populated", &!self.table.is_empty())
            .finish_non_exhaustive()
    }
}

impl Scheduler for Mh {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn update(&mut self, dests: &[DestInfo]) {
        // `last_weight` keeps the latest non-zero weight; a destination
        // added with weight 0 starts at 0; a removed one is forgotten.
        let mut last = HashMap::with_capacity(dests.len());
        for d in dests {
            let w = d.weight.max(0);
            let lw = if w != 0 {
                w
            } else {
                self.last_weight.get(&d.id).copied().unwrap_or(0)
            };
            last.insert(d.id, lw);
        }
        self.last_weight = last;
        self.pool = Pool::new(dests);
        self.addrs = dests.iter().map(|d| (d.addr, d.port)).collect();
        let weights: Vec<i32> = dests
            .iter()
            .map(|d| self.last_weight.get(&d.id).copied().unwrap_or(0))
            .collect();
        self.populate(&weights);
    }

    fn pick(&self, cx: &mut PickCx<'_>, key: &ConnKey) -> Option<usize> {
        let addr_fold = fold(&key.caddr);
        let port = if self.flags.contains(SchedFlags::MH_PORT) {
            key.cport
        } else {
            0
        };
        let ihash = self.flow_slot(addr_fold, port, 0);
        let d = *self.table.get(ihash)?;
        if d == NONE {
            return None;
        }
        if self.pool.usable(cx.dests, d as usize) {
            return Some(d as usize);
        }
        if self.flags.contains(SchedFlags::MH_FALLBACK) {
            self.fallback(cx, addr_fold, port, ihash)
        } else {
            None
        }
    }

    fn clone_box(&self) -> Box<dyn Scheduler> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PickState;
    use crate::testutil::*;

    fn built(lab: &Lab, flags: SchedFlags) -> Mh {
        let mut s = Mh::new(flags);
        s.update(&lab.infos);
        s
    }

    /// Slot owners as destination ids, to compare tables across updates.
    fn owners(s: &Mh, infos: &[DestInfo]) -> Vec<Option<DestId>> {
        s.slots().map(|d| d.map(|i| infos[i].id)).collect()
    }

    fn slot_counts(s: &Mh, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for i in s.slots().flatten() {
            c[i] += 1;
        }
        c
    }

    #[test]
    fn equal_weights_fill_evenly() {
        for n in [1, 2, 3, 10, 100, 1000] {
            let lab = Lab::new(&vec![1; n]);
            let s = built(&lab, SchedFlags::NONE);
            assert_eq!(s.slots().count(), Mh::DEFAULT_TABLE_SIZE);
            let c = slot_counts(&s, n);
            let (min, max) = (c.iter().min().unwrap(), c.iter().max().unwrap());
            assert!(max - min <= 1, "n={n}: {min}..{max}");
            assert_eq!(c.iter().sum::<usize>(), Mh::DEFAULT_TABLE_SIZE);
        }
    }

    /// Removing one of `N` destinations moves its own `1/N` of the slots
    /// plus some collateral that grows as `M/N` shrinks (Maglev's known
    /// trade-off; the paper sizes `M` at 100x `N` or more). Measured with
    /// M = 65537 over ten removal positions: 1.03/N for N = 10, 1.54/N
    /// (worst 1.59/N) for N = 100, 6.8/N for N = 1000.
    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        for (n, bound) in [(10, 1.5), (100, 2.0)] {
            let lab = Lab::new(&vec![1; n]);
            let s = built(&lab, SchedFlags::NONE);
            let before = owners(&s, &lab.infos);
            let mut infos = lab.infos.clone();
            infos.remove(n / 2);
            let mut s2 = s.clone();
            s2.update(&infos);
            let after = owners(&s2, &infos);
            let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            let frac = moved as f64 / Mh::DEFAULT_TABLE_SIZE as f64;
            assert!(
                frac < bound / n as f64,
                "n={n}: {moved} slots moved ({frac:.4})"
            );
            assert!(
                frac >= 1.0 / n as f64 - 0.001,
                "at least the removed share moves"
            );
        }
    }

    #[test]
    fn changing_one_weight_leaves_the_others_mostly_in_place() {
        let n = 10;
        let lab = Lab::new(&vec![2; n]);
        let s = built(&lab, SchedFlags::NONE);
        let before = owners(&s, &lab.infos);
        let mut infos = lab.infos.clone();
        infos[3].weight = 4;
        let mut s2 = s.clone();
        s2.update(&infos);
        let after = owners(&s2, &infos);
        // Slots that moved between two destinations other than the one whose
        // weight changed: the collateral damage.
        let collateral = before
            .iter()
            .zip(&after)
            .filter(|(a, b)| a != b && **a != Some(3) && **b != Some(3))
            .count();
        let gained = after.iter().filter(|o| **o == Some(3)).count();
        assert!(
            (gained as f64 / 65537.0 - 4.0 / 22.0).abs() < 0.002,
            "{gained}"
        );
        assert!(collateral < 65537 / 50, "collateral {collateral}");
    }

    #[test]
    fn weighted_shares_follow_weights() {
        let lab = Lab::new(&[1, 2, 3, 4, 0]);
        let s = built(&lab, SchedFlags::NONE);
        let c = slot_counts(&s, 5);
        assert_eq!(c[4], 0, "weight 0 from the start: no slots");
        for (i, &slots) in c.iter().enumerate().take(4) {
            let share = slots as f64 / 65537.0;
            let want = (i + 1) as f64 / 10.0;
            assert!((share - want).abs() < 0.001, "dest {i}: {share} vs {want}");
        }
        // Large, skewed weights are shifted to 8 bits of turns: 1000:1 has
        // fls(1000) = 10, shift 2, so 250:1 (1 >> 2 = 0 counts as 1).
        let lab = Lab::new(&[1000, 1]);
        let s = built(&lab, SchedFlags::NONE);
        let c = slot_counts(&s, 2);
        assert!(
            (c[1] as f64 / 65537.0 - 1.0 / 251.0).abs() < 0.0005,
            "{c:?}"
        );
    }

    #[test]
    fn quiescing_keeps_the_table_and_the_flows_elsewhere() {
        let lab = Lab::new(&[1, 1, 1, 1]);
        let mut s = built(&lab, SchedFlags::NONE);
        let table = owners(&s, &lab.infos);
        let mut st = PickState::default();
        let k = (0..)
            .map(|c| key(c, 1))
            .find(|k| lab.pick_with(&s, &mut st, k) == Some(2))
            .unwrap();
        let mut infos = lab.infos.clone();
        infos[2].weight = 0;
        s.update(&infos);
        assert_eq!(owners(&s, &infos), table, "last_weight keeps C's slots");
        assert_eq!(lab.pick_with(&s, &mut st, &k), None);
        let mut fb = s.clone();
        fb.flags = SchedFlags::MH_FALLBACK;
        let other = lab.pick_with(&fb, &mut st, &k);
        assert!(matches!(other, Some(0 | 1 | 3)), "{other:?}");
        infos[2].weight = 1;
        s.update(&infos);
        assert_eq!(owners(&s, &infos), table);
        assert_eq!(lab.pick_with(&s, &mut st, &k), Some(2));
    }

    #[test]
    fn fallback_probes_like_the_kernel() {
        let lab = Lab::new(&[1, 1, 1]);
        let s = built(&lab, SchedFlags::MH_FALLBACK);
        lab.set_overloaded(1, true);
        let mut st = PickState::default();
        for c in 0..300 {
            let k = key(c, 1);
            let f = fold(&k.caddr);
            let ihash = s.flow_slot(f, 0, 0);
            let owner = |slot: usize| s.table[slot] as usize;
            let want = if owner(ihash) != 1 {
                owner(ihash)
            } else {
                (0..65537)
                    .map(|o| owner(s.flow_slot(f, 0, ((o + ihash) % 65537) as u32)))
                    .find(|&d| d != 1)
                    .unwrap()
            };
            assert_eq!(lab.pick_with(&s, &mut st, &k), Some(want));
        }
    }

    #[test]
    fn mh_port_spreads_one_client_and_flows_are_stable() {
        let lab = Lab::new(&[1, 1, 1, 1]);
        let plain = built(&lab, SchedFlags::NONE);
        let port = built(&lab, SchedFlags::MH_PORT);
        let mut st = PickState::default();
        let (mut a, mut b) = (vec![0; 4], vec![0; 4]);
        for p in 0..4000u16 {
            let mut k = key(9, 1);
            k.cport = 10_000 + p;
            a[lab.pick_with(&plain, &mut st, &k).unwrap()] += 1;
            let d = lab.pick_with(&port, &mut st, &k).unwrap();
            assert_eq!(lab.pick_with(&port.clone(), &mut st, &k), Some(d));
            b[d] += 1;
        }
        assert_eq!(a.iter().filter(|&&x| x > 0).count(), 1);
        assert!(b.iter().all(|&x| (850..1150).contains(&x)), "{b:?}");
    }

    /// Two directors in front of the same real servers (ECMP scale-out,
    /// or a VRRP pair taking over without sync) must send a flow to the
    /// same server, so two tables built from the same servers must not
    /// depend on the order the servers were added in. With the kernel's
    /// order (the list's), 3 of 65537 slots differed for 2 servers, 5 for
    /// 3, 25 for 10, 319 for 100; `populate` takes turns by address.
    #[test]
    fn table_does_not_depend_on_the_order_servers_were_added() {
        for n in [2, 3, 10, 100] {
            let lab = Lab::new(&vec![1; n]);
            let forward = built(&lab, SchedFlags::NONE);
            // Added the other way round, into other slots of the second
            // director's destination table.
            let mut reversed = lab.infos.clone();
            reversed.reverse();
            for (i, d) in reversed.iter_mut().enumerate() {
                d.id = i as u32;
            }
            let mut other = Mh::new(SchedFlags::NONE);
            other.update(&reversed);
            let by_addr = |s: &Mh, infos: &[DestInfo]| -> Vec<Option<Addr>> {
                s.slots().map(|d| d.map(|i| infos[i].addr)).collect()
            };
            let a = by_addr(&forward, &lab.infos);
            let b = by_addr(&other, &reversed);
            let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
            assert_eq!(differ, 0, "n={n}: {differ} of {} slots differ", a.len());
        }
    }

    #[test]
    fn table_size_must_be_a_supported_prime() {
        for bad in [0, 1, 4, 4096, 65_536, Mh::MAX_TABLE_SIZE + 1, usize::MAX] {
            assert_eq!(
                Mh::with_table_size(SchedFlags::NONE, bad).unwrap_err(),
                SchedError::BadTableSize(bad)
            );
        }
        for good in [2, 251, 4093, 65_537, 131_071] {
            assert_eq!(
                Mh::with_table_size(SchedFlags::NONE, good)
                    .unwrap()
                    .table_size(),
                good
            );
        }
        assert_eq!(
            weight_bits(4093),
            6,
            "the kernel's IP_VS_MH_TAB_BITS for its default"
        );
        assert_eq!(weight_bits(65_537), 8);
        // A small table with more destinations than slots still works.
        let lab = Lab::new(&[1; 5]);
        let mut s = Mh::with_table_size(SchedFlags::NONE, 3).unwrap();
        s.update(&lab.infos);
        assert_eq!(s.slots().flatten().count(), 3);
        assert!(
            lab.pick_varied(&s, 20)
                .iter()
                .all(|p| p.is_some_and(|i| i < 3))
        );
    }
}
