//! The IPVS model: virtual services, real servers (destinations), their parameters and
//! counters, and the three connection timeouts. Plain data; the rules that change it are in
//! [`crate::table`].

use std::net::IpAddr;

use crate::sched::Scheduler;

/// Address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The C `AF_*` value, which IPVS orders listings by.
    pub fn af(self) -> u16 {
        match self {
            Family::V4 => 2,
            Family::V6 => 10,
        }
    }

    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(number: u8) -> Option<Protocol> {
        match number {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name in listings (`TCP`, `UDP`, `SCTP`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The name `getservbyname`/`getservbyport` know it by.
    pub fn service_db_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// A protocol, address and port (port 0 = every port, persistent services only).
    Inet {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    /// A firewall mark (1..=u32::MAX), for IPv4 or IPv6 packets.
    Fwmark { mark: u32, family: Family },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Inet { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// The service's port (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Inet { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }

    pub fn fwmark(&self) -> u32 {
        match self {
            ServiceKey::Inet { .. } => 0,
            ServiceKey::Fwmark { mark, .. } => *mark,
        }
    }

    /// The protocol (fwmark services have none).
    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            ServiceKey::Inet { protocol, .. } => Some(*protocol),
            ServiceKey::Fwmark { .. } => None,
        }
    }
}

/// Service flag bits, as IPVS numbers them (`IP_VS_SVC_F_*`).
pub mod flags {
    pub const PERSISTENT: u32 = 0x0001;
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
    /// The three scheduler flag bits.
    pub const SCHED_MASK: u32 = SCHED1 | SCHED2 | SCHED3;
    /// `sh-fallback` / `mh-fallback`.
    pub const FALLBACK: u32 = SCHED1;
    /// `sh-port` / `mh-port`.
    pub const PORT: u32 = SCHED2;
    /// `--proxy-protocol v2` (xvs's, after DPVS's option; beside IPVS's bits): FULLNAT
    /// connections start with a PROXY protocol v2 header carrying the client's address.
    pub const PROXY_V2: u32 = 0x0001_0000;
}

/// Persistence timeout that `-p` without a value gives (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;

/// A persistence engine (`--pe`). IPVS has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersistenceEngine {
    Sip,
}

impl PersistenceEngine {
    pub fn name(self) -> &'static str {
        "sip"
    }

    pub fn from_name(name: &str) -> Option<PersistenceEngine> {
        (name == "sip").then_some(PersistenceEngine::Sip)
    }
}

/// A virtual service and its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    pub scheduler: Scheduler,
    /// `flags::*` bits (PERSISTENT, ONEPACKET, SCHED1..3).
    pub flags: u32,
    /// Persistence timeout in seconds (meaningful with `flags::PERSISTENT`).
    pub timeout: u32,
    /// Persistence granularity: an IPv4 mask in host order, or an IPv6 prefix length.
    pub netmask: u32,
    pub pe: Option<PersistenceEngine>,
    /// Real servers in IPVS's list order: the newest first (IPVS inserts at the head),
    /// which decides scheduler tie-breaks and `--nosort` output.
    pub dests: Vec<Dest>,
    /// Local addresses FULLNAT real servers' connections leave from (`--add-laddr`), in
    /// the order they were added.
    pub laddrs: Vec<LocalAddress>,
    pub stats: Stats,
}

/// A local address of a FULLNAT service (DPVS's `--add-laddr -z ADDR [-F IFACE]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddress {
    pub addr: IpAddr,
    /// The interface it was given with (`-F`), if any: listed and saved, not used to
    /// forward (the kernel's routes decide where packets leave).
    pub ifname: Option<String>,
    /// What the datapath counts for it (`--get-laddr`): local ports found taken
    /// (CONFLICTS) and connections leaving from it (CONNS).
    pub conflicts: u64,
    pub conns: u64,
}

impl LocalAddress {
    pub fn new(addr: IpAddr, ifname: Option<String>) -> LocalAddress {
        LocalAddress {
            addr,
            ifname,
            conflicts: 0,
            conns: 0,
        }
    }
}

/// Most local addresses a service takes (the datapath's `MAX_LOCAL_ADDRESSES`).
pub const MAX_LOCAL_ADDRESSES: usize = 16;

