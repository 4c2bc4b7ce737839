//! Connection sync's two ends in the maps. A master reads its live connections and
//! persistence templates as layout-free records ([`Director::sync_records`]); a backup
//! makes entries of the records it receives ([`Director::take_synced`]), each matched to
//! its own service and real server by address, as IPVS's backup does. Those entries are
//! marked `SYNCED`: the datapath resolves their next hop and counts them at their first
//! packet (`xvs_adopt`), so a backup that never takes over pays nothing but the memory.
//! A FULLNAT connection travels with its local address and port (xvs's option of the
//! sync message), so that the backup's real server keeps seeing the same client.

use std::{collections::HashMap, sync::Arc};

use aya::maps::{Map, MapData, Queue};
use xvs_common::{
    CallId, Conn, ConnKey, DestValue, FullnatPeer, ServiceKey as MapKey, ServiceValue, SweepRecord,
    TEMPLATE_KEY, call_hash, conn_flags, dest_index, forward, is_call_key, map_names, meta, sweep,
    sweep_queue, tcp, with_call,
};
use xvs_sync::{FullnatSide, IPPROTO_TCP, SyncedConn, flags};

use super::{connections::monotonic_ns, encode::decode_addr, encode::encode_addr};
use crate::{Director, Error, Result, counts::MappedCounts};

const NS_PER_SEC: u64 = 1_000_000_000;
/// The map update flag that makes only a new entry.
const BPF_NOEXIST: u64 = 1;

/// The director's services and real servers as sync matches records to them, and the
/// sweep queues new entries are queued in. Made by [`Director::sync_index`]; read again
/// by [`Director::sync_records`] and [`Director::take_synced`] whenever the table has
/// changed since (every change takes new ids, so the next id tells).
pub struct SyncIndex {
    /// The meta map's next id when the index was made.
    next_id: u64,
    services: HashMap<MapKey, Known>,
    /// Service id → its key (a record names its service's fwmark).
    keys: HashMap<u32, MapKey>,
    queues: Vec<Queue<MapData, SweepRecord>>,
    counts: MappedCounts,
}

struct Known {
    value: ServiceValue,
    dests: Vec<DestValue>,
}

/// What [`Director::take_synced`] did with the records it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    /// New entries made.
    pub made: usize,
    /// Entries synced before, brought up to date.
    pub updated: usize,
    /// Records of connections this director has made or used itself: its own entry wins.
    pub local: usize,
    /// Records of a service or real server this director does not have (yet: its health
    /// checks may not have added the real server back, or it is configured after its
    /// master), unchanged; the caller may hold them and try again once the table has
    /// changed ([`Director::sync_table_changed`], `xvs_sync::Waiting`).
    pub unknown: Vec<SyncedConn>,
    /// Records dropped because the connection table is full.
    pub full: usize,
    /// Of `made`: entries of this director whose real server is gone here, replaced.
    pub replaced: usize,
}

impl Director {
    /// The index [`Director::sync_records`] and [`Director::take_synced`] work with.
    pub fn sync_index(&self) -> Result<SyncIndex> {
        let next_id = self.meta(meta::NEXT_ID)?;
        let snapshot = self.load_for_change()?;
        let mut services = HashMap::with_capacity(snapshot.stored.len());
        let mut keys = HashMap::with_capacity(snapshot.stored.len());
        for (key, stored) in &snapshot.stored {
            keys.insert(stored.value.id, *key);
            services.insert(
                *key,
                Known {
                    value: stored.value,
                    dests: stored.dests.clone(),
                },
            );
        }
        let mut queues = Vec::with_capacity(sweep::COUNT as usize);
        // In `sweep` index order.
        for name in [
            map_names::SWEEP_SOON,
            map_names::SWEEP,
            map_names::SWEEP_60,
            map_names::SWEEP_300,
        ] {
            let id = self
                .map_ids
                .get(name)
                .ok_or_else(|| Error::plain(format!("the director has no map {name}")))?;
            let data = MapData::from_id(*id).map_err(|e| Error::new("cannot open a map", e))?;
            queues.push(
                Queue::try_from(Map::Queue(data)).map_err(|e| Error::new(name.to_string(), e))?,
            );
        }
        use std::os::fd::AsFd;
        let counts = MappedCounts::map(self.dest_counts.fd().as_fd())?;
        Ok(SyncIndex {
            next_id,
            services,
            keys,
            queues,
            counts,
        })
    }

