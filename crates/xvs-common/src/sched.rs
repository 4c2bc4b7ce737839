//! What the datapath keeps per service for scheduling: connection counts by real server,
//! the scheduler's cursors, the least-connection tree, the weighted round-robin cycle.

use crate::{MAX_SET, ServiceKey, tree_rule};

/// Longest weighted round-robin cycle stored per real-server set.
pub const MAX_WRR_CYCLE: u32 = 65_536;

/// Connection counts of one real server, as IPVS keeps them (written by the datapath), by
/// the server's counter slot in `XVS_DEST_COUNTS`: they stay with the server whatever
/// happens to its service's entry, and a removed server's keep falling as its connections
/// end (its counter slot is not handed out again until they are zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotConns {
    pub active: u32,
    pub inactive: u32,
    /// The server's persistence templates (the low 31 bits: [`SlotConns::persistent`]),
    /// and in the top bit IPVS's OVERLOAD flag ([`SlotConns::OVERLOAD`]). The flag lives
    /// here, beside the counts it follows, because every place that asks whether a server
    /// is overloaded already holds these counts: a flag elsewhere cost a lookup that took
    /// the least-connection tree's build past the kernel's 512-byte stack
    /// (docs/DECISIONS.md, "-y").
    pub templates_and_overload: u32,
}

impl SlotConns {
    /// IPVS's `IP_VS_DEST_F_OVERLOAD`: set when a new connection brings the server's
    /// active and inactive connections to its upper threshold (`-x`), cleared when one
    /// ending brings them below its lower threshold (`-y`; without one, below 3/4 of `-x`).
    pub const OVERLOAD: u32 = 1 << 31;

    /// The server's persistence templates.
    #[inline(always)]
    pub fn persistent(&self) -> u32 {
        self.templates_and_overload & !Self::OVERLOAD
    }

    #[inline(always)]
    pub fn overload_flag(&self) -> bool {
        self.templates_and_overload & Self::OVERLOAD != 0
    }

    /// No connection and no template counted (the overload flag aside): the counter
    /// slot may be handed to another server.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.active == 0 && self.inactive == 0 && self.persistent() == 0
    }
}

/// Whether a real server with `total` active and inactive connections, upper threshold
/// `upper` (`-x`) and lower threshold `lower` (as [`lower_threshold`] makes it from
/// `-y`), is overloaded, given IPVS's OVERLOAD flag as last set or cleared (`flag`):
/// IPVS's hysteresis. At or above `-x` it is; below the lower threshold it is not,
/// whatever the flag says (so a flag not yet cleared, or thresholds changed since it was
/// set, never keeps a server out below it); between them, the flag tells: a server that
/// reached `-x` stays out until enough of its connections end. (One comparison, as `-y`
/// is never above `-x`, which both IPVS and xvs refuse.)
#[inline(always)]
pub fn overloaded(total: u32, upper: u32, lower: u32, flag: bool) -> bool {
    // The threshold the flag selects, chosen without a branch: in the datapath a branch
    // here is one more path in every walk and tree build the verifier follows.
    let flagged = 0u32.wrapping_sub(flag as u32);
    let threshold = upper ^ ((upper ^ lower) & flagged);
    upper != 0 && total >= threshold
}

/// The total below which a connection's end clears OVERLOAD (`ip_vs_unbind_dest`): `-y`,
/// or without one 3/4 of `-x` (IPVS's `total * 4 < upper * 3`, rounded up here so that
/// `total < threshold` says the same).
#[inline(always)]
pub fn lower_threshold(upper: u32, lower: u32) -> u32 {
    if lower != 0 {
        lower
    } else {
        ((upper as u64 * 3).div_ceil(4)) as u32
    }
}

/// Every real server's connection counts, by counter slot (the one value of
/// `XVS_DEST_COUNTS`: 1.5 MiB).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DestCounts {
    pub slots: [SlotConns; crate::MAX_STATS as usize],
}

impl DestCounts {
    /// The counts of counter slot `slot` (masked into the array: `MAX_STATS` is a power
    /// of two, and the mask is what lets the verifier see the access in bounds).
    #[inline(always)]
    pub fn of(&self, slot: u32) -> &SlotConns {
        &self.slots[slot as usize & (crate::MAX_STATS as usize - 1)]
    }

    #[inline(always)]
    pub fn of_mut(&mut self, slot: u32) -> &mut SlotConns {
        &mut self.slots[slot as usize & (crate::MAX_STATS as usize - 1)]
    }
}

const _: () = assert!(crate::MAX_STATS.is_power_of_two());

/// A service's scheduling state the datapath writes: the scheduler's state and the
/// least-connection tree (one map value, so a new connection finds both with one lookup).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ServiceSched<const N: usize = MAX_SET> {
    pub sched: SchedState,
    pub tree: SchedTree<N>,
}

/// No index: a tree node or slot with no available real server.
pub const TREE_NONE: u16 = u16::MAX;

