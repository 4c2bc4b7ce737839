//! Maglev hashing (`ip_vs_mh.c`): the server of the source address's slot (with `mh-port`,
//! address and port) in the set's 4093-slot lookup table; with `mh-fallback`, the next
//! available one when that server is not. The slot is IPVS's: SipHash-1-3 of the folded
//! address plus port plus offset, keyed as `ip_vs_mh.c` keys it.

use xvs_common::{MAGLEV_TABLE_SLOTS, service_flags};

use super::{
    NONE, Request,
    hashing::{Probe, choose, fold, table},
};

const KEY_OFFSET: u64 = 2_654_435_761;

/// `hsiphash` of one 32-bit word with the key (k, k): SipHash-1-3, the low 32 bits.
#[inline(always)]
fn hsiphash(word: u32, k: u64) -> u32 {
    let mut v0 = 0x736f_6d65_7073_6575u64 ^ k;
    let mut v1 = 0x646f_7261_6e64_6f6du64 ^ k;
    let mut v2 = 0x6c79_6765_6e65_7261u64 ^ k;
    let mut v3 = 0x7465_6462_7974_6573u64 ^ k;
    let b: u64 = (4u64 << 56) | word as u64;
    v3 ^= b;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= b;
    v2 ^= 0xff;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    (v0 ^ v1 ^ v2 ^ v3) as u32
}

#[inline(always)]
fn round(v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64) {
    *v0 = v0.wrapping_add(*v1);
    *v1 = v1.rotate_left(13);
    *v1 ^= *v0;
    *v0 = v0.rotate_left(32);
    *v2 = v2.wrapping_add(*v3);
    *v3 = v3.rotate_left(16);
    *v3 ^= *v2;
    *v0 = v0.wrapping_add(*v3);
    *v3 = v3.rotate_left(21);
    *v3 ^= *v0;
    *v2 = v2.wrapping_add(*v1);
    *v1 = v1.rotate_left(17);
    *v1 ^= *v2;
    *v2 = v2.rotate_left(32);
}

/// `ip_vs_mh_hashkey` modulo the table size.
#[inline(always)]
pub fn slot(offset: u32, probe: &Probe) -> u32 {
    let key = offset
        .wrapping_add(u32::from(probe.port))
        .wrapping_add(probe.addr);
    hsiphash(key, KEY_OFFSET) % MAGLEV_TABLE_SLOTS
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
        maglev: true,
    };
    let home = probe.slot(0);
    let fallback = flags & service_flags::SCHED_FALLBACK != 0;
    choose(view, table, home, MAGLEV_TABLE_SLOTS, fallback, probe).unwrap_or(NONE)
}
