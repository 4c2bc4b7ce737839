//! Weighted failover: the available server with the highest weight (first on ties).

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
    if w.view.available(entry) && entry.weight > w.best_weight {
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
