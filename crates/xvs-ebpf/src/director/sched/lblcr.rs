//! Locality-based least connection with replication (`ip_vs_lblcr.c`): a destination
//! address keeps a set of servers (newest first, at most [`LOCALITY_MEMBERS`]); its least
//! loaded member serves unless overloaded in lblc's sense, when wlc adds a server to the
//! set. A set unchanged for 24 hours sheds its busiest member.

use xvs_common::{
    LOCALITY_EXPIRATION_NS, LOCALITY_MEMBERS, LocalityEntry, LocalityMember, tree_rule,
};

use super::{NONE, Request, View, locality, tree};
use crate::packet::Packet;

#[inline(always)]
pub fn schedule(view: View, request: &Request, packet: &Packet) -> Option<u32> {
    let now = request.now;
    let Some(entry) = locality::find(request.service_id, packet, now) else {
        let index = tree::pick(view, tree_rule::WLC, request)?;
        locality::insert(locality::member_of(&view, index)?, now);
        return Some(index);
    };
    let entry = unsafe { &mut *entry };
    entry.last_use = now;
    // The set indices of the members still in the service.
    let mut present = [NONE; LOCALITY_MEMBERS];
    let count = (entry.count as usize).min(LOCALITY_MEMBERS);
    for (m, slot) in present.iter_mut().enumerate() {
        if m < count {
            let member = entry.members[m];
            *slot = view.index_of(member.dest_stats, member.dest_id);
        }
    }
    let least = least(&view, &present);
    if count > 1
        && now > entry.last_modified + LOCALITY_EXPIRATION_NS
        && let Some(busiest) = most(&view, &present)
    {
        remove(entry, &present, busiest);
        entry.last_modified = now;
    }
    let count = (entry.count as usize).min(LOCALITY_MEMBERS);
    if least != NONE
        && let Some(dest) = view.entry(least)
        && !locality::overloaded(&view, dest)
    {
        return Some(least);
    }
    let index = tree::pick(view, tree_rule::WLC, request)?;
    if let Some(member) = locality::member_of(&view, index)
        && !entry.members[..count].contains(&member)
    {
        // Newest first; a full set loses its oldest member.
        for m in (1..LOCALITY_MEMBERS).rev() {
            entry.members[m] = entry.members[m - 1];
        }
        entry.members[0] = member;
        entry.count = (count + 1).min(LOCALITY_MEMBERS) as u32;
        entry.last_modified = now;
    }
    Some(index)
}

/// The least loaded available member by wlc's rule (the first on ties), or [`NONE`].
#[inline(always)]
fn least(view: &View, present: &[u32; LOCALITY_MEMBERS]) -> u32 {
    let mut least = NONE;
    for &index in present {
        let Some(dest) = view.entry(index).filter(|_| index != NONE) else {
            continue;
        };
        if least == NONE {
            if view.available(dest) {
                least = index;
            }
            continue;
        }
        if view.overloaded(dest) {
            continue;
        }
        let Some(best) = view.entry(least) else {
            continue;
        };
        // (Overheads are below 2^41 and weights below 2^16: the products fit.)
        let (best_weight, weight) = (best.weight as u64, dest.weight as u64);
        if view.overhead(best) * weight > view.overhead(dest) * best_weight {
            least = index;
        }
    }
    least
}

/// The most loaded member with weight, by wlc's rule (the first on ties).
#[inline(always)]
fn most(view: &View, present: &[u32; LOCALITY_MEMBERS]) -> Option<u32> {
    let mut most = NONE;
    for &index in present {
        let Some(dest) = view.entry(index).filter(|_| index != NONE) else {
            continue;
        };
        if dest.weight == 0 {
            continue;
        }
        match view.entry(most).filter(|_| most != NONE) {
            None => most = index,
            Some(busiest) => {
                let (busiest_weight, weight) = (busiest.weight as u64, dest.weight as u64);
                if view.overhead(busiest) * weight < view.overhead(dest) * busiest_weight {
                    most = index;
                }
            }
        }
    }
    (most != NONE).then_some(most)
}

/// Drops the member that resolved to set index `busiest` from `entry`, keeping the
/// others' order.
#[inline(always)]
fn remove(entry: &mut LocalityEntry, present: &[u32; LOCALITY_MEMBERS], busiest: u32) {
    let count = (entry.count as usize).min(LOCALITY_MEMBERS);
    let mut kept = [LocalityMember::default(); LOCALITY_MEMBERS];
    let mut n = 0;
    for m in 0..LOCALITY_MEMBERS {
        if m < count && present[m] != busiest && n < LOCALITY_MEMBERS {
            kept[n] = entry.members[m];
            n += 1;
        }
    }
    entry.members = kept;
    entry.count = n as u32;
}
