//! Round robin (`ip_vs_rr.c`).

use xvs_conntrack::ConnKey;

use crate::pool::{HEAD, Pool, next_generation};
use crate::{DestInfo, PickCx, PickState, Scheduler};

/// Round-robin scheduling, as `ip_vs_rr_schedule`.
///
/// The cursor remembers the last destination chosen; a pick walks the list
/// from the one after it, wrapping around, and takes the first destination
/// that may take a connection (weight > 0, not overloaded). The last chosen
/// destination is examined last, so a single usable destination is picked
/// every time. From the list head (no pick yet) the walk is one pass over the
/// list. A failed pick leaves the cursor where it was.
///
/// After an update, the cursor continues after the same destination
/// (found again by id). If that destination was removed, it continues from
/// the destination that preceded it, which is what `ip_vs_rr_del_dest` does
/// by moving the kernel's cursor to the previous list entry.
///
/// The kernel keeps one cursor per service under a spinlock; here each
/// worker has its own in [`PickState`], so the rotation is exact per worker.
#[derive(Clone, Debug)]
pub struct Rr {
    generation: u64,
    pool: Pool,
}

impl Rr {
    /// A round-robin scheduler with no destinations.
    pub fn new() -> Rr {
        Rr {
            generation: next_generation(),
            pool: Pool::default(),
        }
    }

    /// Brings a state last used with other tables to this list.
    fn sync(&self, st: &mut PickState) {
        if st.generation == self.generation {
            return;
        }
        st.generation = self.generation;
        let found = st
            .last_id
            .and_then(|id| self.pool.ids().iter().position(|&d| d == id));
        st.cursor = match found {
            Some(i) => i,
            // The destination the cursor was on is gone: step back to where
            // its predecessor now stands (or the head when it was first).
            None if st.last_id.is_some() && st.cursor != HEAD && st.cursor > 0 => {
                (st.cursor - 1).min(self.pool.len().saturating_sub(1))
            }
            None => HEAD,
        };
    }
}

impl Default for Rr {
    fn default() -> Rr {
        Rr::new()
    }
}

impl Scheduler for Rr {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn update(&mut self, dests: &[DestInfo]) {
        self.pool = Pool::new(dests);
        self.generation = next_generation();
    }

    fn pick(&self, cx: &mut PickCx<'_>, _key: &ConnKey) -> Option<usize> {
        let st = &mut *cx.state;
        self.sync(st);
        let n = self.pool.len();
        if n == 0 {
            return None;
        }
        let first = if st.cursor >= n { 0 } else { st.cursor + 1 };
        for step in 0..n {
            let i = (first + step) % n;
            if self.pool.usable(cx.dests, i) {
                st.cursor = i;
                st.last_id = self.pool.ids().get(i).copied();
                return Some(i);
            }
        }
        None
    }

    fn clone_box(&self) -> Box<dyn Scheduler> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn rotates_in_list_order() {
        let lab = Lab::new(&[1, 1, 1]);
        let mut s = Rr::new();
        s.update(&lab.infos);
        assert_eq!(letters(&lab.pick_n(&s, 7)), "ABCABCA");
    }

    #[test]
    fn skips_weight_zero_and_overloaded() {
        let lab = Lab::new(&[1, 0, 5, 1]);
        let mut s = Rr::new();
        s.update(&lab.infos);
        assert_eq!(
            letters(&lab.pick_n(&s, 6)),
            "ACDACD",
            "weight is not a share in rr"
        );
        lab.set_overloaded(2, true);
        assert_eq!(letters(&lab.pick_n(&s, 4)), "ADAD");
        lab.set_overloaded(0, true);
        lab.set_overloaded(3, true);
        assert_eq!(letters(&lab.pick_n(&s, 2)), "--");
    }

    #[test]
    fn single_usable_destination_is_picked_each_time() {
        let lab = Lab::new(&[0, 3, 0]);
        let mut s = Rr::new();
        s.update(&lab.infos);
        assert_eq!(letters(&lab.pick_n(&s, 3)), "BBB");
    }

    #[test]
    fn failure_keeps_the_cursor() {
        let lab = Lab::new(&[1, 1, 1]);
        let mut s = Rr::new();
        s.update(&lab.infos);
        let mut st = PickState::default();
        let k = key(1, 1);
        assert_eq!(lab.pick_with(&s, &mut st, &k), Some(0));
        for i in 0..3 {
            lab.set_overloaded(i, true);
        }
        assert_eq!(lab.pick_with(&s, &mut st, &k), None);
        for i in 0..3 {
            lab.set_overloaded(i, false);
        }
        assert_eq!(lab.pick_with(&s, &mut st, &k), Some(1));
    }

    #[test]
    fn update_continues_after_the_same_destination() {
        let lab = Lab::new(&[1, 1, 1, 1]);
        let mut s = Rr::new();
        s.update(&lab.infos);
        let mut st = PickState::default();
        let k = key(1, 1);
        assert_eq!(lab.pick_with(&s, &mut st, &k), Some(0));
        assert_eq!(lab.pick_with(&s, &mut st, &k), Some(1)); // on B
        // D moves to the front: [D, A, B, C]. The cursor follows B (now
        // index 2), so C (index 3) is next.
        let mut infos: Vec<_> = [3, 0, 1, 2].iter().map(|&i| lab.infos[i].clone()).collect();
        s.update(&infos);
        assert_eq!(lab.pick_with(&s, &mut st, &k), Some(3));
        // Remove C, where the cursor stands: like the kernel, continue from
        // its predecessor B, so the walk wraps to D.
        infos.remove(3);
        s.update(&infos);
        assert_eq!(lab.pick_with(&s, &mut st, &k), Some(0));
    }
}
