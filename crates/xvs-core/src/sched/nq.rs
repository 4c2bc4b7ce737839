//! Never queue (`ip_vs_nq.c`): an idle server (no active connection) at once, in list
//! order; otherwise the SED choice.

use super::{Candidate, Flow, Schedule, sed::expected_delay};

#[derive(Debug, Default)]
pub struct Nq;

impl Schedule for Nq {
    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (index, dest) in dests.iter().enumerate() {
            if !dest.available() {
                continue;
            }
            if dest.active == 0 {
                return Some(index);
            }
            let overhead = expected_delay(dest);
            let lighter = least.is_none_or(|(l, loh)| {
                u128::from(loh) * u128::from(dest.weight)
                    > u128::from(overhead) * u128::from(dests[l].weight)
            });
            if lighter {
                least = Some((index, overhead));
            }
        }
        least.map(|(index, _)| index)
    }
}
