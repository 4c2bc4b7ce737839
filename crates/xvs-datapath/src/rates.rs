//! Rates as IPVS estimates them (`xvs_core::estimator`), sampled by xvsd every 2 seconds
//! and kept in the director's `XVS_RATES` map by counter slot, so that every listing
//! (`xvsadm -L --rate`, `--stats`' neighbours) reads them from the kernel, as ipvsadm reads
//! IPVS's. The counters of the previous sample stay in the sampler: a restarted xvsd
//! starts each estimate again from its first sample, keeping the smoothed value. When no
//! xvsd has sampled for 3 intervals the rates are stale and listings show 0, as an idle
//! IPVS estimator would soon read.

use std::collections::HashMap;

use xvs_common::{RateEstimate, meta};
use xvs_core::{
    estimator::{Estimate, continues},
    model::Stats,
};

use crate::{Director, Error, Result};

/// How old (ns) the last sample may be for the rates to be shown.
const FRESH_NS: u64 = 3 * xvs_core::estimator::SAMPLE_SECONDS * 1_000_000_000;

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Whether a sampler has written the rates lately.
pub(crate) fn fresh(director: &Director) -> Result<bool> {
    let sampled = director.meta(meta::RATES_SAMPLED)?;
    Ok(sampled != 0 && monotonic_ns().saturating_sub(sampled) <= FRESH_NS)
}

pub(crate) fn core_estimate(e: &RateEstimate) -> Estimate {
    Estimate {
        cps: e.cps,
        inpps: e.inpps,
        outpps: e.outpps,
        inbps: e.inbps,
        outbps: e.outbps,
    }
}

fn map_estimate(e: &Estimate) -> RateEstimate {
    RateEstimate {
        cps: e.cps,
        inpps: e.inpps,
        outpps: e.outpps,
        inbps: e.inbps,
        outbps: e.outbps,
    }
}

/// The counters each slot had at the last sample.
#[derive(Debug, Default)]
pub struct RateSampler {
    last: HashMap<u32, Stats>,
}

impl RateSampler {
    pub fn new() -> RateSampler {
        RateSampler::default()
    }

    /// Samples every service and real server of this namespace's director and updates
    /// their estimates; estimates of slots nobody holds any more are dropped.
    pub fn sample(&mut self, director: &mut Director) -> Result<()> {
        let snapshot = director.load_for_change()?;
        let mut seen = HashMap::new();
        for slot in snapshot.counter_slots() {
            let now = director.summed_counters(slot)?;
            let stored = director.rates.get(&slot, 0).ok();
            let estimate = match (self.last.get(&slot), stored) {
                (Some(last), Some(stored)) if continues(last, &now) => {
                    let mut estimate = core_estimate(&stored);
                    estimate.sample(last, &now);
                    Some(estimate)
                }
                // First seen by this sampler: the next sample can measure.
                (None, Some(_)) => None,
                // New, or zeroed since the last sample: start from nothing.
                _ => Some(Estimate::default()),
            };
            if let Some(estimate) = estimate {
                director
                    .rates
                    .insert(slot, map_estimate(&estimate), 0)
                    .map_err(|e| Error::new("cannot write rates", e))?;
            }
            seen.insert(slot, now);
        }
        let stale: Vec<u32> = director
            .rates
            .keys()
            .filter_map(|k| k.ok())
            .filter(|slot| !seen.contains_key(slot))
            .collect();
        for slot in stale {
            let _ = director.rates.remove(&slot);
        }
        self.last = seen;
        director.set_meta(meta::RATES_SAMPLED, monotonic_ns())
    }
}
