//! Types and constants shared by the XDP programs (`xvs-ebpf`) and user space.
//!
//! Everything here is `#[repr(C)]` and plain data: the same bytes are written by one side
//! and read by the other through BPF maps. Defined once, here.
#![no_std]

/// Name of the director XDP program (its function name in `xvs-ebpf`, as the kernel
/// reports it; the kernel keeps at most 15 characters).
pub const DIRECTOR_PROGRAM: &str = "xvs_director";
/// Name of the tunnel decapsulation XDP program.
pub const DECAP_PROGRAM: &str = "xvs_decap";

/// Index of the loopback interface in every network namespace. The director program sits
/// there (generic mode) to anchor the namespace's maps, and passes loopback traffic untouched.
pub const LOOPBACK_INDEX: u32 = 1;

/// Map names (the kernel keeps at most 15 characters, so they stay short).
pub mod map_names {
    /// Per-CPU datapath counters, indexed by [`crate::counter`].
    pub const COUNTERS: &str = "XVS_COUNTERS";
    /// Small array of control values, indexed by [`crate::meta`].
    pub const META: &str = "XVS_META";
    /// Virtual services: [`crate::ServiceKey`] → [`crate::ServiceEntry`] (the service
    /// and its real-server set).
    pub const SERVICES: &str = "XVS_SERVICES";
    /// Real servers: array, two entries per counter slot (`stats * 2 + half`, see
    /// [`crate::SetEntry::half`]) → [`crate::DestValue`].
    pub const DESTS: &str = "XVS_DESTS";
    /// Per-CPU traffic counters of services and real servers, by counter slot →
    /// [`crate::Counters`].
    pub const STATS: &str = "XVS_STATS";
    /// Per-CPU cache of real servers' next hops: the server's counter slot modulo
    /// [`crate::HOP_CACHE_SLOTS`] → [`crate::CachedHop`].
    pub const HOPS: &str = "XVS_HOPS";
    /// What the datapath keeps per service (connection counts, scheduler state,
    /// least-connection tree) by service id → [`crate::ServiceConns`].
    pub const CONN_COUNTS: &str = "XVS_CONN_COUNTS";
    /// Weighted round-robin cycles: [`crate::WrrKey`] → set index.
    pub const WRR: &str = "XVS_WRR";
    /// The connection table: [`crate::ConnKey`] → [`crate::Conn`].
    pub const CONNS: &str = "XVS_CONNS";
    /// Tunnel source address by a real server's counter slot → [`crate::TunnelSource`].
    pub const TUNNEL_SOURCES: &str = "XVS_TUN_SRC";
    /// Connections to check for expiry, [`crate::SweepRecord`] queues, each in due order
    /// (see [`crate::sweep_queue`]): records that wait 10 s...
    pub const SWEEP: &str = "XVS_SWEEP";
    /// ...60 s...
    pub const SWEEP_60: &str = "XVS_SWEEP_60";
    /// ...300 s...
    pub const SWEEP_300: &str = "XVS_SWEEP_300";
    /// ...and records due in less than 10 s, at their entry's expiry.
    pub const SWEEP_SOON: &str = "XVS_SWEEP_SOON";
    /// When the head of each sweep queue is due, as last seen (a hint, read lock-free).
    pub const SWEEP_DUE: &str = "XVS_SWEEP_DUE";
    /// Next hops written by user space, for when the kernel's FIB lookup cannot be used
    /// (forwarding disabled on a DR director): address → [`crate::Neighbour`].
    pub const NEIGHBOURS: &str = "XVS_NEIGH";
}

/// Where to send a frame for an address: the egress interface and the MACs.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neighbour {
    pub ifindex: u32,
    pub smac: [u8; 6],
    pub dmac: [u8; 6],
}

/// A real server's next hop as the kernel's FIB gave it, kept for new connections for
/// [`HOP_CACHE_NS`] (a FIB lookup is about a fifth of a new flow's cost).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CachedHop {
    pub l2: Neighbour,
    /// The real server it is for (ids are never reused, counter slots are).
    pub dest_id: u32,
    /// The interface the looked-up frame came in by (the FIB lookup's input).
    pub ingress: u32,
    /// Until when it may be used, in the connection table's clock.
    pub until: u64,
}

