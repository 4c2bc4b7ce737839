//! The director's maps. Their names, key and value types are in xvs-common; user space
//! finds them by name from the program's map ids.

use aya_ebpf::{
    btf_maps,
    macros::{btf_map, map},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, Queue},
};
use xvs_common::{
    BelowHalf, CALLS_KEPT, CachedHop, CallId, Conn, ConnKey, Counters, DEFAULT_CONNECTIONS,
    DestCounts, DestValue, FragmentEntry, FragmentKey, FullnatPeer, HOP_CACHE_SLOTS,
    LOCALITY_MEMBERS, LocalAddresses, LocalityEntry, LocalityKey, LookupTable, MAX_DESTS,
    MAX_LARGE_SERVICES, MAX_SERVICES, MAX_SET_LARGE, MAX_STATS, NO_PREALLOC, PersistParams,
    RateEstimate, SWEEP_10_SHARE, SWEEP_60_SHARE, SWEEP_SOON_SHARE, SchedState, ServiceEntry,
    ServiceKey, ServiceSched, SweepRecord, TunnelSource, TwosSums, WrrKey, counter, meta, sweep,
};

#[map(name = "XVS_COUNTERS")]
pub static XVS_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[map(name = "XVS_META")]
pub static XVS_META: Array<u64> = Array::with_max_entries(meta::COUNT, 0);

#[map(name = "XVS_SERVICES")]
pub static XVS_SERVICES: HashMap<ServiceKey, ServiceEntry> =
    HashMap::with_max_entries(MAX_SERVICES, NO_PREALLOC);

/// Services of more than `MAX_SET` real servers (their entry in `XVS_SERVICES` says
/// `large`).
#[map(name = "XVS_SVC_LARGE")]
pub static XVS_SERVICES_LARGE: HashMap<ServiceKey, ServiceEntry<MAX_SET_LARGE>> =
    HashMap::with_max_entries(MAX_LARGE_SERVICES, NO_PREALLOC);

/// Real servers, two entries per counter slot (user space sizes it with the counters).
#[map(name = "XVS_DESTS")]
pub static XVS_DESTS: Array<DestValue> = Array::with_max_entries(2 * MAX_STATS, 0);

#[map(name = "XVS_STATS")]
pub static XVS_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(MAX_STATS, 0);

/// Connection counts of real servers by counter slot: one value holding them all, so
/// that the datapath looks it up once and reaches any server's counts by an offset (a
/// lookup per server would cost a helper call each, and stack the deepest call chains
/// cannot spare). Mappable (`BPF_F_MMAPABLE`), so that user space can change a count
/// with an atomic operation too (connection sync replacing a dead entry).
#[map(name = "XVS_DEST_COUNTS")]
pub static XVS_DEST_COUNTS: Array<DestCounts> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// The map flag that lets user space mmap an array.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// All real servers' connection counts (see [`XVS_DEST_COUNTS`]).
#[inline(always)]
pub fn dest_counts() -> Option<*mut DestCounts> {
    XVS_DEST_COUNTS.get_ptr_mut(0)
}

#[map(name = "XVS_HOPS")]
pub static XVS_HOPS: PerCpuArray<CachedHop> = PerCpuArray::with_max_entries(HOP_CACHE_SLOTS, 0);

#[map(name = "XVS_SCHED")]
pub static XVS_SCHED: HashMap<u32, ServiceSched> =
    HashMap::with_max_entries(MAX_SERVICES, NO_PREALLOC);

#[map(name = "XVS_SCHED_LARGE")]
pub static XVS_SCHED_LARGE: HashMap<u32, ServiceSched<MAX_SET_LARGE>> =
    HashMap::with_max_entries(MAX_LARGE_SERVICES, NO_PREALLOC);

/// lblc's and lblcr's servers below half their weight (see [`xvs_common::BelowHalf`]),
/// entries made by the datapath when it builds such a service's tree.
#[map(name = "XVS_BELOW_HALF")]
pub static XVS_BELOW_HALF: HashMap<u32, BelowHalf> =
    HashMap::with_max_entries(MAX_SERVICES, NO_PREALLOC);

/// twos's running sums of weights (see [`xvs_common::TwosSums`]), entries made by the
/// datapath when twos first schedules for a service.
#[map(name = "XVS_TWOS")]
pub static XVS_TWOS: HashMap<u32, TwosSums> = HashMap::with_max_entries(MAX_SERVICES, NO_PREALLOC);

/// How a persistent service's connections find their template (see
/// [`xvs_common::PersistParams`]), written by the datapath when the service makes one.
#[map(name = "XVS_PERSIST")]
pub static XVS_PERSIST: HashMap<u32, PersistParams> =
    HashMap::with_max_entries(MAX_SERVICES + MAX_LARGE_SERVICES, NO_PREALLOC);

