//! Never queue: an idle server at once, else shortest expected delay.

use super::{CONTINUE, STOP, View, walk};

struct Walk {
    view: View,
    least: Option<u32>,
    least_overhead: u64,
    least_weight: u64,
}

extern "C" fn step(i: u32, w: *mut Walk) -> i64 {
    let w = unsafe { &mut *w };
    let Some(entry) = w.view.entry(i) else {
        return STOP;
    };
    if !w.view.available(entry) {
        return CONTINUE;
    }
    let active = w.view.active(entry);
    if active == 0 {
        w.least = Some(i);
        return STOP;
    }
    let overhead = active + 1;
    if w.least.is_none() || w.least_overhead * entry.weight as u64 > overhead * w.least_weight {
        w.least = Some(i);
        w.least_overhead = overhead;
        w.least_weight = entry.weight as u64;
    }
    CONTINUE
}

#[inline(always)]
pub fn schedule(view: View) -> Option<u32> {
    let mut w = Walk {
        view,
        least: None,
        least_overhead: 0,
        least_weight: 0,
    };
    walk(view.count(), &mut w, step);
    w.least
}
