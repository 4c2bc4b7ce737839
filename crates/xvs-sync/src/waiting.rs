//! Records a backup cannot place yet, kept until it can.
//!
//! A record names its service and real server by address, and a director can only make an
//! entry for a real server it has. IPVS's backup keeps such a connection unbound and binds
//! it when the real server appears (`ip_vs_try_bind_dest`). xvs's entries need their real
//! server, so the record itself waits: a director that returns after being cut off gets
//! the other's whole table at once, before its own health checks have added back the real
//! servers they removed meanwhile, and a backup may be configured after its master. The
//! caller tries the held records again whenever its table changes. A record waits as long
//! as its connection would live (its timeout), a newer record of the same connection
//! replaces it, and at most a fixed number wait: past that a record is given up, as IPVS's
//! table limits give up connections.

use std::collections::HashMap;

use crate::{ConnId, SyncedConn};

/// Records waiting for their service or real server, by connection.
#[derive(Debug)]
pub struct Waiting {
    held: HashMap<ConnId, Held>,
    capacity: usize,
}

#[derive(Debug, Clone)]
struct Held {
    conn: SyncedConn,
    /// When the connection ends unless its master says otherwise, in the caller's clock
    /// (milliseconds).
    until_ms: u64,
}

impl Waiting {
    /// Holds at most `capacity` records.
    pub fn new(capacity: usize) -> Waiting {
        Waiting {
            held: HashMap::new(),
            capacity,
        }
    }

    /// Forgets the held records of the connections of `conns` (newer records of them, to
    /// be taken or held in their place: an old record must never be written over a newer
    /// one).
    pub fn forget<'a>(&mut self, conns: impl IntoIterator<Item = &'a SyncedConn>) {
        if self.held.is_empty() {
            return;
        }
        for conn in conns {
            self.held.remove(&conn.id());
        }
    }

    /// Holds `conn`, received (or last tried) at `now_ms` with `conn.timeout` seconds to
    /// live. False if it cannot wait: it has no time left, or `capacity` records wait.
    pub fn hold(&mut self, now_ms: u64, conn: SyncedConn) -> bool {
        if conn.timeout == 0 {
            return false;
        }
        let id = conn.id();
        if self.held.len() >= self.capacity && !self.held.contains_key(&id) {
            return false;
        }
        let until_ms = now_ms + u64::from(conn.timeout) * 1000;
        self.held.insert(id, Held { conn, until_ms });
        true
    }

    /// Every held record whose connection still lives at `now_ms`, its timeout what it has
    /// left, to be tried again (hold again those still not placed); and how many ran out
    /// while they waited. Nothing is held afterwards.
    pub fn take(&mut self, now_ms: u64) -> (Vec<SyncedConn>, usize) {
        let mut live = Vec::with_capacity(self.held.len());
        let mut ran_out = 0;
        for (_, held) in self.held.drain() {
            // Whole seconds left, rounded down: never longer than the master said.
            let left_s = held.until_ms.saturating_sub(now_ms) / 1000;
            if left_s == 0 {
                ran_out += 1;
                continue;
            }
            live.push(SyncedConn {
                timeout: u32::try_from(left_s).unwrap_or(u32::MAX),
                ..held.conn
            });
        }
        (live, ran_out)
    }

    /// Records that wait.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{flags, state, test_records::tcp};

    fn record(cport: u16, daddr: &str, timeout: u32) -> SyncedConn {
        SyncedConn {
            daddr: daddr.parse().unwrap(),
            ..tcp(cport, state::ESTABLISHED, timeout)
        }
    }

    #[test]
    fn a_held_record_comes_back_with_the_time_it_has_left() {
        let mut waiting = Waiting::new(10);
        assert!(waiting.hold(1_000, record(1, "10.0.1.2", 900)));
        assert!(waiting.hold(1_000, record(2, "10.0.1.2", 60)));
        assert_eq!(waiting.len(), 2);
        let (mut live, ran_out) = waiting.take(31_500);
        live.sort_by_key(|c| c.cport);
        assert_eq!(ran_out, 0);
        assert_eq!(
            live.iter().map(|c| c.timeout).collect::<Vec<_>>(),
            [869, 29],
            "whole seconds left, rounded down"
        );
        assert!(waiting.is_empty(), "taken records wait no more");
        // Held again at the time they were tried: their end does not move.
        for conn in live {
            assert!(waiting.hold(31_500, conn));
        }
        let (live, ran_out) = waiting.take(61_000);
        assert_eq!((live.len(), ran_out), (1, 1), "the 60 s one ran out");
        assert_eq!(live[0].timeout, 839);
    }

    #[test]
    fn a_newer_record_of_the_connection_replaces_or_forgets_the_held_one() {
        let mut waiting = Waiting::new(10);
        waiting.hold(0, record(1, "10.0.1.2", 900));
        waiting.hold(0, record(1, "10.0.1.3", 900));
        let (live, _) = waiting.take(0);
        assert_eq!(live, vec![record(1, "10.0.1.3", 900)]);

        waiting.hold(0, record(1, "10.0.1.2", 900));
        waiting.hold(0, record(2, "10.0.1.2", 900));
        // A newer record of connection 1 arrives (and is placed): the old one goes.
        waiting.forget(&[record(1, "10.0.1.4", 900)]);
        let (live, _) = waiting.take(0);
        assert_eq!(live, vec![record(2, "10.0.1.2", 900)]);
        // A template and a connection of the same client and port are two things.
        let mut template = record(0, "10.0.1.2", 360);
        template.flags |= flags::TEMPLATE;
        waiting.hold(0, template);
        waiting.forget(&[record(0, "10.0.1.2", 900)]);
        assert_eq!(waiting.len(), 1);
    }

    #[test]
    fn past_its_capacity_or_without_time_left_a_record_is_given_up() {
        let mut waiting = Waiting::new(2);
        assert!(waiting.hold(0, record(1, "10.0.1.2", 900)));
        assert!(waiting.hold(0, record(2, "10.0.1.2", 900)));
        assert!(!waiting.hold(0, record(3, "10.0.1.2", 900)));
        // Replacing a held one still fits.
        assert!(waiting.hold(0, record(2, "10.0.1.3", 900)));
        assert!(!Waiting::new(2).hold(0, record(4, "10.0.1.2", 0)));
        assert_eq!(waiting.len(), 2);
    }
}
