//! Round robin: the first available server after the last one chosen.

use xvs_common::SchedState;

use super::{CONTINUE, STOP, View, ViewRef, walk};

struct Walk<const N: usize> {
    view: ViewRef<N>,
    start: u32,
    count: u32,
    chosen: Option<u32>,
}

extern "C" fn step<const N: usize>(k: u32, w: *mut Walk<N>) -> i64 {
    let w = unsafe { &mut *w };
    let mut i = w.start + k;
    if i >= w.count {
        i -= w.count;
    }
    let Some(entry) = w.view.entry(i) else {
        return STOP;
    };
    if w.view.available(entry) {
        w.chosen = Some(i);
        return STOP;
    }
    CONTINUE
}

#[inline(always)]
pub fn schedule<const N: usize>(view: &View<N>, state: &mut SchedState) -> Option<u32> {
    let count = view.count();
    // cursor = index of the last choice + 1: the walk starts right after it. Racing CPUs
    // may read the same cursor (IPVS takes a lock); the next choice carries on from theirs.
    let mut start = state.cursor;
    if start >= count {
        start = 0;
    }
    // Most of the time the server at the cursor takes it: no walk (a bpf_loop callback is
    // a BPF call, about 8 ns here).
    if start < count
        && let Some(entry) = view.entry(start)
        && view.available(entry)
    {
        state.cursor = start + 1;
        return Some(start);
    }
    let mut w = Walk {
        view: ViewRef::of(view),
        start,
        count,
        chosen: None,
    };
    walk(count, &mut w, step::<N>);
    let chosen = w.chosen?;
    state.cursor = chosen + 1;
    Some(chosen)
}
