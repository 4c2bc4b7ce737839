//! PROXY protocol v2 on FULLNAT connections (`--proxy-protocol v2`): the real server sees
//! the local address, so the client's address and port, and the VIP's, are sent to it at
//! the start of the connection in HAProxy's binary header, which nginx, HAProxy and Envoy
//! read.
//!
//! The header goes in before the client's first byte: into the first client segment that
//! starts there (the handshake's last ACK, which thus carries it even when the server
//! speaks first), and again into every later one that starts there until the real server
//! has acknowledged it, so that a lost first segment is sent again with the same header.
//! From then on the two sides count the client's bytes differently by the header's
//! length: client sequence numbers are moved up by it, the server's acknowledgements (and
//! SACK blocks) down. The server's SYN-ACK announces a segment size smaller by the header,
//! so that a full first segment with the header still fits the way to the server.
//!
//! What each side needs (the state, the client's first sequence number) is in the
//! connection's [`FullnatPeer`]s, which FULLNAT looks up for every packet anyway.

use aya_ebpf::{
    bindings::xdp_md,
    helpers::generated::{bpf_xdp_adjust_head, bpf_xdp_load_bytes, bpf_xdp_store_bytes},
    programs::XdpContext,
};
use xvs_common::{
    ConnKey, FAMILY_V4, FullnatPeer, PROXY_V2_LEN_V4, PROXY_V2_LEN_V6, PROXY_V2_SIGNATURE, counter,
    proxy_state,
};

use crate::{
    maps::{XVS_FULLNAT, count, scratch},
    packet::{Packet, at, csum_apply, helper_len, read_u8},
    sched,
    wire::{eth, ipv4, ipv6, tcp},
};

const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
const TCP_OFFSET: usize = 12;
const TCP_SEQ: usize = 4;
const TCP_ACK_SEQ: usize = 8;

const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_MSS: u8 = 2;
const OPTION_SACK: u8 = 5;
/// Options looked at in a reply, at most (a real stack sends three or four).
const OPTION_STEPS: u32 = 12;
/// SACK blocks an option holds, at most (of 8 bytes: two edges).
const SACK_BLOCKS: usize = 4;
/// TCP options take 40 bytes at most; they are worked on in a buffer of the next power of
/// two, so that a masked index is in it.
const OPTIONS_MAX: usize = 40;
pub const OPTIONS_BUFFER: usize = 64;
/// The smallest segment size announced after the header is taken off (IPv4's minimum).
const MIN_MSS: u16 = 536;

/// The longest headers moved for a header: Ethernet, IPv4 with options, TCP with options.
const MOVED_MAX: usize = eth::LEN + 60 + 60;
/// The shortest: Ethernet, IPv4 and TCP without options.
const MOVED_MIN: usize = eth::LEN + ipv4::MIN_LEN + tcp::MIN_LEN;

/// The header's length for a client of `family`.
#[inline(always)]
pub fn header_len(family: u8) -> u32 {
    if family == FAMILY_V4 {
        PROXY_V2_LEN_V4
    } else {
        PROXY_V2_LEN_V6
    }
}

/// Where sequence number `seq` lies from the client's first byte `first` (negative:
/// before it, as the SYN's does).
#[inline(always)]
fn distance(seq: u32, first: u32) -> i32 {
    seq.wrapping_sub(first) as i32
}

/// A sequence number of the real server's count (an acknowledgement, a SACK edge) in the
/// client's: past the header, moved down by it; inside it, the client's first byte.
/// Without branches (BPF has no conditional moves: each choice would be a path for the
/// verifier to walk, eight edges a SACK option): masks from sign bits choose.
#[inline(always)]
fn to_client(seq: u32, first: u32, len: u32) -> u32 {
    let from_first = distance(seq, first);
    // All ones when before the header's end; when after the client's first byte.
    let before_end = negative_mask(from_first.wrapping_sub(len as i32));
    let after_first = negative_mask(from_first.wrapping_neg());
    (seq.wrapping_sub(len) & !before_end)
        | (first & before_end & after_first)
        | (seq & before_end & !after_first)
}

