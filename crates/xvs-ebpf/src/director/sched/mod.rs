//! Scheduling a new connection in the kernel: the same rules as xvs-core's reference
//! schedulers, one file per scheduler, over a service's [`DestSet`] and its connection
//! counts. Each returns an index into the set.
//!
//! The least-connection family picks from a tree kept with the counts (tree.rs); the
//! others walk the set in `bpf_loop`, so the verifier checks each step once instead of once
//! per possible server.

mod dh;
mod fo;
mod hashing;
mod lblc;
mod lblcr;
mod lc;
mod locality;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod tree;
mod twos;
mod wlc;
mod wrr;

use aya_ebpf::helpers::generated::bpf_loop;
use core::intrinsics::{AtomicOrdering, atomic_and, atomic_or};
use xvs_common::{
    DestCounts, DestSet, MAX_SET, MAX_SET_LARGE, MAX_STATS, SchedState, ServiceEntry, ServiceKey,
    ServiceSched, SetEntry, SlotConns, TREE_NONE, dest_index, lower_threshold, scheduler,
    tree_rule,
};

use crate::maps::{XVS_DESTS, XVS_SCHED, XVS_SCHED_LARGE, XVS_SERVICES, XVS_SERVICES_LARGE};

/// A view held by a walk's state: by pointer, since a copy would take stack in every
/// frame the walk runs under.
#[derive(Clone, Copy)]
pub struct ViewRef<const N: usize>(*const View<N>);

impl<const N: usize> ViewRef<N> {
    #[inline(always)]
    pub fn of(view: &View<N>) -> ViewRef<N> {
        ViewRef(view)
    }
}

impl<const N: usize> core::ops::Deref for ViewRef<N> {
    type Target = View<N>;

    #[inline(always)]
    fn deref(&self) -> &View<N> {
        unsafe { &*self.0 }
    }
}

/// What the schedulers read: a service's set of room `N` (its class: [`MAX_SET`] or
/// [`MAX_SET_LARGE`]), its scheduler state and tree, and every real server's connection
/// counts (map values). Every scheduler is generic over `N`: the verifier must see each
/// access bounded by the value it reads, so each class has its own code.
#[derive(Clone, Copy)]
pub struct View<const N: usize = MAX_SET> {
    pub set: *const DestSet<N>,
    pub conns: *mut ServiceSched<N>,
    /// Every real server's connection counts.
    pub counts: *const DestCounts,
}

impl<const N: usize> View<N> {
    #[inline(always)]
    pub fn count(&self) -> u32 {
        let n = unsafe { (*self.set).count };
        if n > N as u32 { N as u32 } else { n }
    }

    #[inline(always)]
    pub fn entry(&self, i: u32) -> Option<&SetEntry> {
        // The mask keeps the index provably inside the array for the verifier.
        unsafe { (*self.set).entries.get(i as usize & (N - 1)) }
    }

    #[inline(always)]
    fn conns_of(&self, entry: &SetEntry) -> Option<&SlotConns> {
        Some(unsafe { (*self.counts).of(entry.stats) })
    }

    /// IPVS's OVERLOAD: the upper threshold reached, and not yet left below the lower
    /// one ([`xvs_common::overloaded`]; the flag is kept by [`xvs_overload_settle`]).
    #[inline(always)]
    pub fn overloaded(&self, entry: &SetEntry) -> bool {
        entry.u_threshold != 0
            && self.conns_of(entry).is_some_and(|c| {
                xvs_common::overloaded(
                    c.active + c.inactive,
                    entry.u_threshold,
                    entry.lower_threshold,
                    c.overload_flag(),
                )
            })
    }

    /// Weight above 0 and not overloaded.
    #[inline(always)]
    pub fn available(&self, entry: &SetEntry) -> bool {
        entry.weight > 0 && !self.overloaded(entry)
    }

    /// `(active << 8) + inactive`.
    #[inline(always)]
    pub fn overhead(&self, entry: &SetEntry) -> u64 {
        self.conns_of(entry)
            .map_or(0, |c| ((c.active as u64) << 8) + c.inactive as u64)
    }

    #[inline(always)]
    pub fn active(&self, entry: &SetEntry) -> u64 {
        self.conns_of(entry).map_or(0, |c| c.active as u64)
    }

