//! Shortest expected delay: the smallest (active + 1) / weight, the first on ties (picked
//! from the least-connection tree).

use xvs_common::SetEntry;

use super::View;

/// Load: active connections plus the new one, against the weight.
#[inline(always)]
pub fn load<const N: usize>(view: &View<N>, entry: &SetEntry) -> u64 {
    view.active(entry) + 1
}

#[inline(always)]
pub fn weight(entry: &SetEntry) -> u32 {
    entry.weight
}