/// All ones if `x` is negative, else zero: an arithmetic shift in assembly, where LLVM
/// would make a branch of the comparison.
#[inline(always)]
fn negative_mask(x: i32) -> u32 {
    let mut wide = x as i64 as u64;
    unsafe { core::arch::asm!("{0} s>>= 63", inout(reg) wide, options(pure, nomem, nostack)) };
    wide as u32
}

/// Folds a ones'-complement sum to 16 bits.
#[inline(always)]
fn fold(sum: u64) -> u64 {
    let mut sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16)
}

/// What changing a 4-byte field at an even offset from the TCP header from `old` to
/// `new` (bytes as in the frame) takes from and adds to the TCP checksum.
#[inline(always)]
fn field_delta(old: u32, new: u32) -> u64 {
    fold((!old) as u64 + new as u64)
}

/// Writes the v2 header for connection `request` (client → VIP) into the scratch space;
/// answers its ones'-complement sum (in the frame's byte order, as [`csum_apply`] takes
/// it).
#[inline(always)]
fn build_header(header: &mut [u32; 13], request: &ConnKey) -> u64 {
    let v4 = request.family == FAMILY_V4;
    let len = header_len(request.family);
    let signature = &PROXY_V2_SIGNATURE;
    header[0] = u32::from_ne_bytes([signature[0], signature[1], signature[2], signature[3]]);
    header[1] = u32::from_ne_bytes([signature[4], signature[5], signature[6], signature[7]]);
    header[2] = u32::from_ne_bytes([signature[8], signature[9], signature[10], signature[11]]);
    // Version 2, PROXY; TCP over IPv4 (0x11) or IPv6 (0x21); the address block's length.
    let [high, low] = ((len - 16) as u16).to_be_bytes();
    header[3] = u32::from_ne_bytes([0x21, if v4 { 0x11 } else { 0x21 }, high, low]);
    // Addresses are fields of an 8-byte aligned key: read in words.
    let (src, dst) = (
        request.src.as_ptr() as *const u32,
        request.dst.as_ptr() as *const u32,
    );
    let [s0, s1] = request.sport.to_ne_bytes();
    let [d0, d1] = request.dport.to_ne_bytes();
    let ports = u32::from_ne_bytes([s0, s1, d0, d1]);
    if v4 {
        unsafe {
            header[4] = src.read();
            header[5] = dst.read();
        }
        header[6] = ports;
    } else {
        let mut i = 0;
        while i < 4 {
            unsafe {
                header[4 + i] = src.add(i).read();
                header[8 + i] = dst.add(i).read();
            }
            i += 1;
        }
        header[12] = ports;
    }
    let words = (len / 4) as usize;
    let mut sum = 0u64;
    let mut i = 0;
    while i < 13 {
        if i < words {
            sum += header[i] as u64;
        }
        i += 1;
    }
    sum
}

/// A client packet of a FULLNAT connection whose service sends a PROXY header (`peer`:
/// its request entry's other side, `request`: its key): the header put in before the
/// client's first byte, or the sequence number moved past it. Runs before the addresses
/// are rewritten. 0 if the frame could not be changed. A global BPF function.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_proxy_request(
    ctx: *mut xdp_md,
    packet: *const Packet,
    peer: *const FullnatPeer,
    request: *const ConnKey,
) -> u32 {
    if packet.is_null() || peer.is_null() || request.is_null() {
        return 0;
    }
    let ctx = &mut XdpContext::new(ctx);
    let (packet, peer, request) = unsafe { (&*packet, &*peer, &*request) };
    let len = header_len(packet.family);
    let from_first = distance(packet.seq, peer.first_seq);
    // The SYN (a retransmitted one too) is before the stream: as it is.
    if from_first < 0 {
        return 1;
    }
    let starts_stream = from_first == 0
        && peer.proxy == proxy_state::PENDING
        && packet.tcp_flags & (TCP_SYN | TCP_RST) == 0
        && packet.fragment == 0;
    if starts_stream {
        return insert(ctx, packet, request, len).is_some() as u32;
    }
    let l4 = packet.l4 & 0x7f;
    let (Some(seq), Some(check)) = (
        at::<[u8; 4]>(ctx, l4 + TCP_SEQ),
        at::<u16>(ctx, l4 + tcp::CHECKSUM),
    ) else {
        return 0;
    };
    let new = packet.seq.wrapping_add(len).to_be_bytes();
    unsafe {
        *check = csum_apply(
            *check,
            field_delta(u32::from_ne_bytes(*seq), u32::from_ne_bytes(new)),
        );
        *seq = new;
    }
    1
}

