//! The least-connection family (lc, wlc, sed, nq, and the schedulers that fall back to
//! wlc) picks from a tournament tree kept with the service's connection counts
//! ([`SchedTree`]): each node holds the best available set index below it by the
//! scheduler's rule, the lower index on a tie, so the root is the server a walk over the
//! whole set would choose. A new connection reads the root; a count that changes
//! refreshes the eight nodes above its server. A walk over 100 servers cost about 1.1 µs
//! per new connection (ten times the floor); reading the root costs a load.
//!
//! The tree is built for one set and one rule: a new set (any change of the real servers)
//! or a new scheduler rebuilds it on the next new connection. CPUs that change counts at
//! once may each write a node from what they read, so a node can lag a count by one
//! change until the next change below it; the root is checked to be available before it
//! is used, and the tree rebuilt if not.

use xvs_common::{MAX_SET, SchedTree, SetEntry, TREE_NONE};

use super::{CONTINUE, View, code, lc, nq, sed, walk, wlc};

/// Leaves: one per possible set index.
const LEAVES: u32 = MAX_SET as u32;
/// Levels of inner nodes above a leaf (log2 of [`LEAVES`]).
const LEVELS: u32 = 8;
const NONE: u32 = TREE_NONE as u32;

/// The rule a tree orders by for `scheduler`, or 0 if the scheduler does not use one.
#[inline(always)]
pub fn kind_of(scheduler: u8) -> u32 {
    match scheduler {
        code::RR | code::WRR | code::FO | code::OVF | code::TWOS => 0,
        code::LC | code::SED | code::NQ => scheduler as u32,
        // wlc, and lblc, lblcr, dh, sh and mh until the datapath runs them.
        _ => code::WLC as u32,
    }
}

/// The best available index of the set by rule `kind`, from the tree (built first if it
/// was built for another set or rule).
#[inline(always)]
pub fn pick(view: View, kind: u32, set_id: u32) -> Option<u32> {
    let tree = unsafe { &mut (*view.conns).tree };
    if tree.set != set_id || tree.kind != kind {
        build(&view, tree, kind, set_id);
    }
    let mut best = tree.nodes[1] as u32;
    if best != NONE && !leaf_available(&view, best) {
        // A node lagged behind a racing count: build afresh.
        build(&view, tree, kind, set_id);
        best = tree.nodes[1] as u32;
    }
    (best != NONE).then_some(best)
}

/// The count of connection-count slot `slot` changed: refreshes its leaf and the nodes
/// above it.
#[inline(never)]
pub fn update(view: &View, slot: u16) {
    let tree = unsafe { &mut (*view.conns).tree };
    let kind = tree.kind;
    let Some(index) = tree.index_of.get(slot as usize & (MAX_SET - 1)) else {
        return;
    };
    let index = *index as usize;
    if index == TREE_NONE as usize {
        return;
    }
    // Node numbers are usize: 32-bit arithmetic makes LLVM zero-extend copies whose
    // bounds the verifier then loses.
    let mut node = MAX_SET + (index & (MAX_SET - 1));
    set_leaf(view, tree, node);
    let mut level = 0;
    while level < LEVELS {
        node /= 2;
        refresh(view, tree, kind, node);
        level += 1;
    }
}

struct Build {
    view: View,
    tree: *mut SchedTree,
    kind: u32,
}

/// Step i: slot i belongs to no index yet; leaf i as the set says.
extern "C" fn leaf_step(i: u32, b: *mut Build) -> i64 {
    let b = unsafe { &mut *b };
    let tree = unsafe { &mut *b.tree };
    let i = i as usize & (MAX_SET - 1);
    if let Some(index) = tree.index_of.get_mut(i) {
        *index = TREE_NONE;
    }
    set_leaf(&b.view, tree, MAX_SET + i);
    CONTINUE
}

extern "C" fn place_step(i: u32, b: *mut Build) -> i64 {
    let b = unsafe { &mut *b };
    let tree = unsafe { &mut *b.tree };
    if let Some(entry) = b.view.entry(i)
        && let Some(index) = tree.index_of.get_mut(entry.slot as usize & (MAX_SET - 1))
    {
        *index = i as u16;
    }
    CONTINUE
}

extern "C" fn node_step(k: u32, b: *mut Build) -> i64 {
    let b = unsafe { &mut *b };
    // Bottom up: node MAX_SET - 1 first, the root last.
    let node = (MAX_SET - 1).saturating_sub(k as usize);
    refresh(&b.view, unsafe { &mut *b.tree }, b.kind, node);
    CONTINUE
}

/// Builds the tree for set `set_id` by rule `kind`.
#[inline(never)]
fn build(view: &View, tree: *mut SchedTree, kind: u32, set_id: u32) {
    let mut b = Build {
        view: *view,
        tree,
        kind,
    };
    walk(LEAVES, &mut b, leaf_step);
    walk(view.count(), &mut b, place_step);
    walk(LEAVES - 1, &mut b, node_step);
    unsafe {
        (*tree).kind = kind;
        (*tree).set = set_id;
    }
}

/// Sets leaf `node` (MAX_SET + index) to its index if that server is available.
#[inline(always)]
fn set_leaf(view: &View, tree: &mut SchedTree, node: usize) {
    let index = (node & (MAX_SET - 1)) as u32;
    let value = if leaf_available(view, index) {
        index as u16
    } else {
        TREE_NONE
    };
    if let Some(leaf) = tree.nodes.get_mut(node & (2 * MAX_SET - 1)) {
        *leaf = value;
    }
}

/// Sets inner node `node` (1..MAX_SET) to the better of its children.
#[inline(always)]
fn refresh(view: &View, tree: &mut SchedTree, kind: u32, node: usize) {
    let node = node & (MAX_SET - 1);
    let left = tree.nodes.get(2 * node).map_or(NONE, |v| *v as u32);
    let right = tree.nodes.get(2 * node + 1).map_or(NONE, |v| *v as u32);
    let best = better(view, kind, left, right);
    if let Some(slot) = tree.nodes.get_mut(node) {
        *slot = best as u16;
    }
}

#[inline(always)]
fn leaf_available(view: &View, index: u32) -> bool {
    index < view.count() && view.entry(index).is_some_and(|e| view.available(e))
}

/// The better of two indices (`left` the lower), either of which may be NONE.
#[inline(always)]
fn better(view: &View, kind: u32, left: u32, right: u32) -> u32 {
    if right == NONE {
        return left;
    }
    if left == NONE {
        return right;
    }
    match (view.entry(left), view.entry(right)) {
        (Some(l), Some(r)) if beats(view, kind, l, r) => right,
        _ => left,
    }
}

/// True if `right` is strictly better than `left` by rule `kind`.
#[inline(always)]
fn beats(view: &View, kind: u32, left: &SetEntry, right: &SetEntry) -> bool {
    match kind as u8 {
        code::LC => lc::beats(view, left, right),
        code::SED => sed::beats(view, left, right),
        code::NQ => nq::beats(view, left, right),
        _ => wlc::beats(view, left, right),
    }
}
