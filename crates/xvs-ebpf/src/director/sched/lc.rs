//! Least connection: the smallest overhead among available servers, the first on ties
//! (picked from the least-connection tree).

use xvs_common::SetEntry;

use super::View;

/// Load: IPVS's overhead (`active * 256 + inactive`); every weight counts as 1.
#[inline(always)]
pub fn load<const N: usize>(view: &View<N>, entry: &SetEntry) -> u64 {
    view.overhead(entry)
}

#[inline(always)]
pub fn weight(_: &SetEntry) -> u32 {
    1
}
