//! Path MTU: a client's packet that will not fit the way to its real server (the 20 or 40
//! bytes a tunnel adds, or a smaller link toward the server) is answered as IPVS answers
//! it: ICMP "fragmentation needed" (IPv4, when the client set DF) or ICMPv6 "packet too
//! big", from the VIP, quoting the packet's IP header and first 8 bytes of its payload, with
//! the MTU that fits. The client's stack then sends smaller packets (PMTU discovery).
//!
//! The frame is turned into the answer in place: the new headers go in front of the
//! client's IP header, the Ethernet addresses are swapped, the rest is cut off, and the
//! frame leaves by the interface it came in on.

use aya_ebpf::{
    bindings::{xdp_action, xdp_md},
    helpers::{bpf_check_mtu, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use xvs_common::{FAMILY_V4, counter};

use crate::{
    forward,
    maps::count,
    packet::{
        ICMP_HEADER, Packet, at, csum_addr_delta, csum_apply, ipv4_header_checksum, put_mac,
        store_u32,
    },
    wire::{ETH_P_IP, ETH_P_IPV6, IPPROTO_UDP, eth, ipv4, ipv6},
};

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
/// ICMP destination unreachable / fragmentation needed.
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMPv6 packet too big.
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
/// The payload bytes quoted after the client's IP header.
const QUOTED_PAYLOAD: usize = 8;

/// The MTU of the way out by `ifindex` if the frame, grown by `grow` bytes, does not fit it.
#[inline(always)]
pub fn too_big(ctx: &XdpContext, ifindex: u32, grow: u32) -> Option<u32> {
    let mut mtu: u32 = 0;
    let verdict = unsafe { bpf_check_mtu(ctx.ctx as *mut _, ifindex, &mut mtu, grow as i32, 0) };
    (verdict == 1).then_some(mtu)
}

/// Answers `packet` (as it came, nothing rewritten yet) with "fragmentation needed" /
/// "packet too big" carrying `mtu`; drops it, counted, if it may not be answered (IPv4
/// without DF: the director cannot fragment). A global BPF function: verified once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_icmp_too_big(ctx: *mut xdp_md, packet: *const Packet, mtu: u32) -> u32 {
    if packet.is_null() {
        return xdp_action::XDP_DROP;
    }
    let ctx = XdpContext::new(ctx);
    let packet = unsafe { &*packet };
    let answered = if packet.family == FAMILY_V4 {
        answer_v4(&ctx, packet, mtu)
    } else {
        answer_v6(&ctx, packet, mtu)
    };
    match answered {
        Some(()) => {
            count(counter::TOO_BIG, 1);
            xdp_action::XDP_TX
        }
        None => {
            count(counter::TOO_BIG_DROPPED, 1);
            xdp_action::XDP_DROP
        }
    }
}

/// The frame's Ethernet addresses, swapped: back to where it came from.
#[inline(always)]
fn swapped_macs(ctx: &XdpContext) -> Option<([u8; 6], [u8; 6])> {
    let macs = unsafe { *at::<[u8; 12]>(ctx, eth::DST)? };
    let mut to = [0u8; 6];
    let mut from = [0u8; 6];
    to.copy_from_slice(&macs[6..12]);
    from.copy_from_slice(&macs[..6]);
    Some((to, from))
}

/// Moves the frame's front `room` bytes earlier and cuts it to `len` bytes.
#[inline(always)]
fn reshape(ctx: &XdpContext, room: usize, len: usize) -> Option<()> {
    let before = ctx.data_end() - ctx.data();
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(room as i32)) } != 0 {
        return None;
    }
    let cut = (before + room) as i64 - len as i64;
    if cut > 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, -(cut as i32)) } != 0 {
        return None;
    }
    Some(())
}

/// The ones' complement sum of the `N` bytes of the frame from `offset` (`N` even), read
/// from one bounds-checked region (a check per word would let LLVM merge the checks into
/// one the verifier cannot follow).
#[inline(always)]
fn sum<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<u64> {
    let bytes = at::<[u8; N]>(ctx, offset)?;
    let mut sum: u64 = 0;
    for i in 0..N / 2 {
        sum += u16::from_be_bytes(unsafe { [(*bytes)[2 * i], (*bytes)[2 * i + 1]] }) as u64;
        // Added one word at a time: summed as a tree, LLVM would load every word first
        // and spill most of them, which took 200 bytes of the call chain's 512 of stack.
        unsafe { core::arch::asm!("{0} += 0", inout(reg) sum, options(pure, nomem, nostack)) };
    }
    Some(sum)
}

#[inline(always)]
fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