/// Puts the header between the TCP header and the payload: the frame grows at its start
/// and the headers move there, the header goes in the gap, and the IP length and the
/// checksums take it in.
#[inline(always)]
fn insert(ctx: &mut XdpContext, packet: &Packet, request: &ConnKey, len: u32) -> Option<()> {
    let scratch = scratch()?;
    let l4 = packet.l4 & 0x7f;
    let offset = read_u8(ctx, l4 + TCP_OFFSET)?;
    let headers = l4 + ((offset >> 4) as usize) * 4;
    if headers < l4 + tcp::MIN_LEN {
        return None;
    }
    let headers = helper_len(headers as u64, MOVED_MIN as u64, MOVED_MAX as u64)? as usize;
    let header = unsafe { &mut (*scratch).proxy_header };
    let header_sum = build_header(header, request);
    let moved = unsafe { (*scratch).proxy_moved.as_mut_ptr() } as *mut core::ffi::c_void;
    unsafe {
        if bpf_xdp_load_bytes(ctx.ctx, 0, moved, headers as u32) != 0
            || bpf_xdp_adjust_head(ctx.ctx, -(len as i32)) != 0
            || bpf_xdp_store_bytes(ctx.ctx, 0, moved, headers as u32) != 0
            || bpf_xdp_store_bytes(
                ctx.ctx,
                headers as u32,
                header.as_mut_ptr() as *mut core::ffi::c_void,
                len,
            ) != 0
        {
            return None;
        }
    }
    // The IP length; the TCP checksum's pseudo-header length grows as much. (Lengths are
    // big-endian words: their growth, in the frame's byte order, is the swapped one.)
    let grown = (len as u16).to_be() as u64;
    if packet.family == FAMILY_V4 {
        let total = at::<[u8; 2]>(ctx, ipv4::TOTAL_LEN)?;
        let check = at::<u16>(ctx, ipv4::CHECKSUM)?;
        unsafe {
            let new = (u16::from_be_bytes(*total).wrapping_add(len as u16)).to_be_bytes();
            *check = csum_apply(*check, grown);
            *total = new;
        }
    } else {
        let payload = at::<[u8; 2]>(ctx, ipv6::PAYLOAD_LEN)?;
        unsafe {
            *payload = (u16::from_be_bytes(*payload).wrapping_add(len as u16)).to_be_bytes();
        }
    }
    let check = at::<u16>(ctx, l4 + tcp::CHECKSUM)?;
    unsafe { *check = csum_apply(*check, grown + header_sum) };
    count(counter::PROXY_HEADERS, 1);
    Some(())
}

/// A reply of a FULLNAT connection whose client was sent a PROXY header (`reply`: the
/// reply entry's key, `request`: the request entry's), before its addresses are
/// rewritten: the acknowledgement and SACK blocks moved back into the client's count, the
/// SYN-ACK's segment size made smaller by the header; the first acknowledgement past the
/// header ends its resending. 0 if the frame could not be changed. A global BPF function.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_proxy_reply(
    ctx: *mut xdp_md,
    packet: *const Packet,
    reply: *const ConnKey,
    request: *const ConnKey,
) -> u32 {
    if packet.is_null() || reply.is_null() || request.is_null() {
        return 0;
    }
    let ctx = &XdpContext::new(ctx);
    let (packet, reply, request) = unsafe { (&*packet, &*reply, &*request) };
    let Some(client) = XVS_FULLNAT.get_ptr_mut(reply) else {
        return 1;
    };
    let (state, first) = unsafe { ((*client).proxy, (*client).first_seq) };
    if state == proxy_state::NONE || packet.fragment != 0 {
        return 1;
    }
    let len = header_len(packet.family);
    let l4 = packet.l4 & 0x7f;
    let (Some(check), Some(offset)) = (
        at::<u16>(ctx, l4 + tcp::CHECKSUM),
        read_u8(ctx, l4 + TCP_OFFSET),
    ) else {
        return 0;
    };
    let mut delta = 0u64;
    if packet.tcp_flags & TCP_ACK != 0 {
        let Some(field) = at::<[u8; 4]>(ctx, l4 + TCP_ACK_SEQ) else {
            return 0;
        };
        let ack = u32::from_be_bytes(unsafe { *field });
        if state == proxy_state::PENDING && distance(ack, first) >= len as i32 {
            unsafe { (*client).proxy = proxy_state::DELIVERED };
            if let Some(peer) = XVS_FULLNAT.get_ptr_mut(request) {
                unsafe { (*peer).proxy = proxy_state::DELIVERED };
            }
        }
        let new = to_client(ack, first, len);
        if new != ack {
            delta += field_delta(ack.to_be(), new.to_be());
            unsafe { *field = new.to_be_bytes() };
        }
    }
    let end = l4 + ((offset >> 4) as usize) * 4;
    if end > l4 + tcp::MIN_LEN {
        let syn = (packet.tcp_flags & TCP_SYN != 0) as u32;
        let options_len = end - l4 - tcp::MIN_LEN;
        delta += xvs_proxy_options(ctx.ctx, pack(l4, options_len, syn, len), first);
    }
    if delta != 0 {
        unsafe { *check = csum_apply(*check, delta) };
    }
    1
}