    /// Every live connection and persistence template this director made or used, as a
    /// master tells its backups (synced entries no packet has used here are not its to
    /// tell).
    pub fn sync_records(&self, index: &mut SyncIndex) -> Result<Vec<SyncedConn>> {
        self.refresh(index)?;
        let now = monotonic_ns();
        let mut records = Vec::new();
        let table = self.conn_table()?;
        for (key, conn) in table.requests() {
            if conn.flags & conn_flags::SYNCED != 0 {
                continue;
            }
            // A call's template (`--pe sip`) goes with its Call-ID, as IPVS sends it; one
            // whose Call-ID is not kept (its map was full) is not told: told as a plain
            // template it would send every call of its client network to one server.
            let call = if is_call_key(key) {
                match self.calls.as_ref().and_then(|calls| calls.get(key, 0).ok()) {
                    Some(id) if id.len > 0 => Some(Arc::from(id.as_bytes())),
                    _ => continue,
                }
            } else {
                None
            };
            let expires = table.expiry(key, conn);
            if expires <= now {
                continue;
            }
            let fwmark = index
                .keys
                .get(&conn.service_id)
                .map_or(0, |service| service.fwmark);
            let mut record = record_of(key, conn, fwmark, expires - now);
            record.call = call;
            if conn.forward == forward::FULLNAT && conn.flags & conn_flags::TEMPLATE == 0 {
                // Its local side, recorded beside it (not yet, or no more: not told).
                let Some(peer) = self.fullnat.as_ref().and_then(|m| m.get(key, 0).ok()) else {
                    continue;
                };
                record.fullnat = Some(FullnatSide {
                    laddr: decode_addr(&peer.addr, peer.family),
                    lport: u16::from_be(peer.port),
                    proxy: peer.proxy,
                    first_seq: peer.first_seq,
                });
            }
            records.push(record);
        }
        Ok(records)
    }

    /// Makes (or brings up to date) the entries of `records`, received from a master.
    /// Entries this director made or used itself are left as they are.
    pub fn take_synced(&mut self, index: &mut SyncIndex, records: &[SyncedConn]) -> Result<Taken> {
        self.refresh(index)?;
        let now = monotonic_ns();
        let mut taken = Taken::default();
        for record in records {
            let Some((key, conn)) = index.entry_of(record, now) else {
                taken.unknown.push(record.clone());
                continue;
            };
            let made = match self.conns.get(&key, 0) {
                Ok(old) if old.flags & conn_flags::SYNCED == 0 && self.server_alive(&old) => {
                    taken.local += 1;
                    continue;
                }
                // This director's own entry, whose real server is gone here (removed while
                // the director was cut off, say): dead, where the master's is not.
                Ok(old) if old.flags & conn_flags::SYNCED == 0 => {
                    if self.forget_dead(&key, &old, &index.counts) {
                        taken.replaced += 1;
                    }
                    true
                }
                Ok(_) => false,
                Err(_) => true,
            };
            let flags = if made { BPF_NOEXIST } else { 0 };
            if let Err(e) = self.conns.insert(key, conn, flags) {
                match e {
                    aya::maps::MapError::SyscallError(s)
                        if s.io_error.raw_os_error() == Some(libc::E2BIG) =>
                    {
                        taken.full += 1;
                        continue;
                    }
                    // Made by a packet in between: its entry wins.
                    aya::maps::MapError::SyscallError(s)
                        if s.io_error.raw_os_error() == Some(libc::EEXIST) =>
                    {
                        taken.local += 1;
                        continue;
                    }
                    e => return Err(Error::new("cannot write a synced connection", e)),
                }
            }
            if conn.forward == forward::FULLNAT && conn.flags & conn_flags::TEMPLATE == 0 {
                if !self.take_fullnat_side(&key, &conn, record, made)? {
                    // Its local port is a connection of this director's here.
                    let _ = self.conns.remove(&key);
                    taken.local += 1;
                    continue;
                }
            } else if conn.forward == forward::MASQ && conn.flags & conn_flags::TEMPLATE == 0 {
                // Its reply entry, as the datapath's `create_twin` makes it.
                let twin = Conn {
                    peer: key.dst,
                    peer_port: key.dport,
                    flags: conn_flags::REPLY
                        | conn_flags::SYNCED
                        | (conn.flags & conn_flags::DEST_HALF),
                    peer_family: key.family,
                    ..conn
                };
                let _ = self.conns.insert(key.reply(&conn), twin, 0);
            }
            // A call's template: its Call-ID beside it, for the listing (the datapath
            // removes it with the template).
            if let (Some(call), Some(calls)) = (record.call.as_deref(), self.calls.as_mut())
                && is_call_key(&key)
            {
                let mut id = CallId {
                    len: call.len() as u32,
                    ..CallId::default()
                };
                id.text[..call.len()].copy_from_slice(call);
                let _ = calls.insert(key, id, 0);
            }
            if made {
                index.queue_sweep(&key, conn.expires, now);
                taken.made += 1;
            } else {
                taken.updated += 1;
            }
        }
        Ok(taken)
    }

