//! Weighted round robin (`ip_vs_wrr.c`).

use std::fmt;

use xvs_conntrack::{ConnKey, DestTable};

use crate::pool::{HEAD, Pool, gcd_of_positive, next_generation};
use crate::{DestInfo, PickCx, PickState, Scheduler};

/// Weighted round-robin scheduling, as `ip_vs_wrr_schedule`.
///
/// Each destination gets `weight / gcd` connections per cycle, interleaved
/// by the kernel's passes. Weight 0 and overloaded destinations are skipped
/// where they would have been chosen.
///
/// IPVS walks the destination list in passes. Pass `k` has a current
/// weight `cw = mw - k*di`, where `di` is the GCD of the positive weights
/// and `mw = max_weight - (di - 1)`, and takes every destination whose
/// weight is at least `cw`, in list order; the last pass has `cw` in
/// `1..=di` and takes every destination of positive weight. With A=4, B=3,
/// C=2 the passes are `cw = 4, 3, 2, 1`, giving `A | A B | A B C | A B C`,
/// the cycle `AABABCABC`.
///
/// When nothing is overloaded, that order is a fixed cycle of
/// `sum(weight)/di` steps, so [`Wrr`] precomputes it at update time and a
/// pick is a cursor step. Overloaded destinations are skipped at pick time,
/// which is exactly what the kernel's walk does. Cycles longer than the
/// sequence limit are not precomputed; the pick then walks the passes like
/// the kernel, but jumps over passes in which no usable destination can be
/// chosen, so a pick costs at most three walks over the list instead of one
/// walk per pass. Both ways give the kernel's order, including where the
/// cursor is left after a failed pick; the tests hold them against a literal
/// transcription of `ip_vs_wrr_schedule`.
///
/// After an update the walk restarts at the list head, with the current
/// weight kept, or rounded to the new GCD, as `ip_vs_wrr_dest_changed` does.
///
/// The kernel has one mark (`cl`, `cw`) per service under a lock, created
/// by `ip_vs_wrr_init_svc` and adjusted at every update. Here each worker
/// keeps its own in [`PickState`], so every worker follows the cycle; a
/// worker's mark is created at its first pick (for the list of that
/// moment) and adjusted at its first pick after an update, once, for the
/// latest list, so several updates between two picks of one worker count
/// as one.
#[derive(Clone)]
pub struct Wrr {
    generation: u64,
    pool: Pool,
    /// IPVS `mark->di`: GCD of the positive weights, 1 when there are none.
    di: i64,
    /// IPVS `mark->mw`: `max_weight - (di - 1)`; 0 when no weight is positive.
    mw: i64,
    /// Index of the last pass (the one whose `cw` is in `1..=di`).
    last: i64,
    plan: Option<Plan>,
    limit: usize,
}

/// The precomputed cycle.
#[derive(Clone)]
struct Plan {
    /// Every (destination, pass) the kernel's walk chooses when nothing is
    /// overloaded, in walk order.
    steps: Vec<Step>,
    /// Position in `steps` where each pass begins, plus one past the end.
    pass_start: Vec<u32>,
}

#[derive(Clone, Copy)]
struct Step {
    dest: u32,
    pass: u32,
}

impl Wrr {
    /// Longest cycle precomputed by [`Wrr::new`]: 65536 steps (512 KiB).
    pub const DEFAULT_SEQUENCE_LIMIT: usize = 1 << 16;

    /// A weighted round-robin scheduler with no destinations.
    pub fn new() -> Wrr {
        Wrr::with_sequence_limit(Wrr::DEFAULT_SEQUENCE_LIMIT)
    }

    /// Like [`Wrr::new`], precomputing cycles of at most `limit` steps (0:
    /// never precompute). The order is the same either way; the limit only
    /// trades memory for pick time. Limits above `u32::MAX` are clamped.
    pub fn with_sequence_limit(limit: usize) -> Wrr {
        Wrr {
            generation: next_generation(),
            pool: Pool::default(),
            di: 1,
            mw: 0,
            last: -1,
            plan: None,
            limit: limit.min(u32::MAX as usize),
        }
    }

    /// Whether the current cycle is precomputed.
    pub fn is_precomputed(&self) -> bool {
        self.plan.is_some()
    }

    /// `cw` of pass `k`.
    #[inline]
    fn cw_of(&self, k: i64) -> i64 {
        self.mw - k * self.di
    }

    /// The pass whose `cw` is `cw` (for `cw` in `1..=mw`).
    #[inline]
    fn pass_of(&self, cw: i64) -> i64 {
        ((self.mw - cw) / self.di).clamp(0, self.last.max(0))
    }

