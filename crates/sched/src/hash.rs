//! Static hashing: dh (`ip_vs_dh.c`) and sh (`ip_vs_sh.c`).

use std::fmt;

use xvs_conntrack::ConnKey;

use crate::pool::{GOLDEN, NONE, Pool, fold};
use crate::{DestInfo, PickCx, SchedFlags, Scheduler};

/// Buckets per table: `1 << IP_VS_{DH,SH}_TAB_BITS`.
const TAB_SIZE: usize = 256;
const TAB_MASK: u32 = TAB_SIZE as u32 - 1;

/// `ip_vs_sh_hashkey` (and `ip_vs_dh_hashkey` with port and offset 0).
#[inline]
fn hashkey(addr_fold: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(u32::from(port).wrapping_add(addr_fold).wrapping_mul(GOLDEN)) & TAB_MASK)
        as usize
}

/// Destination-hashing scheduling, as `ip_vs_dh_schedule`.
///
/// The 256 buckets are dealt to the destinations one each in list order,
/// round and round (`ip_vs_dh_reassign`; weights play no part in the
/// deal), and a connection goes to the bucket of its destination (virtual)
/// address. If that destination may not take it (weight 0, overloaded)
/// there is no fallback: the pick fails, as in the kernel, where dh is
/// meant for cache clusters combined with cache bypass.
///
/// # The hash (dh and sh)
///
/// Both keep a table of 256 buckets (`IP_VS_DH_TAB_BITS` /
/// `IP_VS_SH_TAB_BITS` = 8) filled at update time, and hash an address into
/// it with the multiplicative hash IPVS uses everywhere:
/// `(offset + (port + addr) * 2654435761) & 255`, where `addr` is the IPv4
/// address in host order or the XOR of the four 32-bit words of an IPv6
/// address, `port` is 0 unless a port flag asks for it, and `offset` is 0
/// except in sh's fallback probe. Only the low eight bits of the product
/// are kept, and they depend only on the low eight bits of `port + addr`:
/// every IPv4 address with the same last octet (10.0.0.7, 192.168.3.7)
/// lands in the same bucket. That is the kernel's behaviour and is kept, so
/// a table here maps flows exactly as the kernel's table with the same list
/// would.
#[derive(Clone)]
pub struct Dh {
    pool: Pool,
    buckets: [u32; TAB_SIZE],
}

impl Dh {
    /// A destination-hashing scheduler with no destinations.
    pub fn new() -> Dh {
        Dh {
            pool: Pool::default(),
            buckets: [NONE; TAB_SIZE],
        }
    }

    /// The destination index in each bucket (`None` when there are no
    /// destinations).
    pub fn buckets(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.buckets
            .iter()
            .map(|&b| (b != NONE).then_some(b as usize))
    }
}

impl Default for Dh {
    fn default() -> Dh {
        Dh::new()
    }
}

impl fmt::Debug for Dh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dh")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Scheduler for Dh {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn update(&mut self, dests: &[DestInfo]) {
        self.pool = Pool::new(dests);
        let n = self.pool.len();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if n == 0 { NONE } else { (i % n) as u32 };
        }
    }

    fn pick(&self, cx: &mut PickCx<'_>, key: &ConnKey) -> Option<usize> {
        let b = *self.buckets.get(hashkey(fold(&key.vaddr), 0, 0))?;
        let i = b as usize;
        (b != NONE && self.pool.usable(cx.dests, i)).then_some(i)
    }

    fn clone_box(&self) -> Box<dyn Scheduler> {
        Box::new(self.clone())
    }
}

/// Source-hashing scheduling, as `ip_vs_sh_schedule`.
///
/// The 256 buckets are dealt in list order, each destination taking as many
/// consecutive buckets as its weight before the next one's turn, round and
/// round until all are dealt (`ip_vs_sh_reassign`). Weights therefore set
/// the share of buckets, and a weight of 0 still takes one bucket (where
/// its clients find no server). A connection goes to the bucket of its
/// source (client) address, hashed as described for [`Dh`].
///
/// Flags:
/// - [`SchedFlags::SH_PORT`] (`sh-port`): the source port is added to the
///   address before hashing, spreading one client's connections.
/// - [`SchedFlags::SH_FALLBACK`] (`sh-fallback`): when the bucket's
///   destination may not take the connection, the kernel's deterministic
///   probe tries the buckets `hash(addr, port, (hash + k) % 256)` for
///   `k = 0, 1, ...` until one holds a usable destination. Without the flag
///   the pick fails.
#[derive(Clone)]
pub struct Sh {
    flags: SchedFlags,
    pool: Pool,
    buckets: [u32; TAB_SIZE],
}

