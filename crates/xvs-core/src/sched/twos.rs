//! Power of two choices (`ip_vs_twos.c`): two servers drawn at random in proportion to
//! their weights; the one with the smaller overhead / weight wins.

use super::{Candidate, Flow, Schedule};

#[derive(Debug)]
pub struct Twos {
    /// xorshift64* state: the choices are random but repeatable from a seed.
    state: u64,
}

impl Twos {
    pub fn new(seed: u64) -> Twos {
        Twos { state: seed | 1 }
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

impl Schedule for Twos {
    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        let total: u64 = dests
            .iter()
            .filter(|d| d.available())
            .map(|d| u64::from(d.weight))
            .sum();
        if total == 0 {
            return None;
        }
        // As IPVS: draws in 0..=total, and the first server that brings a draw to <= 0.
        let mut r1 = self.below(total + 1) as i64;
        let mut r2 = self.below(total + 1) as i64;
        let (mut first, mut second) = (None, None);
        for (index, dest) in dests.iter().enumerate() {
            if !dest.available() {
                continue;
            }
            r1 -= i64::from(dest.weight);
            r2 -= i64::from(dest.weight);
            if r1 <= 0 && first.is_none() {
                first = Some(index);
            }
            if r2 <= 0 && second.is_none() {
                second = Some(index);
            }
            if first.is_some() && second.is_some() {
                break;
            }
        }
        let (a, b) = (first?, second?);
        let (da, db) = (&dests[a], &dests[b]);
        if u128::from(db.weight) * u128::from(da.overhead())
            > u128::from(da.weight) * u128::from(db.overhead())
        {
            Some(b)
        } else {
            Some(a)
        }
    }
}
