//! Sending a packet on: finding the next hop, and the three IPVS methods (direct routing,
//! NAT in both directions, IP-in-IP tunnel).

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_FWD_DISABLED, bpf_fib_lookup, xdp_action},
    helpers::{bpf_redirect, bpf_xdp_adjust_head, generated::bpf_fib_lookup as fib_lookup},
    programs::XdpContext,
};
use xvs_common::{
    CachedHop, Conn, DestValue, FAMILY_V4, HOP_CACHE_NS, HOP_CACHE_SLOTS, LOOPBACK_INDEX,
    Neighbour, conn_flags, counter, dest_index, tunnel_checksum, tunnel_type,
};

use crate::{
    maps::{XVS_DESTS, XVS_HOPS, XVS_NEIGH, count, scratch},
    packet::{
        Packet, at, copy_hop, csum_addr_delta, csum_apply, csum_replace16, ipv4_header_checksum,
        put_mac, store_u32,
    },
    wire::{
        ETH_P_IP, ETH_P_IPV6, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP,
        eth, gre, gue, ipv4, ipv6, tcp, udp,
    },
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Where frames to real server `dest` go: the kernel's FIB and neighbour table when it can
/// tell (it cannot when forwarding is off both on the way in and on `lo`), else the next
/// hop user space resolved when the real server was added. What the FIB says is kept per CPU
/// for [`HOP_CACHE_NS`]. The hop is written to `out`; false if there is none. (Returning
/// it by value made the verifier walk the rest of the new-connection path once per way out
/// of here.)
#[inline(always)]
pub fn resolve(
    ctx: &XdpContext,
    dest: &DestValue,
    ip_len: u32,
    now: u64,
    out: &mut Neighbour,
) -> bool {
    let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
    let slot = dest.stats & (HOP_CACHE_SLOTS - 1);
    if let Some(hop) = XVS_HOPS.get(slot)
        && hop.dest_id == dest.id
        && hop.ingress == ingress
        && now < hop.until
    {
        copy_hop(out, &hop.l2);
        return true;
    }
    if let Some(l2) = fib_hop(ctx, dest.family, &dest.addr, ip_len) {
        if let Some(hop) = XVS_HOPS.get_ptr_mut(slot) {
            unsafe {
                *hop = CachedHop {
                    l2,
                    dest_id: dest.id,
                    ingress,
                    until: now + HOP_CACHE_NS,
                };
            }
        }
        *out = l2;
        return true;
    }
    match unsafe { XVS_NEIGH.get(&dest.addr) } {
        Some(l2) => {
            copy_hop(out, l2);
            true
        }
        None => false,
    }
}

/// The kernel's FIB and neighbour table's answer for `dst`, if it has one.
#[inline(never)]
pub fn fib_hop(ctx: &XdpContext, family: u8, dst: &[u8; 16], ip_len: u32) -> Option<Neighbour> {
    let params: &mut bpf_fib_lookup = unsafe { &mut (*scratch()?).fib };
    // Zeroed word by word (volatile, so it stays words and not a byte-by-byte memset call).
    let words = params as *mut bpf_fib_lookup as *mut u32;
    let mut i = 0;
    while i < core::mem::size_of::<bpf_fib_lookup>() / 4 {
        unsafe { words.add(i).write_volatile(0) };
        i += 1;
    }
    params.ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    params.__bindgen_anon_1.tot_len = ip_len as u16;
    if family == FAMILY_V4 {
        params.family = AF_INET;
        params.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes([dst[0], dst[1], dst[2], dst[3]]);
    } else {
        params.family = AF_INET6;
        let mut words = [0u32; 4];
        let mut i = 0;
        while i < 4 {
            words[i] =
                u32::from_ne_bytes([dst[4 * i], dst[4 * i + 1], dst[4 * i + 2], dst[4 * i + 3]]);
            i += 1;
        }
        params.__bindgen_anon_4.ipv6_dst = words;
    }
    let mut ret = lookup(ctx, params);
    if ret == FIB_FORWARDING_OFF {
        // The kernel answers only for an interface that forwards. A DR director's need
        // not: asked as from `lo`, which user space lets forward (it receives nothing
        // but what the host sends itself), the lookup is the host's own route to `dst`.
        params.ifindex = LOOPBACK_INDEX;
        ret = lookup(ctx, params);
    }
    (ret == 0).then(|| Neighbour {
        ifindex: params.ifindex,
        smac: params.smac,
        dmac: params.dmac,
    })
}

/// `bpf_fib_lookup`'s answer when forwarding is off on the interface asked about.
const FIB_FORWARDING_OFF: i64 = BPF_FIB_LKUP_RET_FWD_DISABLED as i64;

#[inline(always)]
fn lookup(ctx: &XdpContext, params: &mut bpf_fib_lookup) -> i64 {
    unsafe {
        fib_lookup(
            ctx.ctx as *mut _,
            params,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    }
}

/// Writes the MACs and sends the frame out of `l2.ifindex`.
#[inline(always)]
pub fn emit(ctx: &XdpContext, l2: &Neighbour) -> u32 {
    let Some(macs) = at::<[u8; eth::TYPE]>(ctx, eth::DST) else {
        return xdp_action::XDP_ABORTED;
    };
    let macs = macs as *mut u8;
    put_mac(macs, &l2.dmac);
    put_mac(unsafe { macs.add(eth::SRC) }, &l2.smac);
    count(counter::FORWARDED, 1);
    let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
    if l2.ifindex == ingress {
        xdp_action::XDP_TX
    } else {
        unsafe { bpf_redirect(l2.ifindex, 0) as u32 }
    }
}

/// Offset of the L4 checksum field, if the packet has one to keep right.
#[inline(always)]
fn l4_checksum_offset(packet: &Packet) -> usize {
    let l4 = l4_offset(packet);
    if packet.protocol == IPPROTO_TCP {
        l4 + tcp::CHECKSUM
    } else {
        l4 + udp::CHECKSUM
    }
}

/// The L4 offset, bounded for the verifier (at most 14 + 60 bytes of IPv4 header).
#[inline(always)]
fn l4_offset(packet: &Packet) -> usize {
    packet.l4 & 0x7f
}

/// Rewrites one address (source if `source`, else destination) and its port, and keeps
/// the IPv4 header and L4 checksums right (a zero UDP checksum over IPv4 stays zero).
#[inline(always)]
pub fn rewrite(
    ctx: &XdpContext,
    packet: &Packet,
    source: bool,
    addr: &[u8; 16],
    port: u16,
) -> Option<()> {
    // References, not copies: the stack is small and the packet lives in scratch memory.
    let (old_addr, old_port) = if source {
        (&packet.src, packet.sport)
    } else {
        (&packet.dst, packet.dport)
    };
    let addr_delta = rewrite_address(ctx, packet, source, old_addr, addr)?;
    // TCP and UDP keep their ports at the same offsets.
    let port_offset = if source { tcp::SRC_PORT } else { tcp::DST_PORT };
    let port_field = at::<u16>(ctx, l4_offset(packet) + port_offset)?;
    let check = at::<u16>(ctx, l4_checksum_offset(packet))?;
    unsafe {
        *port_field = port;
        let skip = packet.protocol == IPPROTO_UDP && packet.family == FAMILY_V4 && *check == 0;
        if !skip {
            let port_delta = (!old_port) as u64 + port as u64;
            let mut c = csum_apply(*check, addr_delta + port_delta);
            // A UDP checksum that comes out zero is sent as all ones (RFC 768).
            if packet.protocol == IPPROTO_UDP && c == 0 {
                c = 0xffff;
            }
            *check = c;
        }
    }
    Some(())
}

/// Rewrites one address (source if `source`, else destination) from `old_addr` to `addr`
/// and keeps the IPv4 header checksum right; returns the checksum delta the L4 checksum
/// needs too (a later fragment, which has no L4 header, needs no more).
#[inline(always)]
pub fn rewrite_address(
    ctx: &XdpContext,
    packet: &Packet,
    source: bool,
    old_addr: &[u8; 16],
    addr: &[u8; 16],
) -> Option<u64> {
    let words = if packet.family == FAMILY_V4 { 1 } else { 4 };
    let addr_delta = csum_addr_delta(old_addr, addr, words);
    let addr_offset = match (packet.family == FAMILY_V4, source) {
        (true, true) => ipv4::SRC,
        (true, false) => ipv4::DST,
        (false, true) => ipv6::SRC,
        (false, false) => ipv6::DST,
    };
    if packet.family == FAMILY_V4 {
        let field = at::<[u8; 4]>(ctx, addr_offset)?;
        let check = at::<u16>(ctx, ipv4::CHECKSUM)?;
        unsafe {
            *check = csum_apply(*check, addr_delta);
            (*field).copy_from_slice(&addr[..4]);
        }
    } else {
        let field = at::<[u8; 16]>(ctx, addr_offset)?;
        unsafe { *field = *addr };
    }
    Some(addr_delta)
}

/// Decrements the IPv4 TTL / IPv6 hop limit of a packet the director routes (NAT replies).
/// `None` when it would reach zero: the kernel then answers with ICMP time exceeded.
#[inline(always)]
pub fn decrement_ttl(ctx: &XdpContext, packet: &Packet) -> Option<()> {
    if packet.family == FAMILY_V4 {
        // TTL and protocol: the 16-bit word the header checksum sees change.
        let ttl_word = at::<[u8; 2]>(ctx, ipv4::TTL)?;
        let check = at::<u16>(ctx, ipv4::CHECKSUM)?;
        unsafe {
            let old = *ttl_word;
            if old[0] <= 1 {
                return None;
            }
            let new = [old[0] - 1, old[1]];
            *check = csum_replace16(*check, u16::from_ne_bytes(old), u16::from_ne_bytes(new));
            *ttl_word = new;
        }
    } else {
        let hop = at::<u8>(ctx, ipv6::HOP_LIMIT)?;
        unsafe {
            if *hop <= 1 {
                return None;
            }
            *hop -= 1;
        }
    }
    Some(())
}

/// How a tunnel real server's packets are wrapped (`--tun-type`, `--tun-port` and the
/// checksum option of its `-a` line).
#[derive(Clone, Copy)]
pub struct Encap {
    /// [`tunnel_type`] code.
    pub kind: u8,
    /// [`tunnel_checksum`] code.
    pub checksum: u8,
    /// GUE's UDP destination port, network order.
    pub port: u16,
}

impl Encap {
    pub const IPIP: Encap = Encap {
        kind: tunnel_type::IPIP,
        checksum: tunnel_checksum::NONE,
        port: 0,
    };

    /// The encapsulation of connection `conn`'s real server (IPIP if the server is gone).
    #[inline(always)]
    pub fn of(conn: &Conn) -> Encap {
        let half = (conn.flags & conn_flags::DEST_HALF != 0) as u16;
        match XVS_DESTS.get(dest_index(conn.dest_stats, half)) {
            Some(dest) if dest.id == conn.dest_id => Encap {
                kind: dest.tun_type,
                checksum: dest.tun_csum,
                port: dest.tun_port.to_be(),
            },
            _ => Encap::IPIP,
        }
    }

    /// The bytes the tunnel adds besides the outer IP header: GUE's UDP and GUE headers,
    /// GRE's header (with its checksum field if `summed`).
    #[inline(always)]
    pub fn header_len(&self, summed: bool) -> usize {
        match self.kind {
            tunnel_type::GUE => udp::LEN + gue::LEN,
            tunnel_type::GRE if summed => gre::LEN + gre::CHECKSUM_LEN,
            tunnel_type::GRE => gre::LEN,
            _ => 0,
        }
    }

    /// All the bytes the tunnel adds to a packet of `family`, at most.
    #[inline(always)]
    pub fn overhead(&self, family: u8) -> u32 {
        let outer = if family == FAMILY_V4 {
            ipv4::MIN_LEN
        } else {
            ipv6::LEN
        };
        (outer + self.header_len(self.checksum != tunnel_checksum::NONE)) as u32
    }
}

/// Folds a ones'-complement sum of 16- and 32-bit words to 16 bits.
#[inline(always)]
fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The sum of an address's first `words` 32-bit words (8-byte aligned map or scratch
/// fields).
#[inline(always)]
fn address_sum(addr: &[u8; 16], words: usize) -> u64 {
    let addr = addr.as_ptr() as *const u32;
    let mut sum = 0u64;
    let mut i = 0;
    while i < 4 {
        if i < words {
            sum += unsafe { addr.add(i).read() } as u64;
        }
        i += 1;
    }
    sum
}

/// The ones'-complement sum of the whole inner packet, known without reading its
/// payload (Linux's "local checksum offload" for tunnels): a TCP or UDP segment whose
/// checksum is right sums with its pseudo-header to all ones, so the segment alone sums
/// to the pseudo-header's complement; an IPv4 header whose checksum is right sums to all
/// ones, which adds nothing; an IPv6 header is summed (40 bytes). None where that does not
/// hold: a fragment, another protocol (an ICMP error), UDP over IPv4 without a checksum,
/// IPv6 extension headers. Read before the frame moves; sums in memory byte order.
#[inline(always)]
fn inner_sum(ctx: &XdpContext, packet: &Packet) -> Option<u64> {
    if packet.fragment != 0 || (packet.protocol != IPPROTO_TCP && packet.protocol != IPPROTO_UDP) {
        return None;
    }
    let v4 = packet.family == FAMILY_V4;
    let header_len = packet.l4.checked_sub(packet.l3)?;
    if !v4 && header_len != ipv6::LEN {
        return None;
    }
    if packet.protocol == IPPROTO_UDP
        && unsafe { *at::<u16>(ctx, l4_offset(packet) + udp::CHECKSUM)? } == 0
    {
        return None;
    }
    let segment_len = packet.ip_len.checked_sub(header_len as u32)? as u16;
    let words = if v4 { 1 } else { 4 };
    let pseudo = address_sum(&packet.src, words)
        + address_sum(&packet.dst, words)
        + (packet.protocol as u16).to_be() as u64
        + segment_len.to_be() as u64;
    let segment = !fold(pseudo) as u64;
    if v4 {
        return Some(segment);
    }
    let header = at::<[u32; 10]>(ctx, ipv6::VERSION)? as *const u32;
    let mut sum = segment;
    let mut i = 0;
    while i < 10 {
        sum += unsafe { header.add(i).read_unaligned() } as u64;
        i += 1;
    }
    Some(sum)
}

/// Wraps the packet in an outer IP header from `source` to `server`, as IPVS's tunnel
/// method does: IPIP for IPv4 (IPv6-in-IPv6 for IPv6), or with `--tun-type gue` a UDP
/// and a GUE header between (to the server's `--tun-port`), or with `gre` a GRE header.
/// With `--tun-csum` (or `--tun-remcsum`, which IPVS sums alike for a packet it forwards)
/// GUE's UDP checksum, or GRE's, covers the whole inner packet where [`inner_sum`] knows
/// its sum; elsewhere GUE's is left zero (none, as with `--tun-nocsum`) and GRE carries no
/// checksum field. The inner packet is unchanged.
#[inline(always)]
pub fn encapsulate(
    ctx: &mut XdpContext,
    packet: &Packet,
    source: &[u8; 16],
    server: &[u8; 16],
    encap: Encap,
) -> Option<()> {
    let v4 = packet.family == FAMILY_V4;
    let outer_len = if v4 { ipv4::MIN_LEN } else { ipv6::LEN };
    let inner = if encap.kind != tunnel_type::IPIP && encap.checksum != tunnel_checksum::NONE {
        inner_sum(ctx, packet)
    } else {
        None
    };
    let extra = encap.header_len(inner.is_some()) & 0x0f;
    let room = (outer_len + extra) as i32;
    let inner_protocol = if v4 { IPPROTO_IPIP } else { IPPROTO_IPV6 };
    let protocol = match encap.kind {
        tunnel_type::GUE => IPPROTO_UDP,
        tunnel_type::GRE => IPPROTO_GRE,
        _ => inner_protocol,
    };
    // Keep what the outer header copies from the inner one before the frame moves.
    let (tos, ttl, df) = if v4 {
        let tos = unsafe { *at::<u8>(ctx, ipv4::TOS)? };
        let ttl = unsafe { *at::<u8>(ctx, ipv4::TTL)? };
        let frag = unsafe { *at::<[u8; 2]>(ctx, ipv4::FRAG)? };
        (tos, ttl, frag[0] & ipv4::DF_HIGH_BYTE)
    } else {
        let hop = unsafe { *at::<u8>(ctx, ipv6::HOP_LIMIT)? };
        (0, hop, 0)
    };
    // GUE's UDP source port: the inner flow's, hashed into the dynamic range, so that a
    // real server's receive-side scaling spreads flows as without the tunnel.
    let flow = (packet.sport ^ packet.dport) as u32
        ^ (address_sum(&packet.src, if v4 { 1 } else { 4 }) as u32);
    let sport = (0xc000 | ((flow ^ (flow >> 16)) & 0x3fff)) as u16;
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -room) } != 0 {
        return None;
    }
    // The new front becomes the Ethernet header: only its type is written here, the
    // addresses are the next hop's (emit writes them), so nothing of the old one is moved.
    // The outer header is written in place: no copy of it on the small BPF stack.
    if v4 {
        let h = at::<[u8; ipv4::MIN_LEN]>(ctx, eth::LEN)? as *mut u8;
        let total = (packet.ip_len + room as u32) as u16;
        // The addresses are fields of 8-byte aligned map values: one word each.
        let (source, server) = unsafe {
            (
                (source.as_ptr() as *const u32).read(),
                (server.as_ptr() as *const u32).read(),
            )
        };
        let first = u32::from_ne_bytes([0x45, tos, 0, 0]) | (total.to_be() as u32) << 16;
        let second = u32::from_ne_bytes([0, 0, df, 0]);
        let third = u32::from_ne_bytes([ttl, protocol, 0, 0]);
        let checksum = ipv4_header_checksum(&[first, second, third, source, server]);
        // Five 4-byte stores (the header is 2-byte aligned at best).
        store_u32(h, first);
        store_u32(unsafe { h.add(4) }, second);
        store_u32(unsafe { h.add(8) }, third | (checksum as u32) << 16);
        store_u32(unsafe { h.add(12) }, source);
        store_u32(unsafe { h.add(16) }, server);
        let ethertype = at::<[u8; 2]>(ctx, eth::TYPE)?;
        unsafe { *ethertype = ETH_P_IP.to_be_bytes() };
    } else {
        let h = unsafe { &mut *at::<[u8; ipv6::LEN]>(ctx, eth::LEN)? };
        h[0] = 0x60;
        h[1] = 0;
        h[2] = 0;
        h[3] = 0;
        h[4..6].copy_from_slice(&((packet.ip_len as usize + extra) as u16).to_be_bytes());
        h[6] = protocol;
        h[7] = ttl;
        h[8..24].copy_from_slice(source);
        h[24..40].copy_from_slice(server);
        let ethertype = at::<[u8; 2]>(ctx, eth::TYPE)?;
        unsafe { *ethertype = ETH_P_IPV6.to_be_bytes() };
    }
    let words = if v4 { 1 } else { 4 };
    match encap.kind {
        tunnel_type::GUE => {
            let h = at::<[u8; udp::LEN + gue::LEN]>(ctx, eth::LEN + outer_len)? as *mut u8;
            let length = ((packet.ip_len as usize + extra) as u16).to_be();
            let ports = sport.to_be() as u32 | (encap.port as u32) << 16;
            let header = u32::from_ne_bytes([0, inner_protocol, 0, 0]);
            let checksum = match inner {
                Some(inner) => {
                    let sum = address_sum(source, words)
                        + address_sum(server, words)
                        + (IPPROTO_UDP as u16).to_be() as u64
                        + 2 * length as u64
                        + ports as u64
                        + header as u64
                        + inner;
                    // A sum that comes out zero is sent as all ones (zero means none).
                    match !fold(sum) {
                        0 => 0xffff,
                        c => c,
                    }
                }
                None => 0,
            };
            store_u32(h, ports);
            store_u32(unsafe { h.add(4) }, length as u32 | (checksum as u32) << 16);
            store_u32(unsafe { h.add(8) }, header);
        }
        tunnel_type::GRE => {
            let h = at::<[u8; gre::LEN]>(ctx, eth::LEN + outer_len)? as *mut u8;
            let ethertype = if v4 { ETH_P_IP } else { ETH_P_IPV6 };
            let flags = if inner.is_some() {
                gre::FLAG_CHECKSUM
            } else {
                0
            };
            let [high, low] = ethertype.to_be_bytes();
            let first = u32::from_ne_bytes([flags, 0, high, low]);
            store_u32(h, first);
            if let Some(inner) = inner {
                let field = at::<[u8; gre::CHECKSUM_LEN]>(ctx, eth::LEN + outer_len + gre::LEN)?;
                let checksum = !fold(first as u64 + inner);
                store_u32(field as *mut u8, checksum as u32);
            }
        }
        _ => {}
    }
    Some(())
}
