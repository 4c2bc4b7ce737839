//! The least-connection family (lc, wlc, sed, nq, and the schedulers that fall back to
//! wlc), and fo and ovf (the highest weight: the same load for every server), pick from a
//! tournament tree kept with the service's connection counts
//! ([`SchedTree`]): each node holds the best available set index below it by the
//! scheduler's rule, the lower index on a tie, so the root is the server a walk over the
//! whole set would choose. A new connection reads the root; a count that changes
//! refreshes the nodes above its server (log2 of the set's size rounded up: 7 for 100
//! servers, 3 for 8). A walk over 100 servers cost about 1.1 µs per new connection; the
//! tree's refresh about 25 ns (measured by refreshing twice).
//!
//! Every rule compares as `load(a) * weight(b) > load(b) * weight(a)` (b beats a), the
//! lower index on a tie, each scheduler's file saying what load and weight are; every node
//! packs its server's index, load and weight in a `u64`, so the nodes above compare
//! without the rule. Where a connection ends the refresh is a
//! global BPF function, which the verifier checks once, not at every such place; where a
//! new connection counts it runs in line.
//!
//! The tree is built for one set and one rule: a new set (any change of the real servers)
//! or a new scheduler rebuilds it on the next new connection. CPUs that change counts at
//! once may each write a node from what they read, so a node can lag a count by one
//! change until the next change below it; the root is checked to be available before it
//! is used, and the tree rebuilt if not.

use core::intrinsics::{AtomicOrdering, atomic_and, atomic_or};

use xvs_common::{
    BELOW_HALF_WORDS, BelowHalf, DestCounts, DestSet, MAX_SET, MAX_SET_LARGE, SchedTree,
    ServiceSched, TREE_EMPTY, TREE_NONE, tree_node, tree_rule,
};

use super::{CONTINUE, Request, View, ViewRef, fo, lc, nq, ovf, sed, walk, wlc};
use crate::maps::XVS_BELOW_HALF;

/// The best available index of the set by rule `kind`, from the tree (built first if it
/// was built for another set or rule, or if a racing count left its root unavailable).
#[inline(always)]
pub fn pick<const N: usize>(view: &View<N>, kind: u32, request: &Request<N>) -> Option<u32> {
    let tree = unsafe { &mut (*view.conns).tree };
    let root = index_in::<N>(tree.node(1));
    let set_id = request.set_id;
    if tree.set != set_id
        || tree.kind != kind
        || root.is_some_and(|root| !leaf_available(view, kind, root))
        || crate::maps::scratch()
            .is_some_and(|scratch| tree.recheck_due(unsafe { (*scratch).clock_ns }))
    {
        build(&view, tree, kind, set_id, request.service_id);
        // The key the service was found by (in the scratch space) is kept with the tree.
        if let Some(scratch) = crate::maps::scratch() {
            crate::packet::copy_service_key(&mut tree.service, unsafe { &(*scratch).service_key });
        }
    }
    index_in::<N>(tree.node(1))
}

/// The count of the real server with tree slot `slot` changed: refreshes its leaf and the
/// nodes above it.
#[inline(always)]
pub fn update<const N: usize>(view: &View<N>, slot: u16) {
    // A global function per class (a generic one cannot be global).
    if N == MAX_SET_LARGE {
        xvs_tree_update_large(view.conns as _, view.set as _, view.counts, slot as u32);
    } else {
        xvs_tree_update(view.conns as _, view.set as _, view.counts, slot as u32);
    }
}

/// [`update`] as a global BPF function: the verifier checks it once, on its own, instead
/// of at every place a count changes with the caller's state.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_tree_update(
    conns: *mut ServiceSched<MAX_SET>,
    set: *const DestSet<MAX_SET>,
    counts: *const DestCounts,
    slot: u32,
) -> u32 {
    update_in(conns, set, counts, slot)
}

/// [`xvs_tree_update`] for a service of the large services map.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_tree_update_large(
    conns: *mut ServiceSched<MAX_SET_LARGE>,
    set: *const DestSet<MAX_SET_LARGE>,
    counts: *const DestCounts,
    slot: u32,
) -> u32 {
    update_in(conns, set, counts, slot)
}

#[inline(always)]
fn update_in<const N: usize>(
    conns: *mut ServiceSched<N>,
    set: *const DestSet<N>,
    counts: *const DestCounts,
    slot: u32,
) -> u32 {
    if conns.is_null() || set.is_null() || counts.is_null() {
        return 0;
    }
    refresh_above(&View { set, conns, counts }, slot as u16);
    0
}

