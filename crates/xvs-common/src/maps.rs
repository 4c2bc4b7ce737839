//! The maps' names, capacities and layout version, and the indexes of the two small
//! arrays (datapath counters, control values).

/// Map names (the kernel keeps at most 15 characters, so they stay short).
pub mod map_names {
    /// Per-CPU datapath counters, indexed by [`crate::counter`].
    pub const COUNTERS: &str = "XVS_COUNTERS";
    /// Small array of control values, indexed by [`crate::meta`].
    pub const META: &str = "XVS_META";
    /// Virtual services: [`crate::ServiceKey`] → [`crate::ServiceEntry`] (the service
    /// and its real-server set).
    pub const SERVICES: &str = "XVS_SERVICES";
    /// Services of more than [`crate::MAX_SET`] real servers: [`crate::ServiceKey`] →
    /// `ServiceEntry<MAX_SET_LARGE>` (their entry in [`SERVICES`] says `large`).
    pub const SERVICES_LARGE: &str = "XVS_SVC_LARGE";
    /// Real servers: array, two entries per counter slot (`stats * 2 + half`, see
    /// [`crate::SetEntry::half`]) → [`crate::DestValue`].
    pub const DESTS: &str = "XVS_DESTS";
    /// Per-CPU traffic counters of services and real servers, by counter slot →
    /// [`crate::Counters`].
    pub const STATS: &str = "XVS_STATS";
    /// Per-CPU cache of real servers' next hops: the server's counter slot modulo
    /// [`crate::HOP_CACHE_SLOTS`] → [`crate::CachedHop`].
    pub const HOPS: &str = "XVS_HOPS";
    /// What the datapath keeps per service (scheduler state, least-connection tree) by
    /// service id → [`crate::ServiceSched`].
    pub const SCHED: &str = "XVS_SCHED";
    /// The same for the services of [`SERVICES_LARGE`] → `ServiceSched<MAX_SET_LARGE>`.
    pub const SCHED_LARGE: &str = "XVS_SCHED_LARGE";
    /// lblc's and lblcr's servers below half their weight, by service id →
    /// [`crate::BelowHalf`] (written by the datapath with the service's tree).
    pub const BELOW_HALF: &str = "XVS_BELOW_HALF";
    /// twos's running sums of weights by service id → [`crate::TwosSums`] (written by the
    /// datapath when twos first schedules for a set).
    pub const TWOS: &str = "XVS_TWOS";
    /// How a persistent service's connections find their template, by service id →
    /// [`crate::PersistParams`] (written by the datapath when the service makes one).
    pub const PERSIST: &str = "XVS_PERSIST";
    /// The Call-ID of each call's template of a `--pe sip` service, by the template's key
    /// → [`crate::CallId`] (written by the datapath with the template, for the listing).
    pub const CALLS: &str = "XVS_CALLS";
    /// Every real server's connection counts by counter slot: one value,
    /// [`crate::DestCounts`].
    pub const DEST_COUNTS: &str = "XVS_DEST_COUNTS";
    /// Weighted round-robin cycles: [`crate::WrrKey`] → set index.
    pub const WRR: &str = "XVS_WRR";
    /// The tables of sh, dh and mh: set id → [`crate::LookupTable`].
    pub const LOOKUP: &str = "XVS_LOOKUP";
    /// Where a datagram's later fragments go: [`crate::FragmentKey`] →
    /// [`crate::FragmentEntry`] (least recently used entries go when it is full).
    pub const FRAGMENTS: &str = "XVS_FRAGS";
    /// lblc's and lblcr's servers by destination address: [`crate::LocalityKey`] →
    /// [`crate::LocalityEntry`] (least recently used entries go when it is full).
    pub const LOCALITY: &str = "XVS_LOCALITY";
    /// The connection table: [`crate::ConnKey`] → [`crate::Conn`].
    pub const CONNS: &str = "XVS_CONNS";
    /// Tunnel source address by a real server's counter slot → [`crate::TunnelSource`].
    pub const TUNNEL_SOURCES: &str = "XVS_TUN_SRC";
    /// Rate estimates by counter slot.
    pub const RATES: &str = "XVS_RATES";
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
    /// The decapsulator's GUE port (one `u16`, network order; 0: none).
    pub const DECAP_GUE: &str = "XVS_DECAP_GUE";
    /// How each client that may start a fwmark connection came in, while fwmark services
    /// exist: the way back for NAT replies of connections that came through the loop.
    pub const CLIENT_HOPS: &str = "XVS_CLIENT_HOPS";
    /// The director's per-CPU scratch space (no content to keep).
    pub const SCRATCH: &str = "XVS_SCRATCH";
    /// FULLNAT entries' other side (`FullnatPeer`), by connection key.
    pub const FULLNAT: &str = "XVS_FULLNAT";
    /// FULLNAT services' local addresses (`LocalAddresses`), by service id.
    pub const LOCAL_ADDRESSES: &str = "XVS_LADDRS";
}

/// Capacity of the service map.
pub const MAX_SERVICES: u32 = 65_536;