/// Slots of the next-hop cache (a power of two). Direct-mapped: real servers whose counter
/// slots collide take turns, which costs a FIB lookup, never a wrong hop. Small, because
/// a per-CPU array is allocated slot by slot when the director is created.
pub const HOP_CACHE_SLOTS: u32 = 8192;

/// How long a cached next hop is used before the FIB is asked again: a real server's new
/// MAC (or a new route) reaches new connections within this time.
pub const HOP_CACHE_NS: u64 = 1_000_000_000;

/// Capacity of the service map.
pub const MAX_SERVICES: u32 = 65_536;
/// Capacity of the real-server map. A change rewrites a service's real servers under a new
/// set before dropping the old one, so the map needs room for one service twice over.
pub const MAX_DESTS: u32 = 262_144;
/// Most slots of the per-CPU counter array (one per service and per real server). A
/// per-CPU array is the cheapest counter a packet can update, but it costs
/// `slots × 40 bytes × CPUs` whether used or not, so a director is created with fewer
/// slots on a machine with many CPUs (see `xvs_datapath::objects`).
pub const MAX_STATS: u32 = 131_072;

/// `BPF_F_NO_PREALLOC`: entries are allocated when written, so a namespace pays only for
/// the services it has.
pub const NO_PREALLOC: u32 = 1;

/// Address family codes in map entries.
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

/// What identifies a virtual service in the datapath. IPv4 addresses sit in the first four
/// bytes of `addr`; a firewall-mark service has `fwmark` set and no address, port or
/// protocol.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub addr: [u8; 16],
    pub fwmark: u32,
    /// Network byte order, as in the packet.
    pub port: u16,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// IP protocol number (0 for fwmark services).
    pub protocol: u8,
}

/// A virtual service's parameters and where its real servers are.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceValue {
    /// Stable id: the service's counters are kept under it.
    pub id: u32,
    /// Its real-server set's id: every change of the set (or of the service) gives a new
    /// one, which the wrr cycle is keyed by and the least-connection tree is built for.
    pub dest_set: u32,
    /// How many real servers the set has (indexes 0..dest_count, in IPVS's list order).
    pub dest_count: u32,
    /// Creation sequence: the order `--nosort` lists services in.
    pub order: u32,
    /// `IP_VS_SVC_F_*` flags.
    pub flags: u32,
    /// Persistence timeout, seconds.
    pub timeout: u32,
    /// Persistence mask (IPv4, host order) or prefix length (IPv6).
    pub netmask: u32,
    /// Scheduler code (`xvs_core::sched::Scheduler::code`).
    pub scheduler: u8,
    /// Persistence engine: 0 none, 1 sip.
    pub pe: u8,
    pub _pad: [u8; 2],
    /// The service's slot in the counter array.
    pub stats: u32,
}

/// A real server. (8-byte aligned, as the address fields the datapath copies in words.)
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestValue {
    pub addr: [u8; 16],
    /// Stable id: counters and connection counts are kept under it.
    pub id: u32,
    pub weight: u32,
    /// The last non-zero weight (Maglev tables are built from it).
    pub last_weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// Network byte order.
    pub port: u16,
    /// GUE port, host order.
    pub tun_port: u16,
    pub family: u8,
    /// `IP_VS_CONN_F_*` forwarding code: 0 masq, 2 tunnel, 3 route.
    pub forward: u8,
    /// 0 ipip, 1 gue, 2 gre.
    pub tun_type: u8,
    /// 0 none, 1 checksum, 2 remote checksum.
    pub tun_csum: u8,
    /// Where the server's connection counts are kept in its service's [`ServiceConns`].
    pub slot: u16,
    /// Which of its two entries in the real-server array holds this value.
    pub half: u16,
    /// The server's slot in the counter array.
    pub stats: u32,
}

impl DestValue {
    /// Its index in the real-server array.
    pub fn array_index(&self) -> u32 {
        dest_index(self.stats, self.half)
    }
}

