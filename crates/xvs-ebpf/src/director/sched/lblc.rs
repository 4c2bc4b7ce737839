//! Locality-based least connection (`ip_vs_lblc.c`): a destination address keeps the
//! server it was last given while that server has weight and is not overloaded in lblc's
//! sense; otherwise wlc chooses and the address is given to the new choice.

use super::{NONE, Request, locality};

/// The server the destination address keeps, or [`NONE`]: then wlc chooses (the caller,
/// in its own frame: the call chain's stack is 512 bytes in all) and [`remember`] gives
/// the address to the choice.
#[inline(never)]
pub fn schedule<const N: usize>(request: &Request<N>) -> u32 {
    kept(request).unwrap_or(NONE)
}

#[inline(always)]
fn kept<const N: usize>(request: &Request<N>) -> Option<u32> {
    let view = &request.view;
    let packet = super::packet()?;
    let now = crate::conn::now();
    let entry = locality::find(request.service_id, packet, now)?;
    let member = unsafe {
        (*entry).last_use = now;
        (*entry).members[0]
    };
    let index = view.index_of(member.slot, member.dest_stats, member.dest_id);
    let dest = view.entry(index).filter(|_| index != NONE)?;
    (dest.weight > 0 && !locality::overloaded(&view, dest, request.set_id)).then_some(index)
}

/// The destination address now goes to set index `index` (wlc's choice).
#[inline(never)]
pub fn remember<const N: usize>(request: &Request<N>, index: u32) {
    if let Some(member) = locality::member_of(&request.view, index) {
        locality::insert(member, crate::conn::now());
    }
}
