//! Weighted failover: the available server with the highest weight (first on ties),
//! picked from the tree (tree.rs) with the same load for every server, so that the weight
//! alone orders them: a new connection climbs no walk over the set.

use xvs_common::SetEntry;

/// Load: the same for every server.
#[inline(always)]
pub fn load() -> u64 {
    1
}

#[inline(always)]
pub fn weight(entry: &SetEntry) -> u32 {
    entry.weight
}
