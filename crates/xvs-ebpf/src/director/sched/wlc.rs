//! Weighted least connection: the smallest overhead / weight, the first on ties (picked
//! from the least-connection tree).

use xvs_common::SetEntry;

use super::View;

/// Load: IPVS's overhead (`active * 256 + inactive`), against the weight.
#[inline(always)]
pub fn load<const N: usize>(view: &View<N>, entry: &SetEntry) -> u64 {
    view.overhead(entry)
}

#[inline(always)]
pub fn weight(entry: &SetEntry) -> u32 {
    entry.weight
}