impl Service {
    pub fn is_persistent(&self) -> bool {
        self.flags & flags::PERSISTENT != 0
    }

    pub fn dest(&self, addr: &IpAddr, port: u16) -> Option<&Dest> {
        self.dests
            .iter()
            .find(|d| d.addr == *addr && d.port == port)
    }
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forward {
    /// NAT (`-m`).
    Masq,
    /// Local node (IPVS reports it only for old kernels; kept for the listing's sake).
    Local,
    /// IP tunnel (`-i`).
    Tunnel,
    /// Direct routing (`-g`, the default).
    Route,
    /// Full NAT (`-b`, DPVS's): both addresses rewritten, the client's to a local address.
    FullNat,
}

impl Forward {
    /// The name in listings.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel => "Tunnel",
            Forward::Route => "Route",
            Forward::FullNat => "FullNat",
        }
    }

    /// The switch in `-S` output.
    pub fn switch(self) -> &'static str {
        match self {
            Forward::Masq => "-m",
            Forward::Tunnel => "-i",
            Forward::Route | Forward::Local => "-g",
            Forward::FullNat => "-b",
        }
    }
}

/// Tunnel encapsulation (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelType {
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn name(self) -> &'static str {
        match self {
            TunnelType::Ipip => "ipip",
            TunnelType::Gue => "gue",
            TunnelType::Gre => "gre",
        }
    }

    pub fn from_name(name: &str) -> Option<TunnelType> {
        match name {
            "ipip" => Some(TunnelType::Ipip),
            "gue" => Some(TunnelType::Gue),
            "gre" => Some(TunnelType::Gre),
            _ => None,
        }
    }
}

/// Tunnel checksum flag (`--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelChecksum {
    None,
    Checksum,
    Remote,
}

impl TunnelChecksum {
    /// From ipvsadm's `--tun-csum` (bit 0) and `--tun-remcsum` (bit 1) switches, as IPVS's
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` number them.
    pub fn from_flags(flags: u8) -> Option<TunnelChecksum> {
        match flags {
            0 => Some(TunnelChecksum::None),
            1 => Some(TunnelChecksum::Checksum),
            2 => Some(TunnelChecksum::Remote),
            _ => None,
        }
    }

    /// `--tun-info` notation.
    pub fn mark(self) -> &'static str {
        match self {
            TunnelChecksum::None => "-c",
            TunnelChecksum::Checksum => "+c",
            TunnelChecksum::Remote => "r+c",
        }
    }

    /// The option `-S` prints.
    pub fn option(self) -> &'static str {
        match self {
            TunnelChecksum::None => "--tun-nocsum",
            TunnelChecksum::Checksum => "--tun-csum",
            TunnelChecksum::Remote => "--tun-remcsum",
        }
    }
}

/// Tunnel parameters of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tunnel {
    pub kind: TunnelType,
    /// GUE destination port.
    pub port: u16,
    pub checksum: TunnelChecksum,
}

impl Default for Tunnel {
    fn default() -> Tunnel {
        Tunnel {
            kind: TunnelType::Ipip,
            port: 0,
            checksum: TunnelChecksum::None,
        }
    }
}

/// A real server of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
    /// 0..=65535; 0 = quiescent (no new connections).
    pub weight: u32,
    /// The last non-zero weight: Maglev keeps a quiesced server's slots by it.
    pub last_weight: u32,
    /// Upper connection threshold (0 = none): at or above it the server is overloaded.
    pub u_threshold: u32,
    /// Lower threshold: an overloaded server returns below it (0 = below 3/4 of upper).
    pub l_threshold: u32,
    pub tunnel: Tunnel,
    /// Connection counts, kept by the datapath.
    pub conns: ConnCounts,
    pub stats: Stats,
}

impl Dest {
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

/// How many connections a real server has, as IPVS counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnCounts {
    /// ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK.
    pub active: u32,
    /// Every other state.
    pub inactive: u32,
    /// Persistence templates pointing at the server.
    pub persistent: u32,
}

/// Traffic counters and rates of a service or real server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// The three timeouts `--set` changes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}

/// Longest timeout ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;