/// The real-server array's index of the server with counter slot `stats`, in `half`: each
/// server has two entries, so a changed server is written to the one the live set does
/// not use, and the new set switches to it whole.
#[inline(always)]
pub const fn dest_index(stats: u32, half: u16) -> u32 {
    stats * 2 + (half & 1) as u32
}

/// The address tunnelled packets to a real server leave from (all zeros: none yet), kept
/// by the server's counter slot. 8-byte aligned, so the datapath reads it in words.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelSource {
    pub addr: [u8; 16],
}

impl TunnelSource {
    /// True if no address is set.
    #[inline(always)]
    pub fn is_none(&self) -> bool {
        let words = self.addr.as_ptr() as *const u64;
        // SAFETY: `addr` is 16 bytes at the start of an 8-byte aligned struct.
        unsafe { words.read() | words.add(1).read() == 0 }
    }
}

/// Traffic counters of a service or real server (per CPU in the map, summed on read).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] data without padding holes that matter, any bit pattern valid.
    unsafe impl aya::Pod for super::ServiceKey {}
    unsafe impl aya::Pod for super::ServiceValue {}
    unsafe impl aya::Pod for super::DestValue {}
    unsafe impl aya::Pod for super::Counters {}
    unsafe impl aya::Pod for super::TunnelSource {}
}

/// Indexes into the per-CPU `XVS_COUNTERS` array.
pub mod counter {
    /// Frames the director program saw.
    pub const RX_FRAMES: u32 = 0;
    /// Bytes of those frames.
    pub const RX_BYTES: u32 = 1;
    /// Frames that were not Ethernet + IPv4/IPv6 and passed untouched.
    pub const NOT_IP: u32 = 2;
    /// Frames too short for the headers they announce (passed to the stack).
    pub const MALFORMED: u32 = 3;
    /// IPv4 fragments and IPv6 packets with extension headers (passed to the stack).
    pub const FRAGMENTS: u32 = 4;
    /// Packets forwarded for a virtual service.
    pub const FORWARDED: u32 = 5;
    /// New connections scheduled.
    pub const NEW_CONNECTIONS: u32 = 6;
    /// Packets for a service that no real server could take (passed to the stack, which
    /// refuses them as IPVS does).
    pub const NO_DESTINATION: u32 = 7;
    /// Packets for a service with no connection that may not start one (TCP without SYN).
    pub const NOT_SCHEDULED: u32 = 8;
    /// Packets dropped because no route or neighbour is known for the real server.
    pub const NO_ROUTE: u32 = 9;
    /// Packets dropped because the connection table is full.
    pub const TABLE_FULL: u32 = 10;
    /// Packets dropped: tunnel encapsulation not possible (type, family, no source, room).
    pub const TUNNEL_FAILED: u32 = 11;
    /// Connections found expired and forgotten.
    pub const EXPIRED: u32 = 12;
    /// New connections of services whose scheduler the datapath does not run yet
    /// (lblc, lblcr, dh, sh, mh): scheduled with wlc.
    pub const SCHED_FALLBACK: u32 = 13;
    /// Sweep records taken off a queue, their entry looked at (forgotten if expired,
    /// queued again if not): how hard the expiry sweep works.
    pub const SWEEP_LOOKS: u32 = 14;
    /// Number of slots in the array.
    pub const COUNT: u32 = 16;
}

/// Indexes into the `XVS_META` array.
pub mod meta {
    /// Layout version of the maps: user space refuses to drive maps of another layout.
    pub const LAYOUT_VERSION: u32 = 0;
    /// Next free id for services, real servers, real-server sets and creation order.
    pub const NEXT_ID: u32 = 1;
    /// TCP ESTABLISHED timeout, seconds (`--set`).
    pub const TIMEOUT_TCP: u32 = 2;
    /// TCP FIN_WAIT timeout, seconds.
    pub const TIMEOUT_TCP_FIN: u32 = 3;
    /// UDP timeout, seconds.
    pub const TIMEOUT_UDP: u32 = 4;
    /// Where the search for a free counter slot starts next (slots are handed out round
    /// the array, so a freed one is reused as late as possible).
    pub const NEXT_STATS: u32 = 5;
    /// Counter slots below this one have been handed out at least once; those above are
    /// still zero and need no zeroing when taken.
    pub const STATS_USED: u32 = 6;
    /// Number of slots in the array.
    pub const COUNT: u32 = 8;
}

