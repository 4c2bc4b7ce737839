//! Destination hashing (`ip_vs_dh.c`): the server of the destination address's bucket,
//! from the set's 256-bucket table, if it is available.

use super::{
    View,
    hashing::{at, fold, hash_32, table},
};
use crate::packet::Packet;

#[inline(always)]
pub fn schedule(view: View, set_id: u32, packet: &Packet) -> Option<u32> {
    let table = table(set_id)?;
    let index = at(table, hash_32(fold(&packet.dst, packet.family), 8))?;
    view.entry(index)
        .is_some_and(|e| view.available(e))
        .then_some(index)
}
