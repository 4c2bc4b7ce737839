//! The small numbers user space writes into map entries and the datapath dispatches on:
//! schedulers, forwarding methods, tunnel kinds. Each has its home here and nowhere else;
//! user space maps the model to them with an explicit `match` (xvs-datapath's
//! `encode.rs`), and `tests/codes.rs` pins every value, because a director already running
//! reads the numbers an older build wrote.

/// Scheduler codes ([`crate::ServiceValue::scheduler`]).
pub mod scheduler {
    pub const RR: u8 = 0;
    pub const WRR: u8 = 1;
    pub const LC: u8 = 2;
    pub const WLC: u8 = 3;
    pub const LBLC: u8 = 4;
    pub const LBLCR: u8 = 5;
    pub const DH: u8 = 6;
    pub const SH: u8 = 7;
    pub const SED: u8 = 8;
    pub const NQ: u8 = 9;
    pub const FO: u8 = 10;
    pub const OVF: u8 = 11;
    pub const MH: u8 = 12;
    pub const TWOS: u8 = 13;
}

/// The rule a least-connection tree orders by ([`crate::SchedTree::kind`]).
pub mod tree_rule {
    /// No tree built.
    pub const NONE: u32 = 0;
    pub const LC: u32 = 1;
    pub const WLC: u32 = 2;
    pub const SED: u32 = 3;
    pub const NQ: u32 = 4;
    /// Weighted failover and overflow: the highest weight, a load of 1 for every server
    /// (ovf's leaves also need active connections within the weight).
    pub const FO: u32 = 5;
    pub const OVF: u32 = 6;
    /// lblc's and lblcr's wlc: wlc's order, and the tree also keeps which servers have
    /// fewer active connections than half their weight (`XVS_BELOW_HALF`), so that their
    /// overload check is one look instead of a walk over the set.
    pub const LOCALITY: u32 = 7;
}

/// Service flags the datapath reads ([`crate::ServiceValue::flags`]), as IPVS numbers
/// them (`IP_VS_SVC_F_*`; xvs-core's `model::flags` holds the same numbers).
pub mod service_flags {
    /// `-p`: a client's connections go to one real server while its template lives.
    pub const PERSISTENT: u32 = 0x0001;
    /// `-o`: one-packet scheduling.
    pub const ONE_PACKET: u32 = 0x0004;
    /// `sh-fallback`, `mh-fallback`: an unavailable server's clients go to the next
    /// available one in the table.
    pub const SCHED_FALLBACK: u32 = 0x0008;
    /// `sh-port`, `mh-port`: the source port is hashed with the address.
    pub const SCHED_PORT: u32 = 0x0010;
    /// `--proxy-protocol v2` (xvs's, beside IPVS's bits): FULLNAT connections of the
    /// service start with a PROXY protocol v2 header carrying the client's address.
    pub const PROXY_V2: u32 = 0x0001_0000;
}

/// Forwarding codes, as IPVS numbers them (`IP_VS_CONN_F_*`).
pub mod forward {
    pub const MASQ: u8 = 0;
    /// Local node: listed as IPVS lists it, forwarded by the datapath as ROUTE.
    pub const LOCAL: u8 = 1;
    pub const TUNNEL: u8 = 2;
    pub const ROUTE: u8 = 3;
    /// Full NAT (DPVS's `IP_VS_CONN_F_FULLNAT`): both addresses rewritten, the client's
    /// to one of the service's local addresses, so replies come back from anywhere.
    pub const FULLNAT: u8 = 5;

    /// True for the methods whose replies come back through the director (NAT and
    /// FULLNAT): their connections have a reply entry beside the request entry.
    #[inline(always)]
    pub const fn has_reply_entry(forward: u8) -> bool {
        forward == MASQ || forward == FULLNAT
    }
}

/// Tunnel encapsulations ([`crate::DestValue::tun_type`]).
pub mod tunnel_type {
    pub const IPIP: u8 = 0;
    pub const GUE: u8 = 1;
    pub const GRE: u8 = 2;
}

/// Tunnel checksum options ([`crate::DestValue::tun_csum`]).
pub mod tunnel_checksum {
    pub const NONE: u8 = 0;
    pub const CHECKSUM: u8 = 1;
    pub const REMOTE: u8 = 2;
}