/// The body of [`xvs_tree_update`], in line where a new connection counts (a BPF call
/// costs about 8 ns here).
#[inline(always)]
pub fn refresh_above<const N: usize>(view: &View<N>, slot: u16) {
    let tree = unsafe { &mut (*view.conns).tree };
    let kind = tree.kind;
    let Some((index, leaves)) = leaf_of(tree, slot as u32) else {
        return;
    };
    if kind == tree_rule::LOCALITY {
        mark_in_tree(view.conns, view.set, view.counts, index);
    }
    let node = leaves + index;
    let best = set_leaf(view, tree, kind, index, node);
    climb(tree, node, best);
}

/// The set index of the real server with tree slot `slot`, if it has a leaf in `tree`,
/// and the tree's leaf count (its leaf is node `leaves + index`).
#[inline(always)]
fn leaf_of<const N: usize>(tree: &SchedTree<N>, slot: u32) -> Option<(usize, usize)> {
    let index = *tree.index_of.get(slot as usize & (N - 1))? as usize;
    if index == TREE_NONE as usize {
        return None;
    }
    // Node numbers are usize: 32-bit arithmetic makes LLVM zero-extend copies whose
    // bounds the verifier then loses.
    let leaves = tree.leaves as usize & (2 * N - 1);
    let index = index & (N - 1);
    (index < leaves).then_some((index, leaves))
}

/// Sets the nodes above `node` (just set to `best`) up to the root, in straight code
/// (verified once in each global function, once where a new connection counts), carrying
/// the node just set: each level reads only the sibling, and the siblings' reads do not
/// wait on one another.
#[inline(always)]
fn climb<const N: usize>(tree: &mut SchedTree<N>, mut node: usize, mut best: u64) {
    // (Node numbers are below 2 × N and halve each time: the verifier sees the loop end.)
    while node > 1 {
        best = better(best, tree.node(node ^ 1));
        node /= 2;
        *tree.node_mut(node & (N - 1)) = best;
    }
}

/// How long a server set aside for want of a next hop stays out of the tree: its next
/// connection after that asks the kernel's neighbour table again (which goes on resolving
/// it meanwhile, probing a failed neighbour every 5 s), so at most one client in 5 s waits
/// for a retransmitted SYN. Longer than the client's first retransmission (1 s, then 2 s
/// more), which must go elsewhere: set aside for 1 s, the server came back just in time
/// to take the same client's retransmitted SYN, again and again.
const SET_ASIDE_NS: u64 = 5_000_000_000;

/// The real server with tree slot `slot`, just picked from the tree of set `set_id`, has
/// no next hop (its neighbour does not answer): its leaf is emptied so that the next
/// connections go to the others, until the tree is built again [`SET_ASIDE_NS`] from
/// `now` (or earlier, for an earlier server set aside or any set change). Without it a
/// server down when added, which holds no connection, is the least loaded for ever and
/// takes every new connection of the service.
#[inline(always)]
pub fn set_aside<const N: usize>(conns: *mut ServiceSched<N>, set_id: u32, slot: u32, now: u64) {
    let tree = unsafe { &mut (*conns).tree };
    if tree.kind == tree_rule::NONE || tree.set != set_id {
        return;
    }
    let Some((index, leaves)) = leaf_of(tree, slot) else {
        return;
    };
    let node = leaves + index;
    *tree.node_mut(node) = TREE_EMPTY;
    climb(tree, node, TREE_EMPTY);
    let back = now + SET_ASIDE_NS;
    if tree.recheck_at() == 0 || tree.recheck_at() > back {
        tree.set_recheck_at(back);
    }
}

/// (32 bytes: it sits in `build`'s frame, at the end of the new connection's deepest
/// call chain.)
struct Build<const N: usize> {
    view: ViewRef<N>,
    tree: *mut SchedTree<N>,
    /// A locality tree's bitmap (null for the other rules).
    half: *mut BelowHalf,
    kind: u32,
    leaves: u32,
}

/// Step i: slot i belongs to no index yet; leaf i (if there is one) as the set says.
extern "C" fn leaf_step<const N: usize>(i: u32, b: *mut Build<N>) -> i64 {
    let b = unsafe { &mut *b };
    let tree = unsafe { &mut *b.tree };
    let i = i as usize & (N - 1);
    if let Some(index) = tree.index_of.get_mut(i) {
        *index = TREE_NONE;
    }
    let leaves = b.leaves as usize & (2 * N - 1);
    if i < leaves {
        if !b.half.is_null() {
            mark_below_half(&b.view, i, b.half);
        }
        set_leaf(&b.view, tree, b.kind, i, leaves + i);
    }
    CONTINUE
}

extern "C" fn place_step<const N: usize>(i: u32, b: *mut Build<N>) -> i64 {
    let b = unsafe { &mut *b };
    let tree = unsafe { &mut *b.tree };
    if let Some(entry) = b.view.entry(i)
        && let Some(index) = tree.index_of.get_mut(entry.slot as usize & (N - 1))
    {
        *index = i as u16;
    }
    CONTINUE
}

