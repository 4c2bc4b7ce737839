//! What a master sends, and when: a connection goes to the backups when they do not hold
//! it as it is.
//!
//! The master reads its table every round (xvsd: every half second) and sends a
//! connection when it is new to the backups, when its state, real server or flags
//! changed, or when the copy the backups hold would end in less than half the time the
//! connection itself has left (so a busy connection is refreshed about twice per
//! timeout, an idle one not at all). As IPVS's `ip_vs_sync_conn_needed`, TCP connections
//! are sent once established (ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT): a
//! half-open one is not worth a message, and a SYN flood would otherwise flood the sync
//! link too. UDP connections and persistence templates are sent as they are.

use std::collections::HashMap;

use crate::{ConnId, IPPROTO_TCP, SyncedConn, state};

/// What the backups hold of each connection, as far as the master knows.
#[derive(Debug, Default)]
pub struct Tracker {
    sent: HashMap<ConnId, Sent>,
    round: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    /// What the backups were told of the connection that a change of would be told again.
    told: Told,
    /// When the backups' copy ends, in the caller's clock (milliseconds).
    until_ms: u64,
    /// The last round the connection was in the table.
    round: u64,
}

/// The parts of a record whose change the backups must hear of (its identity is the
/// map's key): kept instead of the whole record, so the master's map of a million
/// connections stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Told {
    state: u16,
    daddr: std::net::IpAddr,
    dport: u16,
    flags: u32,
    fullnat: Option<crate::FullnatSide>,
}

impl Told {
    fn of(conn: &SyncedConn) -> Told {
        Told {
            state: conn.state,
            daddr: conn.daddr,
            dport: conn.dport,
            flags: conn.flags,
            fullnat: conn.fullnat,
        }
    }
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// The connections of `table` (the master's whole table, read at `now_ms`) that the
    /// backups must be told about. Connections no longer in the table are forgotten.
    pub fn changes(
        &mut self,
        now_ms: u64,
        table: impl IntoIterator<Item = SyncedConn>,
    ) -> Vec<SyncedConn> {
        self.round += 1;
        let round = self.round;
        let mut out = Vec::new();
        for conn in table {
            if !worth_syncing(&conn) {
                continue;
            }
            let left_ms = u64::from(conn.timeout) * 1000;
            let until_ms = now_ms + left_ms;
            let entry = self.sent.entry(conn.id());
            let send = match &entry {
                std::collections::hash_map::Entry::Vacant(_) => true,
                std::collections::hash_map::Entry::Occupied(sent) => {
                    let sent = sent.get();
                    sent.told != Told::of(&conn)
                        || sent.until_ms.saturating_sub(now_ms) < left_ms / 2
                }
            };
            let record = entry.or_insert(Sent {
                told: Told::of(&conn),
                until_ms,
                round,
            });
            record.round = round;
            if send {
                record.told = Told::of(&conn);
                record.until_ms = until_ms;
                out.push(conn);
            }
        }
        self.sent.retain(|_, sent| sent.round == round);
        out
    }

    /// Forgets what the backups hold: the next round sends the whole table (a backup
    /// asked for it, having just started).
    pub fn resend_all(&mut self) {
        self.sent.clear();
    }

    /// Connections the backups are believed to hold.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
}

/// As IPVS: established TCP connections and what follows, every UDP connection and
/// template; never a one-packet one.
fn worth_syncing(conn: &SyncedConn) -> bool {
    if conn.flags & crate::flags::ONE_PACKET != 0 {
        return false;
    }
    if conn.protocol != IPPROTO_TCP || conn.is_template() {
        return true;
    }
    matches!(
        conn.state,
        state::ESTABLISHED | state::FIN_WAIT | state::TIME_WAIT | state::CLOSE | state::CLOSE_WAIT
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IPPROTO_UDP, flags, test_records::tcp};

    #[test]
    fn a_connection_is_sent_once_established_then_at_each_change() {
        let mut t = Tracker::new();
        assert!(t.changes(0, [tcp(1, state::SYN_RECV, 60)]).is_empty());
        assert_eq!(t.changes(500, [tcp(1, state::ESTABLISHED, 900)]).len(), 1);
        // Nothing changed, its copy is fresh.
        assert!(
            t.changes(1000, [tcp(1, state::ESTABLISHED, 900)])
                .is_empty()
        );
        assert_eq!(t.changes(1500, [tcp(1, state::FIN_WAIT, 120)]).len(), 1);
        let mut moved = tcp(1, state::FIN_WAIT, 120);
        moved.daddr = "10.0.1.3".parse().unwrap();
        assert_eq!(t.changes(2000, [moved]).len(), 1);
    }

    #[test]
    fn a_busy_connection_is_refreshed_before_the_backups_copy_runs_out() {
        let mut t = Tracker::new();
        assert_eq!(t.changes(0, [tcp(1, state::ESTABLISHED, 900)]).len(), 1);
        // Traffic keeps pushing its expiry to 900 s from now; the copy ends at 900 s.
        assert!(
            t.changes(449_000, [tcp(1, state::ESTABLISHED, 900)])
                .is_empty()
        );
        assert_eq!(
            t.changes(451_000, [tcp(1, state::ESTABLISHED, 900)]).len(),
            1
        );
        // An idle one runs down with its copy: never sent again.
        let mut t = Tracker::new();
        t.changes(0, [tcp(2, state::ESTABLISHED, 900)]);
        for s in 1..900 {
            assert!(
                t.changes(s * 1000, [tcp(2, state::ESTABLISHED, 900 - s as u32)])
                    .is_empty()
            );
        }
    }

    #[test]
    fn gone_connections_are_forgotten_and_a_bulk_request_sends_all() {
        let mut t = Tracker::new();
        let table = [
            tcp(1, state::ESTABLISHED, 900),
            tcp(2, state::ESTABLISHED, 900),
        ];
        assert_eq!(t.changes(0, table.clone()).len(), 2);
        assert_eq!(t.changes(1, [table[0].clone()]).len(), 0);
        assert_eq!(t.len(), 1);
        // It comes back (the same client port, a new connection): sent again.
        assert_eq!(t.changes(2, table.clone()).len(), 1);
        t.resend_all();
        assert_eq!(t.changes(3, table).len(), 2);
    }

    #[test]
    fn udp_and_templates_are_sent_one_packet_connections_never() {
        let mut t = Tracker::new();
        let mut udp = tcp(1, 0, 300);
        udp.protocol = IPPROTO_UDP;
        let mut template = tcp(0, state::NONE, 360);
        template.flags |= flags::TEMPLATE;
        let mut ops = udp.clone();
        ops.cport = 2;
        ops.flags |= flags::ONE_PACKET;
        assert_eq!(
            t.changes(0, [udp.clone(), template.clone(), ops]),
            vec![udp, template]
        );
    }

    /// Each call's template (`--pe sip`) is a connection of its own: the same client,
    /// VIP and port, another Call-ID.
    #[test]
    fn calls_templates_are_told_apart_by_their_call_id() {
        let mut t = Tracker::new();
        let call = |id: &str| {
            let mut template = tcp(0, state::NONE, 360);
            template.protocol = IPPROTO_UDP;
            template.flags |= flags::TEMPLATE;
            template.call = Some(std::sync::Arc::from(id.as_bytes()));
            template
        };
        assert_eq!(t.changes(0, [call("a@host"), call("b@host")]).len(), 2);
        assert_eq!(t.len(), 2);
        assert!(t.changes(1, [call("a@host"), call("b@host")]).is_empty());
    }
}
