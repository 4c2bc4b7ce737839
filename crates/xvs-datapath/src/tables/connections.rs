//! The connection table as listings see it: live entries with the time each has left, and
//! the counts of connections that have expired but are not swept yet.

use std::collections::HashMap;

use xvs_common::{Conn, ConnKey, FullnatPeer, conn_flags, forward, is_call_key, tcp};
use xvs_core::{listing::ConnectionEntry, model::Protocol};

use super::encode::decode_addr;
use crate::{Director, Error, Result};

/// What a real server's counts still hold of connections and templates that have expired
/// but are not swept yet.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Gone {
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
}

/// The connection table as read at once ([`Director::conn_table`]).
pub(super) struct ConnTable {
    pub entries: Vec<(ConnKey, Conn)>,
    /// The expiry of each NAT and FULLNAT reply entry, by its key.
    replies: HashMap<ConnKey, u64>,
    /// FULLNAT entries' other sides, by entry key (read only if there are FULLNAT
    /// entries).
    fullnat: HashMap<ConnKey, FullnatPeer>,
}

impl ConnTable {
    /// When the connection of request entry `conn` expires: for NAT the later of its two
    /// entries' expiries (replies push the reply entry's).
    pub fn expiry(&self, key: &ConnKey, conn: &Conn) -> u64 {
        let reply = match conn.forward {
            forward::MASQ => key.reply(conn),
            forward::FULLNAT => match self.fullnat.get(key) {
                Some(local) => key.fullnat_reply(conn, local),
                None => return conn.expires,
            },
            _ => return conn.expires,
        };
        match self.replies.get(&reply) {
            Some(twin) => conn.expires.max(*twin),
            None => conn.expires,
        }
    }

    /// The request entries (and persistence templates).
    pub fn requests(&self) -> impl Iterator<Item = &(ConnKey, Conn)> {
        self.entries
            .iter()
            .filter(|(_, conn)| conn.flags & conn_flags::REPLY == 0)
    }
}

impl Director {
    /// The whole connection table, read in batches.
    pub(super) fn conn_table(&self) -> Result<ConnTable> {
        let entries = self.conn_entries()?;
        let replies = entries
            .iter()
            .filter(|(_, conn)| conn.flags & conn_flags::REPLY != 0)
            .map(|(key, conn)| (*key, conn.expires))
            .collect();
        let fullnat = if entries.iter().any(|(_, c)| c.forward == forward::FULLNAT) {
            self.fullnat_entries()?.into_iter().collect()
        } else {
            HashMap::new()
        };
        Ok(ConnTable {
            entries,
            replies,
            fullnat,
        })
    }

    /// Expired, not yet swept connections and persistence templates by the real server's
    /// counter slot.
    pub(super) fn expired_counts(&self) -> Result<HashMap<u32, Gone>> {
        let now = monotonic_ns();
        let table = self.conn_table()?;
        let mut gone: HashMap<u32, Gone> = HashMap::new();
        for (key, conn) in table.requests() {
            // Synced entries not yet used here are in no count.
            if conn.flags & conn_flags::SYNCED != 0 || table.expiry(key, conn) > now {
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

    /// The connection table as `ipvsadm -L -c` lists it: live request-direction entries,
    /// with the time left before each expires.
    pub fn connections(&self) -> Result<Vec<ConnectionEntry>> {
        let now = monotonic_ns();
        let table = self.conn_table()?;
        let mut entries = Vec::new();
        for (key, conn) in table.requests() {
            let expires = table.expiry(key, conn);
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
            // A call's template (`--pe sip`): its client port holds the call's hash; its
            // Call-ID is kept beside it.
            let call = is_call_key(key);
            let pe = call.then(|| {
                let text = self
                    .calls
                    .as_ref()
                    .and_then(|calls| calls.get(key, 0).ok())
                    .map(|id| String::from_utf8_lossy(id.as_bytes()).into_owned())
                    .unwrap_or_default();
                ("sip".to_string(), text)
            });
            entries.push(ConnectionEntry {
                protocol,
                client: (
                    decode_addr(&key.src, key.family),
                    if call { 0 } else { u16::from_be(key.sport) },
                ),
                virtual_: (decode_addr(&key.dst, key.family), u16::from_be(key.dport)),
                dest: (
                    decode_addr(&conn.peer, conn.peer_family),
                    u16::from_be(conn.peer_port),
                ),
                local: (conn.forward == forward::FULLNAT && conn.flags & conn_flags::TEMPLATE == 0)
                    .then(|| table.fullnat.get(key))
                    .flatten()
                    .map(|l| (decode_addr(&l.addr, l.family), u16::from_be(l.port))),
                state,
                expires_seconds: left as u32,
                pe,
            });
        }
        Ok(entries)
    }
}

/// Entries read per BPF_MAP_LOOKUP_BATCH call.
const BATCH: usize = 8192;

use aya::maps::IterableMap;

impl Director {
    /// Every entry of the connection table, read in batches (see [`batch_entries`]).
    pub(crate) fn conn_entries(&self) -> Result<Vec<(ConnKey, Conn)>> {
        batch_entries(self.conns.map(), "cannot read the connection table")
    }

    /// Every entry of the FULLNAT other-sides map, read in batches.
    pub(crate) fn fullnat_entries(&self) -> Result<Vec<(ConnKey, FullnatPeer)>> {
        match &self.fullnat {
            Some(map) => batch_entries(map.map(), "cannot read the FULLNAT connections"),
            None => Ok(Vec::new()),
        }
    }
}

/// Every entry of hash map `map` (keys `K`, values `V`), read in batches
/// (BPF_MAP_LOOKUP_BATCH: one system call per few thousand entries, where walking the keys
/// takes two per entry). Entries that come or go during the read may be missed or seen;
/// none is seen twice.
fn batch_entries<K: Copy + Default, V: Copy + Default>(
    map: &aya::maps::MapData,
    what: &str,
) -> Result<Vec<(K, V)>> {
    use std::os::fd::{AsFd, AsRawFd};
    const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
    /// `union bpf_attr` as the batch commands read it.
    #[repr(C)]
    struct BatchAttr {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }
    let fd = map.fd().as_fd().as_raw_fd() as u32;
    let mut entries = Vec::new();
    let mut keys = vec![K::default(); BATCH];
    let mut values = vec![V::default(); BATCH];
    // The hash map's position: a bucket number.
    let (mut position, mut next) = (0u32, 0u32);
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                &position as *const u32 as u64
            },
            out_batch: &mut next as *mut u32 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: BATCH as u32,
            map_fd: fd,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: the buffers hold BATCH keys and values of the map's sizes (the callers
        // name the map's own types) and the batch positions are u32s, all alive for the
        // call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>(),
            )
        };
        let error = (rc < 0).then(std::io::Error::last_os_error);
        let read = attr.count as usize;
        entries.extend(
            keys[..read]
                .iter()
                .copied()
                .zip(values[..read].iter().copied()),
        );
        match error {
            None => {}
            // The end of the table.
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(entries),
            Some(e) => return Err(Error::new(what, e)),
        }
        position = next;
        first = false;
    }
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the clock `bpf_ktime_get_coarse_ns` reads.
pub(super) fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain data; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
