//! Destination hashing (`ip_vs_dh.c`): the server of the destination address's bucket,
//! from the set's 256-bucket table, if it is available.

use super::{
    NONE, Request,
    hashing::{at, fold, hash_32, table},
};

// Out of line: each hashing or locality scheduler has a stack frame of its own rather
// than one frame holding them all (the call chain's stack is 512 bytes in all).
#[inline(never)]
pub fn schedule<const N: usize>(request: &Request<N>) -> u32 {
    let view = &request.view;
    let Some(packet) = super::packet() else {
        return NONE;
    };
    let Some(table) = table(request.set_id) else {
        return NONE;
    };
    match at(table, hash_32(fold(&packet.dst, packet.family), 8)) {
        Some(index) if view.entry(index).is_some_and(|e| view.available(e)) => index,
        _ => NONE,
    }
}