extern "C" fn node_step<const N: usize>(k: u32, b: *mut Build<N>) -> i64 {
    let b = unsafe { &mut *b };
    // Bottom up: node leaves - 1 first, the root last.
    let node = (b.leaves as usize).saturating_sub(1 + k as usize);
    refresh(unsafe { &mut *b.tree }, node);
    CONTINUE
}

/// Builds the tree for set `set_id` of service `service_id` by rule `kind`.
#[inline(never)]
fn build<const N: usize>(
    view: &View<N>,
    tree: *mut SchedTree<N>,
    kind: u32,
    set_id: u32,
    service_id: u32,
) {
    // Leaves: one per possible set index.
    let leaves = view.count().max(1).next_power_of_two().min(N as u32);
    let half = if kind == tree_rule::LOCALITY {
        fresh_below_half(service_id)
    } else {
        core::ptr::null_mut()
    };
    let mut b = Build {
        view: ViewRef::of(view),
        tree,
        half,
        kind,
        leaves,
    };
    walk(N as u32, &mut b, leaf_step::<N>);
    walk(view.count(), &mut b, place_step::<N>);
    walk(leaves - 1, &mut b, node_step::<N>);
    unsafe {
        // Every server is back in the tree.
        (*tree).set_recheck_at(u64::MAX);
        (*tree).leaves = leaves;
        (*tree).kind = kind;
        (*tree).set = set_id;
        (*tree).service_id = service_id;
        if !half.is_null() {
            (*half).set = set_id;
        }
    }
}

/// All zeros: what a service's first [`BelowHalf`] entry is made from.
static NO_BELOW_HALF: BelowHalf = BelowHalf {
    set: 0,
    _pad: 0,
    words: [0; BELOW_HALF_WORDS],
};

/// Service `service_id`'s [`BelowHalf`] entry, made if it has none, emptied and valid for
/// no set until the build that asks for it ends (null if the map is full: the overload
/// check then walks the set, as IPVS does). Out of line: its key and the insert's
/// arguments stay out of `build`'s frame.
#[inline(never)]
fn fresh_below_half(service_id: u32) -> *mut BelowHalf {
    let mut half = XVS_BELOW_HALF.get_ptr_mut(&service_id);
    if half.is_none() {
        let _ = XVS_BELOW_HALF.insert(&service_id, &NO_BELOW_HALF, 0);
        half = XVS_BELOW_HALF.get_ptr_mut(&service_id);
    }
    let Some(half) = half else {
        return core::ptr::null_mut();
    };
    unsafe {
        (*half).set = 0;
        for word in (*half).words.iter_mut() {
            *word = 0;
        }
    }
    half
}

/// The [`BelowHalf`] entry a locality tree keeps (null for the other rules, or if the
/// entry is not the tree's set's).
#[inline(always)]
fn below_half<const N: usize>(tree: &SchedTree<N>) -> *mut BelowHalf {
    if tree.kind != tree_rule::LOCALITY {
        return core::ptr::null_mut();
    }
    match XVS_BELOW_HALF.get_ptr_mut(&tree.service_id) {
        Some(half) if unsafe { (*half).set } == tree.set => half,
        _ => core::ptr::null_mut(),
    }
}

/// Whether some server of set `set_id` has fewer active connections than half its
/// weight, by the service's locality tree; `None` if the service has no such tree for
/// that set (the caller walks the set).
#[inline(always)]
pub fn some_below_half<const N: usize>(view: &View<N>, set_id: u32) -> Option<bool> {
    let tree = unsafe { &(*view.conns).tree };
    if tree.set != set_id {
        return None;
    }
    let half = below_half(tree);
    if half.is_null() {
        return None;
    }
    let words = unsafe { &(*half).words };
    let mut any = 0;
    for word in words.iter().take(N.div_ceil(64)) {
        any |= *word;
    }
    Some(any != 0)
}

/// [`mark_below_half`] in a locality tree's bitmap, out of line: where a new connection
/// counts, the bitmap's lookup would otherwise grow the deepest call chain's frame.
#[inline(never)]
fn mark_in_tree<const N: usize>(
    conns: *mut ServiceSched<N>,
    set: *const DestSet<N>,
    counts: *const DestCounts,
    index: usize,
) {
    if conns.is_null() || set.is_null() || counts.is_null() {
        return;
    }
    let half = below_half(unsafe { &(*conns).tree });
    if !half.is_null() {
        mark_below_half(&View { set, conns, counts }, index & (N - 1), half);
    }
}