    /// The set index of the real server with tree slot `slot`, counter slot `dest_stats`
    /// and id `dest_id`, or [`NONE`] if the set no longer has it (the slots are another
    /// server's now, or nobody's). For what remembers servers across connections:
    /// persistence templates, lblc and lblcr. One step: the set maps its tree slots.
    #[inline(always)]
    pub fn index_of(&self, slot: u16, dest_stats: u32, dest_id: u32) -> u32 {
        let index = unsafe { (*self.set).index_of.get(slot as usize & (N - 1)).copied() };
        let Some(index) = index.filter(|&index| index != TREE_NONE) else {
            return NONE;
        };
        let index = index as u32;
        let Some(entry) = self.entry(index).filter(|_| index < self.count()) else {
            return NONE;
        };
        if entry.stats != dest_stats {
            return NONE;
        }
        match XVS_DESTS.get(dest_index(entry.stats, entry.half)) {
            Some(dest) if dest.id == dest_id => index,
            _ => NONE,
        }
    }
}

/// The id of the real server of set entry `entry`.
#[inline(always)]
pub fn dest_id(entry: &SetEntry) -> Option<u32> {
    XVS_DESTS
        .get(dest_index(entry.stats, entry.half))
        .map(|dest| dest.id)
}

/// Calls `step(i, walk)` for i in 0..count until it returns 1.
#[inline(always)]
pub fn walk<T>(count: u32, walk: &mut T, step: extern "C" fn(u32, *mut T) -> i64) {
    unsafe {
        bpf_loop(
            count,
            step as *mut _,
            walk as *mut T as *mut core::ffi::c_void,
            0,
        )
    };
}

/// Continue / stop, as bpf_loop callbacks answer.
pub const CONTINUE: i64 = 0;
pub const STOP: i64 = 1;

/// What [`schedule`] needs (one pointer: BPF functions take at most five arguments).
pub struct Request<const N: usize> {
    pub scheduler: u8,
    /// The service's flags (sh's and mh's `-b`).
    pub flags: u32,
    /// The service's id (lblc's and lblcr's entries are the service's).
    pub service_id: u32,
    pub view: View<N>,
    pub set_id: u32,
}

/// No server may take the connection.
pub const NONE: u32 = u32::MAX;

/// What [`schedule`] chose.
pub struct Choice {
    /// An index into the set, or [`NONE`].
    pub index: u32,
    /// The service's scheduler does not run in the datapath yet and wlc chose instead; the
    /// caller counts it (`SCHED_FALLBACK`) once the connection is made.
    pub fallback: bool,
}

/// The mark [`xvs_schedule`] sets in its answer when the choice was a fallback to wlc.
pub const FALLBACK_MARK: u32 = 1 << 31;

/// [`schedule`] for the service `found` (its entry) with scheduler state `conns`, as a
/// global BPF function (one per set class: [`xvs_schedule_large`]): the verifier checks
/// the fourteen schedulers once, on their own, instead of walking the rest of the new
/// connection's path once for each state a scheduler can leave. The scheduler's state is
/// the copy in the scratch space (`sched_state`), as are the packet and the key the
/// service was found by. Answers the set index, with [`FALLBACK_MARK`] if wlc chose in the
/// scheduler's stead, or [`NONE`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_schedule(
    found: *const ServiceEntry<MAX_SET>,
    conns: *mut ServiceSched<MAX_SET>,
    counts: *const DestCounts,
) -> u32 {
    schedule_entry(found, conns, counts)
}

/// [`xvs_schedule`] for a service of the large services map.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_schedule_large(
    found: *const ServiceEntry<MAX_SET_LARGE>,
    conns: *mut ServiceSched<MAX_SET_LARGE>,
    counts: *const DestCounts,
) -> u32 {
    schedule_entry(found, conns, counts)
}

#[inline(always)]
fn schedule_entry<const N: usize>(
    found: *const ServiceEntry<N>,
    conns: *mut ServiceSched<N>,
    counts: *const DestCounts,
) -> u32 {
    if found.is_null() || conns.is_null() || counts.is_null() {
        return NONE;
    }
    let Some(scratch) = crate::maps::scratch() else {
        return NONE;
    };
    let found = unsafe { &*found };
    let request = Request {
        scheduler: found.service.scheduler,
        flags: found.service.flags,
        service_id: found.service.id,
        view: View {
            set: &found.set,
            conns,
            counts,
        },
        set_id: found.service.dest_set,
    };
    let choice = schedule(&request, unsafe { &mut (*scratch).sched_state });
    match (choice.index, choice.fallback) {
        (NONE, _) => NONE,
        (index, true) => index | FALLBACK_MARK,
        (index, false) => index,
    }
}

