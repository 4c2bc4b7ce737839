//! Locality-based least connection (`ip_vs_lblc.c`): each destination address keeps the
//! server it was last given while that server is available and not overloaded in lblc's
//! sense; otherwise wlc picks afresh and the address is reassigned.

use std::{collections::HashMap, net::IpAddr};

use super::{Candidate, Flow, Schedule, Wlc};

/// Seconds an unused entry is kept (`lblc_expiration`, default 24 h).
pub const LBLC_EXPIRATION: u64 = 24 * 60 * 60;

#[derive(Debug, Default)]
pub struct Lblc {
    /// Destination address → (server, last use).
    entries: HashMap<IpAddr, ((IpAddr, u16), u64)>,
}

/// lblc's "overloaded": more active connections than weight, while some server of the
/// service is below half its weight (so there is somewhere better to go).
pub(super) fn locality_overloaded(dest: &Candidate, dests: &[Candidate]) -> bool {
    dest.active > dest.weight
        && dests
            .iter()
            .any(|d| u64::from(d.active) * 2 < u64::from(d.weight))
}

impl Lblc {
    /// Drops entries unused for longer than [`LBLC_EXPIRATION`] (IPVS's periodic full check).
    pub fn expire(&mut self, now: u64) {
        self.entries
            .retain(|_, (_, last_use)| now.saturating_sub(*last_use) <= LBLC_EXPIRATION);
    }

    /// How many destination addresses have an entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Schedule for Lblc {
    fn schedule(&mut self, dests: &[Candidate], flow: &Flow) -> Option<usize> {
        if let Some((server, last_use)) = self.entries.get_mut(&flow.dst) {
            *last_use = flow.now;
            let cached = dests.iter().position(|d| d.identity() == *server);
            if let Some(index) = cached {
                let dest = &dests[index];
                if dest.weight > 0 && !locality_overloaded(dest, dests) {
                    return Some(index);
                }
            }
        }
        let index = Wlc::pick(dests)?;
        self.entries
            .insert(flow.dst, (dests[index].identity(), flow.now));
        Some(index)
    }
}
