//! Power of two choices (`ip_vs_twos.c`): two servers drawn by weight, the less loaded one
//! wins.
//!
//! IPVS walks the set twice per connection (the total weight, then the draws). Here the
//! draws search the set's running sums of weights (`XVS_TWOS`, made once per set by a walk):
//! ten steps at 1,024 servers. That holds while a server is available exactly when its
//! weight is above 0, which an upper connection threshold (`-x`) breaks (a server over it
//! leaves the draw as its counts move); a set with one is walked, as IPVS walks it.

use aya_ebpf::helpers::bpf_get_prandom_u32;
use xvs_common::{DestCounts, DestSet, MAX_SET, MAX_SET_LARGE, TwosSums};

use super::{CONTINUE, Request, STOP, View, ViewRef, walk};
use crate::maps::XVS_TWOS;

struct Total<const N: usize> {
    view: ViewRef<N>,
    total: u64,
}

extern "C" fn add<const N: usize>(i: u32, w: *mut Total<N>) -> i64 {
    let w = unsafe { &mut *w };
    let Some(entry) = w.view.entry(i) else {
        return STOP;
    };
    // Weight 0 adds nothing, so only the threshold is asked. Asking for weight above 0 too
    // would give the sum a lower bound that rises by one each step, and the verifier would
    // then check this callback once per possible step (1,024 times for a large set).
    if !w.view.overloaded(entry) {
        w.total += entry.weight as u64;
    }
    CONTINUE
}

struct Draw<const N: usize> {
    view: ViewRef<N>,
    r1: i64,
    r2: i64,
    first: Option<u32>,
    second: Option<u32>,
}

extern "C" fn draw<const N: usize>(i: u32, w: *mut Draw<N>) -> i64 {
    let w = unsafe { &mut *w };
    let Some(entry) = w.view.entry(i) else {
        return STOP;
    };
    if w.view.available(entry) {
        w.r1 -= entry.weight as i64;
        w.r2 -= entry.weight as i64;
        if w.r1 <= 0 && w.first.is_none() {
            w.first = Some(i);
        }
        if w.r2 <= 0 && w.second.is_none() {
            w.second = Some(i);
        }
        if w.first.is_some() && w.second.is_some() {
            return STOP;
        }
    }
    CONTINUE
}

#[inline(always)]
pub fn schedule<const N: usize>(request: &Request<N>) -> Option<u32> {
    let view = &request.view;
    let drawn = match sums_of(request) {
        Some(sums) => xvs_twos_draw(sums),
        // A global function per class (a generic one cannot be global): the walks'
        // callbacks verified once, not in the scheduler dispatch's state.
        None if N == MAX_SET_LARGE => {
            xvs_twos_walk_large(view.set as *const _, view.counts as *const _)
        }
        None => xvs_twos_walk(view.set as *const _, view.counts as *const _),
    };
    if drawn == NO_DRAW {
        return None;
    }
    let (first, second) = ((drawn >> 32) as u32, drawn as u32);
    let (ea, eb) = (view.entry(first)?, view.entry(second)?);
    if eb.weight as u64 * view.overhead(ea) > ea.weight as u64 * view.overhead(eb) {
        Some(second)
    } else {
        Some(first)
    }
}

/// [`drawn_by_walk`] for a service of the services map, as a global BPF function.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_twos_walk(set: *const DestSet<MAX_SET>, counts: *const DestCounts) -> u64 {
    walked(set, counts)
}

/// [`drawn_by_walk`] for a service of the large services map.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_twos_walk_large(
    set: *const DestSet<MAX_SET_LARGE>,
    counts: *const DestCounts,
) -> u64 {
    walked(set, counts)
}

#[inline(always)]
fn walked<const N: usize>(set: *const DestSet<N>, counts: *const DestCounts) -> u64 {
    if set.is_null() || counts.is_null() {
        return NO_DRAW;
    }
    // (Only the counts are read through the view: the scheduler state is not needed.)
    let view = View {
        set,
        conns: core::ptr::null_mut(),
        counts,
    };
    match drawn_by_walk(&view) {
        Some((first, second)) => ((first as u64) << 32) | second as u64,
        None => NO_DRAW,
    }
}

/// The two draws of IPVS's walk: a number in 0..=total each, and the first available
/// server whose running sum reaches it.
#[inline(always)]
fn drawn_by_walk<const N: usize>(view: &View<N>) -> Option<(u32, u32)> {
    let mut t = Total {
        view: ViewRef::of(view),
        total: 0,
    };
    walk(view.count(), &mut t, add::<N>);
    // At most 1,024 weights of at most 65535: the bound never wraps to zero.
    let bound = t.total.wrapping_add(1);
    if t.total == 0 || bound == 0 {
        return None;
    }
    let mut d = Draw {
        view: ViewRef::of(view),
        r1: (unsafe { bpf_get_prandom_u32() } as u64 % bound) as i64,
        r2: (unsafe { bpf_get_prandom_u32() } as u64 % bound) as i64,
        first: None,
        second: None,
    };
    walk(view.count(), &mut d, draw::<N>);
    Some((d.first?, d.second?))
}

/// What [`xvs_twos_draw`] answers when there is nothing to draw.
const NO_DRAW: u64 = u64::MAX;

