//! Source hashing (`ip_vs_sh.c`): the server of the source address's bucket (with
//! `sh-port`, address and port), from the set's 256-bucket table; with `sh-fallback`, the
//! next available one when that server is not.

use xvs_common::{HASH_TABLE_SLOTS, service_flags};

use super::{
    NONE, Request,
    hashing::{Probe, choose, fold, hash_32, table},
};

/// `ip_vs_sh_hashkey`.
#[inline(always)]
pub fn bucket(offset: u32, probe: &Probe) -> u32 {
    offset.wrapping_add(hash_32(u32::from(probe.port).wrapping_add(probe.addr), 8)) & 0xff
}

// Out of line: each hashing or locality scheduler has a stack frame of its own rather
// than one frame holding them all (the call chain's stack is 512 bytes in all).
#[inline(never)]
pub fn schedule<const N: usize>(request: &Request<N>) -> u32 {
    let (view, flags) = (&request.view, request.flags);
    let Some(packet) = super::packet() else {
        return NONE;
    };
    let Some(table) = table(request.set_id) else {
        return NONE;
    };
    let port = if flags & service_flags::SCHED_PORT != 0 {
        u16::from_be(packet.sport)
    } else {
        0
    };
    let probe = Probe {
        addr: fold(&packet.src, packet.family),
        port,
        maglev: false,
    };
    let home = probe.slot(0);
    let fallback = flags & service_flags::SCHED_FALLBACK != 0;
    choose(view, table, home, HASH_TABLE_SLOTS, fallback, probe).unwrap_or(NONE)
}
