//! Weighted least connection: the smallest overhead / weight, the first on ties (picked
//! from the least-connection tree).

use xvs_common::SetEntry;

use super::View;

/// IPVS's test: `overhead(left) * weight(right) > overhead(right) * weight(left)`.
#[inline(always)]
pub fn beats(view: &View, left: &SetEntry, right: &SetEntry) -> bool {
    view.overhead(left) * right.weight as u64 > view.overhead(right) * left.weight as u64
}