/// Four small numbers in one argument (BPF functions take five at most).
#[inline(always)]
fn pack(a: usize, b: usize, c: u32, d: u32) -> u32 {
    (a as u32 & 0xff) | (b as u32 & 0xff) << 8 | (c & 0xff) << 16 | (d & 0xff) << 24
}

/// A byte of the options buffer (the index masked: the verifier sees it in bounds).
#[inline(always)]
fn byte(options: &[u8; OPTIONS_BUFFER], i: usize) -> u8 {
    options[i & (OPTIONS_BUFFER - 1)]
}

/// What changing 4 bytes from `old` to `new` (as they lie in memory) takes from and adds
/// to the TCP checksum, at an odd offset from the TCP header if `odd` (where they
/// straddle its 16-bit words: the sum is the byte-swapped one).
#[inline(always)]
fn parity_delta(old: u32, new: u32, odd: bool) -> u64 {
    let sum = field_delta(old, new);
    if odd {
        ((sum & 0xff) << 8) | (sum >> 8)
    } else {
        sum
    }
}

/// The 4-byte sequence number at `i` of the options buffer (which starts at an even
/// offset), moved into the client's count; answers the checksum change.
#[inline(always)]
fn sack_edge(options: &mut [u8; OPTIONS_BUFFER], i: usize, first: u32, len: u32) -> u64 {
    let seq = u32::from_be_bytes([
        byte(options, i),
        byte(options, i + 1),
        byte(options, i + 2),
        byte(options, i + 3),
    ]);
    let new = to_client(seq, first, len).to_be_bytes();
    let mut k = 0;
    while k < 4 {
        options[(i + k) & (OPTIONS_BUFFER - 1)] = new[k];
        k += 1;
    }
    parity_delta(seq.to_be(), u32::from_ne_bytes(new), i & 1 == 1)
}

/// Walks a reply's TCP options: `packed` holds the TCP header's offset, the options'
/// length, whether it is a SYN-ACK (its MSS is made smaller by the header) and the
/// header's length; SACK edges are moved into the client's count (`first`: the client's
/// first byte). The options are copied out, changed, and copied back; answers the
/// checksum change (the options start at an even offset: their words sum as they lie).
/// A global BPF function: its walk is verified once, on its own.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_proxy_options(ctx: *mut xdp_md, packed: u32, first: u32) -> u64 {
    let Some(scratch) = scratch() else {
        return 0;
    };
    let at_options = (packed & 0x7f) + tcp::MIN_LEN as u32;
    let (syn, len) = ((packed >> 16) & 0xff, packed >> 24);
    let Some(size) = helper_len(((packed >> 8) & 0xff) as u64, 4, OPTIONS_MAX as u64) else {
        return 0;
    };
    let options = unsafe { &mut (*scratch).proxy_options };
    let buffer = options.as_mut_ptr() as *mut core::ffi::c_void;
    if unsafe { bpf_xdp_load_bytes(ctx, at_options, buffer, size) } != 0 {
        return 0;
    }
    // The walk's state in scratch memory: this function is deep in the call chain, whose
    // stack is 512 bytes in all.
    let walk = unsafe { &mut (*scratch).option_walk };
    walk.at = 0;
    walk.size = size;
    walk.syn = syn;
    walk.len = len;
    walk.first = first;
    walk.sack_at = 0;
    walk.sack_edges = 0;
    walk.delta = 0;
    let mut unused = 0u64;
    sched::walk(OPTION_STEPS, &mut unused, option_step);
    let edges = walk.sack_edges;
    if edges != 0 {
        sched::walk(edges, &mut unused, sack_step);
    }
    if unsafe { bpf_xdp_store_bytes(ctx, at_options, buffer, size) } != 0 {
        return 0;
    }
    unsafe { (*scratch).option_walk.delta }
}

