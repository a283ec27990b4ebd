//! Rate estimation as IPVS does it (`net/netfilter/ipvs/ip_vs_est.c`).
//!
//! Every 2 seconds the estimator takes the difference of each cumulative
//! counter since the last sample and folds it into an exponentially
//! weighted moving average with weight 1/4:
//!
//! ```text
//! rate  = (now - last) << 9            (conns, packets: per second, scaled by 2^10)
//! rate  = (now - last) << 4            (bytes: per second, scaled by 2^5)
//! avg  += (rate - avg) >> 2            (signed arithmetic shift)
//! ```
//!
//! and reads back as `(avg + 0x1FF) >> 10` for connections and packets,
//! `(avg + 0xF) >> 5` for bytes: the values `ipvsadm -L --rate` prints.
//!
//! The estimator is pure: the caller feeds it the cumulative [`Stats`] and
//! a monotonic timestamp in milliseconds, as often as it likes; a sample is
//! taken when 2 s have passed since the last one. A late sample (the
//! caller was delayed) is scaled to a 2-second difference so a slow timer
//! does not inflate the rates; a counter that went backwards (zeroed) is
//! taken as no traffic.

use crate::state::{Rates, Stats};

/// The sampling period, in milliseconds.
pub const PERIOD_MS: u64 = 2_000;

/// The rate estimator of one service or real server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Stats,
    last_ms: u64,
    /// cps, inpps, outpps (scaled by 2^10), inbps, outbps (scaled by 2^5).
    avg: [i64; 5],
}

impl Estimator {
    /// An estimator starting from these counters at time `now_ms`, with
    /// all rates zero (IPVS's `ip_vs_start_estimator`).
    pub fn new(stats: Stats, now_ms: u64) -> Estimator {
        Estimator {
            last: stats,
            last_ms: now_ms,
            avg: [0; 5],
        }
    }

    /// Takes a sample if [`PERIOD_MS`] has passed since the last one;
    /// returns whether it did.
    pub fn update(&mut self, stats: Stats, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed < PERIOD_MS {
            return false;
        }
        let now = [
            stats.conns,
            stats.inpkts,
            stats.outpkts,
            stats.inbytes,
            stats.outbytes,
        ];
        let last = [
            self.last.conns,
            self.last.inpkts,
            self.last.outpkts,
            self.last.inbytes,
            self.last.outbytes,
        ];
        for i in 0..5 {
            let diff = now[i].saturating_sub(last[i]);
            // Scale a late sample to the 2 s the shifts assume.
            let diff = (u128::from(diff) * u128::from(PERIOD_MS) / u128::from(elapsed)) as i128;
            let shift = if i < 3 { 9 } else { 4 };
            let rate = (diff << shift).min(i128::from(i64::MAX));
            let avg = i128::from(self.avg[i]);
            let next = avg + ((rate - avg) >> 2);
            self.avg[i] = next.clamp(0, i128::from(i64::MAX)) as i64;
        }
        self.last = stats;
        self.last_ms = now_ms;
        true
    }

    /// The current rates (IPVS's `ip_vs_read_estimator`).
    pub fn rates(&self) -> Rates {
        let pps = |v: i64| ((v as u64).saturating_add(0x1FF)) >> 10;
        let bps = |v: i64| ((v as u64).saturating_add(0xF)) >> 5;
        Rates {
            cps: pps(self.avg[0]),
            inpps: pps(self.avg[1]),
            outpps: pps(self.avg[2]),
            inbps: bps(self.avg[3]),
            outbps: bps(self.avg[4]),
        }
    }

    /// Zeroes the rates and restarts from these counters (`-Z`, IPVS's
    /// `ip_vs_zero_estimator`).
    pub fn zero(&mut self, stats: Stats, now_ms: u64) {
        *self = Estimator::new(stats, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(conns: u64, pkts: u64, bytes: u64) -> Stats {
        Stats {
            conns,
            inpkts: pkts,
            outpkts: pkts / 2,
            inbytes: bytes,
            outbytes: bytes * 2,
        }
    }

    #[test]
    fn first_sample_is_a_quarter_of_the_rate() {
        let mut e = Estimator::new(Stats::default(), 0);
        assert!(!e.update(st(100, 1000, 100_000), 1_999));
        assert!(e.update(st(100, 1000, 100_000), 2_000));
        // 100 conns in 2 s = 50/s; avg = (50 << 10) / 4 = 12800 -> 12.5,
        // read with rounding: (12800 + 511) >> 10 = 12.
        let r = e.rates();
        assert_eq!(r.cps, 12);
        // 1000 pkts / 2 s = 500/s -> 125.
        assert_eq!(r.inpps, 125);
        assert_eq!(r.outpps, 62);
        // 100000 B / 2 s = 50000 B/s: avg = (100000 << 4) >> 2 = 400000,
        // (400000 + 15) >> 5 = 12500.
        assert_eq!(r.inbps, 12_500);
        assert_eq!(r.outbps, 25_000);
    }

    #[test]
    fn converges_to_a_steady_rate() {
        let mut e = Estimator::new(Stats::default(), 0);
        let mut t = 0;
        let mut s = Stats::default();
        for _ in 0..60 {
            t += PERIOD_MS;
            s.conns += 2_000; // 1000/s
            s.inbytes += 20_000_000; // 10 MB/s
            e.update(s, t);
        }
        assert_eq!(e.rates().cps, 1000);
        assert_eq!(e.rates().inbps, 10_000_000);
        // Traffic stops: the rate decays by 3/4 per sample.
        t += PERIOD_MS;
        e.update(s, t);
        assert_eq!(e.rates().cps, 750);
        for _ in 0..100 {
            t += PERIOD_MS;
            e.update(s, t);
        }
        assert_eq!(e.rates(), Rates::default());
    }

    #[test]
    fn late_samples_are_scaled_and_zeroing_restarts() {
        let mut a = Estimator::new(Stats::default(), 0);
        let mut b = a.clone();
        a.update(st(400, 0, 0), 2_000);
        // The same rate seen 4 s later (one missed tick) reads the same.
        b.update(st(800, 0, 0), 4_000);
        assert_eq!(a.rates(), b.rates());
        // Counters zeroed behind the estimator's back: no negative rate.
        b.update(Stats::default(), 6_000);
        assert_eq!(b.rates().cps, 37); // 50 * 3/4 = 37.5, read as 37
        b.zero(Stats::default(), 6_000);
        assert_eq!(b.rates(), Rates::default());
        // Time going backwards takes no sample.
        assert!(!b.update(st(5, 5, 5), 1_000));
    }
}
