//! Counter slots: one per service and per real server in the per-CPU counter array (and,
//! for a real server, in the connection counts), handed out round the array and zeroed
//! when taken, so a freed one is reused as late as possible; a slot whose connection
//! counts have not drained (a removed real server's connections still open) is not
//! handed out at all, so they never count against a new server.

use std::collections::{HashMap, HashSet};

use xvs_common::ServiceKey as MapKey;
use xvs_core::table::Table;

use super::{
    Snapshot,
    encode::{encode_addr, encode_key},
};
use crate::{Error, ErrorKind, Result};

/// Hands out counter slots for new services and real servers: round the array from where
/// the last change stopped, first among slots nobody held before this change, then among
/// those of services and real servers this change removes.
pub(super) struct StatsSlots<'a> {
    held_before: HashSet<u32>,
    kept: HashSet<u32>,
    taken: HashSet<u32>,
    pub(super) next: u32,
    /// Slots below this have been handed out before (and may hold counts).
    pub(super) used: u32,
    capacity: u32,
    /// Slots taken that held counts once and are not yet zeroed.
    pub(super) to_zero: Vec<u32>,
    /// Whether a slot handed out before still has connections counted.
    busy: &'a dyn Fn(u32) -> bool,
}

impl<'a> StatsSlots<'a> {
    /// The slots of a change from `before` to `after`; `busy(slot)` says whether a slot
    /// handed out before still has connections counted.
    pub(super) fn for_change(
        before: &Snapshot,
        after: &Table,
        capacity: u32,
        busy: &'a dyn Fn(u32) -> bool,
    ) -> StatsSlots<'a> {
        // Each service that stays, with the (address, port) of its real servers as stored.
        let after_services: HashMap<MapKey, HashSet<([u8; 16], u16)>> = after
            .services
            .iter()
            .map(|s| {
                let dests = s
                    .dests
                    .iter()
                    .map(|d| (encode_addr(&d.addr).0, d.port.to_be()))
                    .collect();
                (encode_key(&s.key), dests)
            })
            .collect();
        let mut held_before = HashSet::new();
        let mut kept = HashSet::new();
        for (key, stored) in &before.stored {
            let now = after_services.get(key);
            held_before.insert(stored.value.stats);
            if now.is_some() {
                kept.insert(stored.value.stats);
            }
            for dest in &stored.dests {
                held_before.insert(dest.stats);
                if now.is_some_and(|dests| dests.contains(&(dest.addr, dest.port))) {
                    kept.insert(dest.stats);
                }
            }
        }
        let next = (before.next_stats % u64::from(capacity.max(1))) as u32;
        let used = before.stats_used.min(u64::from(capacity)) as u32;
        StatsSlots::new(held_before, kept, next, used, capacity, busy)
    }

    fn new(
        held_before: HashSet<u32>,
        kept: HashSet<u32>,
        next: u32,
        used: u32,
        capacity: u32,
        busy: &'a dyn Fn(u32) -> bool,
    ) -> StatsSlots<'a> {
        StatsSlots {
            held_before,
            kept,
            taken: HashSet::new(),
            next,
            used,
            capacity,
            to_zero: Vec::new(),
            busy,
        }
    }

    pub(super) fn take(&mut self) -> Result<u32> {
        for avoid in [&self.held_before, &self.kept] {
            let found = (0..self.capacity)
                .map(|i| (self.next + i) % self.capacity)
                .find(|&slot| {
                    let still_counting = slot < self.used && (self.busy)(slot);
                    !(avoid.contains(&slot) || self.taken.contains(&slot) || still_counting)
                });
            if let Some(slot) = found {
                self.taken.insert(slot);
                if slot < self.used {
                    self.to_zero.push(slot);
                }
                self.used = self.used.max(slot + 1);
                self.next = (slot + 1) % self.capacity;
                return Ok(slot);
            }
        }
        Err(Error::of(
            ErrorKind::Full,
            "no free counter slot (removed real servers' connections may still hold some)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_slots_go_round_and_reuse_removed_ones_last() {
        // Four slots, all handed out once; 0 and 1 held before the change, 0 kept by it.
        let mut slots =
            StatsSlots::new(HashSet::from([0, 1]), HashSet::from([0]), 1, 4, 4, &|_| {
                false
            });
        assert_eq!(slots.take().unwrap(), 2);
        assert_eq!(slots.take().unwrap(), 3);
        // Only the slot of what the change removes is left.
        assert_eq!(slots.take().unwrap(), 1);
        assert!(slots.take().is_err(), "the kept slot is never handed out");
        assert_eq!(slots.to_zero, [2, 3, 1], "each held counts once");
        assert_eq!(slots.next, 2);
    }

    #[test]
    fn never_used_counter_slots_need_no_zeroing() {
        let mut slots = StatsSlots::new(HashSet::new(), HashSet::new(), 0, 2, 8, &|_| false);
        let taken: Vec<u32> = (0..4).map(|_| slots.take().unwrap()).collect();
        assert_eq!(taken, [0, 1, 2, 3]);
        assert_eq!(slots.to_zero, [0, 1]);
        assert_eq!(slots.used, 4);
    }

    #[test]
    fn a_slot_with_connections_still_counted_is_not_handed_out() {
        // Slot 1 (handed out before, held by nobody now) still counts connections.
        let busy = |slot: u32| slot == 1;
        let mut slots = StatsSlots::new(HashSet::new(), HashSet::new(), 0, 3, 4, &busy);
        let taken: Vec<u32> = (0..3).map(|_| slots.take().unwrap()).collect();
        assert_eq!(taken, [0, 2, 3]);
        assert!(slots.take().is_err(), "only the busy slot is left");
    }
}