/// Where a walk of a reply's options is (bpf_loop's steps, each verified once, find it in
/// the scratch space beside the options).
pub struct OptionWalk {
    at: u32,
    size: u32,
    syn: u32,
    len: u32,
    first: u32,
    /// The SACK option's first edge and how many edges it has (0: none seen).
    sack_at: u32,
    sack_edges: u32,
    /// What the changes so far take from and add to the TCP checksum.
    delta: u64,
}

/// One SACK edge (the `edge`th) moved into the client's count.
extern "C" fn sack_step(edge: u32, _: *mut u64) -> i64 {
    let Some(scratch) = scratch() else {
        return sched::STOP;
    };
    let (walk, options) = unsafe { (&mut (*scratch).option_walk, &mut (*scratch).proxy_options) };
    let at = (walk.sack_at + (edge % (SACK_BLOCKS as u32 * 2)) * 4) as usize;
    walk.delta += sack_edge(options, at, walk.first, walk.len);
    sched::CONTINUE
}

/// One option of a reply: a SYN-ACK's MSS made smaller by the header, SACK edges moved
/// into the client's count; the walk moves on to the next.
extern "C" fn option_step(_: u32, _: *mut u64) -> i64 {
    let Some(scratch) = scratch() else {
        return sched::STOP;
    };
    let (walk, options) = unsafe { (&mut (*scratch).option_walk, &mut (*scratch).proxy_options) };
    let (at, size) = ((walk.at & 0x3f) as usize, walk.size as usize);
    if at >= size {
        return sched::STOP;
    }
    let kind = byte(options, at);
    if kind == OPTION_END {
        return sched::STOP;
    }
    // Every way on leaves the same kind of offset (masked: never past the buffer, as
    // the checks below make sure anyway), so that the verifier sees the steps alike and
    // checks one, not every combination of the options before it.
    if kind == OPTION_NOP {
        walk.at = ((at + 1) & (OPTIONS_BUFFER - 1)) as u32;
        return sched::CONTINUE;
    }
    let option_len = byte(options, at + 1) as usize;
    if option_len < 2 || at + option_len > size {
        return sched::STOP;
    }
    if kind == OPTION_MSS && option_len == 4 && walk.syn != 0 {
        let mss = u16::from_be_bytes([byte(options, at + 2), byte(options, at + 3)]);
        let new = mss.saturating_sub(walk.len as u16).max(MIN_MSS).min(mss);
        let [high, low] = new.to_be_bytes();
        options[(at + 2) & (OPTIONS_BUFFER - 1)] = high;
        options[(at + 3) & (OPTIONS_BUFFER - 1)] = low;
        // Two bytes as a word's low half (the high halves cancel out), at the option's
        // parity (the options start at an even offset).
        let old_word = u16::from_ne_bytes(mss.to_be_bytes()) as u32 | 0xffff_0000;
        let new_word = u16::from_ne_bytes([high, low]) as u32 | 0xffff_0000;
        walk.delta += parity_delta(old_word, new_word, at & 1 == 1);
    } else if kind == OPTION_SACK {
        // Its edges are moved after the walk, in a walk of their own.
        walk.sack_at = ((at + 2) & (OPTIONS_BUFFER - 1)) as u32;
        walk.sack_edges = ((option_len - 2) / 4).min(SACK_BLOCKS * 2) as u32;
    }
    walk.at = ((at + option_len) & (OPTIONS_BUFFER - 1)) as u32;
    sched::CONTINUE
}
