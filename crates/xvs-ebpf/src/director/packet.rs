//! Parsing and rewriting frames: bounds-checked access, header offsets, checksums.

use aya_ebpf::programs::XdpContext;

use crate::wire::{ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, eth, ipv4, ipv6, tcp, udp};

/// A pointer to a `T` at `offset` in the frame, if the frame is long enough.
#[inline(always)]
pub fn at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

#[inline(always)]
pub fn read_u8(ctx: &XdpContext, offset: usize) -> Option<u8> {
    at::<u8>(ctx, offset).map(|p| unsafe { *p })
}

/// A big-endian u16 as stored (network order preserved).
#[inline(always)]
pub fn read_be16_raw(ctx: &XdpContext, offset: usize) -> Option<u16> {
    at::<[u8; 2]>(ctx, offset).map(|p| unsafe { u16::from_ne_bytes(*p) })
}

/// Writes an IPv4 address (4 bytes as read from the packet) into a 16-byte address field
/// of an 8-byte aligned struct, the rest zero: two 8-byte stores.
#[inline(always)]
fn set_v4(field: &mut [u8; 16], addr: u32) {
    let words = field.as_mut_ptr() as *mut u64;
    // Little-endian: the address's bytes come first, as in the packet.
    unsafe {
        words.write(addr as u64);
        words.add(1).write(0);
    }
}

/// Copies an IPv6 address from the packet (no alignment known) into a 16-byte address
/// field of an 8-byte aligned struct.
#[inline(always)]
fn set_v6(field: &mut [u8; 16], from: *const u8) {
    let words = field.as_mut_ptr() as *mut u64;
    unsafe {
        words.write((from as *const u64).read_unaligned());
        words
            .add(1)
            .write((from as *const u64).add(1).read_unaligned());
    }
}

/// Copies a 16-byte address between fields of 8-byte aligned structs: two 8-byte moves
/// (an array assignment between map values becomes a call to a byte-by-byte memmove).
#[inline(always)]
pub fn copy_addr(to: &mut [u8; 16], from: &[u8; 16]) {
    copy16(to.as_mut_ptr(), from.as_ptr());
}

/// 16 bytes from `from` to `to`, both 8-byte aligned, as two 8-byte moves.
#[inline(always)]
fn copy16(to: *mut u8, from: *const u8) {
    let (to, from) = (to as *mut u64, from as *const u64);
    unsafe {
        to.write(from.read());
        to.add(1).write(from.add(1).read());
    }
}

/// Copies a next hop between map values (8-byte aligned): two 8-byte moves, where an
/// assignment becomes a call to a byte-by-byte memmove.
#[inline(always)]
pub fn copy_hop(to: &mut xvs_common::Neighbour, from: &xvs_common::Neighbour) {
    copy16(
        to as *mut xvs_common::Neighbour as *mut u8,
        from as *const xvs_common::Neighbour as *const u8,
    );
}

/// Copies a service key between map values (8-byte aligned): three 8-byte moves, where an
/// assignment becomes a call to a byte-by-byte memmove (which the verifier then checks
/// byte by byte, in every state that reaches it).
#[inline(always)]
pub fn copy_service_key(to: &mut xvs_common::ServiceKey, from: &xvs_common::ServiceKey) {
    let (to, from) = (
        to as *mut xvs_common::ServiceKey as *mut u64,
        from as *const xvs_common::ServiceKey as *const u64,
    );
    unsafe {
        to.write(from.read());
        to.add(1).write(from.add(1).read());
        to.add(2).write(from.add(2).read());
    }
}
const _: () = assert!(core::mem::size_of::<xvs_common::ServiceKey>() == 24);

/// Reads a MAC address from the frame (no alignment known).
#[inline(always)]
pub fn get_mac(from: *const u8) -> [u8; 6] {
    let (head, tail) = unsafe {
        (
            (from as *const u32).read_unaligned().to_ne_bytes(),
            (from.add(4) as *const u16).read_unaligned().to_ne_bytes(),
        )
    };
    [head[0], head[1], head[2], head[3], tail[0], tail[1]]
}

