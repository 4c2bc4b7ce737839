//! FULLNAT (DPVS's forwarding method, which IPVS never had): both addresses of a
//! connection rewritten. Toward the real server the client's address and port become one
//! of the service's local addresses and a local port, so the server answers the director
//! wherever it is; on the way back the real server's become the VIP's again and the local
//! ones the client's.
//!
//! A FULLNAT connection is two entries, as NAT's: the request entry (client → VIP) and
//! the reply entry (real server → local address and port). What each needs beyond NAT's
//! entry, the other side's address and port, lives beside it in `XVS_FULLNAT`, by the
//! same key (a [`FullnatPeer`]): one more lookup per packet, paid by FULLNAT alone.
//!
//! The local port is claimed by inserting the reply entry with `BPF_NOEXIST`: a tuple in
//! use is never handed out twice, and no lock is taken. Each CPU starts its search in its
//! own part of the port range, so CPUs seldom meet.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::{BPF_NOEXIST, xdp_action, xdp_md},
    helpers::bpf_get_smp_processor_id,
    programs::XdpContext,
};
use xvs_common::{
    Conn, ConnKey, FULLNAT_PORT_FIRST, FULLNAT_PORT_TRIES, FULLNAT_PORTS, FullnatPeer,
    MAX_LOCAL_ADDRESSES, conn_flags, proxy_state,
};

use crate::{
    forward, icmp,
    maps::{XVS_CONNS, XVS_FULLNAT, XVS_LADDRS, scratch},
    packet::Packet,
    proxy,
    wire::IPPROTO_TCP,
};

const TCP_SYN: u8 = 0x02;

/// What [`xvs_fullnat_create`] answers.
pub const CREATED: u32 = 1;
/// The request entry is there already (another CPU made the connection) or the table is
/// full: as a NAT connection's failed insert.
pub const NOT_INSERTED: u32 = 0;
/// No local address, or no free local port toward this real server.
pub const NO_LOCAL_PORT: u32 = 2;

/// Where each CPU's search for a free local port starts next: CPUs start apart, and a
/// CPU moves on from the port it took last.
const PORT_STRIDE: u32 = 4099;

/// Creates FULLNAT connection `conn` (request key `key`; `twin` is the reply entry,
/// its next hop set by the caller), already inserted by the caller under `key`: takes a
/// local address and port, inserts the reply entry under the tuple they make, and records
/// both entries' other sides. On failure the request entry is removed again. A global
/// BPF function: verified once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_fullnat_create(
    key: *const ConnKey,
    conn: *const Conn,
    twin: *mut Conn,
) -> u32 {
    let (Some(scratch), false, false, false) =
        (scratch(), key.is_null(), conn.is_null(), twin.is_null())
    else {
        return NOT_INSERTED;
    };
    let (key, conn) = unsafe { (&*key, &*conn) };
    // Counted by the caller (which may try again, the table looked up first).
    let refused = || {
        let _ = XVS_CONNS.remove(key);
        NO_LOCAL_PORT
    };
    let Some(pool) = XVS_LADDRS.get_ptr_mut(&conn.service_id) else {
        return refused();
    };
    let addresses = unsafe { (*pool).count } as usize;
    // (User space writes at most MAX_LOCAL_ADDRESSES; the index is masked below rather
    // than the count checked here, so that the verifier sees the bound.)
    if addresses == 0 || unsafe { (*pool).family } != conn.peer_family {
        return refused();
    }
    let cpu = unsafe { bpf_get_smp_processor_id() };
    // By the client's port, hashed, so that a client's connections spread over them all
    // (Linux's connect() takes even ports: the port itself would leave odd addresses
    // unused).
    let which =
        ((u16::from_be(key.sport) as u32).wrapping_mul(0x9e37_79b1) >> 16) as usize % addresses;
    let local = unsafe { &mut (*scratch).fullnat_local };
    local.addr = unsafe { (*pool).addrs[which & (MAX_LOCAL_ADDRESSES - 1)] };
    local.family = conn.peer_family;
    // A PROXY header starts the client's stream after a SYN (a connection picked up
    // mid-stream has no start to put it at).
    let proxy = if unsafe { (*scratch).proxy_wanted } != 0
        && key.protocol == IPPROTO_TCP
        && unsafe { (*scratch).packet.tcp_flags } & TCP_SYN != 0
    {
        proxy_state::PENDING
    } else {
        proxy_state::NONE
    };
    let first_seq = unsafe { (*scratch).packet.seq }.wrapping_add(1);
    local.proxy = proxy;
    local.first_seq = first_seq;
    unsafe {
        (*twin).expires = conn.expires;
        (*twin).peer = key.dst;
        (*twin).dest_id = conn.dest_id;
        (*twin).service_id = conn.service_id;
        (*twin).peer_port = key.dport;
        (*twin).slot = conn.slot;
        (*twin).service_stats = conn.service_stats;
        (*twin).dest_stats = conn.dest_stats;
        (*twin).state = conn.state;
        (*twin).forward = conn.forward;
        (*twin).flags = conn_flags::REPLY | (conn.flags & conn_flags::DEST_HALF);
        (*twin).peer_family = conn.peer_family;
    }
    let cursor = unsafe { &mut (*scratch).fullnat_cursor };
    if *cursor == 0 {
        *cursor = cpu.wrapping_mul(FULLNAT_PORTS / 64 + 1) | 1;
    }
    let reply_key = unsafe { &mut (*scratch).reply_key };
    let mut tries = 0;
    let mut claimed = false;
    while tries < FULLNAT_PORT_TRIES {
        *cursor = cursor.wrapping_add(PORT_STRIDE);
        let port = FULLNAT_PORT_FIRST as u32 + *cursor % FULLNAT_PORTS;
        local.port = (port as u16).to_be();
        *reply_key = key.fullnat_reply(conn, local);
        if XVS_CONNS
            .insert(&*reply_key, unsafe { &*twin }, BPF_NOEXIST as u64)
            .is_ok()
        {
            claimed = true;
            break;
        }
        tries += 1;
    }
    if tries > 0 {
        unsafe {
            let conflicts = &mut (*pool).conflicts[which & (MAX_LOCAL_ADDRESSES - 1)] as *mut u64;
            atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(conflicts, tries as u64);
        }
    }
    if !claimed {
        return refused();
    }
    let client = unsafe { &mut (*scratch).fullnat_client };
    client.addr = key.src;
    client.port = key.sport;
    client.family = key.family;
    client.proxy = proxy;
    client.first_seq = first_seq;
    if XVS_FULLNAT.insert(key, &*local, 0).is_err()
        || XVS_FULLNAT.insert(&*reply_key, &*client, 0).is_err()
    {
        let _ = XVS_FULLNAT.remove(key);
        let _ = XVS_CONNS.remove(&*reply_key);
        return refused();
    }
    CREATED
}