impl Sh {
    /// A source-hashing scheduler with no destinations; `flags` may hold
    /// [`SchedFlags::SH_PORT`] and [`SchedFlags::SH_FALLBACK`].
    pub fn new(flags: SchedFlags) -> Sh {
        Sh {
            flags,
            pool: Pool::default(),
            buckets: [NONE; TAB_SIZE],
        }
    }

    /// The destination index in each bucket (`None` when there are no
    /// destinations).
    pub fn buckets(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.buckets
            .iter()
            .map(|&b| (b != NONE).then_some(b as usize))
    }

    #[cold]
    fn fallback(&self, cx: &PickCx<'_>, addr_fold: u32, port: u16, ihash: usize) -> Option<usize> {
        // Same answer as the kernel's probe, which would only find nothing
        // after 256 probes.
        if !self.pool.any_usable(cx.dests) {
            return None;
        }
        for offset in 0..TAB_SIZE {
            let roffset = ((offset + ihash) % TAB_SIZE) as u32;
            let b = *self.buckets.get(hashkey(addr_fold, port, roffset))?;
            if b == NONE {
                return None;
            }
            if self.pool.usable(cx.dests, b as usize) {
                return Some(b as usize);
            }
        }
        None
    }
}

impl fmt::Debug for Sh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sh")
            .field("flags", &self.flags.display_for("sh"))
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Scheduler for Sh {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn update(&mut self, dests: &[DestInfo]) {
        self.pool = Pool::new(dests);
        let n = self.pool.len();
        let (mut d, mut count) = (0usize, 0i64);
        for b in self.buckets.iter_mut() {
            if n == 0 {
                *b = NONE;
                continue;
            }
            *b = d as u32;
            // Stay on this destination until it has `weight` buckets.
            count += 1;
            if count >= i64::from(self.pool.weight(d)) {
                d = (d + 1) % n;
                count = 0;
            }
        }
    }

    fn pick(&self, cx: &mut PickCx<'_>, key: &ConnKey) -> Option<usize> {
        let addr_fold = fold(&key.caddr);
        let port = if self.flags.contains(SchedFlags::SH_PORT) {
            key.cport
        } else {
            0
        };
        let ihash = hashkey(addr_fold, port, 0);
        let b = *self.buckets.get(ihash)?;
        if b == NONE {
            return None;
        }
        if self.pool.usable(cx.dests, b as usize) {
            return Some(b as usize);
        }
        if self.flags.contains(SchedFlags::SH_FALLBACK) {
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
    use xvs_conntrack::Addr;

    fn counts(buckets: impl Iterator<Item = Option<usize>>, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for i in buckets.flatten() {
            c[i] += 1;
        }
        c
    }

    #[test]
    fn kernel_hash_values() {
        // (1 * 2654435761) & 255 = 0xb1; only the low octet matters.
        assert_eq!(hashkey(1, 0, 0), 0xb1);
        assert_eq!(hashkey(0x0a00_0001, 0, 0), 0xb1);
        assert_eq!(hashkey(0, 1, 0), 0xb1, "the port adds to the address");
        assert_eq!(hashkey(1, 0, 3), 0xb4, "the offset adds to the product");
    }

    #[test]
    fn dh_deals_buckets_round_robin_ignoring_weight() {
        let lab = Lab::new(&[1, 10, 3]);
        let mut s = Dh::new();
        s.update(&lab.infos);
        assert_eq!(counts(s.buckets(), 3), [86, 85, 85]);
        assert!(s.buckets().take(6).eq([0, 1, 2, 0, 1, 2].map(Some)));
    }

    #[test]
    fn sh_deals_buckets_by_weight() {
        let lab = Lab::new(&[1, 2, 0, 3]);
        let mut s = Sh::new(SchedFlags::NONE);
        s.update(&lab.infos);
        // Rounds of A, B B, C (weight 0 still gets one), D D D: 7 buckets.
        assert!(s.buckets().take(8).eq([0, 1, 1, 2, 3, 3, 3, 0].map(Some)));
        // 256 = 36 rounds of 7 + A, B B, C.
        assert_eq!(counts(s.buckets(), 4), [37, 74, 37, 108]);
    }

    #[test]
    fn dh_and_sh_are_stable_and_spread_evenly() {
        let lab = Lab::new(&[1, 1, 1, 1]);
        let mut dh = Dh::new();
        let mut sh = Sh::new(SchedFlags::NONE);
        dh.update(&lab.infos);
        sh.update(&lab.infos);
        let mut st = PickState::default();
        let (mut by_vip, mut by_client) = (vec![0; 4], vec![0; 4]);
        // 1024 consecutive addresses: every low octet four times.
        for a in 0..1024u32 {
            let k = key(a, a);
            let d = lab.pick_with(&dh, &mut st, &k).unwrap();
            let c = lab.pick_with(&sh, &mut st, &k).unwrap();
            // Same address, same server, whatever else differs.
            let mut k2 = key(a, a);
            k2.cport ^= 0x5555;
            assert_eq!(lab.pick_with(&dh, &mut st, &k2), Some(d));
            assert_eq!(lab.pick_with(&sh, &mut st, &k2), Some(c));
            by_vip[d] += 1;
            by_client[c] += 1;
        }
        // The hash is a bijection on the low octet: perfectly even.
        assert_eq!(by_vip, [256; 4]);
        assert_eq!(by_client, [256; 4]);
        // IPv6 folds the four words: the same fold gives the same server.
        let mut k6 = key(0, 0);
        k6.caddr = Addr::v6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]);
        let mut k6b = k6;
        k6b.caddr = Addr::v6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x11, 0, 0, 0, 0]);
        assert_eq!(
            lab.pick_with(&sh, &mut st, &k6),
            lab.pick_with(&sh, &mut st, &k6b)
        );
    }

    #[test]
    fn sh_without_fallback_fails_on_an_unusable_bucket() {
        let lab = Lab::new(&[1, 1]);
        let mut s = Sh::new(SchedFlags::NONE);
        s.update(&lab.infos);
        let mut st = PickState::default();
        let ka = (0..)
            .map(|c| key(c, 1))
            .find(|k| lab.pick_with(&s, &mut st, k) == Some(0))
            .unwrap();
        lab.set_overloaded(0, true);
        assert_eq!(lab.pick_with(&s, &mut st, &ka), None);
        let mut infos = lab.infos.clone();
        infos[0].weight = 0;
        lab.set_overloaded(0, false);
        s.update(&infos);
        assert_eq!(
            lab.pick_with(&s, &mut st, &ka),
            None,
            "weight 0 keeps its bucket"
        );
    }

    #[test]
    fn sh_fallback_probes_like_the_kernel() {
        let lab = Lab::new(&[1, 1, 1, 1]);
        let mut s = Sh::new(SchedFlags::SH_FALLBACK);
        s.update(&lab.infos);
        let mut st = PickState::default();
        lab.set_overloaded(0, true);
        for c in 0..512u32 {
            let k = key(c, 1);
            let got = lab.pick_with(&s, &mut st, &k).unwrap();
            // The kernel's probe, spelled out.
            let (f, ihash) = (fold(&k.caddr), hashkey(fold(&k.caddr), 0, 0));
            let want = if ihash % 4 != 0 {
                ihash % 4
            } else {
                (0..256)
                    .map(|o| hashkey(f, 0, ((o + ihash) % 256) as u32) % 4)
                    .find(|&d| d != 0)
                    .unwrap()
            };
            assert_eq!(got, want, "client {c}");
        }
        for i in 1..4 {
            lab.set_overloaded(i, true);
        }
        assert_eq!(lab.pick_with(&s, &mut st, &key(1, 1)), None);
    }

    #[test]
    fn sh_port_spreads_one_client() {
        let lab = Lab::new(&[1, 1, 1, 1]);
        let mut plain = Sh::new(SchedFlags::NONE);
        let mut port = Sh::new(SchedFlags::SH_PORT);
        plain.update(&lab.infos);
        port.update(&lab.infos);
        let mut st = PickState::default();
        let (mut a, mut b) = (vec![0; 4], vec![0; 4]);
        for p in 0..1024u16 {
            let mut k = key(7, 1);
            k.cport = 1024 + p;
            a[lab.pick_with(&plain, &mut st, &k).unwrap()] += 1;
            b[lab.pick_with(&port, &mut st, &k).unwrap()] += 1;
        }
        assert_eq!(
            a.iter().filter(|&&x| x > 0).count(),
            1,
            "one client, one server"
        );
        assert_eq!(b, [256; 4], "ports spread evenly");
    }
}
