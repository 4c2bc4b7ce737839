//! Weighted overflow: the highest weight whose active connections do not exceed it (first
//! on ties), picked from the tree (tree.rs) as fo's, a server whose active connections
//! exceed its weight leaving the tree until one ends.

use xvs_common::SetEntry;

use super::View;

/// Whether the server may take a connection besides being available.
#[inline(always)]
pub fn within_weight<const N: usize>(view: &View<N>, entry: &SetEntry) -> bool {
    view.active(entry) <= entry.weight as u64
}
