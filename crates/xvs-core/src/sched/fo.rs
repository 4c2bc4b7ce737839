//! Weighted failover (`ip_vs_fo.c`): the available server with the highest weight; ties go
//! to the earlier one.

use super::{Candidate, Flow, Schedule};

#[derive(Debug, Default)]
pub struct Fo;

impl Schedule for Fo {
    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (index, dest) in dests.iter().enumerate() {
            if dest.available() && best.is_none_or(|b| dest.weight > dests[b].weight) {
                best = Some(index);
            }
        }
        best
    }
}