/// Bumped whenever a shared map's key or value layout changes.
pub const LAYOUT_VERSION: u64 = 16;

/// Most real servers of one service the datapath schedules among (and keeps connection
/// counts for): the size of a [`DestSet`].
pub const MAX_SET: usize = 256;
/// Longest weighted round-robin cycle stored per real-server set.
pub const MAX_WRR_CYCLE: u32 = 65_536;
/// Default capacity of the connection table (each connection takes two entries under NAT).
pub const DEFAULT_CONNECTIONS: u32 = 1 << 20;

/// One real server of a set as the schedulers read it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetEntry {
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// Where the server's connection counts are kept in its service's [`ServiceConns`].
    pub slot: u16,
    /// Which half of the real-server array holds the server's [`DestValue`].
    pub half: u16,
    /// The server's counter slot (its real-server array index is `stats * 2 + half`).
    pub stats: u32,
}

/// A service's real servers for scheduling, in IPVS's list order.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DestSet {
    pub count: u32,
    /// Length of the set's weighted round-robin cycle in the wrr map.
    pub wrr_len: u32,
    pub entries: [SetEntry; MAX_SET],
}

/// What the services map holds for a service: its parameters and its real-server set, in
/// one value, so a new connection finds both with one lookup. A change writes any changed
/// real server into its other half of the real-server array and then the whole entry, so
/// the datapath sees the old or the new list, never half of one.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ServiceEntry {
    pub service: ServiceValue,
    pub set: DestSet,
}

/// Connection counts of one real server, as IPVS keeps them (written by the datapath).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotConns {
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
}

/// A service's state the datapath writes: connection counts of every real server by slot,
/// the scheduler's state, and the least-connection tree (one map value, so a new
/// connection finds them all with one lookup; kept under 8 KiB, a kernel allocation size).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ServiceConns {
    pub slots: [SlotConns; MAX_SET],
    pub sched: SchedState,
    pub tree: SchedTree,
}

impl Default for ServiceConns {
    fn default() -> Self {
        ServiceConns {
            slots: [SlotConns::default(); MAX_SET],
            sched: SchedState::default(),
            tree: SchedTree::default(),
        }
    }
}

/// No index: a tree node or slot with no available real server.
pub const TREE_NONE: u16 = u16::MAX;

/// A tournament tree over a set's indices for the least-connection schedulers (lc, wlc, sed,
/// nq): each node holds the best available index below it by the scheduler's rule, the
/// lower index on a tie, so the root is what a walk over the set would choose. The
/// datapath builds it for a set and keeps it as counts change; user space only zeroes it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedTree {
    /// The set the tree was built for (0: none yet; set ids start at 1).
    pub set: u32,
    /// The scheduler code it orders by (0 when unused: rr).
    pub kind: u32,
    /// Leaves: the set's size rounded up to a power of two (a count change rebuilds it,
    /// as any set change does), so a refresh climbs log2(leaves) levels, not eight.
    pub leaves: u32,
    pub _pad: u32,
    /// The service it was built for, by which a connection's end finds the set.
    pub service: ServiceKey,
    /// The set index of each connection-count slot ([`TREE_NONE`] if not in the set).
    pub index_of: [u16; MAX_SET],
    /// `nodes[n]` for n in 1..leaves: the best of the leaves below (node n's children are
    /// 2n and 2n+1); `nodes[leaves + i]`: leaf i, the set's index i if that server is
    /// available. Each node is packed as [`tree_node`] makes it: the index with its load
    /// and weight by the tree's rule, so two nodes compare as
    /// `load(a) * weight(b) > load(b) * weight(a)` from their own eight bytes, whatever
    /// the rule (see the datapath's tree.rs).
    pub nodes: [u64; 2 * MAX_SET],
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