/// The same draws from the running sums: the first index whose sum reaches the number
/// (at least 1: a draw of 0 takes the first server of weight above 0, as the walk does),
/// found by halving; the first draw in the high half of the answer. A global BPF
/// function: the halvings' branches are verified once, not in every scheduler's state.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_twos_draw(sums: *const TwosSums) -> u64 {
    if sums.is_null() {
        return NO_DRAW;
    }
    let sums = unsafe { &*sums };
    let count = sums.count as usize;
    if count == 0 || count > MAX_SET_LARGE {
        return NO_DRAW;
    }
    let total = sums.sums[(count - 1) & (MAX_SET_LARGE - 1)] as u64;
    if total == 0 {
        return NO_DRAW;
    }
    let bound = total + 1;
    let r1 = unsafe { bpf_get_prandom_u32() } as u64 % bound;
    let r2 = unsafe { bpf_get_prandom_u32() } as u64 % bound;
    let first = xvs_twos_first_reaching(sums, count as u32, r1.max(1) as u32);
    let second = xvs_twos_first_reaching(sums, count as u32, r2.max(1) as u32);
    ((first as u64) << 32) | second as u64
}

/// The lowest index below `count` whose running sum is `wanted` or more (the sums never
/// fall, and the last is the total, which `wanted` does not pass). A global BPF function:
/// each halving's bounds are exact for the verifier (they index the sums), so it checks
/// every way through the halvings; once, not once per draw.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_twos_first_reaching(sums: *const TwosSums, count: u32, wanted: u32) -> u32 {
    if sums.is_null() || count == 0 {
        return 0;
    }
    let sums = unsafe { &*sums };
    let count = (count as usize).min(MAX_SET_LARGE);
    let sum = |i: usize| sums.sums[i & (MAX_SET_LARGE - 1)];
    // `base` is the last index known to fall short (or 0) and `size` how many indexes from
    // it may still hold the answer. `size` halves the same way whatever the sums say, so
    // only `base` differs between the verifier's ways through; log2(1,024) halvings
    // leave one (more change nothing): a loop the verifier sees end.
    let (mut base, mut size) = (0usize, count);
    for _ in 0..10 {
        let half = size / 2;
        if sum(base + half) < wanted {
            base += half;
        }
        size -= half;
    }
    if sum(base) < wanted {
        base += 1;
    }
    base as u32
}

/// The service's running sums for its current set, made if it has none for it; `None`
/// if a server of the set has an upper threshold (or the map is full): then the walk.
#[inline(always)]
fn sums_of<const N: usize>(request: &Request<N>) -> Option<*const TwosSums> {
    let id = request.service_id;
    let mut sums = unsafe { XVS_TWOS.get(&id) };
    if !matches!(sums, Some(sums) if sums.set == request.set_id) {
        let set = request.view.set;
        let built = if N == MAX_SET_LARGE {
            xvs_twos_build_large(set as *const _, id, request.set_id)
        } else {
            xvs_twos_build(set as *const _, id, request.set_id)
        };
        if built == 0 {
            return None;
        }
        // Looked up again: the global function cannot hand a map value back.
        sums = unsafe { XVS_TWOS.get(&id) };
    }
    let sums = sums?;
    (sums.set == request.set_id && sums.bounded == 0).then_some(sums as *const TwosSums)
}

/// All zeros: what a service's first [`TwosSums`] entry is made from.
static NO_SUMS: TwosSums = TwosSums {
    set: 0,
    bounded: 0,
    count: 0,
    _pad: 0,
    sums: [0; MAX_SET_LARGE],
};

struct Build<const N: usize> {
    set: *const DestSet<N>,
    sums: *mut TwosSums,
    running: u32,
    bounded: u32,
}

extern "C" fn sum_step<const N: usize>(i: u32, b: *mut Build<N>) -> i64 {
    let b = unsafe { &mut *b };
    let Some(entry) = (unsafe { (*b.set).entries.get(i as usize & (N - 1)) }) else {
        return STOP;
    };
    b.running = b.running.wrapping_add(entry.weight);
    b.bounded |= (entry.u_threshold != 0) as u32;
    unsafe { (*b.sums).sums[i as usize & (MAX_SET_LARGE - 1)] = b.running };
    CONTINUE
}

/// Writes the running sums of set `set_id` (`set`) into service `service_id`'s entry
/// (made if need be); 1 if written. A global BPF function (one per class).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_twos_build(
    set: *const DestSet<MAX_SET>,
    service_id: u32,
    set_id: u32,
) -> u32 {
    build(set, service_id, set_id)
}

/// [`xvs_twos_build`] for a service of the large services map.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_twos_build_large(
    set: *const DestSet<MAX_SET_LARGE>,
    service_id: u32,
    set_id: u32,
) -> u32 {
    build(set, service_id, set_id)
}

#[inline(always)]
fn build<const N: usize>(set: *const DestSet<N>, service_id: u32, set_id: u32) -> u32 {
    if set.is_null() {
        return 0;
    }
    let mut sums = XVS_TWOS.get_ptr_mut(&service_id);
    if sums.is_none() {
        let _ = XVS_TWOS.insert(&service_id, &NO_SUMS, 0);
        sums = XVS_TWOS.get_ptr_mut(&service_id);
    }
    let Some(sums) = sums else {
        return 0;
    };
    let count = unsafe { (*set).count }.min(N as u32);
    let mut b = Build {
        set,
        sums,
        running: 0,
        bounded: 0,
    };
    walk(count, &mut b, sum_step::<N>);
    unsafe {
        (*sums).count = count;
        (*sums).bounded = b.bounded;
        (*sums).set = set_id;
    }
    1
}