    fn build_plan(&self, len: usize) -> Plan {
        let mut steps = Vec::with_capacity(len);
        let mut pass_start = Vec::with_capacity(usize::try_from(self.last + 2).unwrap_or(0));
        for k in 0..=self.last {
            pass_start.push(steps.len() as u32);
            let cw = self.cw_of(k);
            for (i, &w) in self.pool.weights().iter().enumerate() {
                if i64::from(w) >= cw {
                    steps.push(Step {
                        dest: i as u32,
                        pass: k as u32,
                    });
                }
            }
        }
        pass_start.push(steps.len() as u32);
        debug_assert_eq!(steps.len(), len);
        Plan { steps, pass_start }
    }

    /// Brings a state last used with other tables to this list, the way
    /// `ip_vs_wrr_dest_changed` resets the mark: back to the list head, `cw`
    /// kept when it is still in range and rounded to the new GCD.
    fn sync(&self, st: &mut PickState) {
        if st.generation == self.generation {
            return;
        }
        st.generation = self.generation;
        st.cl = HEAD;
        if st.cw > self.mw || st.cw <= 0 {
            st.cw = self.mw;
        } else if self.di > 1 {
            st.cw = (st.cw / self.di) * self.di + 1;
        }
        st.cursor = self.plan.as_ref().map_or(0, |p| {
            p.pass_start
                .get(self.pass_of(st.cw) as usize)
                .map_or(0, |&s| s as usize)
        });
    }

    /// Next step of the precomputed cycle at or after the cursor whose
    /// destination is usable.
    #[inline]
    fn pick_planned(&self, plan: &Plan, dests: &DestTable, st: &mut PickState) -> Option<usize> {
        let len = plan.steps.len();
        let mut p = if st.cursor < len { st.cursor } else { 0 };
        for _ in 0..len {
            let step = *plan.steps.get(p)?;
            p = if p + 1 == len { 0 } else { p + 1 };
            let i = step.dest as usize;
            if self.pool.usable(dests, i) {
                st.cursor = p;
                st.cl = i;
                st.cw = self.cw_of(i64::from(step.pass));
                return Some(i);
            }
        }
        None
    }

    /// The kernel's walk over passes, skipping the passes that cannot yield
    /// a usable destination.
    fn pick_stepping(&self, dests: &DestTable, st: &mut PickState) -> Option<usize> {
        let (i, cw) = self.step(dests, st.cl, st.cw)?;
        st.cl = i;
        st.cw = cw;
        Some(i)
    }

    /// From mark (`cl`, `cw0`), the next (destination, cw) the kernel's walk
    /// chooses.
    fn step(&self, dests: &DestTable, cl: usize, cw0: i64) -> Option<(usize, i64)> {
        let weights = self.pool.weights();
        let k0 = self.pass_of(cw0);
        // The rest of the current pass.
        let start = if cl == HEAD { 0 } else { cl.saturating_add(1) };
        for (i, &w) in weights.iter().enumerate().skip(start) {
            if i64::from(w) >= cw0 && self.pool.usable(dests, i) {
                return Some((i, cw0));
            }
        }
        // Passes whose cw exceeds the heaviest usable weight yield nothing:
        // go straight to the first one that yields something.
        let heaviest = i64::from(self.pool.usable_iter(dests).map(|(_, w, _)| w).max()?);
        let first_useful = (self.mw - heaviest + self.di - 1)
            .div_euclid(self.di)
            .max(0);
        let k = if k0 < self.last {
            (k0 + 1).max(first_useful)
        } else if cl == HEAD {
            // From the head, the last pass (everyone) was just walked: the
            // kernel stops here without wrapping.
            return None;
        } else {
            // Past the last pass the kernel wraps to pass 0 and walks on.
            first_useful
        };
        let cw = self.cw_of(k);
        weights
            .iter()
            .enumerate()
            .find(|&(i, &w)| i64::from(w) >= cw && self.pool.usable(dests, i))
            .map(|(i, _)| (i, cw))
    }

    /// Where the kernel leaves its mark when nothing could be chosen: on the
    /// same destination when the walk started in the last pass (it wraps
    /// and stops on its starting point), otherwise back at the head with
    /// `cw = mw`.
    #[cold]
    fn fail(&self, st: &mut PickState) {
        if st.cl != HEAD && st.cw == self.cw_of(self.last) {
            // In the precomputed cycle the cursor already points just
            // after (cl, last pass).
            return;
        }
        st.cl = HEAD;
        st.cw = self.mw;
        st.cursor = 0;
    }
}

impl Default for Wrr {
    fn default() -> Wrr {
        Wrr::new()
    }
}

impl fmt::Debug for Wrr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wrr")
            .field("dests", &self.pool.len())
            .field("weights", &self.pool.weights())
            .field("di", &self.di)
            .field("mw", &self.mw)
            .field("cycle", &self.plan.as_ref().map(|p| p.steps.len()))
            .finish()
    }
}

