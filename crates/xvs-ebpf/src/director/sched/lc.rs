//! Least connection: the smallest overhead among available servers.

use super::{CONTINUE, STOP, View, walk};

struct Walk {
    view: View,
    least: Option<u32>,
    least_overhead: u64,
}

extern "C" fn step(i: u32, w: *mut Walk) -> i64 {
    let w = unsafe { &mut *w };
    let Some(entry) = w.view.entry(i) else {
        return STOP;
    };
    if w.view.available(entry) {
        let overhead = w.view.overhead(entry);
        if w.least.is_none() || overhead < w.least_overhead {
            w.least = Some(i);
            w.least_overhead = overhead;
        }
    }
    CONTINUE
}

#[inline(always)]
pub fn schedule(view: View) -> Option<u32> {
    let mut w = Walk {
        view,
        least: None,
        least_overhead: 0,
    };
    walk(view.count(), &mut w, step);
    w.least
}