/// Copies a MAC address into the frame (no alignment known) without the byte-loop call
/// the compiler makes of a 6-byte slice copy.
#[inline(always)]
pub fn put_mac(to: *mut u8, mac: &[u8; 6]) {
    unsafe {
        (to as *mut u32).write_unaligned(u32::from_ne_bytes([mac[0], mac[1], mac[2], mac[3]]));
        (to.add(4) as *mut u16).write_unaligned(u16::from_ne_bytes([mac[4], mac[5]]));
    }
}

/// What the pipeline needs of a packet. (Addresses first, 8-byte aligned, so that copying
/// one is two 8-byte moves: at an alignment the compiler cannot see, BPF code calls a
/// byte-by-byte copy loop instead.)
#[repr(C, align(8))]
pub struct Packet {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the TCP/UDP header.
    pub l4: usize,
    pub family: u8,
    pub protocol: u8,
    /// Network order.
    pub sport: u16,
    /// Network order.
    pub dport: u16,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// TCP sequence number, host order (0 for UDP): where a FULLNAT connection's PROXY
    /// header goes is its SYN's plus one.
    pub seq: u32,
    /// IP total length (what IPVS counts as bytes).
    pub ip_len: u32,
    /// A fragment: [`FIRST_FRAGMENT`] (it has the ports) or [`LATER_FRAGMENT`]; 0 for a
    /// whole datagram.
    pub fragment: u8,
    /// The identification of a fragment's datagram (IPv4's 16 bits, IPv6's 32).
    pub fragment_id: u32,
    /// An ICMP error's quoted packet (see [`Skip::IcmpError`]): its addresses, ports (network
    /// order), protocol, and where its IP and L4 headers start in the frame.
    pub inner_src: [u8; 16],
    pub inner_dst: [u8; 16],
    pub inner_sport: u16,
    pub inner_dport: u16,
    pub inner_protocol: u8,
    pub inner_l3: usize,
    pub inner_l4: usize,
}

const IPPROTO_ICMP: u8 = 1;
/// ICMP errors that quote a packet: destination unreachable, time exceeded, parameter
/// problem.
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETER_PROBLEM: u8 = 12;
/// The ICMP header before the quoted packet.
pub const ICMP_HEADER: usize = 8;

/// [`Packet::fragment`] of a datagram's first fragment.
pub const FIRST_FRAGMENT: u8 = 1;
/// [`Packet::fragment`] of a fragment after the first.
pub const LATER_FRAGMENT: u8 = 2;

/// Why a frame is not parsed into a [`Packet`].
pub enum Skip {
    /// Not IPv4/IPv6, or not TCP/UDP: none of the director's business.
    NotOurs,
    /// Shorter than its headers say, or inconsistent lengths.
    Malformed,
    /// An IPv6 packet whose extension headers the director does not walk past (a
    /// routing header with segments left, more than [`ipv6::MAX_EXTENSIONS`] of them or
    /// longer than [`ipv6::L4_LIMIT`] allows, a second fragment header), or a fragment
    /// of another protocol than TCP or UDP.
    Fragment,
    /// A fragment after the first: its addresses, protocol, lengths and
    /// identification are parsed, it has no ports.
    LaterFragment,
    /// An ICMP or ICMPv6 error quoting a TCP or UDP packet: the outer header and the
    /// quoted packet's addresses and ports are parsed.
    IcmpError,
}

