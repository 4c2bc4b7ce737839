//! The connection table: keys, entries, their flags, and the next hops entries carry.

/// Where to send a frame for an address: the egress interface and the MACs.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neighbour {
    pub ifindex: u32,
    pub smac: [u8; 6],
    pub dmac: [u8; 6],
}

/// A client by address, for the way back to it (`XVS_CLIENT_HOPS`).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub addr: [u8; 16],
    pub family: u8,
    pub _pad: [u8; 7],
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

/// The marker in `ConnKey::_pad[0]` of a persistence template's key, so that no packet's
/// key (marker 0) can ever be a template's.
pub const TEMPLATE_KEY: u8 = 1;

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
    /// A persistence template: which real server a client (or its network) goes to, for
    /// the service's persistence timeout. Counted in the server's persistent count.
    pub const TEMPLATE: u8 = 8;
    /// The real server's entry was in the second half of the real-server array when the
    /// connection was made: that entry holds the server's id for as long as the server
    /// is in its service (an edit writes the other half, the next edit this one again,
    /// with the same id), so one read tells whether it still is.
    pub const DEST_HALF: u8 = 16;
    /// Made by user space from a peer director's connection sync, not yet used here: its
    /// next hop (`l2`) is not resolved and it is in no count. The first packet that meets
    /// it resolves the hop and counts it, as if it had been made here (`xvs_adopt`).
    pub const SYNCED: u8 = 32;
    /// A connection of a persistent service, counted in its template's
    /// [`super::Conn::template_controls`] while it lives (IPVS's `n_control`): the
    /// template does not expire before it ends.
    pub const CONTROLLED: u8 = 64;
}

impl Conn {
    /// A persistence template's count of the live connections it sent (IPVS's
    /// `n_control`; a template is never forwarded by, so its next hop's interface field
    /// holds it, and its source MAC's first four bytes the netmask it was made under).
    /// While it is above 0 the template outlives its timeout.
    #[inline(always)]
    pub fn template_controls(&self) -> u32 {
        self.l2.ifindex
    }
}

/// What the datapath needs to find a connection's persistence template from the
/// connection (`XVS_PERSIST`, by service id; written when the service makes a template):
/// the template's key is the client's address masked by `netmask` (an IPv6 prefix
/// length for IPv6), the VIP (or the `fwmark`), the VIP's `port` (0 for a port-0
/// service) and the protocol (0 for a fwmark service).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistParams {
    /// The persistence timeout, seconds: a template kept past its own by the connections
    /// it sent lives this long again each time it is found so.
    pub timeout: u32,
    pub netmask: u32,
    pub fwmark: u32,
    /// Network byte order; 0 for a port-0 service.
    pub port: u16,
    pub _pad: u16,
}

/// The other side of a FULLNAT entry (`XVS_FULLNAT`, by the entry's key): for a request
/// entry the local address and port its packets leave from toward the real server; for a
/// reply entry the client's address and port its packets go back to. Both carry the
/// connection's PROXY protocol state (in what was padding: entries written before it
/// read as [`proxy_state::NONE`]).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FullnatPeer {
    pub addr: [u8; 16],
    /// Network byte order.
    pub port: u16,
    pub family: u8,
    /// [`proxy_state`]: whether a PROXY protocol v2 header starts the client's stream.
    pub proxy: u8,
    /// With a PROXY header: the client's first data sequence number (its SYN's plus one),
    /// where the header goes in; host order.
    pub first_seq: u32,
}

/// The PROXY protocol state of a FULLNAT connection ([`FullnatPeer::proxy`]).
pub mod proxy_state {
    /// No header: sequence numbers pass unchanged.
    pub const NONE: u8 = 0;
    /// A header is sent before the client's first byte, and again with every client
    /// segment that starts there, until the real server acknowledges it.
    pub const PENDING: u8 = 1;
    /// The real server has acknowledged the header: segments that start at the client's
    /// first byte are only moved along by its length.
    pub const DELIVERED: u8 = 2;
}

/// PROXY protocol v2 (HAProxy's specification): the signature every header starts with.
pub const PROXY_V2_SIGNATURE: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];
/// A v2 header's length for a TCP connection over IPv4: signature, version and command,
/// family and protocol, length, two addresses and two ports.
pub const PROXY_V2_LEN_V4: u32 = 16 + 12;
/// The same over IPv6.
pub const PROXY_V2_LEN_V6: u32 = 16 + 36;

/// Local addresses a FULLNAT service may take, at most (`--add-laddr`).
pub const MAX_LOCAL_ADDRESSES: usize = 16;

/// Local ports FULLNAT connections take: below Linux's default ephemeral range
/// (32768–60999), so that the director's own connections from the same address (health
/// checks) do not meet them.
pub const FULLNAT_PORT_FIRST: u16 = 1024;
pub const FULLNAT_PORTS: u32 = 32768 - 1024;

/// How many local ports a new FULLNAT connection tries before it is refused: each try is
/// an insert that finds the reply tuple taken.
pub const FULLNAT_PORT_TRIES: u32 = 16;

/// A FULLNAT service's local addresses (`XVS_LADDRS`, by service id), with what each has
/// met: the ports it found taken.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddresses {
    pub count: u32,
    pub family: u8,
    pub _pad: [u8; 3],
    pub addrs: [[u8; 16]; MAX_LOCAL_ADDRESSES],
    /// Ports found taken, by address (added to atomically by the datapath).
    pub conflicts: [u64; MAX_LOCAL_ADDRESSES],
    /// The interface each was given with (`-F`; 0: none), for listings only.
    pub ifindexes: [u32; MAX_LOCAL_ADDRESSES],
}

impl Default for LocalAddresses {
    fn default() -> LocalAddresses {
        LocalAddresses {
            count: 0,
            family: 0,
            _pad: [0; 3],
            addrs: [[0; 16]; MAX_LOCAL_ADDRESSES],
            conflicts: [0; MAX_LOCAL_ADDRESSES],
            ifindexes: [0; MAX_LOCAL_ADDRESSES],
        }
    }
}

impl ConnKey {
    /// The key of a FULLNAT connection's reply direction (real server → local address),
    /// `self` being its request direction, `conn` that entry and `local` its
    /// [`FullnatPeer`].
    #[inline(always)]
    pub fn fullnat_reply(&self, conn: &Conn, local: &FullnatPeer) -> ConnKey {
        ConnKey {
            src: conn.peer,
            dst: local.addr,
            sport: conn.peer_port,
            dport: local.port,
            protocol: self.protocol,
            family: conn.peer_family,
            _pad: [0; 2],
        }
    }
}

/// An IPv4 datagram's fragments, as the kernel reassembles them: addresses, protocol and
/// identification.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub id: u32,
    pub protocol: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// The connection a datagram's first fragment went by: its later fragments (which carry
/// no ports) follow it there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragmentEntry {
    pub conn: ConnKey,
    /// Until when later fragments may come (the connection table's clock).
    pub expires: u64,
}

/// How long after a first fragment its later ones are followed (the kernel's
/// `ipfrag_time`: 30 s).
pub const FRAGMENT_NS: u64 = 30_000_000_000;
