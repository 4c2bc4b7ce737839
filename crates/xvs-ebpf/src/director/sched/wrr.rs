//! Weighted round robin: steps through the set's cycle (xvs-core's `Wrr::cycle`, the
//! sequence IPVS produces), passing over overloaded servers.

use xvs_common::{SchedState, WrrKey};

use super::{CONTINUE, STOP, View, ViewRef, walk};
use crate::maps::XVS_WRR;

/// How many cycle positions one choice may pass over.
const MAX_SKIPS: u32 = 64;

struct Walk<const N: usize> {
    view: ViewRef<N>,
    set: u32,
    start: u32,
    len: u32,
    chosen: Option<(u32, u32)>,
}

extern "C" fn step<const N: usize>(k: u32, w: *mut Walk<N>) -> i64 {
    let w = unsafe { &mut *w };
    let mut position = w.start + k;
    if position >= w.len {
        position -= w.len;
    }
    let key = WrrKey {
        set: w.set,
        position,
    };
    if let Some(index) = unsafe { XVS_WRR.get(&key) }
        && let Some(entry) = w.view.entry(*index)
        && w.view.available(entry)
    {
        w.chosen = Some((*index, position));
        return STOP;
    }
    CONTINUE
}

#[inline(always)]
pub fn schedule<const N: usize>(view: &View<N>, state: &mut SchedState, set: u32) -> Option<u32> {
    let len = unsafe { (*view.set).wrr_len };
    if len == 0 {
        return None;
    }
    let mut start = state.position;
    if start >= len {
        start = 0;
    }
    let mut w = Walk {
        view: ViewRef::of(view),
        set,
        start,
        len,
        chosen: None,
    };
    walk(
        if len < MAX_SKIPS { len } else { MAX_SKIPS },
        &mut w,
        step::<N>,
    );
    let (index, position) = w.chosen?;
    state.position = if position + 1 >= len { 0 } else { position + 1 };
    Some(index)
}