/// The reply key of FULLNAT request entry `conn` (key `key`), written to the scratch
/// space's `reply_key`; false if its other side is not recorded (not yet, or no more).
#[inline(always)]
pub fn reply_key(key: &ConnKey, conn: &Conn) -> bool {
    let (Some(scratch), Some(local)) = (scratch(), unsafe { XVS_FULLNAT.get(key) }) else {
        return false;
    };
    unsafe { (*scratch).reply_key = key.fullnat_reply(conn, local) };
    true
}

/// Forgets the other sides of a FULLNAT connection: its request entry's (`key`) and its
/// reply entry's (`reply`).
#[inline(always)]
pub fn forget_peers(key: &ConnKey, reply: &ConnKey) {
    let _ = XVS_FULLNAT.remove(key);
    let _ = XVS_FULLNAT.remove(reply);
}

/// Forgets the other side of one FULLNAT entry (`key`).
#[inline(always)]
pub fn forget_peer(key: &ConnKey) {
    let _ = XVS_FULLNAT.remove(key);
}

/// A client packet of FULLNAT connection `conn` (key `key`) to its real server: the
/// destination becomes the real server, the source the connection's local address and
/// port; then it is sent. A global BPF function: verified once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_fullnat(
    ctx: *mut xdp_md,
    packet: *const Packet,
    key: *const ConnKey,
    conn: *const Conn,
) -> u32 {
    if packet.is_null() || key.is_null() || conn.is_null() {
        return xdp_action::XDP_ABORTED;
    }
    let ctx = &mut XdpContext::new(ctx);
    let (packet, key, conn) = unsafe { (&*packet, &*key, &*conn) };
    // Made a moment ago by another CPU, not finished yet: the client sends again.
    let Some(local) = (unsafe { XVS_FULLNAT.get(key) }) else {
        return xdp_action::XDP_DROP;
    };
    if local.proxy != proxy_state::NONE
        && packet.protocol == IPPROTO_TCP
        && proxy::xvs_proxy_request(ctx.ctx, packet, local, key) == 0
    {
        // No headroom to grow the frame into: as a failed rewrite.
        return xdp_action::XDP_ABORTED;
    }
    if forward::rewrite(ctx, packet, false, &conn.peer, conn.peer_port).is_none()
        || forward::rewrite(ctx, packet, true, &local.addr, local.port).is_none()
    {
        return xdp_action::XDP_ABORTED;
    }
    let l2 = conn.l2;
    forward::emit(ctx, &l2)
}

/// The client of FULLNAT reply entry key `key`: where its packets go back to.
#[inline(always)]
pub fn client_of(key: &ConnKey) -> Option<&'static FullnatPeer> {
    unsafe { XVS_FULLNAT.get(key) }
}

