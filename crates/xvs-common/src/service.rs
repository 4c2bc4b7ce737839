//! Virtual services and real servers as the maps hold them: the service key and value,
//! real servers, their sets for scheduling, tunnel sources and traffic counters.

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

/// The first two bytes of the destination MAC of a frame in the fwmark loop: the loop's
/// egress program writes them, then the packet's firewall mark (big-endian), so that the
/// director, which runs before netfilter and sees no mark, reads it there (a locally
/// administered unicast address no NIC has).
pub const FWMARK_MAC_PREFIX: [u8; 2] = [0x02, 0x78];

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
    /// Scheduler code ([`crate::scheduler`]).
    pub scheduler: u8,
    /// Persistence engine ([`crate::persistence_engine`]).
    pub pe: u8,
    /// In the services map: nonzero when the real-server set is too big for this entry
    /// and lives in the large services map (its entry there says 0).
    pub large: u8,
    pub _pad: u8,
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
    /// Forwarding code ([`crate::forward`]).
    pub forward: u8,
    /// Tunnel encapsulation ([`crate::tunnel_type`]).
    pub tun_type: u8,
    /// Tunnel checksum option ([`crate::tunnel_checksum`]).
    pub tun_csum: u8,
    /// Where the server's connection counts are kept in its service's [`ServiceSched`].
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

/// The rates of a service or real server as IPVS's estimator keeps them (`ip_vs_est.c`):
/// per second, smoothed over 2-second samples, connections and packets scaled by 2^10 and
/// bytes by 2^5. Written by xvsd every 2 seconds, read by the listings.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateEstimate {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// Real servers a service's entry in the services map holds: the size of a [`DestSet`]
/// there. A service with more has its set in the large services map.
pub const MAX_SET: usize = 256;

/// Most real servers of one service: the size of a [`DestSet`] in the large services map
/// (IPVS has no limit; a service this large costs 4 times the memory of one in the
/// services map: see docs/BENCHMARKS.md).
pub const MAX_SET_LARGE: usize = 1024;

/// One real server of a set as the schedulers read it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetEntry {
    pub weight: u32,
    pub u_threshold: u32,
    /// The total below which a connection's end clears the server's overload flag: `-y`,
    /// or 3/4 of `-x` without one ([`crate::lower_threshold`]; user space writes it so,
    /// so that the datapath's reading of the flag is one choice between two thresholds).
    pub lower_threshold: u32,
    /// Where the server's connection counts are kept in its service's [`ServiceSched`].
    pub slot: u16,
    /// Which half of the real-server array holds the server's [`DestValue`].
    pub half: u16,
    /// The server's counter slot (its real-server array index is `stats * 2 + half`).
    pub stats: u32,
}

/// A service's real servers for scheduling, in IPVS's list order: room for `N` of them
/// ([`MAX_SET`] in the services map, [`MAX_SET_LARGE`] in the large one).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestSet<const N: usize = MAX_SET> {
    pub count: u32,
    /// Length of the set's weighted round-robin cycle in the wrr map.
    pub wrr_len: u32,
    pub entries: [SetEntry; N],
    /// The set index of the server with each tree slot ([`crate::TREE_NONE`]: none), so
    /// that what remembers a server by its slot (a persistence template, a locality
    /// entry) finds it in one step, not by a walk over the set.
    pub index_of: [u16; N],
}

/// What the services map holds for a service: its parameters and its real-server set, in
/// one value, so a new connection finds both with one lookup. A change writes any changed
/// real server into its other half of the real-server array and then the whole entry, so
/// the datapath sees the old or the new list, never half of one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceEntry<const N: usize = MAX_SET> {
    pub service: ServiceValue,
    pub set: DestSet<N>,
}
