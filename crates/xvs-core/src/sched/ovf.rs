//! Weighted overflow (`ip_vs_ovf.c`): the highest-weight available server whose active
//! connections do not exceed its weight; ties go to the earlier one.

use super::{Candidate, Flow, Schedule};

#[derive(Debug, Default)]
pub struct Ovf;

impl Schedule for Ovf {
    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (index, dest) in dests.iter().enumerate() {
            if !dest.available() || dest.active > dest.weight {
                continue;
            }
            if best.is_none_or(|b| dest.weight > dests[b].weight) {
                best = Some(index);
            }
        }
        best
    }
}
