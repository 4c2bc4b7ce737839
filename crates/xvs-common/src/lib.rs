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
    /// Virtual services: [`crate::ServiceKey`] → [`crate::ServiceValue`].
    pub const SERVICES: &str = "XVS_SERVICES";
    /// Real servers: [`crate::DestKey`] → [`crate::DestValue`].
    pub const DESTS: &str = "XVS_DESTS";
    /// Per-CPU traffic counters of services and real servers, by id → [`crate::Counters`].
    pub const STATS: &str = "XVS_STATS";
}

/// Capacity of the service map.
pub const MAX_SERVICES: u32 = 65_536;
/// Capacity of the real-server map. A change rewrites a service's real servers under a new
/// set before dropping the old one, so the map needs room for one service twice over.
pub const MAX_DESTS: u32 = 262_144;
/// Capacity of the counter map (one entry per service and per real server).
pub const MAX_STATS: u32 = MAX_SERVICES + MAX_DESTS;

/// `BPF_F_NO_PREALLOC`: entries are allocated when written, so a namespace pays only for
/// the services it has.
pub const NO_PREALLOC: u32 = 1;

/// Address family codes in map entries.
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

/// What identifies a virtual service in the datapath. IPv4 addresses sit in the first four
/// bytes of `addr`; a firewall-mark service has `fwmark` set and no address, port or
/// protocol.
#[repr(C)]
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
    /// The set its real servers are stored under ([`DestKey::set`]). A change writes a new
    /// set and then switches this field, so the datapath sees the old or the new list,
    /// never half of one.
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
}

/// Where one real server of a service is stored.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DestKey {
    pub set: u32,
    pub index: u32,
}

/// A real server.
#[repr(C)]
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
    unsafe impl aya::Pod for super::DestKey {}
    unsafe impl aya::Pod for super::DestValue {}
    unsafe impl aya::Pod for super::Counters {}
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
    /// Number of slots in the array.
    pub const COUNT: u32 = 8;
}

/// Bumped whenever a shared map's key or value layout changes.
pub const LAYOUT_VERSION: u64 = 3;