/// An IPv4 ICMP error quoting a TCP or UDP packet: parsed into `out` (the outer packet
/// and the quoted one), answered with [`Skip::IcmpError`]; anything else of ICMP is not
/// the director's business.
#[inline(always)]
fn parse_icmp_error(
    ctx: &XdpContext,
    out: &mut Packet,
    ihl: usize,
    total: u16,
) -> Result<(), Skip> {
    // The outer addresses first, stored at once: read after the quoted packet's, their
    // bounds check would be dropped as implied by a later one at a variable offset, which
    // the verifier cannot carry back to them.
    let outer = at::<[u8; 8]>(ctx, ipv4::SRC).ok_or(Skip::Malformed)?;
    unsafe {
        set_v4(&mut out.src, (outer as *const u32).read_unaligned());
        set_v4(&mut out.dst, (outer as *const u32).add(1).read_unaligned());
    }
    let l4 = eth::LEN + (ihl & 0xf) * 4;
    // Regions read whole: a one-byte read at a variable offset lets LLVM turn its bounds
    // check into a form the verifier cannot follow.
    let icmp = at::<[u8; ICMP_HEADER]>(ctx, l4).ok_or(Skip::Malformed)?;
    let kind = unsafe { (*icmp)[0] };
    if !matches!(
        kind,
        ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM
    ) {
        return Err(Skip::NotOurs);
    }
    let inner = l4 + ICMP_HEADER;
    let quoted = at::<[u8; 20]>(ctx, inner).ok_or(Skip::Malformed)?;
    let (first, protocol) = unsafe { ((*quoted)[0], (*quoted)[9]) };
    let inner_ihl = (first & 0x0f) as usize;
    if first >> 4 != 4 || inner_ihl < 5 {
        return Err(Skip::NotOurs);
    }
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return Err(Skip::NotOurs);
    }
    let inner_l4 = inner + inner_ihl * 4;
    let ports = at::<[u16; 2]>(ctx, inner_l4).ok_or(Skip::Malformed)?;
    unsafe {
        let addrs = (quoted as *const u8).add(12) as *const u32;
        set_v4(&mut out.inner_src, addrs.read_unaligned());
        set_v4(&mut out.inner_dst, addrs.add(1).read_unaligned());
        out.inner_sport = (*ports)[0];
        out.inner_dport = (*ports)[1];
    }
    out.family = xvs_common::FAMILY_V4;
    out.protocol = IPPROTO_ICMP;
    out.l4 = l4;
    out.ip_len = total as u32;
    out.fragment = 0;
    out.inner_protocol = protocol;
    out.inner_l3 = inner;
    out.inner_l4 = inner_l4;
    Err(Skip::IcmpError)
}

const IPPROTO_ICMPV6: u8 = 58;
/// ICMPv6 errors that quote a packet: destination unreachable (1), packet too big (2),
/// time exceeded (3), parameter problem (4). Informational messages (128 and up: echo,
/// neighbour discovery) are the kernel's.
const ICMPV6_LAST_ERROR: u8 = 4;

/// An ICMPv6 error quoting a TCP or UDP packet (its IPv6 header without extension
/// headers): parsed into `out` as [`parse_icmp_error`] parses IPv4's, answered with
/// [`Skip::IcmpError`]; anything else of ICMPv6 is not the director's business. Every
/// offset is fixed: the outer header has no extension headers either.
#[inline(always)]
fn parse_icmp6_error(ctx: &XdpContext, out: &mut Packet, payload: u16) -> Result<(), Skip> {
    let outer = at::<[u8; 32]>(ctx, ipv6::SRC).ok_or(Skip::Malformed)?;
    set_v6(&mut out.src, outer as *const u8);
    set_v6(&mut out.dst, unsafe { (outer as *const u8).add(16) });
    const L4: usize = eth::LEN + ipv6::LEN;
    const INNER: usize = L4 + ICMP_HEADER;
    const INNER_L4: usize = INNER + ipv6::LEN;
    let icmp = at::<[u8; ICMP_HEADER]>(ctx, L4).ok_or(Skip::Malformed)?;
    let kind = unsafe { (*icmp)[0] };
    if kind == 0 || kind > ICMPV6_LAST_ERROR {
        return Err(Skip::NotOurs);
    }
    let quoted = at::<[u8; 40]>(ctx, INNER).ok_or(Skip::Malformed)?;
    let (first, protocol) = unsafe { ((*quoted)[0], (*quoted)[6]) };
    if first >> 4 != 6 || (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) {
        return Err(Skip::NotOurs);
    }
    let ports = at::<[u16; 2]>(ctx, INNER_L4).ok_or(Skip::Malformed)?;
    set_v6(&mut out.inner_src, unsafe { (quoted as *const u8).add(8) });
    set_v6(&mut out.inner_dst, unsafe { (quoted as *const u8).add(24) });
    unsafe {
        out.inner_sport = (*ports)[0];
        out.inner_dport = (*ports)[1];
    }
    out.family = xvs_common::FAMILY_V6;
    out.protocol = IPPROTO_ICMPV6;
    out.l4 = L4;
    out.ip_len = ipv6::LEN as u32 + payload as u32;
    out.fragment = 0;
    out.inner_protocol = protocol;
    out.inner_l3 = INNER;
    out.inner_l4 = INNER_L4;
    Err(Skip::IcmpError)
}