impl Default for SchedTree {
    fn default() -> Self {
        SchedTree {
            set: 0,
            kind: 0,
            leaves: 0,
            _pad: 0,
            service: ServiceKey::default(),
            index_of: [TREE_NONE; MAX_SET],
            nodes: [TREE_EMPTY; 2 * MAX_SET],
        }
    }
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

/// A connection-table key: the packet's addresses and ports as they arrive (client to VIP
/// for the request direction, real server to client for NAT replies).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Network byte order.
    pub sport: u16,
    /// Network byte order.
    pub dport: u16,
    pub protocol: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// A record of an expiry sweep queue: a connection and when to look at it again (see
/// [`sweep_queue`]). The sweep looks the entry up only once that time has come.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepRecord {
    pub key: ConnKey,
    pub due: u64,
}

/// The sweep queues, by index (their hints in `XVS_SWEEP_DUE` too): records due within
/// [`SWEEP_CHECK_NS`], at their entry's expiry; and records that wait 10 s, 60 s and 300 s.
pub mod sweep {
    pub const SOON: u32 = 0;
    pub const WAIT_10S: u32 = 1;
    pub const WAIT_60S: u32 = 2;
    pub const WAIT_300S: u32 = 3;
    pub const COUNT: u32 = 4;
    /// How long the records of each waiting queue wait.
    pub const WAITS_NS: [u64; 4] = [0, 10_000_000_000, 60_000_000_000, 300_000_000_000];
}

/// The shortest wait of a sweep record: an entry due in less is queued at its expiry (in
/// the short queue, where records wait less than this, so one may wait behind another by
/// at most this long).
pub const SWEEP_CHECK_NS: u64 = sweep::WAITS_NS[sweep::WAIT_10S as usize];

/// The sweep queue a record goes to for an entry that expires `remaining` ns from now,
/// and when it is due, from now: the short queue at the expiry if that is less than
/// [`SWEEP_CHECK_NS`] away; else the queue with the longest wait that does not pass the
/// expiry. Every record of a waiting queue waits the same, so each queue stays in due order
/// and only its head need be watched, and a connection is looked at a few times in its
/// life (one untouched for 900 s: three times) instead of every 10 s.
pub const fn sweep_queue(remaining: u64) -> (u32, u64) {
    let waits = sweep::WAITS_NS;
    if remaining >= waits[sweep::WAIT_300S as usize] {
        (sweep::WAIT_300S, waits[sweep::WAIT_300S as usize])
    } else if remaining >= waits[sweep::WAIT_60S as usize] {
        (sweep::WAIT_60S, waits[sweep::WAIT_60S as usize])
    } else if remaining >= waits[sweep::WAIT_10S as usize] {
        (sweep::WAIT_10S, waits[sweep::WAIT_10S as usize])
    } else {
        (sweep::SOON, remaining)
    }
}

/// The queue a record falls back to when `which` is full: one that waits less (the
/// 10 s queue is sized like the table).
pub const fn sweep_fallback(which: u32) -> u32 {
    match which {
        sweep::WAIT_300S => sweep::WAIT_60S,
        _ => sweep::WAIT_10S,
    }
}

/// Capacities of the short, 60 s and 300 s sweep queues as fractions of the connection
/// table's (the 10 s queue is sized like the table; a full queue sends its records to one
/// that waits less, where they are looked at more often). The 60 s queue holds most
/// records of short TCP connections (SYN_RECV, then two minutes of TIME_WAIT), the 300 s
/// one those of long ones.
pub const SWEEP_SOON_SHARE: u32 = 8;
pub const SWEEP_60_SHARE: u32 = 2;
pub const SWEEP_300_SHARE: u32 = 4;

