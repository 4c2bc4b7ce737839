//! Locality-based least connection (`ip_vs_lblc.c`): a destination address keeps the
//! server it was last given while that server has weight and is not overloaded in lblc's
//! sense; otherwise wlc chooses and the address is given to the new choice.

use xvs_common::tree_rule;

use super::{NONE, Request, View, locality, tree};
use crate::packet::Packet;

#[inline(always)]
pub fn schedule(view: View, request: &Request, packet: &Packet) -> Option<u32> {
    if let Some(entry) = locality::find(request.service_id, packet, request.now) {
        let member = unsafe {
            (*entry).last_use = request.now;
            (*entry).members[0]
        };
        let index = view.index_of(member.dest_stats, member.dest_id);
        if index != NONE
            && let Some(dest) = view.entry(index)
            && dest.weight > 0
            && !locality::overloaded(&view, dest)
        {
            return Some(index);
        }
    }
    let index = tree::pick(view, tree_rule::WLC, request)?;
    locality::insert(locality::member_of(&view, index)?, request.now);
    Some(index)
}