impl Scheduler for Wrr {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn update(&mut self, dests: &[DestInfo]) {
        self.pool = Pool::new(dests);
        let weights = self.pool.weights();
        let g = gcd_of_positive(weights.iter().copied());
        self.di = if g > 0 { g } else { 1 };
        let max_weight = i64::from(weights.iter().copied().max().unwrap_or(0));
        self.mw = max_weight - (self.di - 1);
        self.last = if self.mw > 0 {
            (self.mw - 1) / self.di
        } else {
            -1
        };
        let cycle: u64 = weights
            .iter()
            .filter(|&&w| w > 0)
            .map(|&w| (i64::from(w) / self.di) as u64)
            .sum();
        self.plan = None;
        if self.mw > 0 && cycle <= self.limit as u64 {
            self.plan = Some(self.build_plan(cycle as usize));
        }
        self.generation = next_generation();
    }

    fn pick(&self, cx: &mut PickCx<'_>, _key: &ConnKey) -> Option<usize> {
        let dests = cx.dests;
        let st = &mut *cx.state;
        self.sync(st);
        if self.mw <= 0 {
            // `err_noavail`: no positive weight; the mark stays.
            return None;
        }
        let found = match &self.plan {
            Some(plan) => self.pick_planned(plan, dests, st),
            None => self.pick_stepping(dests, st),
        };
        if found.is_none() {
            self.fail(st);
        }
        found
    }

    fn clone_box(&self) -> Box<dyn Scheduler> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use proptest::prelude::*;

    /// A line-by-line transcription of the kernel's `ip_vs_wrr_schedule`,
    /// `ip_vs_wrr_init_svc` and `ip_vs_wrr_dest_changed` over a plain list,
    /// `None` standing for the list head. As with a worker's [`PickState`],
    /// the mark is initialised at the first pick and adjusted at the first
    /// pick after updates, once, for the latest list.
    struct KernelWrr {
        cl: Option<usize>,
        cw: i64,
        mw: i64,
        di: i64,
        changed: bool,
    }

    impl KernelWrr {
        fn new() -> KernelWrr {
            // `cw = 0` makes `dest_changed` set `cw = mw`, as init does.
            KernelWrr {
                cl: None,
                cw: 0,
                mw: 0,
                di: 1,
                changed: true,
            }
        }

        fn changed(&mut self) {
            self.changed = true;
        }

        fn dest_changed(&mut self, w: &[i32]) {
            self.cl = None;
            let mut g = 0i64;
            for &x in w {
                let x = i64::from(x);
                if x > 0 {
                    g = if g > 0 { gcd(x, g) } else { x };
                }
            }
            self.di = if g > 0 { g } else { 1 };
            self.mw = i64::from(w.iter().copied().fold(0, i32::max)) - (self.di - 1);
            if self.cw > self.mw || self.cw == 0 {
                self.cw = self.mw;
            } else if self.di > 1 {
                self.cw = (self.cw / self.di) * self.di + 1;
            }
        }

