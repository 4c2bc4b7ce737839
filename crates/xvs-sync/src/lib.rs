//! Connection synchronisation between directors, without I/O.
//!
//! A master director tells its backups about its connections so that a backup that takes
//! over (VRRP moves the VIP to it) sends every established connection to the real server
//! it already went to. The messages are IPVS's sync protocol version 1 (`ip_vs_sync.c`,
//! see shared/reference/conn-sync-and-ecmp.md): [`wire`]. xvs adds two things the kernel
//! lacks, both outside what a kernel receiver reads: an optional HMAC-SHA256 after the
//! message ([`wire::Seal`]), a bulk request, a message without connections by which a
//! backup that starts asks for the whole table, and FULLNAT's local side as an optional
//! parameter of a connection, which a kernel receiver skips. [`Tracker`] decides what a master sends;
//! [`Waiting`] keeps what a backup cannot place yet; [`daemon`] says how a running sync daemon is reached.

pub mod daemon;
pub mod tracker;
pub mod waiting;
pub mod wire;

use std::{net::IpAddr, sync::Arc};

pub use tracker::Tracker;
pub use waiting::Waiting;

/// One connection (or persistence template) as directors tell each other about it:
/// layout-free, in IPVS's terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncedConn {
    /// IP protocol: TCP or UDP; 0 for the template of a fwmark service.
    pub protocol: u8,
    pub client: IpAddr,
    pub cport: u16,
    /// The VIP (a fwmark template's is the mark, as IPVS keeps it).
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// The firewall mark of the connection's service (0: an address service).
    pub fwmark: u32,
    /// `IP_VS_CONN_F_*`: the forwarding method in the low bits, [`flags::TEMPLATE`], ...
    pub flags: u32,
    /// IPVS's state: the TCP state's number (`IP_VS_TCP_S_*`), 0 for UDP and templates.
    pub state: u16,
    /// Seconds the connection has left.
    pub timeout: u32,
    /// A FULLNAT connection's local side (xvs's option: a kernel receiver skips it).
    pub fullnat: Option<FullnatSide>,
    /// The Call-ID of a call's template (`--pe sip`): IPVS's persistence-engine data,
    /// sent with the engine's name `sip`, as a kernel IPVS sends and reads them.
    pub call: Option<Arc<[u8]>>,
}

/// What a FULLNAT connection's real server sees as its client: the director's local
/// address and port, and whether a PROXY protocol header starts the client's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FullnatSide {
    /// Of the real server's family.
    pub laddr: IpAddr,
    pub lport: u16,
    /// The PROXY protocol state (xvs-common's `proxy_state`: none, pending, delivered).
    pub proxy: u8,
    /// With a PROXY header: the client's first data sequence number.
    pub first_seq: u32,
}

impl SyncedConn {
    /// What identifies the connection on every director (its addresses and ports as the
    /// client sees them).
    pub fn id(&self) -> ConnId {
        ConnId {
            protocol: self.protocol,
            client: self.client,
            cport: self.cport,
            vaddr: self.vaddr,
            vport: self.vport,
            template: self.is_template(),
            call: self.call.as_deref().map_or(0, call_digest),
        }
    }

    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
}

/// A connection's identity: see [`SyncedConn::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId {
    pub protocol: u8,
    pub client: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub template: bool,
    /// A call's template: a digest of its Call-ID (0: none), so that each call's
    /// template is a connection of its own.
    pub call: u64,
}

impl std::hash::Hash for ConnId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.protocol.hash(state);
        self.client.hash(state);
        self.cport.hash(state);
        self.vaddr.hash(state);
        self.vport.hash(state);
        self.template.hash(state);
        // Only a call's template has one: every other connection hashes as much as
        // before (a master hashes its whole table every round).
        if self.call != 0 {
            self.call.hash(state);
        }
    }
}

/// A digest of a Call-ID, for [`ConnId`] (stable within a process).
fn call_digest(call: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    call.hash(&mut hasher);
    hasher.finish() | 1
}

/// `IP_VS_CONN_F_*` (include/uapi/linux/ip_vs.h) as the sync messages carry them.
pub mod flags {
    /// The forwarding method: [`MASQ`], [`TUNNEL`], [`DROUTE`], ...
    pub const FWD_MASK: u32 = 0x0007;
    pub const MASQ: u32 = 0x0000;
    pub const LOCALNODE: u32 = 0x0001;
    pub const TUNNEL: u32 = 0x0002;
    pub const DROUTE: u32 = 0x0003;
    /// No packet from the real server seen yet.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Counted as inactive.
    pub const INACTIVE: u32 = 0x0100;
    /// A persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// A one-packet connection (never synced).
    pub const ONE_PACKET: u32 = 0x2000;
}

/// IPVS's TCP states (`IP_VS_TCP_S_*`), the numbers sync messages carry.
pub mod state {
    pub const NONE: u16 = 0;
    pub const ESTABLISHED: u16 = 1;
    pub const SYN_SENT: u16 = 2;
    pub const SYN_RECV: u16 = 3;
    pub const FIN_WAIT: u16 = 4;
    pub const TIME_WAIT: u16 = 5;
    pub const CLOSE: u16 = 6;
    pub const CLOSE_WAIT: u16 = 7;
    pub const LAST_ACK: u16 = 8;
    pub const LISTEN: u16 = 9;
    pub const SYNACK: u16 = 10;
    /// One past the last TCP state: a message with a state at or past it is refused.
    pub const TCP_COUNT: u16 = 11;
}

/// IP protocol numbers.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// Records for the crate's tests.
#[cfg(test)]
pub(crate) mod test_records {
    use super::*;

    /// A DR connection of client 10.0.0.1:`cport` to 10.0.0.100:80, at real server
    /// 10.0.1.2:80.
    pub fn tcp(cport: u16, state: u16, timeout: u32) -> SyncedConn {
        SyncedConn {
            protocol: IPPROTO_TCP,
            client: "10.0.0.1".parse().unwrap(),
            cport,
            vaddr: "10.0.0.100".parse().unwrap(),
            vport: 80,
            daddr: "10.0.1.2".parse().unwrap(),
            dport: 80,
            fwmark: 0,
            flags: flags::DROUTE,
            state,
            timeout,
            fullnat: None,
            call: None,
        }
    }
}
