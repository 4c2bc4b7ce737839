//! fwmark services. XDP runs before netfilter, so the director cannot see the marks the
//! operator's mangle rules set. A marked packet that no address service claimed goes on
//! into the kernel, is marked there, and is routed by xvs's policy rules into the fwmark
//! loop (`xvsfw0` → `xvsfw1`, set up by user space, `xvs-datapath/src/fwmark.rs`), whose
//! egress program writes the mark into the destination MAC. On `xvsfw1` the director
//! reads it here and looks the fwmark service up. The connection entry it then makes is
//! keyed like any other, so the flow's later packets are claimed at the first interface.

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};
use xvs_common::{FWMARK_MAC_PREFIX, Neighbour, meta};

use crate::{
    forward::fib_hop,
    maps::{XVS_CLIENT_HOPS, XVS_META, scratch},
    packet::at,
    wire::IPPROTO_TCP,
};

const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// If this frame came through the fwmark loop, turns the service key in the scratch
/// space into its fwmark service's key (the family kept), puts the way back to the client
/// in the scratch space's reply twin and returns 1; else 0. A global BPF function:
/// verified once, on its own.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_fwmark_key(ctx: *mut xdp_md) -> u32 {
    if ctx.is_null() {
        return 0;
    }
    let ctx = XdpContext::new(ctx);
    let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
    let loop_index = match XVS_META.get(meta::FWMARK_LOOP) {
        Some(&loop_index) if loop_index != 0 => loop_index,
        _ => return 0,
    };
    let Some(scratch) = scratch() else {
        return 0;
    };
    let packet = unsafe { &(*scratch).packet };
    let client = unsafe { &mut (*scratch).client_key };
    client.addr = packet.src;
    client.family = packet.family;
    let Some(eth) = at::<[u8; 12]>(&ctx, 0) else {
        return 0;
    };
    let eth = unsafe { &*eth };
    if loop_index != ingress as u64 {
        // Not the loop: remember how a client that may start a connection came in, should
        // its packet come back through the loop (only the loop's end is trusted to carry
        // a mark: elsewhere a frame's MAC is anyone's to choose).
        let may_start = packet.protocol != IPPROTO_TCP
            || packet.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN;
        if may_start {
            let mut way_back = Neighbour {
                ifindex: ingress,
                smac: [0; 6],
                dmac: [0; 6],
            };
            way_back.smac.copy_from_slice(&eth[..6]);
            way_back.dmac.copy_from_slice(&eth[6..]);
            let _ = XVS_CLIENT_HOPS.insert(client, &way_back, 0);
        }
        return 0;
    }
    if eth[0] != FWMARK_MAC_PREFIX[0] || eth[1] != FWMARK_MAC_PREFIX[1] {
        return 0;
    }
    let mark = u32::from_be_bytes([eth[2], eth[3], eth[4], eth[5]]);
    if mark == 0 {
        return 0;
    }
    let key = unsafe { &mut (*scratch).service_key };
    key.addr = [0; 16];
    key.fwmark = mark;
    key.port = 0;
    key.protocol = 0;
    // The loop is no way back to the client: a NAT connection's replies go the way the
    // client came in, or where the FIB says (interface 0: nobody knows, and a NAT
    // connection is refused).
    let back = unsafe { &mut (*scratch).twin.l2 };
    if let Some(hop) = unsafe { XVS_CLIENT_HOPS.get(&*client) } {
        *back = *hop;
        return 1;
    }
    match fib_hop(&ctx, packet.family, &packet.src, packet.ip_len) {
        Some(l2) => *back = l2,
        None => back.ifindex = 0,
    }
    1
}
