//! Weighted round robin (`ip_vs_wrr.c`): rounds over the list with a falling current
//! weight `cw`, stepping by the gcd of the weights; a server is chosen while its weight
//! is at least `cw`.

use super::{Candidate, Flow, Schedule, gcd};

/// The gcd of the positive weights (1 if there are none): wrr's step.
fn weight_step(dests: &[Candidate]) -> u32 {
    dests
        .iter()
        .map(|d| d.weight)
        .filter(|w| *w > 0)
        .fold(0, gcd)
        .max(1)
}

#[derive(Debug)]
pub struct Wrr {
    /// Position of the last choice; `None` = the list head (before the first server).
    cursor: Option<usize>,
    current_weight: i64,
    max_weight: i64,
    step: i64,
}

impl Default for Wrr {
    fn default() -> Wrr {
        Wrr {
            cursor: None,
            current_weight: 0,
            max_weight: 0,
            step: 1,
        }
    }
}

impl Schedule for Wrr {
    fn update(&mut self, dests: &[Candidate]) {
        let step = weight_step(dests);
        let max = dests.iter().map(|d| d.weight).max().unwrap_or(0);
        self.cursor = None;
        self.step = i64::from(step);
        self.max_weight = i64::from(max) - (self.step - 1);
        if self.current_weight > self.max_weight || self.current_weight == 0 {
            self.current_weight = self.max_weight;
        } else if self.step > 1 {
            self.current_weight = (self.current_weight / self.step) * self.step + 1;
        }
    }

    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        if self.max_weight <= 0 {
            return None;
        }
        let last = self.cursor;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        let mut position = self.cursor;
        loop {
            let start = position.map_or(0, |p| p + 1);
            for (index, dest) in dests.iter().enumerate().skip(start) {
                if !dest.overloaded && i64::from(dest.weight) >= self.current_weight {
                    self.cursor = Some(index);
                    return Some(index);
                }
                if stop == Some(index) {
                    self.cursor = Some(index);
                    return None;
                }
            }
            position = None;
            self.current_weight -= self.step;
            if self.current_weight <= 0 {
                self.current_weight = self.max_weight;
                if last_pass || last.is_none() {
                    self.cursor = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.current_weight <= self.step;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

impl Wrr {
    /// One full period of wrr's choices from a fresh start, with no server overloaded: the
    /// sequence a datapath can step through with a single counter.
    pub fn cycle(dests: &[Candidate]) -> Vec<usize> {
        let step = weight_step(dests);
        let period: u32 = dests.iter().map(|d| d.weight / step).sum();
        let mut wrr = Wrr::default();
        wrr.update(dests);
        let flow = Flow {
            src: std::net::Ipv4Addr::UNSPECIFIED.into(),
            src_port: 0,
            dst: std::net::Ipv4Addr::UNSPECIFIED.into(),
            dst_port: 0,
            now: 0,
        };
        (0..period)
            .map_while(|_| wrr.schedule(dests, &flow))
            .collect()
    }
}