fn answer_v4(ctx: &XdpContext, packet: &Packet, mtu: u32) -> Option<()> {
    let frag = unsafe { *at::<[u8; 2]>(ctx, ipv4::FRAG)? };
    if frag[0] & ipv4::DF_HIGH_BYTE == 0 {
        return None;
    }
    // The quote is the client's header and 8 bytes: a header with options is not
    // answered (the checksum reads a region of fixed size).
    if packet.l4 != eth::LEN + ipv4::MIN_LEN {
        return None;
    }
    const QUOTE: usize = ipv4::MIN_LEN + QUOTED_PAYLOAD;
    let quote = QUOTE;
    let (to, from) = swapped_macs(ctx)?;
    let room = ipv4::MIN_LEN + ICMP_HEADER;
    let total = ipv4::MIN_LEN + ICMP_HEADER + quote;
    reshape(ctx, room, eth::LEN + total)?;
    let frame = at::<[u8; 14]>(ctx, 0)? as *mut u8;
    put_mac(frame, &to);
    put_mac(unsafe { frame.add(eth::SRC) }, &from);
    let ethertype = at::<[u8; 2]>(ctx, eth::TYPE)?;
    unsafe { *ethertype = ETH_P_IP.to_be_bytes() };
    // The IP header, from the VIP to the client.
    let (vip, client) = unsafe {
        (
            (packet.dst.as_ptr() as *const u32).read(),
            (packet.src.as_ptr() as *const u32).read(),
        )
    };
    let words = [
        u32::from_ne_bytes([0x45, 0, 0, 0]) | ((total as u16).to_be() as u32) << 16,
        0,
        u32::from_ne_bytes([64, IPPROTO_ICMP, 0, 0]),
        vip,
        client,
    ];
    let checksum = ipv4_header_checksum(&words);
    let h = at::<[u8; 20]>(ctx, eth::LEN)? as *mut u8;
    store_u32(h, words[0]);
    store_u32(unsafe { h.add(4) }, words[1]);
    store_u32(unsafe { h.add(8) }, words[2] | (checksum as u32) << 16);
    store_u32(unsafe { h.add(12) }, vip);
    store_u32(unsafe { h.add(16) }, client);
    // ICMP: type, code, checksum, unused, next-hop MTU.
    let icmp = eth::LEN + ipv4::MIN_LEN;
    let mtu = (mtu as u16).to_be_bytes();
    let head = at::<[u8; ICMP_HEADER]>(ctx, icmp)?;
    unsafe {
        *head = [
            ICMP_DEST_UNREACH,
            ICMP_FRAG_NEEDED,
            0,
            0,
            0,
            0,
            mtu[0],
            mtu[1],
        ]
    };
    let checksum = fold(sum::<{ ICMP_HEADER + QUOTE }>(ctx, icmp)?);
    let field = at::<[u8; 2]>(ctx, icmp + 2)?;
    unsafe { *field = checksum.to_be_bytes() };
    Some(())
}

fn answer_v6(ctx: &XdpContext, packet: &Packet, mtu: u32) -> Option<()> {
    const QUOTE: usize = ipv6::LEN + QUOTED_PAYLOAD;
    let quote = QUOTE;
    let (to, from) = swapped_macs(ctx)?;
    let room = ipv6::LEN + ICMP_HEADER;
    let payload = ICMP_HEADER + quote;
    reshape(ctx, room, eth::LEN + ipv6::LEN + payload)?;
    let frame = at::<[u8; 14]>(ctx, 0)? as *mut u8;
    put_mac(frame, &to);
    put_mac(unsafe { frame.add(eth::SRC) }, &from);
    let ethertype = at::<[u8; 2]>(ctx, eth::TYPE)?;
    unsafe { *ethertype = ETH_P_IPV6.to_be_bytes() };
    let h = unsafe { &mut *at::<[u8; 40]>(ctx, eth::LEN)? };
    let length = (payload as u16).to_be_bytes();
    h[..8].copy_from_slice(&[0x60, 0, 0, 0, length[0], length[1], IPPROTO_ICMPV6, 64]);
    h[8..24].copy_from_slice(&packet.dst);
    h[24..40].copy_from_slice(&packet.src);
    let icmp = eth::LEN + ipv6::LEN;
    let mtu = mtu.to_be_bytes();
    let head = at::<[u8; ICMP_HEADER]>(ctx, icmp)?;
    unsafe {
        *head = [
            ICMPV6_PACKET_TOO_BIG,
            0,
            0,
            0,
            mtu[0],
            mtu[1],
            mtu[2],
            mtu[3],
        ]
    };
    // The checksum covers a pseudo header: both addresses, the length, the next header.
    let pseudo = sum::<32>(ctx, ipv6::SRC)? + payload as u64 + IPPROTO_ICMPV6 as u64;
    let checksum = fold(pseudo + sum::<{ ICMP_HEADER + QUOTE }>(ctx, icmp)?);
    let field = at::<[u8; 2]>(ctx, icmp + 2)?;
    unsafe { *field = checksum.to_be_bytes() };
    Some(())
}

/// Rewrites the packet an ICMP or ICMPv6 error quotes: its source (if `source`, else its
/// destination) address and port become `addr` and `port`, keeping the checksums right
/// (RFC 1624 updates, every changed word counted once).
#[inline(always)]
pub fn translate_quoted(
    ctx: &XdpContext,
    packet: &Packet,
    source: bool,
    addr: &[u8; 16],
    port: u16,
) -> Option<()> {
    if packet.family == FAMILY_V4 {
        translate_quoted_v4(ctx, packet, source, addr, port)
    } else {
        translate_quoted_v6(ctx, packet, source, addr, port)
    }
}