/// Parses the frame into `out`, writing the fields in place (no copies on the stack: BPF
/// allows 512 bytes for the whole call chain under this function).
#[inline(always)]
pub fn parse(ctx: &XdpContext, out: &mut Packet) -> Result<(), Skip> {
    let ethertype = u16::from_be(read_be16_raw(ctx, eth::TYPE).ok_or(Skip::Malformed)?);
    out.l3 = eth::LEN;
    match ethertype {
        ETH_P_IP => {
            let first = read_u8(ctx, ipv4::VERSION_IHL).ok_or(Skip::Malformed)?;
            let ihl = (first & 0x0f) as usize;
            if first >> 4 != 4 || ihl < 5 {
                return Err(Skip::Malformed);
            }
            let total = u16::from_be(read_be16_raw(ctx, ipv4::TOTAL_LEN).ok_or(Skip::Malformed)?);
            let frag = u16::from_be(read_be16_raw(ctx, ipv4::FRAG).ok_or(Skip::Malformed)?);
            let protocol = read_u8(ctx, ipv4::PROTOCOL).ok_or(Skip::Malformed)?;
            if protocol == IPPROTO_ICMP && frag & ipv4::FRAGMENT_MASK == 0 {
                return parse_icmp_error(ctx, out, ihl, total);
            }
            if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
                return Err(Skip::NotOurs);
            }
            // A fragment: the first has the ports; a later one is placed by its first.
            out.fragment = 0;
            if frag & ipv4::FRAGMENT_MASK != 0 {
                out.fragment = if frag & ipv4::OFFSET_MASK == 0 {
                    FIRST_FRAGMENT
                } else {
                    LATER_FRAGMENT
                };
                out.fragment_id =
                    u16::from_be(read_be16_raw(ctx, ipv4::ID).ok_or(Skip::Malformed)?) as u32;
            }
            let addrs = at::<[u8; 8]>(ctx, ipv4::SRC).ok_or(Skip::Malformed)?;
            let (src, dst) = unsafe {
                (
                    (addrs as *const u32).read_unaligned(),
                    (addrs as *const u32).add(1).read_unaligned(),
                )
            };
            set_v4(&mut out.src, src);
            set_v4(&mut out.dst, dst);
            out.family = xvs_common::FAMILY_V4;
            out.protocol = protocol;
            out.l4 = eth::LEN + ihl * 4;
            out.ip_len = total as u32;
            if (total as usize) < ihl * 4 {
                return Err(Skip::Malformed);
            }
            if out.fragment == LATER_FRAGMENT {
                return Err(Skip::LaterFragment);
            }
        }
        ETH_P_IPV6 => {
            let first = read_u8(ctx, ipv6::VERSION).ok_or(Skip::Malformed)?;
            if first >> 4 != 6 {
                return Err(Skip::Malformed);
            }
            let payload =
                u16::from_be(read_be16_raw(ctx, ipv6::PAYLOAD_LEN).ok_or(Skip::Malformed)?);
            let mut next = read_u8(ctx, ipv6::NEXT_HEADER).ok_or(Skip::Malformed)?;
            if next == IPPROTO_ICMPV6 {
                return parse_icmp6_error(ctx, out, payload);
            }
            // Extension headers before TCP or UDP are walked past; with a fragment
            // header, the first fragment has the ports, a later one is placed by its
            // first (as IPv4's).
            out.fragment = 0;
            let mut l4 = eth::LEN + ipv6::LEN;
            for _ in 0..ipv6::MAX_EXTENSIONS {
                if next == ipv6::NEXT_FRAGMENT && out.fragment == 0 {
                    let header = unsafe {
                        *at::<[u8; ipv6::FRAGMENT_LEN]>(ctx, l4 & (ipv6::L4_LIMIT - 1))
                            .ok_or(Skip::Malformed)?
                    };
                    next = header[0];
                    let offset = u16::from_be_bytes([
                        header[ipv6::FRAGMENT_OFFSET],
                        header[ipv6::FRAGMENT_OFFSET + 1],
                    ]);
                    out.fragment_id = u32::from_be_bytes([
                        header[ipv6::FRAGMENT_ID],
                        header[ipv6::FRAGMENT_ID + 1],
                        header[ipv6::FRAGMENT_ID + 2],
                        header[ipv6::FRAGMENT_ID + 3],
                    ]);
                    out.fragment = if offset & ipv6::FRAGMENT_OFFSET_MASK == 0 {
                        FIRST_FRAGMENT
                    } else {
                        LATER_FRAGMENT
                    };
                    l4 += ipv6::FRAGMENT_LEN;
                } else if next == ipv6::NEXT_HOP_BY_HOP
                    || next == ipv6::NEXT_DEST_OPTIONS
                    || next == ipv6::NEXT_ROUTING
                {
                    let header = unsafe {
                        *at::<[u8; 4]>(ctx, l4 & (ipv6::L4_LIMIT - 1)).ok_or(Skip::Malformed)?
                    };
                    if next == ipv6::NEXT_ROUTING && header[ipv6::ROUTING_SEGMENTS_LEFT] != 0 {
                        return Err(Skip::Fragment);
                    }
                    next = header[0];
                    l4 += (header[1] as usize + 1) * 8;
                } else {
                    break;
                }
                if l4 >= ipv6::L4_LIMIT {
                    return Err(Skip::Fragment);
                }
            }
            out.l4 = l4;
            if next != IPPROTO_TCP && next != IPPROTO_UDP {
                // Extension headers beyond what is walked (and fragments of other
                // protocols) are left to the kernel, counted.
                let extension = next == ipv6::NEXT_HOP_BY_HOP
                    || next == ipv6::NEXT_ROUTING
                    || next == ipv6::NEXT_FRAGMENT
                    || next == ipv6::NEXT_DEST_OPTIONS;
                return Err(if extension || out.fragment != 0 {
                    Skip::Fragment
                } else {
                    Skip::NotOurs
                });
            }
            if (payload as usize) < l4 - eth::LEN - ipv6::LEN {
                return Err(Skip::Malformed);
            }
            let addrs = at::<[u8; 32]>(ctx, ipv6::SRC).ok_or(Skip::Malformed)?;
            set_v6(&mut out.src, addrs as *const u8);
            set_v6(&mut out.dst, unsafe { (addrs as *const u8).add(16) });
            out.family = xvs_common::FAMILY_V6;
            out.protocol = next;
            out.ip_len = ipv6::LEN as u32 + payload as u32;
            if out.fragment == LATER_FRAGMENT {
                return Err(Skip::LaterFragment);
            }
        }
        _ => return Err(Skip::NotOurs),
    }
    let ports = unsafe { *at::<[u16; 2]>(ctx, out.l4).ok_or(Skip::Malformed)? };
    out.sport = ports[0];
    out.dport = ports[1];
    (out.tcp_flags, out.seq) = if out.protocol == IPPROTO_TCP {
        // Sequence number to flags, one region.
        let head = unsafe { *at::<[u8; 14]>(ctx, out.l4).ok_or(Skip::Malformed)? };
        (
            head[tcp::FLAGS],
            u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
        )
    } else {
        (0, 0)
    };
    // Lengths are checked with pointers against the frame's end (the verifier cannot
    // follow facts derived from `data_end - data`), and last, so the compiler keeps the
    // bounds checks above. The masks keep the offsets provably small.
    let l4_min = if out.protocol == IPPROTO_TCP {
        tcp::MIN_LEN
    } else {
        udp::LEN
    };
    let l3_len = out.ip_len as usize & 0xffff;
    let l4_end = (out.l4 & 0x7f) + l4_min;
    if l3_len == 0
        || at::<u8>(ctx, l4_end - 1).is_none()
        || at::<u8>(ctx, eth::LEN + l3_len - 1).is_none()
        || l4_end > eth::LEN + l3_len
    {
        return Err(Skip::Malformed);
    }
    Ok(())
}