        fn schedule(&mut self, w: &[i32], over: &[bool]) -> Option<usize> {
            if self.changed {
                self.dest_changed(w);
                self.changed = false;
            }
            let n = w.len();
            let mut dest = self.cl;
            if self.mw == 0 {
                self.cl = dest;
                return None;
            }
            let last = dest;
            let (mut stop, mut last_pass, mut restarted) = (None, false, false);
            loop {
                let from = dest.map_or(0, |d| d + 1);
                for d in from..n {
                    if !over[d] && i64::from(w[d]) >= self.cw {
                        self.cl = Some(d);
                        return Some(d);
                    }
                    if Some(d) == stop {
                        self.cl = Some(d);
                        return None;
                    }
                }
                dest = None;
                self.cw -= self.di;
                if self.cw <= 0 {
                    self.cw = self.mw;
                    if last_pass || last.is_none() {
                        self.cl = None;
                        return None;
                    }
                    restarted = true;
                }
                last_pass = self.cw <= self.di;
                if last_pass && restarted && last.is_some() {
                    stop = last;
                }
            }
        }
    }

    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }

    fn wrr(lab: &Lab, limit: usize) -> Wrr {
        let mut s = Wrr::with_sequence_limit(limit);
        s.update(&lab.infos);
        s
    }

    #[test]
    fn ipvs_432_gives_aababcabc() {
        let lab = Lab::new(&[4, 3, 2]);
        for limit in [Wrr::DEFAULT_SEQUENCE_LIMIT, 0] {
            let s = wrr(&lab, limit);
            assert_eq!(s.is_precomputed(), limit > 0);
            assert_eq!(
                letters(&lab.pick_n(&s, 27)),
                "AABABCABC".repeat(3),
                "limit {limit}"
            );
        }
    }

    #[test]
    fn gcd_steps_and_zero_weights() {
        // di = 2: passes cw = 7, 5, 3, 1 -> A | A | A B | A B C.
        let lab = Lab::new(&[8, 4, 0, 2]);
        for limit in [64, 0] {
            let s = wrr(&lab, limit);
            assert_eq!(
                letters(&lab.pick_n(&s, 14)),
                "AAABABDAAABABD",
                "limit {limit}"
            );
        }
    }

    #[test]
    fn overloaded_destination_is_skipped_in_place() {
        let lab = Lab::new(&[4, 3, 2]);
        for limit in [64, 0] {
            let s = wrr(&lab, limit);
            lab.set_overloaded(0, true);
            // Without A: passes 3 | 2 | 1 -> B | B C | B C.
            assert_eq!(letters(&lab.pick_n(&s, 10)), "BBCBCBBCBC", "limit {limit}");
            lab.set_overloaded(0, false);
        }
    }

    #[test]
    fn long_cycles_fall_back_to_stepping_with_the_same_order() {
        let w = [40_000, 30_000, 1, 7];
        let lab = Lab::new(&w);
        let s = wrr(&lab, Wrr::DEFAULT_SEQUENCE_LIMIT);
        assert!(!s.is_precomputed(), "70008 steps is over the limit");
        let mut k = KernelWrr::new();
        let over = [false; 4];
        let mut st = PickState::default();
        for n in 0..2 * 70_008 {
            let got = lab.pick_with(&s, &mut st, &key(1, 1));
            assert_eq!(got, k.schedule(&w, &over), "pick {n}");
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Pick,
        Overload(usize, bool),
        Reweight(usize, i32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => Just(Op::Pick),
            2 => (0..8usize, any::<bool>()).prop_map(|(i, b)| Op::Overload(i, b)),
            1 => (0..8usize, 0..=10i32).prop_map(|(i, w)| Op::Reweight(i, w)),
        ]
    }

    proptest! {
        /// Same with skewed weights up to 1000 (long runs of passes that
        /// only heavy destinations survive, which stepping jumps over) and
        /// frequent overload changes.
        #[test]
        fn matches_kernel_walk_with_skewed_weights(
            weights in prop::collection::vec(prop_oneof![0..=3i32, 0..=1000i32], 1..=5),
            ops in prop::collection::vec(op(), 1..200),
        ) {
            let w = weights;
            let n = w.len();
            let lab = Lab::new(&w);
            let stepping = wrr(&lab, 0);
            let planned = wrr(&lab, Wrr::DEFAULT_SEQUENCE_LIMIT);
            let mut k = KernelWrr::new();
            let (mut st_p, mut st_s) = (PickState::default(), PickState::default());
            let mut over = vec![false; n];
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Overload(i, on) if i < n => {
                        over[i] = on;
                        lab.set_overloaded(i, on);
                    }
                    _ => {
                        let want = k.schedule(&w, &over);
                        prop_assert_eq!(lab.pick_with(&stepping, &mut st_s, &key(1, 1)), want, "stepping, step {}", step);
                        prop_assert_eq!(lab.pick_with(&planned, &mut st_p, &key(1, 1)), want, "planned, step {}", step);
                    }
                }
            }
        }

        /// Both implementations (precomputed cycle and stepping) choose
        /// exactly what the kernel's walk chooses, through overload changes
        /// and weight updates, for up to 8 destinations of weight 0..=10.
        #[test]
        fn matches_kernel_walk(
            weights in prop::collection::vec(0..=10i32, 1..=8),
            ops in prop::collection::vec(op(), 1..300),
        ) {
            let mut w = weights;
            let n = w.len();
            let lab = Lab::new(&w);
            let mut planned = wrr(&lab, Wrr::DEFAULT_SEQUENCE_LIMIT);
            let mut stepping = wrr(&lab, 0);
            let mut k = KernelWrr::new();
            let (mut st_p, mut st_s) = (PickState::default(), PickState::default());
            let mut over = vec![false; n];
            let mut infos = lab.infos.clone();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Pick => {
                        let want = k.schedule(&w, &over);
                        prop_assert_eq!(lab.pick_with(&planned, &mut st_p, &key(1, 1)), want, "planned, step {}", step);
                        prop_assert_eq!(lab.pick_with(&stepping, &mut st_s, &key(1, 1)), want, "stepping, step {}", step);
                    }
                    Op::Overload(i, on) if i < n => {
                        over[i] = on;
                        lab.set_overloaded(i, on);
                    }
                    Op::Reweight(i, weight) if i < n => {
                        w[i] = weight;
                        infos[i].weight = weight;
                        planned.update(&infos);
                        stepping.update(&infos);
                        k.changed();
                    }
                    _ => {}
                }
            }
        }
    }
}
