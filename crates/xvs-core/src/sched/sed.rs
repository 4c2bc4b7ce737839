//! Shortest expected delay (`ip_vs_sed.c`): the smallest (active + 1) / weight; inactive
//! connections do not count.

use super::{Candidate, Flow, Schedule, weighted_least};

#[derive(Debug, Default)]
pub struct Sed;

/// SED's overhead: the active connections plus the new one.
pub(super) fn expected_delay(dest: &Candidate) -> u64 {
    u64::from(dest.active) + 1
}

impl Schedule for Sed {
    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        weighted_least(dests, expected_delay)
    }
}