/// The Call-ID of each call's template (`--pe sip`), for the listing: written with the
/// template, removed with it.
#[map(name = "XVS_CALLS")]
pub static XVS_CALLS: HashMap<ConnKey, CallId> = HashMap::with_max_entries(CALLS_KEPT, NO_PREALLOC);

/// Where a datagram's Call-ID is looked for: its bytes and the scanner's state (one per
/// CPU; nothing kept between packets).
#[map(name = "XVS_CALL_SCAN")]
pub static XVS_CALL_SCAN: PerCpuArray<crate::sip::CallScan> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "XVS_WRR")]
pub static XVS_WRR: HashMap<WrrKey, u32> = HashMap::with_max_entries(1 << 20, NO_PREALLOC);

/// sh, dh and mh tables by set id (a change holds a service's old and new set at once).
#[map(name = "XVS_LOOKUP")]
pub static XVS_LOOKUP: HashMap<u32, LookupTable> =
    HashMap::with_max_entries(2 * MAX_SERVICES, NO_PREALLOC);

/// Where later fragments go, by datagram (least recently used entries go when full).
#[map(name = "XVS_FRAGS")]
pub static XVS_FRAGS: LruHashMap<FragmentKey, FragmentEntry> =
    LruHashMap::with_max_entries(16_384, 0);

/// lblc's and lblcr's entries: the least recently used go when it is full (IPVS bounds
/// them by time alone).
#[map(name = "XVS_LOCALITY")]
pub static XVS_LOCALITY: LruHashMap<LocalityKey, LocalityEntry> =
    LruHashMap::with_max_entries(65_536, 0);

/// Rate estimates by counter slot, written by xvsd. The datapath never reads them: the
/// program only refers to the map so that it lives as long as the program does.
#[map(name = "XVS_RATES")]
pub static XVS_RATES: HashMap<u32, RateEstimate> =
    HashMap::with_max_entries(MAX_STATS, NO_PREALLOC);

#[map(name = "XVS_TUN_SRC")]
pub static XVS_TUN_SRC: Array<TunnelSource> = Array::with_max_entries(MAX_STATS, 0);

/// The connection table. Preallocated (user space sizes it when the director is created).
#[btf_map(name = "XVS_CONNS")]
pub static XVS_CONNS: btf_maps::HashMap<ConnKey, Conn, { DEFAULT_CONNECTIONS as usize }> =
    btf_maps::HashMap::new();

/// FULLNAT entries' other sides, by the entry's key (see `fullnat.rs`). Allocated as
/// FULLNAT connections come (a director without them pays nothing); user space sizes it
/// like the table.
#[map(name = "XVS_FULLNAT")]
pub static XVS_FULLNAT: HashMap<ConnKey, FullnatPeer> =
    HashMap::with_max_entries(DEFAULT_CONNECTIONS, NO_PREALLOC);

/// FULLNAT services' local addresses, by service id (`--add-laddr`).
#[map(name = "XVS_LADDRS")]
pub static XVS_LADDRS: HashMap<u32, LocalAddresses> =
    HashMap::with_max_entries(MAX_SERVICES, NO_PREALLOC);

/// Connections to check for expiry: records that wait 10 s ([`xvs_common::SWEEP_10_SHARE`]
/// of the table; see [`xvs_common::sweep_queue`])...
#[map(name = "XVS_SWEEP")]
pub static XVS_SWEEP: Queue<SweepRecord> =
    Queue::with_max_entries(DEFAULT_CONNECTIONS / SWEEP_10_SHARE, 0);

/// ...60 s ([`xvs_common::SWEEP_60_SHARE`] of the table)...
#[map(name = "XVS_SWEEP_60")]
pub static XVS_SWEEP_60: Queue<SweepRecord> =
    Queue::with_max_entries(DEFAULT_CONNECTIONS / SWEEP_60_SHARE, 0);

/// ...300 s (sized like the table)...
#[map(name = "XVS_SWEEP_300")]
pub static XVS_SWEEP_300: Queue<SweepRecord> = Queue::with_max_entries(DEFAULT_CONNECTIONS, 0);

/// ...and records due sooner than 10 s, at their expiry
/// ([`xvs_common::SWEEP_SOON_SHARE`] of the table).
#[map(name = "XVS_SWEEP_SOON")]
pub static XVS_SWEEP_SOON: Queue<SweepRecord> =
    Queue::with_max_entries(DEFAULT_CONNECTIONS / SWEEP_SOON_SHARE, 0);

/// When the head of each sweep queue (by [`xvs_common::sweep`] index) is due, as last
/// seen; 0 until first looked at, `u64::MAX` when seen empty.
#[map(name = "XVS_SWEEP_DUE")]
pub static XVS_SWEEP_DUE: Array<u64> = Array::with_max_entries(sweep::COUNT, 0);