/// Rewrites the error's outer source (if `source`) or destination address from `old` to
/// `new`. ICMPv6's checksum covers the addresses (its pseudo header), so it changes too;
/// ICMP's does not.
#[inline(always)]
pub fn rewrite_outer(
    ctx: &XdpContext,
    packet: &Packet,
    source: bool,
    old: &[u8; 16],
    new: &[u8; 16],
) -> Option<()> {
    let delta = forward::rewrite_address(ctx, packet, source, old, new)?;
    if packet.family != FAMILY_V4 {
        let check = at::<u16>(ctx, eth::LEN + ipv6::LEN + 2)?;
        unsafe { *check = csum_apply(*check, delta) };
    }
    Some(())
}

/// [`translate_quoted`] of an ICMPv6 error: every offset fixed (no extension headers).
/// The quoted UDP checksum (which covers the quoted addresses) is kept right as IPv4's
/// is; the quoted TCP checksum is left as it was, as IPVS leaves it.
#[inline(always)]
fn translate_quoted_v6(
    ctx: &XdpContext,
    packet: &Packet,
    source: bool,
    addr: &[u8; 16],
    port: u16,
) -> Option<()> {
    const L4: usize = eth::LEN + ipv6::LEN;
    const INNER: usize = L4 + ICMP_HEADER;
    const INNER_L4: usize = INNER + ipv6::LEN;
    // Source and destination addresses at 8 and 24 of the quoted header.
    let (old_addr, old_port, addr_at, port_at) = if source {
        (&packet.inner_src, packet.inner_sport, INNER + 8, INNER_L4)
    } else {
        (
            &packet.inner_dst,
            packet.inner_dport,
            INNER + 24,
            INNER_L4 + 2,
        )
    };
    let addr_delta = csum_addr_delta(old_addr, addr, 4);
    let port_delta = (!old_port) as u64 + port as u64;
    let field = at::<[u8; 16]>(ctx, addr_at)?;
    let port_field = at::<u16>(ctx, port_at)?;
    let icmp_check = at::<u16>(ctx, L4 + 2)?;
    let udp_check = if packet.inner_protocol == IPPROTO_UDP {
        Some(at::<u16>(ctx, INNER_L4 + 6)?)
    } else {
        None
    };
    unsafe {
        *field = *addr;
        *port_field = port;
        let mut icmp_delta = addr_delta + port_delta;
        if let Some(udp_check) = udp_check {
            let old = *udp_check;
            let mut new = csum_apply(old, addr_delta + port_delta);
            // IPv6 UDP has no "no checksum": a zero result is sent as all ones.
            if new == 0 {
                new = 0xffff;
            }
            *udp_check = new;
            icmp_delta += (!old) as u64 + new as u64;
        }
        *icmp_check = csum_apply(*icmp_check, icmp_delta);
    }
    Some(())
}

/// [`translate_quoted`] of an IPv4 ICMP error: the quoted IP header's checksum, the
/// quoted UDP checksum (TCP's is beyond the 8 quoted bytes) and the ICMP checksum kept
/// right.
#[inline(always)]
fn translate_quoted_v4(
    ctx: &XdpContext,
    packet: &Packet,
    source: bool,
    addr: &[u8; 16],
    port: u16,
) -> Option<()> {
    let inner = packet.inner_l3 & 0xff;
    let inner_l4 = packet.inner_l4 & 0x1ff;
    let (old_addr, old_port, addr_at, port_at) = if source {
        (&packet.inner_src, packet.inner_sport, inner + 12, inner_l4)
    } else {
        (
            &packet.inner_dst,
            packet.inner_dport,
            inner + 16,
            inner_l4 + 2,
        )
    };
    let addr_delta = csum_addr_delta(old_addr, addr, 1);
    let port_delta = (!old_port) as u64 + port as u64;
    let ip_check = at::<u16>(ctx, inner + 10)?;
    let field = at::<[u8; 4]>(ctx, addr_at)?;
    let port_field = at::<u16>(ctx, port_at)?;
    let icmp_check = at::<u16>(ctx, (packet.l4 & 0x7f) + 2)?;
    unsafe {
        let old_ip_check = *ip_check;
        *ip_check = csum_apply(old_ip_check, addr_delta);
        (*field).copy_from_slice(&addr[..4]);
        *port_field = port;
        let mut icmp_delta = addr_delta + port_delta + (!old_ip_check) as u64 + (*ip_check) as u64;
        if packet.inner_protocol == IPPROTO_UDP {
            let udp_check = at::<u16>(ctx, inner_l4 + 6)?;
            let old = *udp_check;
            if old != 0 {
                *udp_check = csum_apply(old, addr_delta + port_delta);
                icmp_delta += (!old) as u64 + (*udp_check) as u64;
            }
        }
        *icmp_check = csum_apply(*icmp_check, icmp_delta);
    }
    Some(())
}
