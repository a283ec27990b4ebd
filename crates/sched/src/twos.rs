//! Power of two choices (`ip_vs_twos.c`).

use xvs_conntrack::ConnKey;

use crate::pool::{Pool, conn_overhead, fmix64, fold, xorshift64star};
use crate::{DestInfo, PickCx, Scheduler};

/// Power-of-two-choices scheduling, as `ip_vs_twos_schedule` (Mitzenmacher,
/// "The Power of Two Random Choices").
///
/// Two destinations are drawn at random, each with probability
/// proportional to its weight, and the less loaded one by `(active * 256 +
/// inactive) / weight` is chosen (the first draw on a tie). The draws follow
/// the kernel: with `W` the sum of usable weights, two numbers `r` in
/// `0..=W` select the first destination in list order at which the running
/// sum of weights reaches `r`. The two draws may be the same destination.
///
/// The kernel draws from `prandom_u32()`; here each worker draws from the
/// xorshift64* generator in its [`PickState`](crate::PickState), seeded by
/// [`PickState::with_seed`](crate::PickState::with_seed) or else from the
/// first flow it schedules, so runs are reproducible.
#[derive(Clone, Debug)]
pub struct Twos {
    pool: Pool,
}

impl Twos {
    /// A power-of-two-choices scheduler with no destinations.
    pub fn new() -> Twos {
        Twos {
            pool: Pool::default(),
        }
    }
}

impl Default for Twos {
    fn default() -> Twos {
        Twos::new()
    }
}

impl Scheduler for Twos {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn update(&mut self, dests: &[DestInfo]) {
        self.pool = Pool::new(dests);
    }

    fn pick(&self, cx: &mut PickCx<'_>, key: &ConnKey) -> Option<usize> {
        let dests = cx.dests;
        let mut total: u64 = 0;
        let mut any = None;
        for (i, w, _) in self.pool.usable_iter(dests) {
            total += u64::from(w.unsigned_abs());
            any = Some(i);
        }
        let fallback = any?;

        let rng = &mut cx.state.rng;
        if *rng == 0 {
            let seed = u64::from(fold(&key.caddr)) << 16 | u64::from(key.cport);
            *rng = fmix64(seed ^ 0x7477_6f73) | 1;
        }
        // Inclusive of the total, like the kernel's `% (total_weight + 1)`.
        let mut r1 = (xorshift64star(rng) % (total + 1)) as i64;
        let mut r2 = (xorshift64star(rng) % (total + 1)) as i64;

        let mut c1: Option<(usize, i32, u64)> = None;
        let mut c2: Option<(usize, i32, u64)> = None;
        for (i, w, s) in self.pool.usable_iter(dests) {
            r1 -= i64::from(w);
            r2 -= i64::from(w);
            if r1 <= 0 && c1.is_none() {
                c1 = Some((i, w, conn_overhead(s)));
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some((i, w, conn_overhead(s)));
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        match (c1, c2) {
            // choice2 wins when overhead1 / weight1 > overhead2 / weight2.
            (Some((i1, w1, o1)), Some((i2, w2, o2))) => Some(
                if u128::from(o1) * u128::from(w2.unsigned_abs())
                    > u128::from(o2) * u128::from(w1.unsigned_abs())
                {
                    i2
                } else {
                    i1
                },
            ),
            (Some((i, _, _)), None) | (None, Some((i, _, _))) => Some(i),
            // Only when counters changed under us between the two walks.
            (None, None) => Some(fallback),
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

    fn shares(lab: &Lab, s: &Twos, n: usize) -> Vec<usize> {
        let mut st = PickState::with_seed(7);
        let mut hits = vec![0; lab.infos.len()];
        for c in 0..n as u32 {
            if let Some(i) = lab.pick_with(s, &mut st, &key(c, 1)) {
                hits[i] += 1;
            }
        }
        hits
    }

    #[test]
    fn idle_servers_share_by_weight_of_the_pair() {
        // With no load, the first draw always wins: picks follow the weights.
        let lab = Lab::new(&[1, 3, 0, 4]);
        let mut s = Twos::new();
        s.update(&lab.infos);
        let hits = shares(&lab, &s, 80_000);
        assert_eq!(hits[2], 0, "weight 0 never drawn");
        // P(first) = (w + [first dest]) / (W + 1): r = 0 also lands on A.
        for (i, expect) in [(0, 2.0 / 9.0), (1, 3.0 / 9.0), (3, 4.0 / 9.0)] {
            let got = hits[i] as f64 / 80_000.0;
            assert!((got - expect).abs() < 0.01, "dest {i}: {got} vs {expect}");
        }
    }

    #[test]
    fn the_less_loaded_of_two_wins() {
        let lab = Lab::new(&[1, 1]);
        lab.counts(0, 10, 0);
        let mut s = Twos::new();
        s.update(&lab.infos);
        let hits = shares(&lab, &s, 10_000);
        // B is chosen unless both draws are A: P(A) = (2/3)^2 = 4/9.
        let a = hits[0] as f64 / 10_000.0;
        assert!((a - 4.0 / 9.0).abs() < 0.03, "{a}");
        lab.set_overloaded(1, true);
        assert_eq!(shares(&lab, &s, 100), [100, 0]);
    }

    #[test]
    fn seeded_states_are_reproducible() {
        let lab = Lab::new(&[1, 2, 3, 4, 5]);
        let mut s = Twos::new();
        s.update(&lab.infos);
        let run = || {
            let mut st = PickState::with_seed(42);
            (0..50)
                .map(|c| lab.pick_with(&s, &mut st, &key(c, 1)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
