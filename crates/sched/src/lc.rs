//! The least-load family: lc (`ip_vs_lc.c`), wlc (`ip_vs_wlc.c`), sed
//! (`ip_vs_sed.c`) and nq (`ip_vs_nq.c`).
//!
//! None of them keeps state: a pick is one walk over the list reading the
//! live counters. Loads are compared by cross-multiplication (`h1 * w2 >
//! h2 * w1` for `h1 / w1 > h2 / w2`), never by division, in 128-bit
//! arithmetic so no count or weight can overflow it.

use crate::PickCx;
use crate::pool::{Pool, conn_overhead, heavier, least_weighted, sed_overhead};

macro_rules! stateless_scheduler {
    ($ty:ident, $name:literal) => {
        impl $ty {
            /// A scheduler with no destinations.
            pub fn new() -> $ty {
                $ty {
                    pool: $crate::pool::Pool::default(),
                }
            }
        }

        impl Default for $ty {
            fn default() -> $ty {
                $ty::new()
            }
        }

        impl $crate::Scheduler for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn update(&mut self, dests: &[$crate::DestInfo]) {
                self.pool = $crate::pool::Pool::new(dests);
            }

            fn pick(
                &self,
                cx: &mut $crate::PickCx<'_>,
                _key: &xvs_conntrack::ConnKey,
            ) -> Option<usize> {
                self.choose(cx)
            }

            fn clone_box(&self) -> Box<dyn $crate::Scheduler> {
                Box::new(self.clone())
            }
        }
    };
}
pub(crate) use stateless_scheduler;

/// Least-connection scheduling, as `ip_vs_lc_schedule`.
///
/// Chooses the usable destination with the least
/// `ip_vs_dest_conn_overhead` = `active * 256 + inactive`, ignoring weights
/// except that weight 0 is quiescent. Ties go to the first in list order
/// (the kernel replaces its candidate only on a strictly smaller overhead).
#[derive(Clone, Debug)]
pub struct Lc {
    pool: Pool,
}

impl Lc {
    fn choose(&self, cx: &PickCx<'_>) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (i, _, s) in self.pool.usable_iter(cx.dests) {
            let doh = conn_overhead(s);
            if least.is_none_or(|(_, loh)| doh < loh) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}
stateless_scheduler!(Lc, "lc");

/// Weighted least-connection scheduling, as `ip_vs_wlc_schedule` (the IPVS
/// default scheduler).
///
/// Chooses the usable destination with the least `(active * 256 +
/// inactive) / weight`. Like the kernel it takes the first usable
/// destination as the candidate and replaces it only when another one is
/// strictly lighter (`loh * dw > doh * lw`), so ties go to the first in list
/// order.
#[derive(Clone, Debug)]
pub struct Wlc {
    pool: Pool,
}

impl Wlc {
    fn choose(&self, cx: &PickCx<'_>) -> Option<usize> {
        least_weighted(&self.pool, cx.dests, conn_overhead)
    }
}
stateless_scheduler!(Wlc, "wlc");

/// Shortest-expected-delay scheduling, as `ip_vs_sed_schedule` (Weinrib and
/// Shenker, "Greed is not enough", INFOCOM'88).
///
/// Chooses the usable destination with the least `(active + 1) / weight`:
/// the expected delay of the new connection if it joins that server. Only
/// active connections count. Candidate and ties as in [`Wlc`].
#[derive(Clone, Debug)]
pub struct Sed {
    pool: Pool,
}

impl Sed {
    fn choose(&self, cx: &PickCx<'_>) -> Option<usize> {
        least_weighted(&self.pool, cx.dests, sed_overhead)
    }
}
stateless_scheduler!(Sed, "sed");

/// Never-queue scheduling, as `ip_vs_nq_schedule`.
///
/// The first usable destination in list order with no active connection
/// is chosen at once, whatever its weight: an idle server never makes a
/// connection wait. When every usable destination is busy, it chooses like
/// [`Sed`], the least `(active + 1) / weight`, ties to the first.
#[derive(Clone, Debug)]
pub struct Nq {
    pool: Pool,
}

impl Nq {
    fn choose(&self, cx: &PickCx<'_>) -> Option<usize> {
        let mut least: Option<(usize, u64, i32)> = None;
        for (i, w, s) in self.pool.usable_iter(cx.dests) {
            if s.active() == 0 {
                return Some(i);
            }
            let doh = sed_overhead(s);
            match least {
                Some((_, loh, lw)) if !heavier(loh, lw, doh, w) => {}
                _ => least = Some((i, doh, w)),
            }
        }
        least.map(|(i, _, _)| i)
    }
}
stateless_scheduler!(Nq, "nq");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scheduler;
    use crate::testutil::*;