    /// Whether services or real servers were added, edited or removed since `index` was
    /// read: records that named ones this director did not have may be known now.
    pub fn sync_table_changed(&self, index: &SyncIndex) -> Result<bool> {
        Ok(self.meta(meta::NEXT_ID)? != index.next_id)
    }
}

impl Director {
    /// Reads the index again if the table changed since it was made: a record must meet
    /// the real servers as they are (one removed and added again has a new id).
    fn refresh(&self, index: &mut SyncIndex) -> Result<()> {
        if self.sync_table_changed(index)? {
            *index = self.sync_index()?;
        }
        Ok(())
    }

    /// Whether the real server of `conn` is still the one in its entry of the
    /// real-server array (the datapath's `server_alive`).
    fn server_alive(&self, conn: &Conn) -> bool {
        let half = u16::from(conn.flags & conn_flags::DEST_HALF != 0);
        self.dests
            .get(&dest_index(conn.dest_stats, half), 0)
            .is_ok_and(|dest| dest.id == conn.dest_id)
    }

    /// A synced FULLNAT request entry's other side (`made`: the request entry is new):
    /// its reply entry under the local address and port the record carries, as the
    /// datapath's `xvs_fullnat_create` makes it, and both entries' other sides. False if
    /// that tuple is taken here by another connection (it wins; nothing is written).
    fn take_fullnat_side(
        &mut self,
        key: &ConnKey,
        conn: &Conn,
        record: &SyncedConn,
        made: bool,
    ) -> Result<bool> {
        let (Some(side), Some(_)) = (record.fullnat, self.fullnat.as_ref()) else {
            return Ok(false);
        };
        let (addr, family) = encode_addr(&side.laddr);
        let local = FullnatPeer {
            addr,
            port: side.lport.to_be(),
            family,
            proxy: side.proxy,
            first_seq: side.first_seq,
        };
        let client = FullnatPeer {
            addr: key.src,
            port: key.sport,
            family: key.family,
            ..local
        };
        let reply_key = key.fullnat_reply(conn, &local);
        let twin = Conn {
            peer: key.dst,
            peer_port: key.dport,
            flags: conn_flags::REPLY | conn_flags::SYNCED | (conn.flags & conn_flags::DEST_HALF),
            peer_family: key.family,
            ..*conn
        };
        if made {
            match self.conns.insert(reply_key, twin, BPF_NOEXIST) {
                Ok(()) => {}
                Err(aya::maps::MapError::SyscallError(s))
                    if s.io_error.raw_os_error() == Some(libc::EEXIST) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(Error::new("cannot write a synced connection", e)),
            }
        } else {
            let _ = self.conns.insert(reply_key, twin, 0);
        }
        if let Some(peers) = self.fullnat.as_mut() {
            peers
                .insert(key, local, 0)
                .and_then(|()| peers.insert(reply_key, client, 0))
                .map_err(|e| Error::new("cannot write a synced FULLNAT connection", e))?;
        }
        Ok(true)
    }

    /// Forgets a dead entry as the datapath's `forget` does: its NAT or FULLNAT twin (and
    /// FULLNAT's other sides), itself, and, only if this removal took effect (a packet may
    /// have forgotten it first), its count.
    fn forget_dead(&mut self, key: &ConnKey, conn: &Conn, counts: &MappedCounts) -> bool {
        if conn.forward == forward::MASQ && conn.flags & conn_flags::TEMPLATE == 0 {
            let _ = self.conns.remove(&key.reply(conn));
        }
        if conn.forward == forward::FULLNAT
            && conn.flags & conn_flags::TEMPLATE == 0
            && let Some(peers) = self.fullnat.as_mut()
            && let Ok(local) = peers.get(key, 0)
        {
            let reply_key = key.fullnat_reply(conn, &local);
            let _ = self.conns.remove(&reply_key);
            let _ = peers.remove(&reply_key);
            let _ = peers.remove(key);
        }
        if self.conns.remove(key).is_err() {
            return false;
        }
        counts.uncount(conn.dest_stats, conn.flags);
        true
    }
}