/// A tournament tree over a set's indices for the least-connection schedulers (lc, wlc, sed,
/// nq): each node holds the best available index below it by the scheduler's rule, the
/// lower index on a tie, so the root is what a walk over the set would choose. The
/// datapath builds it for a set and keeps it as counts change; user space only zeroes it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedTree<const N: usize = MAX_SET> {
    /// The set the tree was built for (0: none yet; set ids start at 1).
    pub set: u32,
    /// The rule it orders by ([`crate::tree_rule`]; `NONE` when none is built).
    pub kind: u32,
    /// Leaves: the set's size rounded up to a power of two (a count change rebuilds it,
    /// as any set change does), so a refresh climbs log2(leaves) levels, not eight.
    pub leaves: u32,
    /// The service's id (written when the tree is built; a locality tree finds its
    /// [`BelowHalf`] entry by it).
    pub service_id: u32,
    /// The service it was built for, by which a connection's end finds the set.
    pub service: ServiceKey,
    /// The set index of each tree slot ([`TREE_NONE`] if not in the set).
    pub index_of: [u16; N],
    /// `nodes[n]` for n in 1..leaves: the best of the leaves below (node n's children are
    /// 2n and 2n+1); `nodes[leaves + i]`: leaf i, the set's index i if that server is
    /// available. Each node is packed as [`tree_node`] makes it: the index with its load
    /// and weight by the tree's rule, so two nodes compare as
    /// `load(a) * weight(b) > load(b) * weight(a)` from their own eight bytes, whatever
    /// the rule (see the datapath's tree.rs).
    /// (2 × N nodes, as two halves: array lengths cannot be computed from `N`; read
    /// through [`SchedTree::node`].) `nodes[0]`, which is no node (the root is 1), holds
    /// [`SchedTree::recheck_at`].
    pub nodes: [[u64; N]; 2],
}

impl<const N: usize> SchedTree<N> {
    /// Node `n`, masked into the 2 × N nodes (`N` is a power of two; the mask lets the
    /// verifier see the access in bounds).
    #[inline(always)]
    pub fn node(&self, n: usize) -> u64 {
        self.nodes.as_flattened()[n & (2 * N - 1)]
    }

    #[inline(always)]
    pub fn node_mut(&mut self, n: usize) -> &mut u64 {
        &mut self.nodes.as_flattened_mut()[n & (2 * N - 1)]
    }

    /// When (the connection table's clock, ns) the tree is to be built again, taking back
    /// the servers set aside for want of a next hop; 0 or [`u64::MAX`]: never. Kept in
    /// node 0, which is no node, so it costs no layout change (a tree from before it
    /// holds 0 or [`TREE_EMPTY`] there, a time never reached).
    #[inline(always)]
    pub fn recheck_at(&self) -> u64 {
        self.nodes[0][0]
    }

    #[inline(always)]
    pub fn set_recheck_at(&mut self, at: u64) {
        self.nodes[0][0] = at;
    }

    /// Whether the time to take back set-aside servers has come.
    #[inline(always)]
    pub fn recheck_due(&self, now: u64) -> bool {
        self.recheck_at().wrapping_sub(1) < now
    }
}

/// A tree node: `load` (saturated at `u32::MAX`: past 16 million active connections on
/// one server the tree sees ties) in the high half, then `weight` (0..=65535, as ipvsadm
/// takes it; saturated) and the set index.
pub const fn tree_node(load: u64, weight: u32, index: u16) -> u64 {
    let load = if load > u32::MAX as u64 {
        u32::MAX as u64
    } else {
        load
    };
    let weight = if weight > u16::MAX as u32 {
        u16::MAX as u64
    } else {
        weight as u64
    };
    (load << 32) | (weight << 16) | index as u64
}

/// A node with no available server: index [`TREE_NONE`], the highest load and weight 0, so
/// that every real node (weight ≥ 1) beats it and it beats none.
pub const TREE_EMPTY: u64 = tree_node(u32::MAX as u64, 0, TREE_NONE);

impl<const N: usize> Default for SchedTree<N> {
    fn default() -> Self {
        let mut tree = SchedTree {
            set: 0,
            kind: tree_rule::NONE,
            leaves: 0,
            service_id: 0,
            service: ServiceKey::default(),
            index_of: [TREE_NONE; N],
            nodes: [[TREE_EMPTY; N]; 2],
        };
        tree.set_recheck_at(u64::MAX);
        tree
    }
}

/// Words of a [`BelowHalf`] bitmap: one bit per set index of the largest set.
pub const BELOW_HALF_WORDS: usize = crate::MAX_SET_LARGE / 64;

/// Which servers of a set have fewer active connections than half their weight, by set
/// index (bit `i % 64` of word `i / 64`): what lblc's and lblcr's overload check asks
/// (IPVS's `is_overloaded` walks the set for one). Kept by the datapath with a locality
/// service's tree, as its counts change, in `XVS_BELOW_HALF` by service id; valid for
/// set `set` only.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BelowHalf {
    pub set: u32,
    pub _pad: u32,
    pub words: [u64; BELOW_HALF_WORDS],
}

