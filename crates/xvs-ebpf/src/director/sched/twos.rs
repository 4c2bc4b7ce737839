//! Power of two choices: two servers drawn by weight, the less loaded one wins.

use aya_ebpf::helpers::bpf_get_prandom_u32;

use super::{CONTINUE, STOP, View, ViewRef, walk};

struct Total<const N: usize> {
    view: ViewRef<N>,
    total: u64,
}

extern "C" fn add<const N: usize>(i: u32, w: *mut Total<N>) -> i64 {
    let w = unsafe { &mut *w };
    let Some(entry) = w.view.entry(i) else {
        return STOP;
    };
    if w.view.available(entry) {
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
pub fn schedule<const N: usize>(view: &View<N>) -> Option<u32> {
    let mut t = Total {
        view: ViewRef::of(view),
        total: 0,
    };
    walk(view.count(), &mut t, add::<N>);
    // At most 256 weights of at most 65535: the bound never wraps to zero.
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
    let (a, b) = (d.first?, d.second?);
    let (ea, eb) = (view.entry(a)?, view.entry(b)?);
    if eb.weight as u64 * view.overhead(ea) > ea.weight as u64 * view.overhead(eb) {
        Some(b)
    } else {
        Some(a)
    }
}