/// RFC 1624 incremental update of a ones'-complement checksum for a 16-bit word change.
#[inline(always)]
pub fn csum_replace16(check: u16, old: u16, new: u16) -> u16 {
    let mut sum = (!check as u32 & 0xffff) + (!old as u32 & 0xffff) + new as u32;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Ones'-complement sum of what replacing an address (its first `words` 32-bit words: 1 for
/// IPv4, 4 for IPv6) takes away and adds, to start an RFC 1624 update with
/// ([`csum_apply`]). 32-bit words sum like pairs of 16-bit ones once folded; the
/// addresses are fields of 8-byte aligned structs.
#[inline(always)]
pub fn csum_addr_delta(old: &[u8; 16], new: &[u8; 16], words: usize) -> u64 {
    let (old, new) = (old.as_ptr() as *const u32, new.as_ptr() as *const u32);
    let mut sum = 0u64;
    let mut i = 0;
    while i < 4 {
        if i < words {
            unsafe { sum += (!old.add(i).read()) as u64 + new.add(i).read() as u64 };
        }
        i += 1;
    }
    sum
}

/// Applies a summed change (`delta`: complements of the old words plus the new ones) to a
/// checksum, folding once: `~(~check + delta)`.
#[inline(always)]
pub fn csum_apply(check: u16, delta: u64) -> u16 {
    let mut sum = (!check) as u64 + delta;
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// The ones'-complement checksum of a 20-byte IPv4 header given as five 32-bit words in
/// memory order (the checksum's own half zero).
#[inline(always)]
pub fn ipv4_header_checksum(words: &[u32; 5]) -> u16 {
    let mut sum: u64 = 0;
    for word in words {
        sum += (*word & 0xffff) as u64 + (*word >> 16) as u64;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Stores `value` at `to` (in the frame, bounds checked by the caller) with one 4-byte store
/// whatever its alignment: LLVM splits an unaligned store into four byte stores and
/// shifts, and the verifier allows unaligned packet access where the CPU does.
#[inline(always)]
pub fn store_u32(to: *mut u8, value: u32) {
    unsafe {
        core::arch::asm!(
            "*(u32 *)({0} + 0) = {1}",
            in(reg) to,
            in(reg) value as u64,
            options(nostack, preserves_flags)
        )
    };
}

/// `len` as the length argument of `bpf_xdp_load_bytes`/`store_bytes`, if it is from `min`
/// (1 or more) to `max`: the helpers want one the verifier knows to be in range. What is
/// past `min` is hidden from the compiler (which would otherwise check `len` and pass it
/// on, bounds the verifier never learns), checked, and `min` added back.
#[inline(always)]
pub fn helper_len(len: u64, min: u64, max: u64) -> Option<u32> {
    let mut past_min = len.wrapping_sub(min);
    unsafe { core::arch::asm!("{0} = {0}", inout(reg) past_min, options(nomem, nostack)) };
    (past_min <= max - min).then(|| (past_min + min) as u32)
}