/// The packet being scheduled (parsed into the scratch space; the hashing and locality
/// schedulers read its addresses). Not in [`Request`]: the call chain's stack is small.
#[inline(always)]
pub fn packet() -> Option<&'static crate::packet::Packet> {
    crate::maps::scratch().map(|scratch| unsafe { &(*scratch).packet })
}

/// An out-of-line scheduler's answer ([`NONE`]: none) as the others answer.
#[inline(always)]
fn found(index: u32) -> Option<u32> {
    (index != NONE).then_some(index)
}

/// Picks a real server with the service's scheduler. `state` is a copy of the service's
/// scheduler state, advanced by the choice; the caller stores it once the connection is
/// made. This is the one place a scheduler code is dispatched on: a scheduler joins the
/// datapath as one file and one arm here.
#[inline(always)]
pub fn schedule<const N: usize>(request: &Request<N>, state: &mut SchedState) -> Choice {
    let view = &request.view;
    let (picked, fallback) = match request.scheduler {
        scheduler::RR => (rr::schedule(view, state), false),
        scheduler::WRR => (wrr::schedule(view, state, request.set_id), false),
        scheduler::LC => (tree::pick(view, tree_rule::LC, request), false),
        scheduler::WLC => (tree::pick(view, tree_rule::WLC, request), false),
        scheduler::SED => (tree::pick(view, tree_rule::SED, request), false),
        scheduler::NQ => (tree::pick(view, tree_rule::NQ, request), false),
        scheduler::FO => (tree::pick(view, tree_rule::FO, request), false),
        scheduler::OVF => (tree::pick(view, tree_rule::OVF, request), false),
        scheduler::TWOS => (twos::schedule(request), false),
        scheduler::SH => (found(sh::schedule(request)), false),
        scheduler::DH => (found(dh::schedule(request)), false),
        scheduler::MH => (found(mh::schedule(request)), false),
        scheduler::LBLC => match found(lblc::schedule(request)) {
            Some(kept) => (Some(kept), false),
            None => {
                let picked = tree::pick(view, tree_rule::LOCALITY, request);
                if let Some(index) = picked {
                    lblc::remember(request, index);
                }
                (picked, false)
            }
        },
        scheduler::LBLCR => match found(lblcr::schedule(request)) {
            Some(kept) => (Some(kept), false),
            None => {
                let picked = tree::pick(view, tree_rule::LOCALITY, request);
                if let Some(index) = picked {
                    lblcr::remember(request, index);
                }
                (picked, false)
            }
        },
        // A code this program does not know (a newer xvsadm's): wlc, counted.
        _ => (tree::pick(view, tree_rule::WLC, request), true),
    };
    Choice {
        index: picked.unwrap_or(NONE),
        fallback,
    }
}

/// A real server's connection count in `view` changed (the set, `set_id`, is the
/// service's current one): keeps the least-connection tree right, if the service uses one
/// built for this set (a tree left from another set or scheduler is rebuilt before it is
/// read again, so refreshing it would be wasted).
#[inline(always)]
pub fn count_changed<const N: usize>(view: &View<N>, slot: u16, set_id: u32) {
    let tree = unsafe { &(*view.conns).tree };
    if tree.kind != tree_rule::NONE && tree.set == set_id {
        tree::refresh_above(view, slot);
    }
}

/// The real server with tree slot `slot`, just picked for a new connection of service
/// `service_id` (set `set_id`), has no next hop: the least-connection family leaves it
/// out for a while ([`tree::set_aside`]); the rotations turn past it by their stored
/// state. A global function, in whichever class the service is.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_set_aside(service_id: u32, set_id: u32, slot: u32, now: u64) -> u32 {
    if let Some(conns) = XVS_SCHED.get_ptr_mut(&service_id) {
        tree::set_aside(conns, set_id, slot, now);
    } else if let Some(conns) = XVS_SCHED_LARGE.get_ptr_mut(&service_id) {
        tree::set_aside(conns, set_id, slot, now);
    }
    0
}

