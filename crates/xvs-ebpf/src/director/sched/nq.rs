//! Never queue: the first idle server, else shortest expected delay (picked from the
//! least-connection tree).

use xvs_common::SetEntry;

use super::View;

/// Load: 0 for an idle server (it beats every busy one, whose load times its weight is
/// above 0), else sed's.
#[inline(always)]
pub fn load<const N: usize>(view: &View<N>, entry: &SetEntry) -> u64 {
    match view.active(entry) {
        0 => 0,
        active => active + 1,
    }
}

#[inline(always)]
pub fn weight(entry: &SetEntry) -> u32 {
    entry.weight
}
