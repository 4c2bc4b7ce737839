//! fwmark services. XDP runs before netfilter, so the director cannot see the marks the
//! operator's mangle rules set. A marked packet that no address service claimed goes on
//! into the kernel, is marked there, and is routed by xvs's policy rules into the fwmark
//! loop (`xvsfw0` → `xvsfw1`, set up by user space, `xvs-datapath/src/fwmark.rs`), whose
//! egress program writes the mark into the destination MAC. On `xvsfw1` the director
//! reads it here and looks the fwmark service up. The connection entry it then makes is
//! keyed like any other, so the flow's later packets are claimed at the first interface.

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};
use xvs_common::{FWMARK_MAC_PREFIX, meta};

use crate::{
    forward::fib_hop,
    maps::{XVS_META, scratch},
    packet::at,
};

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
    let ingress = unsafe { (*ctx.ctx).ingress_ifindex } as u64;
    // Only the loop's own end is trusted: elsewhere the MAC is anyone's to choose.
    match XVS_META.get(meta::FWMARK_LOOP) {
        Some(&loop_index) if loop_index != 0 && loop_index == ingress => {}
        _ => return 0,
    }
    let Some(mac) = at::<[u8; 6]>(&ctx, 0) else {
        return 0;
    };
    let mac = unsafe { *mac };
    if mac[0] != FWMARK_MAC_PREFIX[0] || mac[1] != FWMARK_MAC_PREFIX[1] {
        return 0;
    }
    let mark = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    if mark == 0 {
        return 0;
    }
    let Some(scratch) = scratch() else {
        return 0;
    };
    let key = unsafe { &mut (*scratch).service_key };
    key.addr = [0; 16];
    key.fwmark = mark;
    key.port = 0;
    key.protocol = 0;
    // The loop is no way back to the client: a NAT connection's replies go where the FIB
    // says (interface 0: it knows no way, and a NAT connection is refused).
    let packet = unsafe { &(*scratch).packet };
    let back = unsafe { &mut (*scratch).twin.l2 };
    match fib_hop(&ctx, packet.family, &packet.src, packet.ip_len) {
        Some(l2) => *back = l2,
        None => back.ifindex = 0,
    }
    1
}
