//! IPVS's rate estimator (`ip_vs_est.c`): every 2 seconds each service's and real
//! server's counters are sampled, and each rate moves a quarter of the way from its
//! smoothed value toward the last 2 seconds' rate. Connections and packets per second are
//! kept scaled by 2^10, bytes per second by 2^5, and rounded when read, exactly as the
//! kernel does, so `--rate` reads what IPVS would show for the same traffic.

use crate::model::Stats;

/// The interval between samples, in seconds.
pub const SAMPLE_SECONDS: u64 = 2;

/// The smoothed rates of one counter set, scaled as IPVS scales them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// One step of `smoothed` toward a 2-second difference `delta` scaled by `shift`
/// (`e->cps += ((s64)rate - (s64)e->cps) >> 2`, with `rate = delta << shift`).
fn smooth(smoothed: u64, delta: u64, shift: u32) -> u64 {
    let rate = (delta << shift) as i64;
    (smoothed as i64 + ((rate - smoothed as i64) >> 2)) as u64
}

impl Estimate {
    /// Takes the sample `now`, `last` being the counters 2 seconds before.
    pub fn sample(&mut self, last: &Stats, now: &Stats) {
        let delta = |new: u64, old: u64| new.wrapping_sub(old);
        self.cps = smooth(self.cps, delta(now.conns, last.conns), 9);
        self.inpps = smooth(self.inpps, delta(now.inpkts, last.inpkts), 9);
        self.outpps = smooth(self.outpps, delta(now.outpkts, last.outpkts), 9);
        self.inbps = smooth(self.inbps, delta(now.inbytes, last.inbytes), 4);
        self.outbps = smooth(self.outbps, delta(now.outbytes, last.outbytes), 4);
    }

    /// Puts the rates, as `ip_vs_read_estimator` rounds them, into `stats`.
    pub fn read_into(&self, stats: &mut Stats) {
        stats.cps = (self.cps + 0x1FF) >> 10;
        stats.inpps = (self.inpps + 0x1FF) >> 10;
        stats.outpps = (self.outpps + 0x1FF) >> 10;
        stats.inbps = (self.inbps + 0xF) >> 5;
        stats.outbps = (self.outbps + 0xF) >> 5;
    }
}

/// Whether `now` can follow `last`: counters only grow, unless zeroed (`-Z`, or a slot
/// handed to a new service), after which the estimate starts again.
pub fn continues(last: &Stats, now: &Stats) -> bool {
    now.conns >= last.conns
        && now.inpkts >= last.inpkts
        && now.outpkts >= last.outpkts
        && now.inbytes >= last.inbytes
        && now.outbytes >= last.outbytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(conns: u64, packets: u64, bytes: u64) -> Stats {
        Stats {
            conns,
            inpkts: packets,
            outpkts: packets / 2,
            inbytes: bytes,
            outbytes: bytes * 3,
            ..Stats::default()
        }
    }

    #[test]
    fn a_steady_rate_is_approached_a_quarter_at_a_time_as_ipvs_does() {
        // 100 connections, 1,000 packets and 64,000 bytes per second.
        let mut estimate = Estimate::default();
        let mut last = counts(0, 0, 0);
        let mut shown = Vec::new();
        for step in 1..=80u64 {
            let now = counts(200 * step, 2_000 * step, 128_000 * step);
            estimate.sample(&last, &now);
            last = now;
            let mut stats = Stats::default();
            estimate.read_into(&mut stats);
            shown.push(stats);
        }
        // First sample: a quarter of the rate (100 << 10 >> 2 = 25,600 → 25).
        assert_eq!(
            (shown[0].cps, shown[0].inpps, shown[0].outpps),
            (25, 250, 125)
        );
        assert_eq!((shown[0].inbps, shown[0].outbps), (16_000, 48_000));
        // Second: 25 + (100 - 25) / 4 = 43.75, rounded as the kernel rounds.
        assert_eq!(shown[1].cps, 44);
        // Converged.
        let last = shown[79];
        assert_eq!(
            (last.cps, last.inpps, last.outpps, last.inbps, last.outbps),
            (100, 1_000, 500, 64_000, 192_000)
        );
    }

    #[test]
    fn silence_decays_the_rate_to_zero() {
        let mut estimate = Estimate {
            cps: 100 << 10,
            ..Estimate::default()
        };
        let still = counts(500, 0, 0);
        for _ in 0..60 {
            estimate.sample(&still, &still);
        }
        let mut stats = Stats::default();
        estimate.read_into(&mut stats);
        assert_eq!(stats.cps, 0);
        assert!(!continues(&counts(5, 0, 0), &counts(4, 0, 0)));
        assert!(continues(&counts(5, 0, 0), &counts(5, 1, 1)));
    }
}