/// twos's draw by weight without a walk: the running sums of the set's weights by set
/// index (`sums[i]`: the weights of indices 0..=i), for set `set`, in `XVS_TWOS` by service
/// id. Written by the datapath when twos first schedules for a set; used only while no
/// server of the set has an upper connection threshold (`bounded` 0), since then a
/// server is available exactly when its weight is above 0 and the sums never change.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwosSums {
    pub set: u32,
    /// 1 if some server of the set has an upper threshold: the sums are not used.
    pub bounded: u32,
    /// Servers in the set.
    pub count: u32,
    pub _pad: u32,
    pub sums: [u32; crate::MAX_SET_LARGE],
}

/// Per-service scheduler state (round-robin cursor).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedState {
    /// rr: index of the last server chosen, plus one (0 = none yet).
    pub cursor: u32,
    /// wrr: next position in the cycle.
    pub position: u32,
}

/// A position in a set's weighted round-robin cycle.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WrrKey {
    pub set: u32,
    pub position: u32,
}

/// Slots of a hashing scheduler's table: sh and dh use the first 256, mh 4093 (IPVS's
/// sizes); a power of two, so an index is masked into it.
pub const LOOKUP_SLOTS: usize = 4096;
/// Slots of sh's and dh's tables (`CONFIG_IP_VS_SH_TAB_BITS`, `..._DH_TAB_BITS` = 8).
pub const HASH_TABLE_SLOTS: u32 = 256;
/// Slots of mh's table (`CONFIG_IP_VS_MH_TAB_INDEX` = 12: the prime 4093).
pub const MAGLEV_TABLE_SLOTS: u32 = 4093;
/// A slot with no server.
pub const LOOKUP_NONE: u16 = u16::MAX;

/// The table of a set for sh, dh or mh: the set index of the server in each slot, built
/// by user space with xvs-core's reference scheduler, read by the datapath's.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupTable {
    pub slots: [u16; LOOKUP_SLOTS],
}

/// Members a locality entry of lblcr keeps at most (lblc keeps one): a set that would grow
/// past it loses its oldest member.
pub const LOCALITY_MEMBERS: usize = 8;

/// What lblc and lblcr remember per destination address of a service (IPVS's
/// `ip_vs_lblc_entry`, `ip_vs_lblcr_entry`).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalityKey {
    pub addr: [u8; 16],
    pub service_id: u32,
    pub family: u8,
    pub _pad: [u8; 3],
}

/// A real server as a locality entry names it: by tree slot (to find it in the set), and
/// counter slot and id (to be sure it is the same server).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalityMember {
    pub dest_stats: u32,
    pub dest_id: u32,
    pub slot: u16,
    pub _pad: u16,
}

/// The server (lblc) or servers (lblcr, newest first) of a destination address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalityEntry {
    /// When it was last used and last changed, in the connection table's clock.
    pub last_use: u64,
    pub last_modified: u64,
    pub count: u32,
    pub _pad: u32,
    pub members: [LocalityMember; LOCALITY_MEMBERS],
}

/// Nanoseconds an unused locality entry is kept, and after which an unchanged lblcr set
/// sheds its busiest member (`lblc_expiration`, `lblcr_expiration`: 24 hours).
pub const LOCALITY_EXPIRATION_NS: u64 = 24 * 60 * 60 * 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    /// `total < lower_threshold(..)` says what `ip_vs_unbind_dest` tests, for every total,
    /// with and without `-y`.
    #[test]
    fn the_lower_threshold_is_ipvs_s() {
        for upper in 1..200u32 {
            for lower in 0..=upper {
                for total in 0..300u32 {
                    let ipvs = if lower != 0 {
                        total < lower
                    } else {
                        total * 4 < upper * 3
                    };
                    assert_eq!(
                        total < lower_threshold(upper, lower),
                        ipvs,
                        "{total} {upper} {lower}"
                    );
                }
            }
        }
        assert_eq!(lower_threshold(i32::MAX as u32, 0), 1_610_612_736);
    }

    /// Out at `-x`; between the thresholds, out only if it came from above; in below `-y`;
    /// never out without `-x`.
    #[test]
    fn overload_has_ipvs_s_hysteresis() {
        let (upper, lower) = (10, lower_threshold(10, 5));
        assert!(overloaded(10, upper, lower, false));
        assert!(overloaded(12, upper, lower, true));
        assert!(overloaded(7, upper, lower, true));
        assert!(overloaded(5, upper, lower, true));
        assert!(!overloaded(4, upper, lower, true));
        assert!(!overloaded(7, upper, lower, false));
        let without_y = lower_threshold(upper, 0);
        assert!(!overloaded(7, upper, without_y, true), "3/4 of 10");
        assert!(overloaded(8, upper, without_y, true));
        assert!(!overloaded(100, 0, 0, true));
    }

    #[test]
    fn the_overload_flag_is_not_a_template() {
        let mut slot = SlotConns {
            templates_and_overload: 3 | SlotConns::OVERLOAD,
            ..SlotConns::default()
        };
        assert_eq!(slot.persistent(), 3);
        assert!(slot.overload_flag() && !slot.is_empty());
        slot.templates_and_overload = SlotConns::OVERLOAD;
        assert!(slot.is_empty());
    }
}
