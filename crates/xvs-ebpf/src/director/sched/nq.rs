//! Never queue: the first idle server, else shortest expected delay (picked from the
//! least-connection tree).

use xvs_common::SetEntry;

use super::{View, sed};

/// An idle server beats a busy one; among busy ones, sed's rule; among idle ones the
/// first stays.
#[inline(always)]
pub fn beats(view: &View, left: &SetEntry, right: &SetEntry) -> bool {
    if view.active(left) == 0 {
        return false;
    }
    view.active(right) == 0 || sed::beats(view, left, right)
}