/// Keeps IPVS's OVERLOAD flag of the real server at counter slot `dest_stats` (its entry
/// in `half` of the real-server array, which has its thresholds) after its active and
/// inactive connections changed: set at or above `-x`, cleared below `-y` (or 3/4 of
/// `-x`); between them left as it was, which is IPVS's hysteresis. Called after every
/// change of the total (a connection made, adopted or ended), and after the count's tree
/// refresh: the refresh's reading of the flag matters only between the thresholds,
/// where a total can only arrive from above with the flag set, or from below with it
/// cleared. A global function: out of the frames at the stack's limit.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_overload_settle(dest_stats: u32, half: u32) -> u32 {
    let (Some(dest), Some(counts)) = (
        XVS_DESTS.get(dest_index(dest_stats, half as u16)),
        crate::maps::dest_counts(),
    ) else {
        return 0;
    };
    let (upper, lower) = (dest.u_threshold, dest.l_threshold);
    let slot = unsafe { (*counts).of(dest_stats) };
    let total = slot.active.wrapping_add(slot.inactive);
    let flagged = slot.overload_flag();
    let set = upper != 0 && total >= upper;
    let clear = flagged && (upper == 0 || total < lower_threshold(upper, lower));
    if set != flagged && (set || clear) {
        let Some((word, bit)) = overload_word(counts, dest_stats) else {
            return 0;
        };
        unsafe {
            if set {
                atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(word, bit);
            } else {
                atomic_and::<u64, u64, { AtomicOrdering::Relaxed }>(word, !bit);
            }
        }
    }
    0
}

/// The aligned 64-bit word of the counts array that holds the overload flag of counter
/// slot `dest_stats`, and the flag's bit in it. (The BPF target has 32-bit atomic adds
/// only; and or or work on 64-bit words, which must be aligned. The other half of the
/// word, a neighbouring count, is left as it is by the and or the or.)
#[inline(always)]
fn overload_word(counts: *mut DestCounts, dest_stats: u32) -> Option<(*mut u64, u64)> {
    const SLOT: usize = core::mem::size_of::<SlotConns>();
    const FIELD: usize = core::mem::offset_of!(SlotConns, templates_and_overload);
    const WORDS: usize = core::mem::size_of::<DestCounts>() / 8;
    const _: () = assert!(SLOT == 12 && FIELD == 8 && core::mem::size_of::<DestCounts>() % 8 == 0);
    // The field is at byte 12 * slot + 8: word 1.5 * slot + 1, rounded down, its low or
    // high half as the slot is even or odd. Written so, not as a division of the byte
    // offset, so that the verifier's bounds see the word inside the value.
    let slot = dest_stats as usize & (MAX_STATS as usize - 1);
    let index = slot + (slot >> 1) + 1;
    if index >= WORDS {
        return None;
    }
    let bit = 1u64 << ((slot & 1) * 32 + 31);
    Some((unsafe { (counts as *mut u64).add(index) }, bit))
}

/// As [`count_changed`], for a caller that has only the service's scheduler state: the set
/// is found (by `find`, in the services map of its class) by the service key the tree
/// keeps, and only if it is still the one the tree was built for (else the next new
/// connection rebuilds the tree anyway).
#[inline(always)]
fn count_changed_in<const N: usize>(
    conns: *mut ServiceSched<N>,
    counts: *const DestCounts,
    slot: u16,
    find: impl Fn(&ServiceKey) -> Option<&'static ServiceEntry<N>>,
) {
    let tree = unsafe { &(*conns).tree };
    if tree.kind == tree_rule::NONE {
        return;
    }
    if let Some(found) = find(&tree.service)
        && found.service.dest_set == tree.set
    {
        tree::update(
            &View {
                set: &found.set,
                conns,
                counts,
            },
            slot,
        );
    }
}

/// A connection of service `service_id`, whose real server has tree slot `slot`, changed
/// its server's counts: the service's tree follows, in whichever class the service is.
#[inline(always)]
pub fn service_count_changed(service_id: &u32, counts: *const DestCounts, slot: u16) {
    if let Some(conns) = XVS_SCHED.get_ptr_mut(service_id) {
        count_changed_in(conns, counts, slot, |key| unsafe { XVS_SERVICES.get(key) });
    } else if let Some(conns) = XVS_SCHED_LARGE.get_ptr_mut(service_id) {
        count_changed_in(conns, counts, slot, |key| unsafe {
            XVS_SERVICES_LARGE.get(key)
        });
    }
}
