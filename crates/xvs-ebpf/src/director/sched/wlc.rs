//! Weighted least connection: the smallest overhead / weight.

use super::{View, weighted_least};

#[inline(always)]
pub fn schedule(view: View) -> Option<u32> {
    weighted_least(view, false)
}