/// Records in `half` whether set index `index` (in the set) is below half its weight.
/// Written only when it changes (an atomic operation: other CPUs write other bits of the
/// word); like the nodes, a bit can lag a racing count change until the server's next one.
#[inline(always)]
fn mark_below_half<const N: usize>(view: &View<N>, index: usize, half: *mut BelowHalf) {
    let below = index < view.count() as usize
        && view
            .entry(index as u32)
            .is_some_and(|e| view.active(e) * 2 < e.weight as u64);
    let word = unsafe { &mut (*half).words[(index / 64) & (BELOW_HALF_WORDS - 1)] };
    let bit = 1u64 << (index % 64);
    if (*word & bit != 0) != below {
        unsafe {
            if below {
                atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(word, bit);
            } else {
                atomic_and::<u64, u64, { AtomicOrdering::Relaxed }>(word, !bit);
            }
        }
    }
}

/// Sets leaf `node` (leaves + index) to `index` with its load and weight by rule `kind` if
/// that server is available, else to [`TREE_EMPTY`]; returns what it set. A locality
#[inline(always)]
fn set_leaf<const N: usize>(
    view: &View<N>,
    tree: &mut SchedTree<N>,
    kind: u32,
    index: usize,
    node: usize,
) -> u64 {
    let index = index & (N - 1);
    let mut value = TREE_EMPTY;
    if let Some(entry) = view.entry(index as u32)
        && leaf_available(view, kind, index as u32)
    {
        let (load, weight) = match kind {
            tree_rule::LC => (lc::load(view, entry), lc::weight(entry)),
            tree_rule::SED => (sed::load(view, entry), sed::weight(entry)),
            tree_rule::NQ => (nq::load(view, entry), nq::weight(entry)),
            tree_rule::FO | tree_rule::OVF => (fo::load(), fo::weight(entry)),
            // tree_rule::WLC and LOCALITY (a tree is only ever built for one of these).
            _ => (wlc::load(view, entry), wlc::weight(entry)),
        };
        value = tree_node(load, weight, index as u16);
    }
    *tree.node_mut(node) = value;
    value
}

/// Sets inner node `node` (1..N) to the better of its children.
#[inline(always)]
fn refresh<const N: usize>(tree: &mut SchedTree<N>, node: usize) {
    let node = node & (N - 1);
    let (left, right) = (tree.node(2 * node), tree.node(2 * node + 1));
    *tree.node_mut(node) = better(left, right);
}

/// The better of two nodes: the lower `load / weight`, compared as
/// `load(a) * weight(b) < load(b) * weight(a)`, then the lower index (the walk's first),
/// one total order, so which of two siblings is the left one does not matter. Without a
/// branch, which the data would mispredict: the products are below 2^48, so
/// `(load(b) * weight(a) - load(a) * weight(b)) * 2048 + index(b) - index(a)` is negative
/// exactly when `b` is better (indices are below 1024, so 2048 keeps the two apart). ([`TREE_EMPTY`] loses to every real node, whose weight is
/// at least 1: the products differ by 2^32 or more.)
#[inline(always)]
fn better(a: u64, b: u64) -> u64 {
    let (load_a, weight_a, index_a) = (a >> 32, (a >> 16) & 0xffff, a & 0xffff);
    let (load_b, weight_b, index_b) = (b >> 32, (b >> 16) & 0xffff, b & 0xffff);
    const _: () = assert!(MAX_SET_LARGE < 1 << 11);
    let order = ((load_b * weight_a).wrapping_sub(load_a * weight_b) << 11)
        .wrapping_add(index_b.wrapping_sub(index_a));
    a ^ ((a ^ b) & sign_mask(order))
}

/// All ones if `value`'s top bit is set, else 0, by an arithmetic shift LLVM cannot see
/// into: BPF has no conditional move, and LLVM turns a select it recognises in mask
/// arithmetic back into a branch.
#[inline(always)]
fn sign_mask(mut value: u64) -> u64 {
    unsafe { core::arch::asm!("{0} s>>= 63", inout(reg) value, options(pure, nomem, nostack)) };
    value
}

/// The set index a node holds, if any.
#[inline(always)]
fn index_in<const N: usize>(node: u64) -> Option<u32> {
    // The index taken under the set's own mask (set indices are below N): with the 16-bit
    // field's mask LLVM keeps one register for both and the verifier loses the bound.
    (node & 0xffff != TREE_NONE as u64).then_some((node & (N as u64 - 1)) as u32)
}

/// Whether set index `index` may take a connection by rule `kind`.
#[inline(always)]
fn leaf_available<const N: usize>(view: &View<N>, kind: u32, index: u32) -> bool {
    index < view.count()
        && view.entry(index).is_some_and(|e| {
            view.available(e) && (kind != tree_rule::OVF || ovf::within_weight(view, e))
        })
}
