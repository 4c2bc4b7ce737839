//! Least connection (`ip_vs_lc.c`): the smallest overhead among available servers; weight
//! only matters as zero or not; ties go to the earlier server.

use super::{Candidate, Flow, Schedule};

#[derive(Debug, Default)]
pub struct Lc;

impl Schedule for Lc {
    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (index, dest) in dests.iter().enumerate() {
            if !dest.available() {
                continue;
            }
            let overhead = dest.overhead();
            if least.is_none_or(|(_, l)| overhead < l) {
                least = Some((index, overhead));
            }
        }
        least.map(|(index, _)| index)
    }
}
