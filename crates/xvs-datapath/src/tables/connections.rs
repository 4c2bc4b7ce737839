//! The connection table as listings see it: live entries with the time each has left, and
//! the counts of connections that have expired but are not swept yet.

use std::collections::HashMap;

use xvs_common::{Conn, ConnKey, conn_flags, forward, tcp};
use xvs_core::{listing::ConnectionEntry, model::Protocol};

use super::{encode::decode_addr, map_error};
use crate::{Director, Result};

/// What a real server's counts still hold of connections and templates that have expired
/// but are not swept yet.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Gone {
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
}

impl Director {
    /// Expired, not yet swept connections and persistence templates by (service id,
    /// slot).
    pub(super) fn expired_counts(&self) -> Result<HashMap<u32, Gone>> {
        let now = monotonic_ns();
        let mut gone: HashMap<u32, Gone> = HashMap::new();
        for item in self.conns.iter() {
            let (key, conn) = item.map_err(map_error("cannot read the connection table"))?;
            // The reply entry is read only for a request entry past its own expiry.
            // Synced entries not yet used here are in no count.
            if conn.flags & (conn_flags::REPLY | conn_flags::SYNCED) != 0
                || conn.expires > now
                || self.expiry(&key, &conn) > now
            {
                continue;
            }
            let counts = gone.entry(conn.dest_stats).or_default();
            if conn.flags & conn_flags::TEMPLATE != 0 {
                counts.persistent += 1;
            } else if conn.flags & conn_flags::ACTIVE != 0 {
                counts.active += 1;
            } else {
                counts.inactive += 1;
            }
        }
        Ok(gone)
    }

    /// When the connection of request entry `conn` expires: for NAT the later of its two
    /// entries' expiries (replies push the reply entry's).
    pub(super) fn expiry(&self, key: &ConnKey, conn: &Conn) -> u64 {
        if conn.forward != forward::MASQ {
            return conn.expires;
        }
        match self.conns.get(&key.reply(conn), 0) {
            Ok(twin) => conn.expires.max(twin.expires),
            Err(_) => conn.expires,
        }
    }

    /// The connection table as `ipvsadm -L -c` lists it: live request-direction entries,
    /// with the time left before each expires.
    pub fn connections(&self) -> Result<Vec<ConnectionEntry>> {
        let now = monotonic_ns();
        let mut entries = Vec::new();
        for item in self.conns.iter() {
            let (key, conn) = item.map_err(map_error("cannot read the connection table"))?;
            if conn.flags & conn_flags::REPLY != 0 {
                continue;
            }
            let expires = self.expiry(&key, &conn);
            if expires <= now {
                continue;
            }
            let protocol = match Protocol::from_number(key.protocol) {
                Some(p) => p.name(),
                None => "IP",
            };
            let state = tcp::NAMES
                .get(conn.state as usize)
                .copied()
                .unwrap_or("NONE");
            let left = expires.saturating_sub(now) / 1_000_000_000;
            entries.push(ConnectionEntry {
                protocol,
                client: (decode_addr(&key.src, key.family), u16::from_be(key.sport)),
                virtual_: (decode_addr(&key.dst, key.family), u16::from_be(key.dport)),
                dest: (
                    decode_addr(&conn.peer, conn.peer_family),
                    u16::from_be(conn.peer_port),
                ),
                state,
                expires_seconds: left as u32,
                pe: None,
            });
        }
        Ok(entries)
    }
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the clock `bpf_ktime_get_coarse_ns` reads.
pub(super) fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain data; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