#[inline(always)]
pub fn count(index: u32, amount: u64) {
    if let Some(slot) = XVS_COUNTERS.get_ptr_mut(index) {
        // Per-CPU slot: no other CPU writes it.
        unsafe { *slot += amount };
    }
}

#[inline(always)]
pub fn meta_value(index: u32) -> u64 {
    XVS_META.get(index).copied().unwrap_or(0)
}

/// What [`add_stats`] counts: a packet toward the real server (in), one back (out), and
/// whether it opened a connection.
pub const STATS_IN: u32 = 0;
pub const STATS_OUT: u32 = 1;
pub const STATS_NEW: u32 = 2;

/// Adds a packet of `bytes` to the per-CPU counters in counter slot `slot` (a service's or
/// a real server's).
#[inline(always)]
pub fn add_stats(slot: u32, bytes: u64, what: u32) {
    if let Some(c) = XVS_STATS.get_ptr_mut(slot) {
        unsafe {
            if what & STATS_NEW != 0 {
                (*c).conns += 1;
            }
            if what & STATS_OUT != 0 {
                (*c).outpkts += 1;
                (*c).outbytes += bytes;
            } else {
                (*c).inpkts += 1;
                (*c).inbytes += bytes;
            }
        }
    }
}

/// How clients came in, recorded only while fwmark services exist (`fwmark.rs`).
#[map(name = "XVS_CLIENT_HOPS")]
pub static XVS_CLIENT_HOPS: LruHashMap<xvs_common::ClientKey, xvs_common::Neighbour> =
    LruHashMap::with_max_entries(65_536, 0);

#[map(name = "XVS_NEIGH")]
pub static XVS_NEIGH: HashMap<[u8; 16], xvs_common::Neighbour> =
    HashMap::with_max_entries(MAX_DESTS, NO_PREALLOC);

/// Per-CPU scratch space for values too big for the 512-byte BPF stack.
#[repr(C)]
pub struct Scratch {
    pub packet: crate::packet::Packet,
    /// The verdict of a new-connection attempt that made no entry.
    pub verdict: u32,
    pub key: ConnKey,
    pub service_key: ServiceKey,
    /// The client of a packet that may be a fwmark service's (`fwmark.rs`).
    pub client_key: xvs_common::ClientKey,
    pub conn: Conn,
    pub twin: Conn,
    pub fib: aya_ebpf::bindings::bpf_fib_lookup,
    /// A sweep record being queued.
    pub record: SweepRecord,
    /// A NAT connection's reply key being looked up.
    pub reply_key: ConnKey,
    /// The persistence template's key of the new connection being made.
    pub template_key: ConnKey,
    /// The real server (tree slot, counter slot, id) of the persistence template a new
    /// connection found.
    pub remembered: xvs_common::LocalityMember,
    /// The lblc/lblcr entry's key of the new connection being scheduled.
    pub locality_key: LocalityKey,
    /// The set indices of an lblcr entry's members (off the small stack).
    pub locality_present: [u32; LOCALITY_MEMBERS],
    /// A new lblc/lblcr entry being written (88 bytes: off the small stack).
    pub locality_entry: LocalityEntry,
    /// A fragment's datagram, and where its first fragment went.
    pub fragment_key: FragmentKey,
    pub fragment_entry: FragmentEntry,
    /// The scheduler's state (cursors) as the new connection's scheduling advances it.
    pub sched_state: SchedState,
    /// New connections this CPU has seen (every so many, the sweep hints are refreshed).
    pub new_flows: u32,
    /// A new FULLNAT connection's local address and port, and its client's.
    pub fullnat_local: FullnatPeer,
    pub fullnat_client: FullnatPeer,
    /// Where this CPU's search for a free FULLNAT local port goes on (0: not started).
    pub fullnat_cursor: u32,
    /// The new connection's service sends a PROXY protocol header (set before the
    /// connection is created, read by the FULLNAT part of its creation).
    pub proxy_wanted: u32,
    /// A PROXY protocol v2 header being put into a frame (its longest, IPv6's, in words).
    pub proxy_header: [u32; 13],
    /// The headers in front of it, moved to the frame's new start: Ethernet, IP (IPv4's
    /// longest) and TCP (its longest), in 8-byte words.
    pub proxy_moved: [u64; 17],
    /// A reply's TCP options being put into the client's count.
    pub proxy_options: [u8; crate::proxy::OPTIONS_BUFFER],
    pub option_walk: crate::proxy::OptionWalk,
    /// The last reading of the clock on this CPU, and the jiffies it was read at.
    pub clock_ns: u64,
    pub clock_jiffies: u64,
}

#[map(name = "XVS_SCRATCH")]
pub static XVS_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
pub fn scratch() -> Option<*mut Scratch> {
    XVS_SCRATCH.get_ptr_mut(0)
}
