//! Weighted least connection (`ip_vs_wlc.c`, IPVS's default): the smallest
//! overhead / weight, compared by cross multiplication.

use super::{Candidate, Flow, Schedule, weighted_least};

#[derive(Debug, Default)]
pub struct Wlc;

impl Wlc {
    /// The wlc choice, also lblc's and lblcr's when they must pick afresh.
    pub fn pick(dests: &[Candidate]) -> Option<usize> {
        weighted_least(dests, Candidate::overhead)
    }
}

impl Schedule for Wlc {
    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        Wlc::pick(dests)
    }
}