/// Capacity of the large services map (services of more than [`crate::MAX_SET`] real
/// servers).
pub const MAX_LARGE_SERVICES: u32 = 4_096;

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
    /// Fragments the director could not place (a later fragment whose first did not come
    /// through first) and IPv6 packets with other extension headers (passed to the stack).
    pub const FRAGMENTS: u32 = 4;
    /// Packets forwarded for a virtual service.
    pub const FORWARDED: u32 = 5;
    /// New connections scheduled.
    pub const NEW_CONNECTIONS: u32 = 6;
    /// Packets for a service that no real server could take (passed to the stack, which
    /// refuses them as IPVS does).
    pub const NO_DESTINATION: u32 = 7;
    /// Packets for a service with no connection that may not start one: TCP without SYN
    /// (passed to the stack), and for a `--pe sip` service a datagram without a Call-ID or
    /// a TCP segment (dropped, as IPVS drops them).
    pub const NOT_SCHEDULED: u32 = 8;
    /// Packets dropped because no route or neighbour is known for the real server.
    pub const NO_ROUTE: u32 = 9;
    /// Packets dropped because the connection table is full (and no half-open
    /// connection could be forgotten to make room).
    pub const TABLE_FULL: u32 = 10;
    /// Packets dropped: tunnel encapsulation not possible (type, family, no source, room).
    pub const TUNNEL_FAILED: u32 = 11;
    /// Connections found expired and forgotten.
    pub const EXPIRED: u32 = 12;
    /// New connections of services whose scheduler code the datapath does not know
    /// (none today): scheduled with wlc (the `_` arm of the datapath's one scheduler
    /// dispatch).
    pub const SCHED_FALLBACK: u32 = 13;
    /// Sweep records taken off a queue, their entry looked at (forgotten if expired,
    /// queued again if not): how hard the expiry sweep works.
    pub const SWEEP_LOOKS: u32 = 14;
    /// Packets of connections whose real server was removed: the connection is forgotten
    /// and the packet passed to the stack, which answers it (a reset, for TCP), as IPVS
    /// does with `expire_nodest_conn`.
    pub const DEST_GONE: u32 = 15;
    /// Client packets too big for the way to their real server, answered with ICMP
    /// "fragmentation needed" / "packet too big" (path MTU discovery).
    pub const TOO_BIG: u32 = 16;
    /// Client packets too big that may not be answered so (IPv4 without DF): dropped.
    pub const TOO_BIG_DROPPED: u32 = 17;
    /// Later fragments of a datagram sent after its first, to the same real server.
    pub const FRAGMENTS_FORWARDED: u32 = 18;
    /// ICMP errors about a connection's packets sent to its real server or its client.
    pub const ICMP_FORWARDED: u32 = 19;
    /// Half-open TCP connections (SYN_RECV) forgotten to make room in a full table for a
    /// new one (IPVS's drop_entry): what keeps a SYN flood from locking new clients out.
    pub const EVICTED: u32 = 20;
    /// Connections a peer director synced here that met their first packet here: their
    /// next hop resolved, counted from then on (see [`crate::conn_flags::SYNCED`]).
    pub const ADOPTED: u32 = 21;
    /// New FULLNAT connections refused: the service has no local address, or no free
    /// local port was found for the real server (the pool is exhausted).
    pub const NO_LOCAL_PORT: u32 = 22;
    /// PROXY protocol v2 headers put before a client's first byte (a retransmitted first
    /// segment takes its header again and is counted again).
    pub const PROXY_HEADERS: u32 = 23;
    /// Number of slots in the array.
    pub const COUNT: u32 = 24;
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
    /// When xvsd last sampled the rates (CLOCK_MONOTONIC, ns): older rates are not shown.
    pub const RATES_SAMPLED: u32 = 7;
    /// The interface index of the fwmark loop's inner end (`xvsfw1`), 0 while there is
    /// none: frames that arrive there carry their firewall mark in their destination MAC
    /// (see [`crate::FWMARK_MAC_PREFIX`]).
    pub const FWMARK_LOOP: u32 = 8;
    /// Nonzero: a client packet of a connection whose real server was deleted is dropped
    /// and the entry left to time out (IPVS's `expire_nodest_conn = 0`). 0 — the default,
    /// and what a director made before the setting existed reads — forgets the entry at
    /// that packet (`expire_nodest_conn = 1`). Stored inverted so that 0 keeps the
    /// behaviour xvs always had.
    pub const KEEP_NODEST_CONN: u32 = 9;
    /// Nonzero: a persistence template whose real server has weight 0 is dropped when a
    /// client's new connection finds it, so the client is scheduled anew (IPVS's
    /// `expire_quiescent_template = 1`); 0 (the default) keeps sending it there.
    pub const EXPIRE_QUIESCENT_TEMPLATE: u32 = 10;
    /// IPVS's `conn_reuse_mode`, stored XOR 1 (so that 0, what a director made before the
    /// setting existed reads, is IPVS's default, 1): bit 1, a SYN that meets an
    /// uncontrolled connection in TIME_WAIT or CLOSE ends it and is scheduled anew; bit 2,
    /// also one in FIN_WAIT of a DR or tunnel real server; 0, the SYN goes on the old
    /// connection, to its real server.
    pub const CONN_REUSE_MODE: u32 = 11;
    /// Nonzero: a TCP segment other than a SYN (and not a reset) that meets no
    /// connection is scheduled, whatever the scheduler (IPVS's `sloppy_tcp = 1`); 0, the
    /// default, leaves it to the stack unless the service hashes the client (sh, mh).
    pub const SLOPPY_TCP: u32 = 12;
    /// Number of slots in the array (room left for settings to come).
    pub const COUNT: u32 = 16;
}

/// Bumped whenever a shared map's key or value layout changes.
pub const LAYOUT_VERSION: u64 = 28;

/// Default capacity of the connection table (each connection takes two entries under NAT).
pub const DEFAULT_CONNECTIONS: u32 = 1 << 20;