/// A connection-table entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conn {
    /// When the entry expires, in `bpf_ktime_get_coarse_ns` time (CLOCK_MONOTONIC_COARSE). An
    /// entry past it is gone: the datapath treats it as absent and forgets it (see the sweep
    /// queue). A NAT connection lives until the later of its two entries' expiries: client
    /// packets push the request entry's, server packets the reply entry's (so a reply
    /// needs no lookup of the request entry unless the state changes); a state change sets
    /// both.
    pub expires: u64,
    /// Request entry: the real server's address. Reply entry: the VIP.
    pub peer: [u8; 16],
    pub dest_id: u32,
    pub service_id: u32,
    /// Request entry: the real server's port. Reply entry: the VIP's port. Network order.
    pub peer_port: u16,
    /// The real server's slot in its service's connection counts.
    pub slot: u16,
    /// Counter-array slots of the service and the real server.
    pub service_stats: u32,
    pub dest_stats: u32,
    /// IPVS state ([`tcp`] states; [`tcp::UDP`] for UDP).
    pub state: u8,
    /// Forwarding method (`IP_VS_CONN_F_*` code).
    pub forward: u8,
    /// [`conn_flags`].
    pub flags: u8,
    /// Family of the real server (tunnels may cross families).
    pub peer_family: u8,
    /// Where frames of this entry leave (resolved once, when the connection is created).
    pub l2: Neighbour,
}

impl ConnKey {
    /// The key of a NAT connection's reply direction (real server → client), `self` being
    /// its request direction and `conn` that entry.
    #[inline(always)]
    pub fn reply(&self, conn: &Conn) -> ConnKey {
        ConnKey {
            src: conn.peer,
            dst: self.src,
            sport: conn.peer_port,
            dport: self.sport,
            protocol: self.protocol,
            family: conn.peer_family,
            _pad: [0; 2],
        }
    }
}

/// Bits of [`Conn::flags`].
pub mod conn_flags {
    /// This entry is the reply-direction twin of a NAT connection.
    pub const REPLY: u8 = 1;
    /// No packet from the real server seen yet (IPVS's NOOUTPUT): input-only state table.
    pub const NO_OUTPUT: u8 = 2;
    /// Counted as active in the real server's counts (else as inactive).
    pub const ACTIVE: u8 = 4;
}

/// Forwarding codes, as IPVS numbers them.
pub mod forward {
    pub const MASQ: u8 = 0;
    pub const TUNNEL: u8 = 2;
    pub const ROUTE: u8 = 3;
}

/// IPVS's TCP connection states, state machine and default timeouts (ip_vs_proto_tcp.c),
/// shared by the datapath and the tools that list connections.
pub mod tcp {
    pub const NONE: u8 = 0;
    pub const ESTABLISHED: u8 = 1;
    pub const SYN_SENT: u8 = 2;
    pub const SYN_RECV: u8 = 3;
    pub const FIN_WAIT: u8 = 4;
    pub const TIME_WAIT: u8 = 5;
    pub const CLOSE: u8 = 6;
    pub const CLOSE_WAIT: u8 = 7;
    pub const LAST_ACK: u8 = 8;
    pub const LISTEN: u8 = 9;
    pub const SYNACK: u8 = 10;
    /// The single state of UDP connections (listed as `UDP`).
    pub const UDP: u8 = 11;

    /// State names as `ipvsadm -L -c` prints them.
    pub const NAMES: [&str; 12] = [
        "NONE",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "SYNACK",
        "UDP",
    ];

