//! Weighted overflow: the highest weight whose active connections do not exceed it.

use super::{CONTINUE, STOP, View, ViewRef, walk};

struct Walk {
    view: ViewRef,
    best: Option<u32>,
    best_weight: u32,
}

extern "C" fn step(i: u32, w: *mut Walk) -> i64 {
    let w = unsafe { &mut *w };
    let Some(entry) = w.view.entry(i) else {
        return STOP;
    };
    if w.view.available(entry)
        && w.view.active(entry) <= entry.weight as u64
        && (w.best.is_none() || entry.weight > w.best_weight)
    {
        w.best = Some(i);
        w.best_weight = entry.weight;
    }
    CONTINUE
}

#[inline(always)]
pub fn schedule(view: &View) -> Option<u32> {
    let mut w = Walk {
        view: ViewRef::of(view),
        best: None,
        best_weight: 0,
    };
    walk(view.count(), &mut w, step);
    w.best
}
