//! Weight-ordered failover: fo (`ip_vs_fo.c`) and ovf (`ip_vs_ovf.c`).

use crate::PickCx;
use crate::lc::stateless_scheduler;
use crate::pool::Pool;

/// Weighted failover scheduling, as `ip_vs_fo_schedule`.
///
/// Every new connection goes to the usable destination with the highest
/// weight; among equal weights the first in list order. Lower weights are
/// standbys that take over when the heavier ones are quiesced (weight 0),
/// overloaded or removed.
#[derive(Clone, Debug)]
pub struct Fo {
    pool: Pool,
}

impl Fo {
    fn choose(&self, cx: &PickCx<'_>) -> Option<usize> {
        let mut best: Option<(usize, i32)> = None;
        for (i, w, _) in self.pool.usable_iter(cx.dests) {
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}
stateless_scheduler!(Fo, "fo");

/// Overflow-connection scheduling, as `ip_vs_ovf_schedule`.
///
/// Like [`Fo`], but a destination is passed over once its active
/// connections exceed its weight (`active > weight`; at `active == weight`
/// it still qualifies, as in the kernel), so the weight works as a
/// connection budget and traffic overflows to the next heaviest. Only
/// active connections count, so it suits TCP better than UDP.
#[derive(Clone, Debug)]
pub struct Ovf {
    pool: Pool,
}

impl Ovf {
    fn choose(&self, cx: &PickCx<'_>) -> Option<usize> {
        let mut best: Option<(usize, i32)> = None;
        for (i, w, s) in self.pool.usable_iter(cx.dests) {
            if i64::from(s.active()) > i64::from(w) {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}
stateless_scheduler!(Ovf, "ovf");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scheduler;
    use crate::testutil::*;

    #[test]
    fn fo_takes_the_heaviest_usable() {
        let lab = Lab::new(&[2, 5, 5, 1]);
        let mut s = Fo::new();
        s.update(&lab.infos);
        assert_eq!(
            letters(&lab.pick_n(&s, 3)),
            "BBB",
            "equal weights: first wins"
        );
        lab.counts(1, 1000, 0);
        assert_eq!(lab.pick_n(&s, 1), [Some(1)], "load does not matter");
        lab.set_overloaded(1, true);
        assert_eq!(lab.pick_n(&s, 1), [Some(2)]);
        let mut infos = lab.infos.clone();
        infos[2].weight = 0;
        s.update(&infos);
        assert_eq!(lab.pick_n(&s, 1), [Some(0)]);
    }

    #[test]
    fn ovf_overflows_past_the_weight() {
        let lab = Lab::new(&[3, 5, 1]);
        let mut s = Ovf::new();
        s.update(&lab.infos);
        assert_eq!(lab.pick_n(&s, 1), [Some(1)]);
        lab.counts(1, 5, 100);
        assert_eq!(
            lab.pick_n(&s, 1),
            [Some(1)],
            "active == weight still qualifies"
        );
        lab.counts(1, 6, 0);
        assert_eq!(lab.pick_n(&s, 1), [Some(0)], "active > weight overflows");
        lab.counts(0, 4, 0);
        assert_eq!(lab.pick_n(&s, 1), [Some(2)]);
        lab.counts(2, 2, 0);
        assert_eq!(lab.pick_n(&s, 1), [None], "every budget spent");
    }
}
