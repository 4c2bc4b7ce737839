//! Shortest expected delay: the smallest (active + 1) / weight, the first on ties (picked
//! from the least-connection tree).

use xvs_common::SetEntry;

use super::View;

/// `(active(left) + 1) * weight(right) > (active(right) + 1) * weight(left)`.
#[inline(always)]
pub fn beats(view: &View, left: &SetEntry, right: &SetEntry) -> bool {
    (view.active(left) + 1) * right.weight as u64 > (view.active(right) + 1) * left.weight as u64
}
