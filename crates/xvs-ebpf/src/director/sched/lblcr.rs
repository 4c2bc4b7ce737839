//! Locality-based least connection with replication (`ip_vs_lblcr.c`): a destination
//! address keeps a set of servers (newest first, at most [`LOCALITY_MEMBERS`]); its least
//! loaded member serves unless overloaded in lblc's sense, when wlc adds a server to the
//! set. A set unchanged for 24 hours sheds its busiest member.

use xvs_common::{LOCALITY_EXPIRATION_NS, LOCALITY_MEMBERS, LocalityEntry, LocalityMember};

use super::{NONE, Request, View, locality};
use crate::maps::scratch;

/// The least loaded member of the destination address's set if it is not overloaded, or
/// [`NONE`]: then wlc chooses (the caller, in its own frame: the call chain's stack is 512
/// bytes in all) and [`remember`] adds the choice to the set.
#[inline(never)]
pub fn schedule<const N: usize>(request: &Request<N>) -> u32 {
    kept(request).unwrap_or(NONE)
}

#[inline(always)]
fn kept<const N: usize>(request: &Request<N>) -> Option<u32> {
    let view = &request.view;
    let packet = super::packet()?;
    let now = crate::conn::now();
    let entry = unsafe { &mut *locality::find(request.service_id, packet, now)? };
    entry.last_use = now;
    // The set indices of the members still in the service (in the scratch space: the
    // call chain's stack is small).
    let scratch = scratch()?;
    let present = unsafe { &mut (*scratch).locality_present };
    let count = (entry.count as usize).min(LOCALITY_MEMBERS);
    for (m, slot) in present.iter_mut().enumerate() {
        *slot = NONE;
        if m < count {
            let member = entry.members[m];
            *slot = view.index_of(member.slot, member.dest_stats, member.dest_id);
        }
    }
    let present = &*present;
    let least = least(&view, present);
    if count > 1
        && now > entry.last_modified + LOCALITY_EXPIRATION_NS
        && let Some(busiest) = most(&view, present)
    {
        remove(entry, present, busiest);
        entry.last_modified = now;
    }
    let dest = view.entry(least).filter(|_| least != NONE)?;
    (!locality::overloaded(&view, dest, request.set_id)).then_some(least)
}

/// Set index `index` (wlc's choice) joins the destination address's set, newest first (a
/// full set loses its oldest member); an address without a set gets one.
#[inline(never)]
pub fn remember<const N: usize>(request: &Request<N>, index: u32) {
    let now = crate::conn::now();
    let (Some(member), Some(packet)) = (locality::member_of(&request.view, index), super::packet())
    else {
        return;
    };
    let Some(entry) = locality::find(request.service_id, packet, now) else {
        locality::insert(member, now);
        return;
    };
    let entry = unsafe { &mut *entry };
    let count = (entry.count as usize).min(LOCALITY_MEMBERS);
    // Indexed over the whole array (a slice of `count` members loses its bound for the
    // verifier).
    let mut known = false;
    for m in 0..LOCALITY_MEMBERS {
        known |= m < count && entry.members[m] == member;
    }
    if known {
        return;
    }
    for m in (1..LOCALITY_MEMBERS).rev() {
        entry.members[m] = entry.members[m - 1];
    }
    entry.members[0] = member;
    entry.count = (count + 1).min(LOCALITY_MEMBERS) as u32;
    entry.last_modified = now;
}

/// The least loaded available member by wlc's rule (the first on ties), or [`NONE`].
#[inline(always)]
fn least<const N: usize>(view: &View<N>, present: &[u32; LOCALITY_MEMBERS]) -> u32 {
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
fn most<const N: usize>(view: &View<N>, present: &[u32; LOCALITY_MEMBERS]) -> Option<u32> {
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
    // In place (no copy on the small stack): members after the dropped one move up.
    let count = (entry.count as usize).min(LOCALITY_MEMBERS);
    let mut n = 0;
    for m in 0..LOCALITY_MEMBERS {
        if m < count && present[m] != busiest {
            if let Some(member) = entry.members.get(m).copied()
                && let Some(to) = entry.members.get_mut(n)
            {
                copy_member(to, &member);
            }
            n += 1;
        }
    }
    entry.count = n as u32;
}

/// `*to = *from` as three 4-byte moves: the assignment becomes a call to a byte-by-byte
/// memmove, which the verifier checks byte by byte at every one of the unrolled steps.
#[inline(always)]
fn copy_member(to: &mut LocalityMember, from: &LocalityMember) {
    let (to, from) = (
        to as *mut LocalityMember as *mut u32,
        from as *const LocalityMember as *const u32,
    );
    unsafe {
        to.write(from.read());
        to.add(1).write(from.add(1).read());
        to.add(2).write(from.add(2).read());
    }
}
const _: () = assert!(core::mem::size_of::<LocalityMember>() == 12);