    fn pick(s: &mut dyn Scheduler, lab: &Lab) -> Option<usize> {
        s.update(&lab.infos);
        lab.pick_n(s, 1)[0]
    }

    #[test]
    fn lc_takes_least_overhead_and_ignores_weight() {
        let lab = Lab::new(&[1, 100, 1, 0]);
        lab.counts(0, 1, 0); // 256
        lab.counts(1, 0, 300); // 300
        lab.counts(2, 0, 255); // 255
        lab.counts(3, 0, 0); // quiescent
        assert_eq!(pick(&mut Lc::new(), &lab), Some(2));
        lab.counts(2, 0, 256); // tie with A: first wins
        assert_eq!(pick(&mut Lc::new(), &lab), Some(0));
        lab.set_overloaded(0, true);
        assert_eq!(pick(&mut Lc::new(), &lab), Some(2));
    }

    #[test]
    fn wlc_divides_by_weight_without_dividing() {
        let lab = Lab::new(&[1, 3, 2]);
        lab.counts(0, 1, 0); // 256 / 1
        lab.counts(1, 2, 0); // 512 / 3 = 170.7
        lab.counts(2, 1, 100); // 356 / 2 = 178
        assert_eq!(pick(&mut Wlc::new(), &lab), Some(1));
        lab.counts(2, 1, 85); // 341 / 2 = 170.5 < 170.67
        assert_eq!(pick(&mut Wlc::new(), &lab), Some(2));
        lab.counts(2, 1, 85 + 1); // 342 / 2 = 171 > 170.67
        assert_eq!(pick(&mut Wlc::new(), &lab), Some(1));
    }

    #[test]
    fn wlc_ties_go_to_the_first_usable() {
        let lab = Lab::new(&[0, 2, 1, 2]);
        lab.counts(0, 0, 0); // idle but quiescent
        lab.counts(1, 2, 0); // 512 / 2
        lab.counts(2, 1, 0); // 256 / 1
        lab.counts(3, 2, 0); // 512 / 2
        assert_eq!(pick(&mut Wlc::new(), &lab), Some(1));
        lab.set_overloaded(1, true);
        assert_eq!(pick(&mut Wlc::new(), &lab), Some(2));
    }

    #[test]
    fn sed_counts_the_new_connection() {
        // wlc would see A (0/1) as lightest; sed compares (0+1)/1 with (1+1)/5.
        let lab = Lab::new(&[1, 5]);
        lab.counts(1, 1, 0);
        assert_eq!(pick(&mut Wlc::new(), &lab), Some(0));
        assert_eq!(pick(&mut Sed::new(), &lab), Some(1));
        // Inactive connections do not count in sed.
        lab.counts(1, 1, 10_000);
        assert_eq!(pick(&mut Sed::new(), &lab), Some(1));
        // Equal expected delay (2/2 == 1/1): first wins.
        let lab = Lab::new(&[2, 1]);
        lab.counts(0, 1, 0);
        assert_eq!(pick(&mut Sed::new(), &lab), Some(0));
    }

    #[test]
    fn nq_prefers_an_idle_server_then_sed() {
        let lab = Lab::new(&[10, 1, 1]);
        lab.counts(0, 3, 0); // (3+1)/10 = 0.4
        lab.counts(1, 0, 50); // idle (inactive only)
        lab.counts(2, 0, 0); // idle
        assert_eq!(pick(&mut Sed::new(), &lab), Some(0), "sed: 0.4 beats 1/1");
        assert_eq!(
            pick(&mut Nq::new(), &lab),
            Some(1),
            "first idle server wins at once"
        );
        lab.counts(1, 1, 0); // (1+1)/1 = 2
        lab.counts(2, 2, 0); // (2+1)/1 = 3
        assert_eq!(
            pick(&mut Nq::new(), &lab),
            Some(0),
            "no idle server: sed, 0.4 is least"
        );
        lab.set_overloaded(0, true);
        assert_eq!(pick(&mut Nq::new(), &lab), Some(1));
    }
}
