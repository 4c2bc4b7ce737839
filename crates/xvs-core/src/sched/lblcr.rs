//! Locality-based least connection with replication (`ip_vs_lblcr.c`): each destination
//! address keeps a set of servers; the least loaded member serves unless it is overloaded
//! in lblc's sense, in which case wlc adds a server to the set. A set not changed for
//! `lblcr_expiration` sheds its most loaded member.

use std::{collections::HashMap, net::IpAddr};

use super::{Candidate, Flow, Schedule, Wlc, lblc::locality_overloaded};

/// Seconds a set stays unchanged before its busiest member is dropped (24 h).
pub const LBLCR_EXPIRATION: u64 = 24 * 60 * 60;

#[derive(Debug, Default)]
struct ServerSet {
    /// Members, the newest first (IPVS inserts at the head).
    members: Vec<(IpAddr, u16)>,
    last_modified: u64,
    last_use: u64,
}

impl ServerSet {
    fn insert(&mut self, server: (IpAddr, u16), now: u64) {
        if !self.members.contains(&server) {
            self.members.insert(0, server);
            self.last_modified = now;
        }
    }

    /// `ip_vs_dest_set_min`: weighted least connection among the members still in the
    /// service.
    fn least(&self, dests: &[Candidate]) -> Option<usize> {
        let present: Vec<usize> = self
            .members
            .iter()
            .filter_map(|m| dests.iter().position(|d| d.identity() == *m))
            .collect();
        let first = present.iter().position(|&i| dests[i].available())?;
        let mut least = present[first];
        for &index in &present[first + 1..] {
            let dest = &dests[index];
            if dest.overloaded {
                continue;
            }
            if u128::from(dests[least].overhead()) * u128::from(dest.weight)
                > u128::from(dest.overhead()) * u128::from(dests[least].weight)
            {
                least = index;
            }
        }
        Some(least)
    }

    /// `ip_vs_dest_set_max`: the member with the most overhead per weight.
    fn most(&self, dests: &[Candidate]) -> Option<(IpAddr, u16)> {
        let present: Vec<usize> = self
            .members
            .iter()
            .filter_map(|m| dests.iter().position(|d| d.identity() == *m))
            .collect();
        let first = present.iter().position(|&i| dests[i].weight > 0)?;
        let mut most = present[first];
        for &index in &present[first + 1..] {
            let dest = &dests[index];
            if dest.weight > 0
                && u128::from(dests[most].overhead()) * u128::from(dest.weight)
                    < u128::from(dest.overhead()) * u128::from(dests[most].weight)
            {
                most = index;
            }
        }
        Some(dests[most].identity())
    }
}

#[derive(Debug, Default)]
pub struct Lblcr {
    sets: HashMap<IpAddr, ServerSet>,
}

impl Lblcr {
    /// The servers the set of `dst` holds, newest first.
    pub fn members(&self, dst: &IpAddr) -> Vec<(IpAddr, u16)> {
        self.sets
            .get(dst)
            .map(|s| s.members.clone())
            .unwrap_or_default()
    }
}

impl Schedule for Lblcr {
    fn schedule(&mut self, dests: &[Candidate], flow: &Flow) -> Option<usize> {
        let now = flow.now;
        if let Some(set) = self.sets.get_mut(&flow.dst) {
            set.last_use = now;
            let least = set.least(dests);
            if set.members.len() > 1
                && now > set.last_modified + LBLCR_EXPIRATION
                && let Some(busiest) = set.most(dests)
            {
                set.members.retain(|m| *m != busiest);
                set.last_modified = now;
            }
            if let Some(index) = least
                && !locality_overloaded(&dests[index], dests)
            {
                return Some(index);
            }
            let index = Wlc::pick(dests)?;
            set.insert(dests[index].identity(), now);
            return Some(index);
        }
        let index = Wlc::pick(dests)?;
        let mut set = ServerSet {
            last_use: now,
            ..ServerSet::default()
        };
        set.insert(dests[index].identity(), now);
        self.sets.insert(flow.dst, set);
        Some(index)
    }
}