/// A reply of a FULLNAT connection, whose source `nat_reply` has made the VIP's again:
/// the destination becomes the client's address and port, those of the connection's
/// request key `request`. 0 if it could not be. A global BPF function.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_fullnat_to_client(
    ctx: *mut xdp_md,
    packet: *const Packet,
    request: *const ConnKey,
) -> u32 {
    if packet.is_null() || request.is_null() {
        return 0;
    }
    let ctx = &XdpContext::new(ctx);
    let (packet, request) = unsafe { (&*packet, &*request) };
    forward::rewrite(ctx, packet, false, &request.src, request.sport).is_some() as u32
}

/// A later fragment (no ports) of a FULLNAT connection's datagram, by its entry `conn`
/// (key `key`): only the addresses are rewritten, as the first fragment's were (its L4
/// checksum, which covers the whole datagram, was kept right there). Request: to the real
/// server from the local address; reply: from the VIP to the client, one hop less. A
/// global BPF function.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_fullnat_fragment(
    ctx: *mut xdp_md,
    packet: *const Packet,
    key: *const ConnKey,
    conn: *const Conn,
) -> u32 {
    if packet.is_null() || key.is_null() || conn.is_null() {
        return xdp_action::XDP_PASS;
    }
    let ctx = &mut XdpContext::new(ctx);
    let (packet, key, conn) = unsafe { (&*packet, &*key, &*conn) };
    let Some(other) = (unsafe { XVS_FULLNAT.get(key) }) else {
        return xdp_action::XDP_PASS;
    };
    let reply = conn.flags & conn_flags::REPLY != 0;
    if reply && forward::decrement_ttl(ctx, packet).is_none() {
        return xdp_action::XDP_PASS;
    }
    // Reply: source to the VIP (the entry's peer), destination to the client; request:
    // destination to the real server (the peer), source to the local address.
    if forward::rewrite_address(
        ctx,
        packet,
        reply,
        if reply { &packet.src } else { &packet.dst },
        &conn.peer,
    )
    .is_none()
        || forward::rewrite_address(
            ctx,
            packet,
            !reply,
            if reply { &packet.dst } else { &packet.src },
            &other.addr,
        )
        .is_none()
    {
        return xdp_action::XDP_ABORTED;
    }
    let l2 = conn.l2;
    forward::emit(ctx, &l2)
}

/// An ICMP error quoting a packet of FULLNAT connection `conn` (key `key`, the quoted
/// packet turned round), translated as NAT's are, on both sides:
/// - reply entry (a router or the real server answered a packet that left from a local
///   address): the quoted packet becomes the client's to the VIP again, and the error goes
///   from the VIP to the client, one hop less;
/// - request entry (a router on the client's side answered a reply that left from the
///   VIP): the quoted packet becomes the real server's to the local address, and the
///   error goes from the local address to the real server.
/// A global BPF function.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_fullnat_icmp(
    ctx: *mut xdp_md,
    packet: *const Packet,
    key: *const ConnKey,
    conn: *const Conn,
) -> u32 {
    if packet.is_null() || key.is_null() || conn.is_null() {
        return xdp_action::XDP_PASS;
    }
    let ctx = &mut XdpContext::new(ctx);
    let (packet, key, conn) = unsafe { (&*packet, &*key, &*conn) };
    let Some(other) = (unsafe { XVS_FULLNAT.get(key) }) else {
        return xdp_action::XDP_PASS;
    };
    let reply = conn.flags & conn_flags::REPLY != 0;
    if reply && forward::decrement_ttl(ctx, packet).is_none() {
        return xdp_action::XDP_PASS;
    }
    // Reply entry: quoted source (local) → client, quoted destination (real server) →
    // VIP. Request entry: quoted source (VIP) → real server, quoted destination (client)
    // → local.
    let (source_to, source_port, dest_to, dest_port) = if reply {
        (&other.addr, other.port, &conn.peer, conn.peer_port)
    } else {
        (&conn.peer, conn.peer_port, &other.addr, other.port)
    };
    if icmp::translate_quoted(ctx, packet, true, source_to, source_port).is_none()
        || icmp::translate_quoted(ctx, packet, false, dest_to, dest_port).is_none()
    {
        return xdp_action::XDP_PASS;
    }
    // The outer header: reply, from the VIP to the client; request, from the local
    // address to the real server.
    let (outer_source, outer_dest) = if reply {
        (&conn.peer, &other.addr)
    } else {
        (&other.addr, &conn.peer)
    };
    if icmp::rewrite_outer(ctx, packet, true, &packet.src, outer_source).is_none()
        || icmp::rewrite_outer(ctx, packet, false, &packet.dst, outer_dest).is_none()
    {
        return xdp_action::XDP_PASS;
    }
    let l2 = conn.l2;
    forward::emit(ctx, &l2)
}
