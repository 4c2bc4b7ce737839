//! The director: one XDP pass over every frame that reaches an interface of the director's
//! network namespace.
//!
//! parse → connection lookup (both directions of NAT are keyed by the packet as it comes)
//! → on a miss, service lookup and scheduling of a new connection → forwarding by the
//! real server's method (DR, NAT, tunnel) → counting. Whatever is not for a virtual
//! service passes to the kernel untouched: the director stays an ordinary host.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]

#[cfg(target_arch = "bpf")]
#[path = "director/conn.rs"]
mod conn;
#[cfg(target_arch = "bpf")]
#[path = "director/forward.rs"]
mod forward;
#[cfg(target_arch = "bpf")]
#[path = "director/fullnat.rs"]
mod fullnat;
#[cfg(target_arch = "bpf")]
#[path = "director/fwmark.rs"]
mod fwmark;
#[cfg(target_arch = "bpf")]
#[path = "director/icmp.rs"]
mod icmp;
#[cfg(target_arch = "bpf")]
#[path = "director/maps.rs"]
mod maps;
#[cfg(target_arch = "bpf")]
#[path = "director/packet.rs"]
mod packet;
#[cfg(target_arch = "bpf")]
#[path = "director/persist.rs"]
mod persist;
#[cfg(target_arch = "bpf")]
#[path = "director/proxy.rs"]
mod proxy;
#[cfg(target_arch = "bpf")]
#[path = "director/sched/mod.rs"]
mod sched;
#[cfg(target_arch = "bpf")]
#[path = "director/sip.rs"]
mod sip;
#[cfg(target_arch = "bpf")]
mod wire;

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{
        bindings::{xdp_action, xdp_md},
        macros::xdp,
        programs::XdpContext,
    };
    use xvs_common::{
        Conn, ConnKey, DestCounts, FRAGMENT_NS, FragmentEntry, FragmentKey, LOOPBACK_INDEX,
        MAX_SET, MAX_SET_LARGE, Neighbour, ServiceEntry, ServiceSched, ServiceValue, conn_flags,
        counter, dest_index, forward as method, meta, persistence_engine, proxy_state, scheduler,
        service_flags, tcp, tunnel_type,
    };

    use crate::{
        conn, forward, fullnat, fwmark, icmp,
        maps::{
            STATS_IN, STATS_NEW, STATS_OUT, XVS_CONNS, XVS_DESTS, XVS_FRAGS, XVS_RATES, XVS_SCHED,
            XVS_SCHED_LARGE, XVS_SERVICES, XVS_SERVICES_LARGE, XVS_TUN_SRC, add_stats, count,
            dest_counts, meta_value, scratch,
        },
        packet::{self, Packet, Skip, copy_addr},
        persist, proxy, sched, sip,
        wire::{IPPROTO_TCP, IPPROTO_UDP},
    };

    /// Packets of at most this many bytes fit every link they are sent on.
    const SMALLEST_MTU: u32 = 576;
    const TCP_SYN: u8 = 0x02;
    const TCP_RST: u8 = 0x04;
    const TCP_ACK: u8 = 0x10;

    #[xdp]
    pub fn xvs_director(ctx: XdpContext) -> u32 {
        // On lo the program only anchors the namespace's state: local traffic passes.
        if ctx.ingress_ifindex() == LOOPBACK_INDEX as usize {
            // No frame is empty: this only makes the program refer to the rates map,
            // which keeps the map alive with the program.
            if ctx.data_end() == ctx.data() {
                let _ = unsafe { XVS_RATES.get(&0) };
            }
            return xdp_action::XDP_PASS;
        }
        let len = (ctx.data_end() - ctx.data()) as u64;
        count(counter::RX_FRAMES, 1);
        count(counter::RX_BYTES, len);
        let mut ctx = ctx;
        // The parsed packet lives in per-CPU scratch memory, not on the small BPF stack.
        let Some(scratch) = scratch() else {
            return xdp_action::XDP_PASS;
        };
        let packet = unsafe { &mut (*scratch).packet };
        match packet::parse(&ctx, packet) {
            Ok(()) => {
                let now = conn::now();
                let key = conn_key(unsafe { &mut (*scratch).key }, packet);
                // A SYN is nearly always a new connection: it is scheduled and inserted
                // without looking the table up first (the insert finds an entry there
                // anyway, so the cold bucket is walked once instead of twice: ~55 ns
                // here). Whatever else it meets goes the ordinary way, looked up first.
                if packet.protocol == IPPROTO_TCP
                    && packet.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN
                {
                    conn::sweep(now);
                    let verdict = new_flow(ctx.ctx, packet, key, now, UNCHECKED);
                    if verdict != RETRY_CHECKED {
                        return verdict;
                    }
                }
                // A packet that may start a connection is scheduled from here, out of
                // director's frame (the call chain's stack is 512 bytes in all).
                match director(&mut ctx, packet, key, now) {
                    NEW_FLOW => new_flow(ctx.ctx, packet, key, now, CHECKED),
                    verdict => verdict,
                }
            }
            Err(Skip::NotOurs) => {
                count(counter::NOT_IP, 1);
                xdp_action::XDP_PASS
            }
            Err(Skip::Malformed) => {
                count(counter::MALFORMED, 1);
                xdp_action::XDP_PASS
            }
            Err(Skip::Fragment) => {
                count(counter::FRAGMENTS, 1);
                xdp_action::XDP_PASS
            }
            Err(Skip::LaterFragment) => xvs_fragment(ctx.ctx, packet, conn::now()),
            Err(Skip::IcmpError) => xvs_icmp_error(ctx.ctx, packet),
        }
    }

    /// The connection key of `packet`, built in `key` (scratch memory).
    #[inline(always)]
    fn conn_key<'a>(key: &'a mut ConnKey, packet: &Packet) -> &'a ConnKey {
        key.src = packet.src;
        key.dst = packet.dst;
        key.sport = packet.sport;
        key.dport = packet.dport;
        key.protocol = packet.protocol;
        key.family = packet.family;
        key._pad = [0; 2];
        key
    }

    #[inline(never)]
    fn director(ctx: &mut XdpContext, packet: &Packet, key: &ConnKey, now: u64) -> u32 {
        if let Some(entry) = XVS_CONNS.get_ptr_mut(key) {
            if unsafe { (*entry).flags } & conn_flags::REPLY != 0 {
                return nat_reply(ctx, packet, key, entry, now);
            }
            // A new SYN on a closed connection starts afresh, as `conn_reuse_mode` says.
            let reuse = packet.protocol == IPPROTO_TCP
                && packet.tcp_flags & (TCP_SYN | TCP_RST) == TCP_SYN
                && conn::new_connection_expected(entry);
            if !reuse && !conn::gone(key, entry, now) {
                return established(ctx, packet, key, entry, now);
            }
            // Expired (or closed and reused): the connection is gone. Reused under
            // FULLNAT, its local port stays held until it would have expired.
            if reuse && unsafe { (*entry).forward } == method::FULLNAT {
                conn::forget_holding_port(key, entry, now);
            } else {
                conn::forget(key, entry);
            }
        }
        // A packet that may start a connection first forgets a few expired ones, so the
        // counts a scheduler reads are right. (Out of this frame: the stack is small.)
        if packet.protocol != IPPROTO_TCP || packet.tcp_flags & TCP_SYN != 0 {
            conn::sweep(now);
        }
        NEW_FLOW
    }

    /// What [`director`] answers for a packet that may start a connection (not an XDP
    /// action).
    const NEW_FLOW: u32 = u32::MAX;
    /// What [`xvs_new_flow`] answers when a SYN tried without a lookup made no connection
    /// (an entry was there, or it could not be scheduled): it goes the ordinary way.
    const RETRY_CHECKED: u32 = u32::MAX - 1;
    /// [`xvs_new_flow`]'s `checked`: whether the table was looked up first (if not, every
    /// way but a new entry ends in [`RETRY_CHECKED`], uncounted).
    const UNCHECKED: u32 = 0;
    const CHECKED: u32 = 1;
    /// What [`xvs_new_flow`] answers for a service whose set is in the large services map:
    /// [`xvs_new_flow_large`] takes the packet on.
    const LARGE_SERVICE: u32 = u32::MAX - 2;

    /// A packet that may start a connection, through the new-connection function of its
    /// service's class: each is a global function of its own, called from here so that
    /// their stack frames never stack up.
    #[inline(always)]
    fn new_flow(
        ctx: *mut xdp_md,
        packet: *const Packet,
        key: *const ConnKey,
        now: u64,
        checked: u32,
    ) -> u32 {
        match xvs_new_flow(ctx, packet, key, now, checked) {
            LARGE_SERVICE => xvs_new_flow_large(ctx, packet, key, now, checked),
            verdict => verdict,
        }
    }

    /// A packet that may start a connection: schedules it and sends it on. A global BPF
    /// function, so the verifier checks the new-connection path once, on its own, rather
    /// than once for each way the caller reaches it (no entry, expired, reused; swept or
    /// not; looked up first or not).
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn xvs_new_flow(
        ctx: *mut xdp_md,
        packet: *const Packet,
        key: *const ConnKey,
        now: u64,
        checked: u32,
    ) -> u32 {
        if packet.is_null() || key.is_null() {
            return xdp_action::XDP_PASS;
        }
        let ctx = &mut XdpContext::new(ctx);
        let (packet, key) = unsafe { (&*packet, &*key) };
        let checked = checked == CHECKED;
        let found = match find_service(ctx, packet, checked) {
            Ok(found) if found.service.large != 0 => return LARGE_SERVICE,
            Ok(found) => found,
            Err(_) => return verdict_left(),
        };
        // Scheduling and sending are sibling calls, so their stack frames never stack up.
        let created = new_connection::<MAX_SET, Small>(ctx, packet, key, now, checked, found);
        set_aside_if_unreachable(created, &found.service, now);
        settle_overload_of(created);
        new_flow_sent(ctx, packet, key, now, created)
    }

    /// [`xvs_new_flow`] for a service whose set is in the large services map (the key it
    /// was found by is in the scratch space).
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn xvs_new_flow_large(
        ctx: *mut xdp_md,
        packet: *const Packet,
        key: *const ConnKey,
        now: u64,
        checked: u32,
    ) -> u32 {
        let (Some(scratch), false, false) = (scratch(), packet.is_null(), key.is_null()) else {
            return xdp_action::XDP_PASS;
        };
        let ctx = &mut XdpContext::new(ctx);
        let (packet, key) = unsafe { (&*packet, &*key) };
        let checked = checked == CHECKED;
        let Some(found) = (unsafe { XVS_SERVICES_LARGE.get(&(*scratch).service_key) }) else {
            // Changed between the two lookups: the ordinary way finds it again.
            refuse(xdp_action::XDP_PASS, UNCOUNTED, checked);
            return verdict_left();
        };
        let created = new_connection::<MAX_SET_LARGE, Large>(ctx, packet, key, now, checked, found);
        set_aside_if_unreachable(created, &found.service, now);
        settle_overload_of(created);
        new_flow_sent(ctx, packet, key, now, created)
    }

    /// The verdict [`refuse`] left in the scratch space.
    #[inline(always)]
    fn verdict_left() -> u32 {
        match scratch() {
            Some(scratch) => unsafe { (*scratch).verdict },
            None => xdp_action::XDP_PASS,
        }
    }

    /// Sends a new connection's packet on by the connection `created` made, or answers the
    /// verdict left if it made none.
    #[inline(always)]
    fn new_flow_sent(
        ctx: &mut XdpContext,
        packet: &Packet,
        key: &ConnKey,
        now: u64,
        created: u64,
    ) -> u32 {
        if created == NOT_CREATED || created == NO_NEXT_HOP {
            return verdict_left();
        }
        if packet.fragment == packet::FIRST_FRAGMENT {
            xvs_remember_fragment(packet, key, now);
        }
        send(ctx, packet, key, unsafe { &*(created as *const Conn) })
    }

    /// A packet of a known connection, client to real server.
    #[inline(always)]
    fn established(
        ctx: &mut XdpContext,
        packet: &Packet,
        key: &ConnKey,
        entry: *mut Conn,
        now: u64,
    ) -> u32 {
        if !server_alive(unsafe { &*entry }) {
            count(counter::DEST_GONE, 1);
            if keeps_nodest_conns() {
                return xdp_action::XDP_DROP;
            }
            conn::forget(key, entry);
            // A UDP flow moves on: its datagram is scheduled to a server that is there,
            // and so is a new TCP connection that reuses the client's port (IPVS
            // reschedules such a SYN too). A TCP connection cannot move: the
            // director's stack resets it.
            let syn = packet.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN;
            if packet.protocol == IPPROTO_UDP || (packet.protocol == IPPROTO_TCP && syn) {
                return NEW_FLOW;
            }
            return xdp_action::XDP_PASS;
        }
        if unsafe { (*entry).flags } & conn_flags::SYNCED != 0
            && xvs_adopt(ctx.ctx, packet, key, entry, now) == 0
        {
            count(counter::NO_ROUTE, 1);
            return xdp_action::XDP_DROP;
        }
        conn::touch(key, entry, packet.protocol, packet.tcp_flags, false, now);
        let conn = unsafe { &*entry };
        add_stats(conn.service_stats, packet.ip_len as u64, STATS_IN);
        add_stats(conn.dest_stats, packet.ip_len as u64, STATS_IN);
        if packet.fragment == packet::FIRST_FRAGMENT {
            xvs_remember_fragment(packet, key, now);
        }
        send(ctx, packet, key, conn)
    }

    /// An ICMP or ICMPv6 error quoting a packet of a connection (IPVS's `ip_vs_in_icmp` and
    /// `ip_vs_out_icmp`): the quoted packet, turned round, is the connection's request key
    /// or (NAT) its reply key.
    /// - About a packet that left from the VIP toward the client (DR and tunnel real
    ///   servers answer from the VIP, so routers' errors come back to the director): to the
    ///   real server, as its client's packets go; NAT translates the quoted source (VIP to
    ///   the real server) and the outer destination.
    /// - NAT, about a packet toward a real server (from it or a router on its side): to the
    ///   client, the quoted destination and the outer source back to the VIP.
    /// Anything else goes to the stack. A global BPF function: verified once.
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn xvs_icmp_error(ctx: *mut xdp_md, packet: *const Packet) -> u32 {
        let (Some(scratch), false) = (scratch(), packet.is_null()) else {
            return xdp_action::XDP_PASS;
        };
        let ctx = &mut XdpContext::new(ctx);
        let packet = unsafe { &*packet };
        let key = unsafe { &mut (*scratch).key };
        key.src = packet.inner_dst;
        key.dst = packet.inner_src;
        key.sport = packet.inner_dport;
        key.dport = packet.inner_sport;
        key.protocol = packet.inner_protocol;
        key.family = packet.family;
        key._pad = [0; 2];
        let Some(entry) = XVS_CONNS.get_ptr_mut(&*key) else {
            return xdp_action::XDP_PASS;
        };
        let conn = unsafe { &*entry };
        // A synced connection no packet has used here yet has no next hop.
        if conn.flags & conn_flags::SYNCED != 0 {
            return xdp_action::XDP_PASS;
        }
        count(counter::ICMP_FORWARDED, 1);
        if conn.forward == method::FULLNAT {
            return fullnat::xvs_fullnat_icmp(ctx.ctx, packet, key, conn);
        }
        if conn.flags & conn_flags::REPLY != 0 {
            // NAT, toward the client: the quoted real server becomes the VIP again.
            if forward::decrement_ttl(ctx, packet).is_none()
                || icmp::translate_quoted(ctx, packet, false, &conn.peer, conn.peer_port).is_none()
                || icmp::rewrite_outer(ctx, packet, true, &packet.src, &conn.peer).is_none()
            {
                return xdp_action::XDP_PASS;
            }
            let l2 = conn.l2;
            return forward::emit(ctx, &l2);
        }
        match conn.forward {
            method::LOCAL => xdp_action::XDP_PASS,
            method::TUNNEL => xvs_tunnel(ctx.ctx, packet, conn),
            method::MASQ => {
                if icmp::translate_quoted(ctx, packet, true, &conn.peer, conn.peer_port).is_none()
                    || icmp::rewrite_outer(ctx, packet, false, &packet.dst, &conn.peer).is_none()
                {
                    return xdp_action::XDP_PASS;
                }
                let l2 = conn.l2;
                forward::emit(ctx, &l2)
            }
            _ => {
                let l2 = conn.l2;
                forward::emit(ctx, &l2)
            }
        }
    }

    /// Remembers that the datagram of first fragment `packet` went by the connection
    /// entry of `key` (request or NAT reply): its later fragments, which carry no ports,
    /// follow it. A global BPF function: verified once.
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn xvs_remember_fragment(
        packet: *const Packet,
        key: *const ConnKey,
        now: u64,
    ) -> u32 {
        let (Some(scratch), false, false) = (scratch(), packet.is_null(), key.is_null()) else {
            return 0;
        };
        unsafe {
            fragment_key(&mut (*scratch).fragment_key, &*packet);
            (*scratch).fragment_entry = FragmentEntry {
                conn: *key,
                expires: now + FRAGMENT_NS,
            };
            let _ = XVS_FRAGS.insert(&(*scratch).fragment_key, &(*scratch).fragment_entry, 0);
        }
        0
    }

    #[inline(always)]
    fn fragment_key(key: &mut FragmentKey, packet: &Packet) {
        key.src = packet.src;
        key.dst = packet.dst;
        key.id = packet.fragment_id;
        key.protocol = packet.protocol;
        key.family = packet.family;
        key._pad = [0; 2];
    }

    /// A fragment after the first (no ports): sent where its first went, by the same
    /// connection, if that came through first; else passed to the stack, counted. Only the
    /// IP header is rewritten (NAT); the L4 checksum, in the first fragment, covers the
    /// whole datagram and was kept right there. A global BPF function: verified once.
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn xvs_fragment(ctx: *mut xdp_md, packet: *const Packet, now: u64) -> u32 {
        let (Some(scratch), false) = (scratch(), packet.is_null()) else {
            return xdp_action::XDP_PASS;
        };
        let ctx = &mut XdpContext::new(ctx);
        let packet = unsafe { &*packet };
        let key = unsafe { &mut (*scratch).fragment_key };
        fragment_key(key, packet);
        let conn_key = match unsafe { XVS_FRAGS.get(key) } {
            Some(entry) if entry.expires > now => unsafe {
                (*scratch).key = entry.conn;
                &(*scratch).key
            },
            _ => {
                count(counter::FRAGMENTS, 1);
                return xdp_action::XDP_PASS;
            }
        };
        let Some(entry) = XVS_CONNS.get_ptr_mut(conn_key) else {
            count(counter::FRAGMENTS, 1);
            return xdp_action::XDP_PASS;
        };
        let conn = unsafe { &*entry };
        if conn.flags & conn_flags::SYNCED != 0 {
            count(counter::FRAGMENTS, 1);
            return xdp_action::XDP_PASS;
        }
        count(counter::FRAGMENTS_FORWARDED, 1);
        if conn.forward == method::FULLNAT {
            let out = if conn.flags & conn_flags::REPLY != 0 {
                STATS_OUT
            } else {
                STATS_IN
            };
            add_stats(conn.service_stats, packet.ip_len as u64, out);
            add_stats(conn.dest_stats, packet.ip_len as u64, out);
            return fullnat::xvs_fullnat_fragment(ctx.ctx, packet, conn_key, conn);
        }
        if conn.flags & conn_flags::REPLY != 0 {
            // A NAT reply's fragment: from the VIP again, one hop less.
            add_stats(conn.service_stats, packet.ip_len as u64, STATS_OUT);
            add_stats(conn.dest_stats, packet.ip_len as u64, STATS_OUT);
            if forward::decrement_ttl(ctx, packet).is_none()
                || forward::rewrite_address(ctx, packet, true, &packet.src, &conn.peer).is_none()
            {
                return xdp_action::XDP_PASS;
            }
            let l2 = conn.l2;
            return forward::emit(ctx, &l2);
        }
        add_stats(conn.service_stats, packet.ip_len as u64, STATS_IN);
        add_stats(conn.dest_stats, packet.ip_len as u64, STATS_IN);
        match conn.forward {
            method::LOCAL => xdp_action::XDP_PASS,
            method::TUNNEL => xvs_tunnel(ctx.ctx, packet, conn),
            method::MASQ => {
                if forward::rewrite_address(ctx, packet, false, &packet.dst, &conn.peer).is_none() {
                    return xdp_action::XDP_ABORTED;
                }
                let l2 = conn.l2;
                forward::emit(ctx, &l2)
            }
            _ => {
                let l2 = conn.l2;
                forward::emit(ctx, &l2)
            }
        }
    }

    /// Whether connections of deleted real servers are kept until they time out, their
    /// client packets dropped (IPVS's `expire_nodest_conn = 0`); read only when such a
    /// connection is met.
    #[inline(always)]
    fn keeps_nodest_conns() -> bool {
        meta_value(meta::KEEP_NODEST_CONN) != 0
    }

    /// True while the connection's real server is in its service: the entry of the
    /// real-server array it was read from holds its id (see `conn_flags::DEST_HALF`; a
    /// removed server's entries are cleared, a slot taken by another server holds another
    /// id). One array read, which the verifier inlines.
    #[inline(always)]
    fn server_alive(conn: &Conn) -> bool {
        let half = (conn.flags & conn_flags::DEST_HALF != 0) as u16;
        XVS_DESTS
            .get(dest_index(conn.dest_stats, half))
            .is_some_and(|d| d.id == conn.dest_id)
    }

    /// The first packet on this director of connection `entry` (key `key`), which a peer
    /// director synced here (`conn_flags::SYNCED`): its next hop is resolved as a new
    /// connection's is, a NAT connection's reply entry gets the way back to the client,
    /// and the connection joins its real server's counts. 0 if no next hop is known. A
    /// global BPF function: verified once, off the established path.
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn xvs_adopt(
        ctx: *mut xdp_md,
        packet: *const Packet,
        key: *const ConnKey,
        entry: *mut Conn,
        now: u64,
    ) -> u32 {
        let (Some(scratch), false, false, false) =
            (scratch(), packet.is_null(), key.is_null(), entry.is_null())
        else {
            return 0;
        };
        let ctx = &XdpContext::new(ctx);
        let (packet, key) = unsafe { (&*packet, &*key) };
        if unsafe { (*entry).flags } & conn_flags::REPLY != 0 {
            // A NAT reply before any client packet: the FIB's way to the client (under
            // FULLNAT the reply goes to a local address; the client is recorded beside).
            let client = if unsafe { (*entry).forward } == method::FULLNAT {
                match fullnat::client_of(key) {
                    Some(client) => &client.addr,
                    None => return 0,
                }
            } else {
                &key.dst
            };
            let Some(l2) = forward::fib_hop(ctx, key.family, client, packet.ip_len) else {
                return 0;
            };
            unsafe { (*entry).l2 = l2 };
            conn::adopt_reply(entry);
            return 1;
        }
        let half = (unsafe { (*entry).flags } & conn_flags::DEST_HALF != 0) as u16;
        let Some(dest) = XVS_DESTS.get(dest_index(unsafe { (*entry).dest_stats }, half)) else {
            return 0;
        };
        let hop = unsafe { &mut (*scratch).conn.l2 };
        if !forward::resolve(ctx, dest, packet.ip_len, now, hop) {
            return 0;
        }
        unsafe { (*entry).l2 = *hop };
        let forward = unsafe { (*entry).forward };
        if (forward == method::MASQ || forward == method::FULLNAT)
            && let Some(twin) = conn::twin_of(key, entry)
            && unsafe { (*twin).flags } & conn_flags::SYNCED != 0
        {
            unsafe { (*twin).l2 = reply_hop(ctx) };
            conn::adopt_reply(twin);
        }
        conn::adopt(entry);
        1
    }

    /// Forwards a client packet to the connection's real server by its method. Direct
    /// routing and tunnelling are done in line: a BPF call costs about 8 ns on this kind of
    /// machine (the return thunks of the CPU's speculation mitigations). NAT goes through
    /// [`xvs_nat`]: in line, its rewriting would push the caller's frame past the stack.
    #[inline(always)]
    fn send(ctx: &mut XdpContext, packet: &Packet, key: &ConnKey, conn: &Conn) -> u32 {
        // A local node (a real server at this host's own address) is served by its stack.
        if conn.forward == method::LOCAL {
            return xdp_action::XDP_PASS;
        }
        // A packet that will not fit the way to its real server (a tunnel adds a header;
        // the server's link may be smaller than the client's) is answered with the MTU
        // that fits, as IPVS answers it. Out of the interface it came in by, it fits.
        let tunnelled = conn.forward == method::TUNNEL;
        let encap = if tunnelled {
            forward::Encap::of(conn)
        } else {
            forward::Encap::IPIP
        };
        let grow = if tunnelled {
            encap.overhead(packet.family)
        } else {
            0
        };
        // Below 576 bytes (IPv4's minimum datagram size, under any MTU in use) a packet
        // fits: small packets, most of them acknowledgements, skip the helper call.
        let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
        if (grow != 0 || conn.l2.ifindex != ingress)
            && packet.ip_len + grow > SMALLEST_MTU
            && let Some(mtu) = icmp::too_big(ctx, conn.l2.ifindex, grow)
        {
            return icmp::xvs_icmp_too_big(ctx.ctx, packet, mtu.saturating_sub(grow));
        }
        match conn.forward {
            method::ROUTE => {
                let l2 = conn.l2;
                forward::emit(ctx, &l2)
            }
            // IPIP in line, its header fixed at compile time; GUE and GRE by a call.
            method::TUNNEL if encap.kind == tunnel_type::IPIP => {
                tunnel(ctx, packet, conn, forward::Encap::IPIP)
            }
            method::TUNNEL => xvs_tunnel(ctx.ctx, packet, conn),
            method::MASQ => xvs_nat(ctx.ctx, packet, conn),
            method::FULLNAT => fullnat::xvs_fullnat(ctx.ctx, packet, key, conn),
            _ => {
                let l2 = conn.l2;
                forward::emit(ctx, &l2)
            }
        }
    }

    /// Sends a packet to a tunnel real server, wrapped as `encap` (the server's `-a` line)
    /// says ([`forward::encapsulate`]). IPIP in line on the established path (a BPF call
    /// costs per packet; GUE's and GRE's larger frame would not fit its stack).
    #[inline(always)]
    fn tunnel(ctx: &mut XdpContext, packet: &Packet, conn: &Conn, encap: forward::Encap) -> u32 {
        let Some(source) = XVS_TUN_SRC.get(conn.dest_stats).filter(|s| !s.is_none()) else {
            count(counter::TUNNEL_FAILED, 1);
            return xdp_action::XDP_DROP;
        };
        if conn.peer_family != packet.family
            || forward::encapsulate(ctx, packet, &source.addr, &conn.peer, encap).is_none()
        {
            count(counter::TUNNEL_FAILED, 1);
            return xdp_action::XDP_DROP;
        }
        let l2 = conn.l2;
        forward::emit(ctx, &l2)
    }

    /// [`tunnel`] for GUE and GRE, and for the ICMP errors and later fragments of tunnel
    /// connections: a global BPF function, verified once, not at each of its callers.
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn xvs_tunnel(
        ctx: *mut xdp_md,
        packet: *const Packet,
        conn: *const Conn,
    ) -> u32 {
        if packet.is_null() || conn.is_null() {
            return xdp_action::XDP_ABORTED;
        }
        let ctx = &mut XdpContext::new(ctx);
        let (packet, conn) = unsafe { (&*packet, &*conn) };
        tunnel(ctx, packet, conn, forward::Encap::of(conn))
    }

    /// NAT's way out for [`send`]: the destination rewritten and the frame sent, as a
    /// global BPF function (verified once, on its own).
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn xvs_nat(ctx: *mut xdp_md, packet: *const Packet, conn: *const Conn) -> u32 {
        if packet.is_null() || conn.is_null() {
            return xdp_action::XDP_ABORTED;
        }
        let ctx = &mut XdpContext::new(ctx);
        let (packet, conn) = unsafe { (&*packet, &*conn) };
        if forward::rewrite(ctx, packet, false, &conn.peer, conn.peer_port).is_none() {
            return xdp_action::XDP_ABORTED;
        }
        let l2 = conn.l2;
        forward::emit(ctx, &l2)
    }

    /// A NAT reply, real server to client: the source becomes the VIP again.
    #[inline(never)]
    fn nat_reply(
        ctx: &mut XdpContext,
        packet: &Packet,
        key: &ConnKey,
        twin: *mut Conn,
        now: u64,
    ) -> u32 {
        // A reply that changes nothing but the expiry pushes the reply entry's (see
        // `Conn::expires`); one that changes the state, or meets an expired reply entry,
        // goes through the request entry.
        let twin_ptr = twin;
        let twin = unsafe { &*twin };
        let mut request = ConnKey {
            src: key.dst,
            dst: twin.peer,
            sport: key.dport,
            dport: twin.peer_port,
            protocol: key.protocol,
            family: twin.peer_family,
            _pad: [0; 2],
        };
        // Under FULLNAT the reply's destination is a local address: the client is
        // recorded beside the entry.
        let fullnat = twin.forward == method::FULLNAT;
        let mut proxy = false;
        if fullnat {
            match fullnat::client_of(key) {
                Some(client) => {
                    request.src = client.addr;
                    request.sport = client.port;
                    proxy = client.proxy != proxy_state::NONE && packet.protocol == IPPROTO_TCP;
                }
                None => return xdp_action::XDP_PASS,
            }
        }
        // Kept until they time out, they are translated back as IPVS translates them.
        if !server_alive(twin) && !keeps_nodest_conns() {
            match XVS_CONNS.get_ptr_mut(&request) {
                Some(entry) => conn::forget(&request, entry),
                None => {
                    conn::forget_reply(key, fullnat);
                }
            }
            count(counter::DEST_GONE, 1);
            return xdp_action::XDP_PASS;
        }
        if twin.flags & conn_flags::SYNCED != 0
            && xvs_adopt(ctx.ctx, packet, key, twin_ptr, now) == 0
        {
            count(counter::NO_ROUTE, 1);
            return xdp_action::XDP_DROP;
        }
        if !conn::reply_only_refreshes(twin, packet.protocol, packet.tcp_flags, now) {
            match XVS_CONNS.get_ptr_mut(&request) {
                // A synced connection whose client has sent nothing here yet: adopted
                // before its state moves, so that it is counted once (by its flags).
                Some(entry)
                    if unsafe { (*entry).flags } & conn_flags::SYNCED != 0
                        && xvs_adopt(ctx.ctx, packet, &request, entry, now) == 0 =>
                {
                    count(counter::NO_ROUTE, 1);
                    return xdp_action::XDP_DROP;
                }
                Some(entry) if !conn::expired(entry, now) || !conn::expired(twin, now) => {
                    unsafe {
                        if (*entry).expires < twin.expires {
                            (*entry).expires = twin.expires;
                        }
                    }
                    conn::touch(
                        &request,
                        entry,
                        packet.protocol,
                        packet.tcp_flags,
                        true,
                        now,
                    );
                    unsafe { (*twin_ptr).expires = (*entry).expires };
                }
                // The connection is gone: so is its reply direction.
                Some(entry) => {
                    conn::forget(&request, entry);
                    return xdp_action::XDP_PASS;
                }
                None => {
                    conn::forget_reply(key, fullnat);
                    return xdp_action::XDP_PASS;
                }
            }
        } else {
            unsafe { (*twin_ptr).expires = now + conn::timeout_ns(twin.state) };
        }
        add_stats(twin.service_stats, packet.ip_len as u64, STATS_OUT);
        add_stats(twin.dest_stats, packet.ip_len as u64, STATS_OUT);
        if forward::decrement_ttl(ctx, packet).is_none() {
            return xdp_action::XDP_PASS;
        }
        if packet.fragment == packet::FIRST_FRAGMENT {
            xvs_remember_fragment(packet, key, now);
        }
        if (proxy && proxy::xvs_proxy_reply(ctx.ctx, packet, key, &request) == 0)
            || forward::rewrite(ctx, packet, true, &twin.peer, twin.peer_port).is_none()
            || (fullnat && fullnat::xvs_fullnat_to_client(ctx.ctx, packet, &request) == 0)
        {
            return xdp_action::XDP_ABORTED;
        }
        // Through the pointer: `xvs_adopt` may have set it since `twin` was read.
        let l2 = unsafe { (*twin_ptr).l2 };
        forward::emit(ctx, &l2)
    }

    /// No connection yet: find the service, schedule a real server, create the entry.
    /// [`new_connection`] made no entry; the verdict is in the scratch space.
    const NOT_CREATED: u64 = 0;
    /// What [`new_connection`] answers, the verdict left as for [`NOT_CREATED`], when the
    /// server it picked has no next hop (its slot left in the scratch space's `conn`).
    const NO_NEXT_HOP: u64 = 1;

    /// After [`new_connection`]: a picked server without a next hop is set aside by the
    /// least-connection family (out of the new connection's frame, which is at the
    /// stack's limit).
    #[inline(always)]
    fn set_aside_if_unreachable(created: u64, service: &ServiceValue, now: u64) {
        if created == NO_NEXT_HOP
            && let Some(scratch) = scratch()
        {
            let slot = unsafe { (*scratch).conn.slot };
            sched::xvs_set_aside(service.id, service.dest_set, slot as u32, now);
        }
    }

    /// After [`new_connection`] made a connection: its real server's OVERLOAD flag
    /// follows the count it added (out of the new connection's frame, as above).
    #[inline(always)]
    fn settle_overload_of(created: u64) {
        if created != NOT_CREATED && created != NO_NEXT_HOP {
            let conn = created as *const Conn;
            let (dest_stats, flags) = unsafe { ((*conn).dest_stats, (*conn).flags) };
            conn::settle_overload(dest_stats, flags);
        }
    }

    /// No counter to count a refusal in.
    const UNCOUNTED: u32 = u32::MAX;

    /// Ends [`new_connection`] without an entry: with `verdict`, counted in `counter`, if
    /// the table was looked up first; else with [`RETRY_CHECKED`] and uncounted (the
    /// ordinary way will count it).
    #[inline(always)]
    fn refuse(verdict: u32, counter: u32, checked: bool) -> u64 {
        let verdict = if checked {
            if counter != UNCOUNTED {
                count(counter, 1);
            }
            verdict
        } else {
            RETRY_CHECKED
        };
        if let Some(scratch) = scratch() {
            unsafe { (*scratch).verdict = verdict };
        }
        NOT_CREATED
    }

    /// The service of a packet that may start a connection, in the services map (the key
    /// it was found by left in the scratch space); `Err` with the verdict left if none.
    #[inline(always)]
    fn find_service(
        ctx: &mut XdpContext,
        packet: &Packet,
        checked: bool,
    ) -> Result<&'static ServiceEntry, u64> {
        let Some(scratch) = scratch() else {
            return Err(refuse(xdp_action::XDP_PASS, UNCOUNTED, checked));
        };
        let service_key = unsafe { &mut (*scratch).service_key };
        copy_addr(&mut service_key.addr, &packet.dst);
        service_key.fwmark = 0;
        service_key.port = packet.dport;
        service_key.family = packet.family;
        service_key.protocol = packet.protocol;
        // The service and its real-server set, in one value.
        if let Some(found) = unsafe { XVS_SERVICES.get(&*service_key) } {
            return Ok(found);
        }
        // A port-0 service (persistent, every port) of the same address.
        service_key.port = 0;
        if let Some(found) = unsafe { XVS_SERVICES.get(&*service_key) } {
            return Ok(found);
        }
        // A fwmark service, for a frame that came through the fwmark loop.
        if fwmark::xvs_fwmark_key(ctx.ctx) != 0
            && let Some(found) = unsafe { XVS_SERVICES.get(&*service_key) }
        {
            return Ok(found);
        }
        Err(refuse(xdp_action::XDP_PASS, UNCOUNTED, checked))
    }

    /// Where the services of a set class keep their scheduler state, and their scheduler's
    /// global function (see `sched::View`).
    trait Class<const N: usize> {
        fn sched(service_id: &u32) -> Option<*mut ServiceSched<N>>;
        fn schedule(
            found: &ServiceEntry<N>,
            conns: *mut ServiceSched<N>,
            counts: *const DestCounts,
        ) -> u32;
    }

    /// Services whose set is in their entry of the services map.
    struct Small;

    impl Class<MAX_SET> for Small {
        #[inline(always)]
        fn sched(service_id: &u32) -> Option<*mut ServiceSched<MAX_SET>> {
            XVS_SCHED.get_ptr_mut(service_id)
        }

        #[inline(always)]
        fn schedule(
            found: &ServiceEntry<MAX_SET>,
            conns: *mut ServiceSched<MAX_SET>,
            counts: *const DestCounts,
        ) -> u32 {
            sched::xvs_schedule(found, conns, counts)
        }
    }

    /// Services of the large services map.
    struct Large;

    impl Class<MAX_SET_LARGE> for Large {
        #[inline(always)]
        fn sched(service_id: &u32) -> Option<*mut ServiceSched<MAX_SET_LARGE>> {
            XVS_SCHED_LARGE.get_ptr_mut(service_id)
        }

        #[inline(always)]
        fn schedule(
            found: &ServiceEntry<MAX_SET_LARGE>,
            conns: *mut ServiceSched<MAX_SET_LARGE>,
            counts: *const DestCounts,
        ) -> u32 {
            sched::xvs_schedule_large(found, conns, counts)
        }
    }

    /// Schedules a real server of service `found` (of set class `N`) and creates the entry.
    /// Returns the address of the connection to forward by (the new entry's template in the
    /// scratch space, or the entry another CPU made first), or [`NOT_CREATED`] with the
    /// verdict left in the scratch space.
    #[inline(always)]
    fn new_connection<const N: usize, C: Class<N>>(
        ctx: &mut XdpContext,
        packet: &Packet,
        key: &ConnKey,
        now: u64,
        checked: bool,
        found: &ServiceEntry<N>,
    ) -> u64 {
        let Some(scratch) = scratch() else {
            return refuse(xdp_action::XDP_PASS, UNCOUNTED, checked);
        };
        let service_key = unsafe { &(*scratch).service_key };
        // IPVS creates TCP connections on a SYN only (any segment but a reset with
        // `sloppy_tcp`); other segments go to the stack. A service that hashes the client
        // (sh, mh) also picks up a segment of a connection it has not seen, as Katran
        // does: its choice is the one any director with the same table made, so a
        // connection that moves here (a VRRP failover, an ECMP change) goes on to its
        // real server.
        if packet.protocol == IPPROTO_TCP
            && packet.tcp_flags & (TCP_SYN | TCP_RST) != TCP_SYN
            && (packet.tcp_flags & (TCP_SYN | TCP_RST) != 0
                || !(matches!(found.service.scheduler, scheduler::SH | scheduler::MH)
                    || meta_value(meta::SLOPPY_TCP) != 0))
        {
            return refuse(xdp_action::XDP_PASS, counter::NOT_SCHEDULED, checked);
        }
        let (service, set) = (&found.service, &found.set);
        let Some(conns) = C::sched(&service.id) else {
            return refuse(xdp_action::XDP_PASS, counter::NO_DESTINATION, checked);
        };
        let Some(counts) = dest_counts() else {
            return refuse(xdp_action::XDP_PASS, UNCOUNTED, checked);
        };
        let view = sched::View {
            set: set as *const _,
            conns,
            counts,
        };
        // The scheduler's state (round-robin cursors) is kept only once the connection is
        // made: a SYN that meets its connection already there schedules nothing.
        unsafe { (*scratch).sched_state = (*conns).sched };
        // A persistent service sends a client with a live template where it went before.
        let persistent = service.flags & service_flags::PERSISTENT != 0;
        // A persistent service with the SIP engine keeps a template per call: a datagram
        // whose Call-ID is not found (or a TCP segment) starts nothing and is dropped, as
        // IPVS drops it.
        let calls = persistent && service.pe == persistence_engine::SIP;
        if calls
            && (packet.protocol != IPPROTO_UDP
                || sip::xvs_call_scan(ctx.ctx, packet.l4 as u32) == 0)
        {
            return refuse(xdp_action::XDP_DROP, counter::NOT_SCHEDULED, checked);
        }
        let remembered = if persistent {
            persist::remembered(&view, packet, service, now)
        } else {
            sched::NONE
        };
        let choice = if remembered != sched::NONE {
            sched::Choice {
                index: remembered,
                fallback: false,
            }
        } else {
            let picked = C::schedule(found, conns, counts);
            sched::Choice {
                index: if picked == sched::NONE {
                    sched::NONE
                } else {
                    picked & !sched::FALLBACK_MARK
                },
                fallback: picked != sched::NONE && picked & sched::FALLBACK_MARK != 0,
            }
        };
        let index = choice.index;
        if index == sched::NONE {
            // As IPVS, the kernel then refuses the connection (RST, ICMP unreachable).
            return refuse(xdp_action::XDP_PASS, counter::NO_DESTINATION, checked);
        }
        let Some(entry) = view.entry(index) else {
            return refuse(xdp_action::XDP_PASS, UNCOUNTED, checked);
        };
        let slot = entry.slot;
        let Some(dest) = XVS_DESTS.get(dest_index(entry.stats, entry.half)) else {
            return refuse(xdp_action::XDP_PASS, counter::NO_DESTINATION, checked);
        };
        // The next hop goes straight into the new entry's template. (A local node, served
        // by this host's own stack, has none.)
        let hop = unsafe { &mut (*scratch).conn.l2 };
        if dest.forward != method::LOCAL && !forward::resolve(ctx, dest, packet.ip_len, now, hop) {
            // The rotation turns as it would for a connection made (IPVS makes it, and
            // the packet waits in vain for the neighbour), and the least-connection
            // family sets the server aside: the next connection, or this one's
            // retransmission, goes to another server instead of every one to this.
            if checked {
                unsafe {
                    (*conns).sched = (*scratch).sched_state;
                    (*scratch).conn.slot = slot;
                }
                refuse(xdp_action::XDP_DROP, counter::NO_ROUTE, checked);
                return NO_NEXT_HOP;
            }
            return refuse(xdp_action::XDP_DROP, counter::NO_ROUTE, checked);
        }
        // A real server without a port (fwmark, port-0 services) takes the packet's port.
        let peer_port = if dest.port == 0 {
            packet.dport
        } else {
            dest.port
        };
        let mut state_now = if packet.protocol == IPPROTO_TCP {
            tcp::NONE
        } else {
            tcp::UDP
        };
        let no_output = !method::has_reply_entry(dest.forward);
        if packet.protocol == IPPROTO_TCP {
            let table = if no_output {
                &tcp::INPUT_ONLY
            } else {
                &tcp::INPUT
            };
            // A SYN opens; a picked-up segment (sh, mh) finds the connection open. (The
            // event is computed, not chosen by a branch: a branch's values spilled past
            // the 512-byte stack.)
            const _: () = assert!(tcp::EVENT_SYN == 0);
            state_now = tcp::next(
                table,
                Some(tcp::EVENT_SYN + (packet.tcp_flags & TCP_SYN == 0) as usize * tcp::EVENT_ACK),
                state_now,
            );
        }
        let mut flags = if no_output { conn_flags::NO_OUTPUT } else { 0 };
        if tcp::is_active(state_now) && packet.protocol == IPPROTO_TCP {
            flags |= conn_flags::ACTIVE;
        }
        // The reply twin of a NAT connection leaves where the request came in (its other
        // fields are filled when it is created).
        let twin = unsafe { &mut (*scratch).twin as *mut Conn };
        if method::has_reply_entry(dest.forward) {
            if service_key.fwmark == 0 {
                unsafe { (*twin).l2 = reply_hop(ctx) };
            } else if unsafe { (*twin).l2.ifindex } == 0 {
                // Came through the fwmark loop, and the FIB knew no way back to the client
                // (`fwmark::xvs_fwmark_key` asked it).
                return refuse(xdp_action::XDP_DROP, counter::NO_ROUTE, checked);
            }
        }
        let new = unsafe { &mut (*scratch).conn };
        new.expires = now + conn::timeout_ns(state_now);
        copy_addr(&mut new.peer, &dest.addr);
        new.dest_id = dest.id;
        new.service_id = service.id;
        new.peer_port = peer_port;
        new.slot = slot;
        new.service_stats = service.stats;
        new.dest_stats = dest.stats;
        new.state = state_now;
        new.forward = dest.forward;
        // DEST_HALF from the half the server's entry is in (the bit computed in place: one
        // more value kept across the calls above would not fit the stack).
        new.flags = flags | ((dest.half as u8 & 1) * conn_flags::DEST_HALF);
        new.peer_family = dest.family;
        // One-packet scheduling (`-o`, UDP): the datagram goes by this choice and no
        // connection is kept, so the next one is scheduled anew (IPVS's ONE_PACKET
        // connections are never hashed either). Counted as a connection, not in the
        // real server's active or inactive counts.
        if service.flags & service_flags::ONE_PACKET != 0 && packet.protocol == IPPROTO_UDP {
            unsafe { (*conns).sched = (*scratch).sched_state };
            if persistent && remembered == sched::NONE {
                persist::xvs_persist_create(new, service, now);
            }
            count(counter::NEW_CONNECTIONS, 1);
            add_stats(service.stats, packet.ip_len as u64, STATS_IN | STATS_NEW);
            add_stats(dest.stats, packet.ip_len as u64, STATS_IN | STATS_NEW);
            return new as *mut Conn as u64;
        }
        unsafe { (*scratch).proxy_wanted = service.flags & service_flags::PROXY_V2 };
        // Counted in its template while it lives (its end counts it out). A call's
        // template could not be found again from the connection's key: its connections
        // are not counted in it, and it lives by its timeout.
        new.flags |= (persistent && !calls) as u8 * conn_flags::CONTROLLED;
        let made = conn::create(key, new, twin, now);
        if made == fullnat::NO_LOCAL_PORT {
            return refuse(xdp_action::XDP_DROP, counter::NO_LOCAL_PORT, checked);
        }
        if made != fullnat::CREATED {
            if !checked {
                // The connection is there already (or was, expired), or the table is
                // full: the ordinary way tells which.
                return refuse(xdp_action::XDP_PASS, UNCOUNTED, checked);
            }
            // Another CPU created it first, or the table is full.
            return match XVS_CONNS.get_ptr_mut(key) {
                // Synced from a peer director in between: the ordinary way adopts it.
                Some(entry) if unsafe { (*entry).flags } & conn_flags::SYNCED != 0 => {
                    refuse(xdp_action::XDP_PASS, UNCOUNTED, checked)
                }
                Some(entry) => {
                    // Forwarded on that connection: counted as one of its packets.
                    conn::touch(key, entry, packet.protocol, packet.tcp_flags, false, now);
                    let (service_stats, dest_stats) =
                        unsafe { ((*entry).service_stats, (*entry).dest_stats) };
                    add_stats(service_stats, packet.ip_len as u64, STATS_IN);
                    add_stats(dest_stats, packet.ip_len as u64, STATS_IN);
                    entry as u64
                }
                None => refuse(xdp_action::XDP_DROP, counter::TABLE_FULL, checked),
            };
        }
        unsafe { (*conns).sched = (*scratch).sched_state };
        if persistent {
            if remembered == sched::NONE {
                persist::xvs_persist_create(new, service, now);
            } else if !calls {
                persist::xvs_persist_control();
            }
        }
        if choice.fallback {
            count(counter::SCHED_FALLBACK, 1);
        }
        conn::add_count(counts, dest.stats, flags & conn_flags::ACTIVE != 0, 1);
        sched::count_changed(&view, slot, service.dest_set);
        count(counter::NEW_CONNECTIONS, 1);
        add_stats(service.stats, packet.ip_len as u64, STATS_IN | STATS_NEW);
        add_stats(dest.stats, packet.ip_len as u64, STATS_IN | STATS_NEW);
        // The entry is a copy of the template: forward by the template, no second lookup.
        new as *mut Conn as u64
    }

    /// The L2 way back to where this frame came from: its source MAC, on its interface.
    #[inline(always)]
    fn reply_hop(ctx: &XdpContext) -> Neighbour {
        // (A parsed frame has its Ethernet header: the zeros are for the verifier.)
        static NO_ETHERNET: [u8; 12] = [0; 12];
        let eth = match packet::at::<[u8; 12]>(ctx, 0) {
            Some(eth) => eth as *const u8,
            None => NO_ETHERNET.as_ptr(),
        };
        Neighbour {
            ifindex: unsafe { (*ctx.ctx).ingress_ifindex },
            smac: packet::get_mac(eth),
            dmac: packet::get_mac(unsafe { eth.add(6) }),
        }
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
