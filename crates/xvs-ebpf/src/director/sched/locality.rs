//! What lblc and lblcr share: their entry per destination address of a service (in the
//! LRU map `XVS_LOCALITY`, expired after 24 hours unused as IPVS's are), and IPVS's
//! locality overload: more active connections than weight while some server of the set
//! is below half its weight.

use xvs_common::{LOCALITY_EXPIRATION_NS, LocalityEntry, LocalityMember, SetEntry};

use super::{CONTINUE, STOP, View, walk};
use crate::{
    maps::{XVS_LOCALITY, scratch},
    packet::Packet,
};

/// The entry of `packet`'s destination for service `service_id` if there is a live one
/// (an expired one is dropped); its key is left in the scratch space for [`insert`].
#[inline(always)]
pub fn find(service_id: u32, packet: &Packet, now: u64) -> Option<*mut LocalityEntry> {
    let scratch = scratch()?;
    let key = unsafe { &mut (*scratch).locality_key };
    key.addr = packet.dst;
    key.service_id = service_id;
    key.family = packet.family;
    key._pad = [0; 3];
    let key = &*key;
    let entry = XVS_LOCALITY.get_ptr_mut(key)?;
    if now.saturating_sub(unsafe { (*entry).last_use }) > LOCALITY_EXPIRATION_NS {
        let _ = XVS_LOCALITY.remove(key);
        return None;
    }
    Some(entry)
}

/// Makes the entry of the key [`find`] left in the scratch space name `member` alone.
#[inline(always)]
pub fn insert(member: LocalityMember, now: u64) {
    let Some(scratch) = scratch() else {
        return;
    };
    let entry = unsafe { &mut (*scratch).locality_entry };
    entry.last_use = now;
    entry.last_modified = now;
    entry.count = 1;
    entry.members[0] = member;
    let _ = XVS_LOCALITY.insert(unsafe { &(*scratch).locality_key }, &*entry, 0);
}

/// How the entry names set entry `entry`.
#[inline(always)]
pub fn member_of<const N: usize>(view: &View<N>, index: u32) -> Option<LocalityMember> {
    let entry = view.entry(index)?;
    Some(LocalityMember {
        dest_stats: entry.stats,
        dest_id: super::dest_id(entry)?,
        slot: entry.slot,
        _pad: 0,
    })
}

/// IPVS's `is_overloaded` of lblc and lblcr: more active connections than weight, while
/// some server of the set (`set_id`) has fewer than half its weight. Which servers do is
/// kept with the service's tree once wlc has chosen for it (its rule is
/// [`tree_rule::LOCALITY`](xvs_common::tree_rule::LOCALITY)); until then (and should its
/// bitmap not fit its map) the set is walked, as IPVS walks it.
#[inline(always)]
pub fn overloaded<const N: usize>(view: &View<N>, entry: &SetEntry, set_id: u32) -> bool {
    if view.active(entry) <= entry.weight as u64 {
        return false;
    }
    if let Some(some) = super::tree::some_below_half(view, set_id) {
        return some;
    }
    let mut search = Search { view, found: false };
    walk(view.count(), &mut search, step::<N>);
    search.found
}

struct Search<const N: usize> {
    view: *const View<N>,
    found: bool,
}

extern "C" fn step<const N: usize>(i: u32, s: *mut Search<N>) -> i64 {
    let s = unsafe { &mut *s };
    let Some(entry) = (unsafe { (*s.view).entry(i) }) else {
        return STOP;
    };
    if unsafe { (*s.view).active(entry) } * 2 < entry.weight as u64 {
        s.found = true;
        return STOP;
    }
    CONTINUE
}