impl SyncIndex {
    /// The entry a backup makes of `record`, if it has its service and real server.
    fn entry_of(&self, record: &SyncedConn, now: u64) -> Option<(ConnKey, Conn)> {
        let (vaddr, family) = encode_addr(&record.vaddr);
        let (client, client_family) = encode_addr(&record.client);
        if client_family != family {
            return None;
        }
        let template = record.is_template();
        let service = self.service_of(record, vaddr, family)?;
        let dest = service.dests.iter().find(|d| {
            decode_addr(&d.addr, d.family) == record.daddr
                && (d.port == 0 || u16::from_be(d.port) == record.dport)
        })?;
        // A FULLNAT connection needs its local side, of its real server's family.
        if dest.forward == forward::FULLNAT
            && !template
            && record
                .fullnat
                .is_none_or(|side| encode_addr(&side.laddr).1 != dest.family)
        {
            return None;
        }
        let mut key = ConnKey {
            src: client,
            dst: vaddr,
            sport: if template { 0 } else { record.cport.to_be() },
            dport: record.vport.to_be(),
            protocol: record.protocol,
            family,
            _pad: [if template { TEMPLATE_KEY } else { 0 }, 0],
        };
        if let (true, Some(call)) = (template, record.call.as_deref()) {
            with_call(&mut key, call_hash(call));
        }
        let state = match record.protocol {
            _ if template => tcp::NONE,
            IPPROTO_TCP => record.state as u8,
            _ => tcp::UDP,
        };
        let mut conn_flags = conn_flags::SYNCED | ((dest.half as u8 & 1) * conn_flags::DEST_HALF);
        if template {
            conn_flags |= conn_flags::TEMPLATE;
        } else {
            if dest.forward != forward::MASQ || record.flags & flags::NOOUTPUT != 0 {
                conn_flags |= conn_flags::NO_OUTPUT;
            }
            if record.protocol == IPPROTO_TCP && tcp::is_active(state) {
                conn_flags |= conn_flags::ACTIVE;
            }
        }
        let conn = Conn {
            expires: now + u64::from(record.timeout) * NS_PER_SEC,
            peer: dest.addr,
            dest_id: dest.id,
            service_id: service.value.id,
            peer_port: if dest.port == 0 {
                record.dport.to_be()
            } else {
                dest.port
            },
            slot: dest.slot,
            service_stats: service.value.stats,
            dest_stats: dest.stats,
            state,
            // A template forwards nothing (the datapath makes them so too).
            forward: if template {
                forward::ROUTE
            } else {
                dest.forward
            },
            flags: conn_flags,
            peer_family: dest.family,
            l2: Default::default(),
        };
        Some((key, conn))
    }

    /// The service of a record: by address, protocol and port; a port-0 service of the
    /// address; or its fwmark service.
    fn service_of(&self, record: &SyncedConn, vaddr: [u8; 16], family: u8) -> Option<&Known> {
        let by_mark = MapKey {
            fwmark: record.fwmark,
            family,
            ..MapKey::default()
        };
        if record.protocol == 0 {
            return self.services.get(&by_mark);
        }
        let mut key = MapKey {
            addr: vaddr,
            fwmark: 0,
            port: record.vport.to_be(),
            family,
            protocol: record.protocol,
        };
        if let Some(found) = self.services.get(&key) {
            return Some(found);
        }
        key.port = 0;
        self.services
            .get(&key)
            .or_else(|| (record.fwmark != 0).then(|| self.services.get(&by_mark))?)
    }

    /// Queues a new entry's sweep record as the datapath does (a full queue sends it to
    /// one that waits less).
    fn queue_sweep(&mut self, key: &ConnKey, expires: u64, now: u64) {
        let (mut which, wait) = sweep_queue(expires.saturating_sub(now));
        let mut record = SweepRecord {
            key: *key,
            due: now + wait,
        };
        for _ in 0..3 {
            if self.queues[which as usize].push(record, 0).is_ok() {
                return;
            }
            which = xvs_common::sweep_fallback(which);
            record.due = now + sweep::WAITS_NS[which as usize];
        }
    }
}

/// The record of request entry (or template) `conn` with key `key`, which has `left` ns.
fn record_of(key: &ConnKey, conn: &Conn, fwmark: u32, left: u64) -> SyncedConn {
    let template = conn.flags & conn_flags::TEMPLATE != 0;
    let mut record_flags = u32::from(conn.forward) & flags::FWD_MASK;
    if template {
        record_flags |= flags::TEMPLATE;
    } else {
        if conn.flags & conn_flags::NO_OUTPUT != 0 {
            record_flags |= flags::NOOUTPUT;
        }
        if conn.flags & conn_flags::ACTIVE == 0 {
            record_flags |= flags::INACTIVE;
        }
    }
    SyncedConn {
        protocol: key.protocol,
        client: decode_addr(&key.src, key.family),
        // (A call's template carries its Call-ID's hash there.)
        cport: if template { 0 } else { u16::from_be(key.sport) },
        vaddr: decode_addr(&key.dst, key.family),
        vport: u16::from_be(key.dport),
        daddr: decode_addr(&conn.peer, conn.peer_family),
        dport: u16::from_be(conn.peer_port),
        fwmark,
        flags: record_flags,
        state: if key.protocol == IPPROTO_TCP && !template {
            u16::from(conn.state)
        } else {
            0
        },
        // Rounded up: a connection with 0.5 s left is not gone.
        timeout: left.div_ceil(NS_PER_SEC).min(u64::from(u32::MAX)) as u32,
        fullnat: None,
        call: None,
    }
}
