//! Weighted failover: the available server with the highest weight (first on ties).

use super::{CONTINUE, STOP, View, ViewRef, walk};

struct Walk<const N: usize> {
    view: ViewRef<N>,
    best: Option<u32>,
    best_weight: u32,
}

extern "C" fn step<const N: usize>(i: u32, w: *mut Walk<N>) -> i64 {
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
pub fn schedule<const N: usize>(view: &View<N>) -> Option<u32> {
    let mut w = Walk {
        view: ViewRef::of(view),
        best: None,
        best_weight: 0,
    };
    walk(view.count(), &mut w, step::<N>);
    w.best
}