    /// Default timeout of each state in seconds (ESTABLISHED, FIN_WAIT and UDP are the
    /// ones `--set` changes).
    pub const TIMEOUTS: [u32; 12] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 300];

    /// True for the states IPVS counts as active connections.
    pub const fn is_active(state: u8) -> bool {
        matches!(state, ESTABLISHED | SYN_SENT | SYN_RECV | SYNACK)
    }

    /// Events, by the first flag found in this order: RST, SYN, FIN, ACK.
    pub const EVENT_SYN: usize = 0;
    pub const EVENT_FIN: usize = 1;
    pub const EVENT_ACK: usize = 2;
    pub const EVENT_RST: usize = 3;

    #[allow(dead_code)]
    const S_NO: u8 = NONE;
    const S_ES: u8 = ESTABLISHED;
    const S_SS: u8 = SYN_SENT;
    const S_SR: u8 = SYN_RECV;
    const S_FW: u8 = FIN_WAIT;
    const S_TW: u8 = TIME_WAIT;
    const S_CL: u8 = CLOSE;
    const S_CW: u8 = CLOSE_WAIT;
    const S_LA: u8 = LAST_ACK;
    const S_LI: u8 = LISTEN;
    #[allow(dead_code)]
    const S_SA: u8 = SYNACK;

    /// Rows: event; columns: current state (NONE ES SS SR FW TW CL CW LA LI SA).
    type Table = [[u8; 11]; 4];

    /// Client to real server, when the director sees both directions (NAT).
    pub const INPUT: Table = [
        [
            S_SR, S_ES, S_ES, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR,
        ],
        [
            S_CL, S_CW, S_SS, S_TW, S_TW, S_TW, S_CL, S_CW, S_LA, S_LI, S_TW,
        ],
        [
            S_ES, S_ES, S_SS, S_ES, S_FW, S_TW, S_CL, S_CW, S_CL, S_LI, S_ES,
        ],
        [
            S_CL, S_CL, S_CL, S_SR, S_CL, S_CL, S_CL, S_CL, S_LA, S_LI, S_SR,
        ],
    ];
    /// Real server to client (NAT replies).
    pub const OUTPUT: Table = [
        [
            S_SS, S_ES, S_SS, S_SR, S_SS, S_SS, S_SS, S_SS, S_SS, S_LI, S_SR,
        ],
        [
            S_TW, S_FW, S_SS, S_TW, S_FW, S_TW, S_CL, S_TW, S_LA, S_LI, S_TW,
        ],
        [
            S_ES, S_ES, S_SS, S_ES, S_FW, S_TW, S_CL, S_CW, S_LA, S_ES, S_ES,
        ],
        [
            S_CL, S_CL, S_SS, S_CL, S_CL, S_TW, S_CL, S_CL, S_CL, S_CL, S_CL,
        ],
    ];
    /// Client to real server while no reply was seen (DR, tunnel, NAT before its reply).
    pub const INPUT_ONLY: Table = [
        [
            S_SR, S_ES, S_ES, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR,
        ],
        [
            S_CL, S_FW, S_SS, S_TW, S_FW, S_TW, S_CL, S_CW, S_LA, S_LI, S_TW,
        ],
        [
            S_ES, S_ES, S_SS, S_ES, S_FW, S_TW, S_CL, S_CW, S_CL, S_LI, S_ES,
        ],
        [
            S_CL, S_CL, S_CL, S_SR, S_CL, S_CL, S_CL, S_CL, S_LA, S_LI, S_CL,
        ],
    ];

    /// The event of a TCP segment with these flags (RST > SYN > FIN > ACK), or `None` when
    /// it has none of them (IPVS then moves the connection to CLOSE).
    pub const fn event(syn: bool, fin: bool, ack: bool, rst: bool) -> Option<usize> {
        if rst {
            Some(EVENT_RST)
        } else if syn {
            Some(EVENT_SYN)
        } else if fin {
            Some(EVENT_FIN)
        } else if ack {
            Some(EVENT_ACK)
        } else {
            None
        }
    }

    /// The next state by `table`.
    pub const fn next(table: &Table, event: Option<usize>, state: u8) -> u8 {
        match event {
            Some(e) if (state as usize) < 11 && e < 4 => table[e][state as usize],
            Some(_) => state,
            None => CLOSE,
        }
    }
}

#[cfg(feature = "user")]
mod pod_datapath {
    // SAFETY: plain #[repr(C)] data; any bit pattern is valid.
    unsafe impl aya::Pod for super::SetEntry {}
    unsafe impl aya::Pod for super::DestSet {}
    unsafe impl aya::Pod for super::ServiceEntry {}
    unsafe impl aya::Pod for super::SlotConns {}
    unsafe impl aya::Pod for super::ServiceConns {}
    unsafe impl aya::Pod for super::SchedState {}
    unsafe impl aya::Pod for super::WrrKey {}
    unsafe impl aya::Pod for super::ConnKey {}
    unsafe impl aya::Pod for super::Conn {}
    unsafe impl aya::Pod for super::Neighbour {}
}
