//! Round robin (`ip_vs_rr.c`): the next server after the last one chosen, skipping those
//! with weight 0 or overloaded.

use std::net::IpAddr;

use super::{Candidate, Flow, Schedule};

#[derive(Debug, Default)]
pub struct Rr {
    /// The last server chosen; `None` = before the first.
    cursor: Option<(IpAddr, u16)>,
    /// The list as of the last update, to find a removed cursor's predecessor.
    previous: Vec<(IpAddr, u16)>,
}

impl Schedule for Rr {
    fn update(&mut self, dests: &[Candidate]) {
        // IPVS moves the cursor to the predecessor of a removed server.
        if let Some(cursor) = self.cursor
            && !dests.iter().any(|d| d.identity() == cursor)
        {
            let at = self.previous.iter().position(|d| *d == cursor).unwrap_or(0);
            self.cursor = self.previous[..at]
                .iter()
                .rev()
                .find(|p| dests.iter().any(|d| d.identity() == **p))
                .copied();
        }
        self.previous = dests.iter().map(Candidate::identity).collect();
    }

    fn schedule(&mut self, dests: &[Candidate], _: &Flow) -> Option<usize> {
        let n = dests.len();
        let start = self
            .cursor
            .and_then(|c| dests.iter().position(|d| d.identity() == c))
            .map_or(0, |i| i + 1);
        let chosen = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| dests[i].available())?;
        self.cursor = Some(dests[chosen].identity());
        Some(chosen)
    }
}
