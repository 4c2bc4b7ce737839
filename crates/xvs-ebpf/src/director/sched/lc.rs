//! Least connection: the smallest overhead among available servers, the first on ties
//! (picked from the least-connection tree).

use xvs_common::SetEntry;

use super::View;

/// True if `right` has strictly fewer connections (by IPVS's overhead) than `left`.
#[inline(always)]
pub fn beats(view: &View, left: &SetEntry, right: &SetEntry) -> bool {
    view.overhead(right) < view.overhead(left)
}
