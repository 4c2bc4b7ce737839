//! The IPVS table in the director's maps: read into the core model ([`Director::load`]) and
//! written back as the fewest map changes ([`Director::store`]).
//!
//! A service's real servers are written as a new set before the service entry is switched
//! to it and the old set dropped: the datapath sees a service's old list or its new one,
//! never a mix. Ids (of services, real servers and sets) come from one counter in the meta
//! map and are never reused. Traffic counters live in a per-CPU array, one slot per service
//! and per real server; a slot is handed out round the array and zeroed when taken, so a
//! freed one is reused as late as possible.

pub mod encode;

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use aya::maps::{MapError, PerCpuValues};
use xvs_common::{
    Conn, ConnKey, Counters, DestSet, DestValue, MAX_SERVICES, MAX_SET, MAX_WRR_CYCLE,
    ServiceConns, ServiceEntry, ServiceKey as MapKey, ServiceValue, SetEntry, TunnelSource, WrrKey,
    conn_flags, dest_index, forward, meta, tcp,
};
use xvs_core::{
    listing::ConnectionEntry,
    model::{ConnCounts, PersistenceEngine, Protocol, Service, Stats, Timeouts},
    sched::{Candidate, Scheduler, Wrr},
    table::Table,
};

use crate::{Director, Error, Result, neighbours, netlink};
use encode::{
    Address, decode_addr, decode_dest, decode_key, encode_addr, encode_dest, encode_key,
    encode_service, scheduler_of,
};

/// A table as read from the maps, with what is needed to write changes back.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub table: Table,
    stored: HashMap<MapKey, StoredService>,
    next_id: u64,
    next_stats: u64,
    stats_used: u64,
}

#[derive(Debug, Clone)]
struct StoredService {
    value: ServiceValue,
    dests: Vec<DestValue>,
    /// Positions of its set's wrr cycle in the wrr map (to drop with the set).
    wrr_len: u32,
}

/// Why a table could not be stored.
#[derive(Debug)]
pub enum StoreError {
    /// A map would overflow (ipvsadm's "Memory allocation problem").
    Full(String),
    Map(Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Full(what) => write!(f, "{what}"),
            StoreError::Map(e) => write!(f, "{e}"),
        }
    }
}

fn map_error(what: &str) -> impl Fn(MapError) -> Error + '_ {
    move |e| Error::new(what, e)
}

/// A removal of something already gone is fine.
fn removed(result: std::result::Result<(), MapError>, what: &str) -> Result<()> {
    match result {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(Error::new(what, e)),
    }
}

/// Parameters equal, ignoring where the real servers are stored.
fn same_parameters(a: &ServiceValue, b: &ServiceValue) -> bool {
    ServiceValue {
        dest_set: 0,
        dest_count: 0,
        ..*a
    } == ServiceValue {
        dest_set: 0,
        dest_count: 0,
        ..*b
    }
}

impl Director {
    /// The counters in a slot, summed over CPUs.
    fn counters_of(&self, slot: u32) -> Result<Stats> {
        let per_cpu = self
            .stats
            .get(&slot, 0)
            .map_err(|e| Error::new("cannot read counters", e))?;
        let mut stats = Stats::default();
        for c in per_cpu.iter() {
            stats.conns += c.conns;
            stats.inpkts += c.inpkts;
            stats.outpkts += c.outpkts;
            stats.inbytes += c.inbytes;
            stats.outbytes += c.outbytes;
        }
        Ok(stats)
    }

    /// Zeroes the counters in a slot, on every CPU.
    fn zero_counters(&mut self, slot: u32) -> Result<()> {
        let zeros = PerCpuValues::try_from(vec![Counters::default(); self.cpus])
            .map_err(|e| Error::new("cannot zero counters", e))?;
        self.stats
            .set(slot, zeros, 0)
            .map_err(|e| Error::new("cannot zero counters", e))
    }

    /// The namespace's table, as the maps hold it, with traffic counters.
    pub fn load(&self) -> Result<Snapshot> {
        self.load_with(true)
    }

    /// The table without its counters (all zero): enough to change it, and much quicker
    /// on a large table. A snapshot without counters cannot zero them (`-Z`).
    pub fn load_for_change(&self) -> Result<Snapshot> {
        self.load_with(false)
    }

    fn load_with(&self, counters: bool) -> Result<Snapshot> {
        let counters_of = |id| {
            if counters {
                self.counters_of(id)
            } else {
                Ok(Stats::default())
            }
        };
        let meta_value = |slot| self.meta(slot);
        let timeouts = Timeouts {
            tcp: meta_value(meta::TIMEOUT_TCP)? as u32,
            tcp_fin: meta_value(meta::TIMEOUT_TCP_FIN)? as u32,
            udp: meta_value(meta::TIMEOUT_UDP)? as u32,
        };
        let next_id = meta_value(meta::NEXT_ID)?;
        let next_stats = meta_value(meta::NEXT_STATS)?;
        let stats_used = meta_value(meta::STATS_USED)?;
        // Connections past their expiry that the datapath has not swept yet still sit in
        // the counts: a listing leaves them out, as IPVS's timers would have.
        let expired = if counters {
            self.expired_counts()?
        } else {
            HashMap::new()
        };
        let mut entries = Vec::new();
        for entry in self.services.iter() {
            let (key, entry) = entry.map_err(map_error("cannot read the services"))?;
            // Only the set's used entries are kept: a whole set is 5 KiB.
            let used = (entry.service.dest_count as usize).min(MAX_SET);
            let set = entry.set.entries[..used].to_vec();
            entries.push((key, entry.service, set, entry.set.wrr_len));
        }
        entries.sort_by_key(|(_, value, _, _)| value.order);
        let mut services = Vec::with_capacity(entries.len());
        let mut stored = HashMap::with_capacity(entries.len());
        for (map_key, value, set, wrr_len) in entries {
            let Some(key) = decode_key(&map_key) else {
                continue;
            };
            let mut dest_values = Vec::with_capacity(value.dest_count as usize);
            let mut dests = Vec::with_capacity(value.dest_count as usize);
            for entry in &set {
                let dest = self
                    .dests
                    .get(&dest_index(entry.stats, entry.half), 0)
                    .map_err(map_error("cannot read a real server"))?;
                dests.push(decode_dest(&dest, counters_of(dest.stats)?));
                dest_values.push(dest);
            }
            if counters && let Ok(counts) = self.conn_counts.get(&value.id, 0) {
                for (dest, encoded) in dests.iter_mut().zip(&dest_values) {
                    let slot = counts.slots[encoded.slot as usize % MAX_SET];
                    let (gone_active, gone_inactive) = expired
                        .get(&(value.id, encoded.slot))
                        .copied()
                        .unwrap_or((0, 0));
                    dest.conns = ConnCounts {
                        active: slot.active.saturating_sub(gone_active),
                        inactive: slot.inactive.saturating_sub(gone_inactive),
                        persistent: slot.persistent,
                    };
                }
            }
            services.push(Service {
                key,
                scheduler: scheduler_of(value.scheduler),
                flags: value.flags,
                timeout: value.timeout,
                netmask: value.netmask,
                pe: (value.pe == 1).then_some(PersistenceEngine::Sip),
                dests,
                stats: counters_of(value.stats)?,
            });
            stored.insert(
                map_key,
                StoredService {
                    value,
                    dests: dest_values,
                    wrr_len,
                },
            );
        }
        Ok(Snapshot {
            table: Table::from_services(services, timeouts),
            stored,
            next_id,
            next_stats,
            stats_used,
        })
    }

    /// Writes `after` over what `before` was read as: only the services that changed are
    /// rewritten, each switched whole. Call with the namespace's [`crate::lock::TableLock`]
    /// held since `before` was loaded.
    pub fn store(
        &mut self,
        before: &Snapshot,
        after: &Table,
    ) -> std::result::Result<(), StoreError> {
        check_capacity(after, self.stats_slots)?;
        self.write(before, after).map_err(StoreError::Map)
    }

    fn write(&mut self, before: &Snapshot, after: &Table) -> Result<()> {
        let mut next_id = before.next_id;
        let mut take_id = || {
            let id = next_id as u32;
            next_id += 1;
            id
        };
        let before_services: HashMap<MapKey, (&Service, &StoredService)> = before
            .table
            .services
            .iter()
            .filter_map(|s| {
                let key = encode_key(&s.key);
                before.stored.get(&key).map(|stored| (key, (s, stored)))
            })
            .collect();
        let mut slots = StatsSlots::for_change(before, after, self.stats_slots);
        let mut kept = HashSet::with_capacity(after.services.len());
        let mut new_hops = Vec::new();
        for service in &after.services {
            let key = encode_key(&service.key);
            kept.insert(key);
            let old = before_services.get(&key).map(|(_, stored)| *stored);
            let mut value = encode_service(service);
            match old {
                Some(stored) => {
                    value.id = stored.value.id;
                    value.order = stored.value.order;
                    value.stats = stored.value.stats;
                }
                None => {
                    value.id = take_id();
                    value.order = take_id();
                    value.stats = slots.take()?;
                }
            }
            let dests = self.place_dests(service, old, &mut take_id, &mut slots)?;
            for slot in slots.to_zero.drain(..) {
                self.zero_counters(slot)?;
            }
            let unchanged =
                old.is_some_and(|s| same_parameters(&s.value, &value) && s.dests == dests);
            if !unchanged {
                value.dest_set = take_id();
                value.dest_count = dests.len() as u32;
                let set = self.write_set(service, &value, &dests)?;
                if old.is_none() {
                    self.start_service(value.id)?;
                }
                for dest in &dests {
                    let was = old.and_then(|s| s.dests.iter().find(|d| d.id == dest.id));
                    if was.is_none() {
                        new_hops.push(dest.addr_and_family());
                    }
                    // A new tunnel real server, or one switched to tunnelling (`-e … -i`).
                    if dest.forward == forward::TUNNEL
                        && was.is_none_or(|w| w.forward != forward::TUNNEL)
                    {
                        self.set_tunnel_source(dest)?;
                    }
                }
                // The switch: from here the datapath schedules over the new set.
                let entry = ServiceEntry {
                    service: value,
                    set,
                };
                self.services
                    .insert(key, entry, 0)
                    .map_err(map_error("cannot write a service"))?;
                if let Some(stored) = old {
                    self.drop_wrr_cycle(stored)?;
                }
            }
            // -Z: counters that were read as non-zero and now are zero.
            if let Some((old_service, _)) = before_services.get(&key) {
                if old_service.stats != Stats::default() && service.stats == Stats::default() {
                    self.zero_counters(value.stats)?;
                }
                for (dest, encoded) in service.dests.iter().zip(&dests) {
                    let was = old_service.dest(&dest.addr, dest.port);
                    if was.is_some_and(|w| w.stats != Stats::default())
                        && dest.stats == Stats::default()
                    {
                        self.zero_counters(encoded.stats)?;
                    }
                }
            }
        }
        for (key, (_, stored)) in &before_services {
            if kept.contains(key) {
                continue;
            }
            removed(self.services.remove(key), "cannot remove a service")?;
            self.drop_wrr_cycle(stored)?;
            let id = stored.value.id;
            removed(
                self.conn_counts.remove(&id),
                "cannot drop connection counts",
            )?;
        }
        let t = after.timeouts;
        for (slot, value) in [
            (meta::TIMEOUT_TCP, t.tcp),
            (meta::TIMEOUT_TCP_FIN, t.tcp_fin),
            (meta::TIMEOUT_UDP, t.udp),
        ] {
            self.set_meta(slot, u64::from(value))?;
        }
        self.set_meta(meta::NEXT_ID, next_id)?;
        self.set_meta(meta::NEXT_STATS, u64::from(slots.next))?;
        self.set_meta(meta::STATS_USED, u64::from(slots.used))?;
        self.prepare_next_hops(&new_hops)
    }

    /// Encodes a service's real servers, keeping the ids and count slots of those it had;
    /// new ones get a fresh id and a free slot (one no server holds and whose counts have
    /// drained, so connections of a removed server never count against a new one).
    fn place_dests(
        &self,
        service: &Service,
        old: Option<&StoredService>,
        take_id: &mut impl FnMut() -> u32,
        slots: &mut StatsSlots,
    ) -> Result<Vec<DestValue>> {
        if service.dests.len() > MAX_SET {
            return Err(Error::plain(format!(
                "a service can have at most {MAX_SET} real servers in xvs"
            )));
        }
        let counts = old.and_then(|s| self.conn_counts.get(&s.value.id, 0).ok());
        let mut used = [false; MAX_SET];
        let mut placed: Vec<DestValue> = Vec::with_capacity(service.dests.len());
        for dest in &service.dests {
            let mut encoded = encode_dest(dest);
            if let Some(kept) = old.and_then(|s| {
                s.dests
                    .iter()
                    .find(|d| d.addr == encoded.addr && d.port == encoded.port)
            }) {
                encoded.id = kept.id;
                encoded.slot = kept.slot;
                encoded.stats = kept.stats;
                // Unchanged, it stays where the live set reads it; changed, it goes to its
                // other entry, which the new set switches to.
                encoded.half = kept.half;
                if encoded != *kept {
                    encoded.half ^= 1;
                }
                used[kept.slot as usize % MAX_SET] = true;
            } else {
                encoded.id = take_id();
                encoded.slot = u16::MAX;
                encoded.stats = slots.take()?;
            }
            placed.push(encoded);
        }
        for encoded in placed.iter_mut().filter(|d| d.slot == u16::MAX) {
            let free = (0..MAX_SET).find(|&slot| {
                !used[slot]
                    && counts.is_none_or(|c| {
                        let s = c.slots[slot];
                        s.active == 0 && s.inactive == 0
                    })
            });
            let Some(slot) = free else {
                return Err(Error::plain(
                    "no free connection-count slot: removed real servers still have connections",
                ));
            };
            used[slot] = true;
            encoded.slot = slot as u16;
        }
        Ok(placed)
    }

    /// Writes a new real-server set's servers and wrr cycle; returns the scheduling
    /// summary, which goes into the service's entry.
    fn write_set(
        &mut self,
        service: &Service,
        value: &ServiceValue,
        dests: &[DestValue],
    ) -> Result<DestSet> {
        let set = value.dest_set;
        for dest in dests {
            self.dests
                .set(dest.array_index(), *dest, 0)
                .map_err(map_error("cannot write a real server"))?;
        }
        let mut summary = DestSet {
            count: dests.len() as u32,
            wrr_len: 0,
            entries: [SetEntry::default(); MAX_SET],
        };
        for (entry, dest) in summary.entries.iter_mut().zip(dests) {
            *entry = SetEntry {
                weight: dest.weight,
                u_threshold: dest.u_threshold,
                l_threshold: dest.l_threshold,
                slot: dest.slot,
                half: dest.half,
                stats: dest.stats,
            };
        }
        if service.scheduler == Scheduler::Wrr {
            let cycle = wrr_cycle(service);
            for (position, index) in cycle.iter().enumerate() {
                let key = WrrKey {
                    set,
                    position: position as u32,
                };
                self.wrr
                    .insert(key, *index as u32, 0)
                    .map_err(map_error("cannot write the wrr cycle"))?;
            }
            summary.wrr_len = cycle.len() as u32;
        }
        Ok(summary)
    }

    /// Creates a new service's connection counts and scheduler state (the datapath builds
    /// its least-connection tree when it first schedules).
    fn start_service(&mut self, id: u32) -> Result<()> {
        self.conn_counts
            .insert(id, ServiceConns::default(), 0)
            .map_err(map_error("cannot create connection counts"))
    }

    /// The address tunnel packets to `dest` leave from: the kernel's source for its route,
    /// kept at the server's counter slot. All zeros (no route yet) makes the datapath count
    /// a tunnel failure rather than use what an earlier holder of the slot left.
    fn set_tunnel_source(&mut self, dest: &DestValue) -> Result<()> {
        let (addr, _) = dest.addr_and_family();
        let source = netlink::route_to(addr)
            .ok()
            .and_then(|route| route.source)
            .map_or([0; 16], |source| encode_addr(&source).0);
        self.tunnel_sources
            .set(dest.stats, TunnelSource { addr: source }, 0)
            .map_err(map_error("cannot write a tunnel source"))
    }

    /// Drops the wrr cycle of a replaced or removed real-server set.
    fn drop_wrr_cycle(&mut self, stored: &StoredService) -> Result<()> {
        let set = stored.value.dest_set;
        for position in 0..stored.wrr_len {
            removed(
                self.wrr.remove(&WrrKey { set, position }),
                "cannot remove a wrr position",
            )?;
        }
        Ok(())
    }

    /// Makes the kernel resolve (and keep resolved) the next hop of each new real server,
    /// so the first packet of a flow finds its neighbour. Where forwarding is off (the
    /// kernel's FIB lookup then refuses to help the datapath) the resolved next hops are
    /// also written to the neighbour map. Best effort: an unreachable server is skipped.
    fn prepare_next_hops(&mut self, servers: &[(IpAddr, u8)]) -> Result<()> {
        // Without an interface besides lo there is no next hop to prepare (and a large
        // restore should not ask the kernel 100,000 times).
        let has_links = netlink::interfaces()
            .map(|all| all.iter().any(|i| i.index != crate::LOOPBACK_INDEX))
            .unwrap_or(false);
        if !has_links {
            return Ok(());
        }
        let unique: HashSet<IpAddr> = servers.iter().map(|(addr, _)| *addr).collect();
        let mut prepared = HashSet::new();
        let mut pending = Vec::new();
        for addr in &unique {
            let Ok(route) = netlink::route_to(*addr) else {
                continue;
            };
            if route.oif == 0 || route.oif == crate::LOOPBACK_INDEX {
                continue;
            }
            let hop = route.next_hop(*addr);
            if !prepared.insert((route.oif, hop)) {
                continue;
            }
            if !netlink::neighbour_is_static(route.oif, hop).unwrap_or(false) {
                let _ = netlink::keep_neighbour_resolved(route.oif, hop);
            }
            if !neighbours::forwarding(route.oif, addr.is_ipv4()) {
                pending.push((*addr, route.oif, hop));
            }
        }
        for (addr, neighbour) in neighbours::wait_for(&pending) {
            let (key, _) = encode_addr(&addr);
            self.neighbours
                .insert(key, neighbour, 0)
                .map_err(map_error("cannot write a neighbour"))?;
        }
        Ok(())
    }
}

/// The wrr cycle of a service, no longer than the datapath stores: with too long a period
/// the weights are scaled down (keeping their proportions as nearly as whole numbers can).
fn wrr_cycle(service: &Service) -> Vec<usize> {
    let mut candidates: Vec<Candidate> = service
        .dests
        .iter()
        .map(|d| Candidate::of(d, false))
        .collect();
    loop {
        let cycle = Wrr::cycle(&candidates);
        if cycle.len() <= MAX_WRR_CYCLE as usize {
            return cycle;
        }
        for c in candidates.iter_mut().filter(|c| c.weight > 1) {
            c.weight = c.weight.div_ceil(2);
        }
    }
}

/// Hands out counter slots for new services and real servers: round the array from where
/// the last change stopped, first among slots nobody held before this change, then among
/// those of services and real servers this change removes.
struct StatsSlots {
    held_before: HashSet<u32>,
    kept: HashSet<u32>,
    taken: HashSet<u32>,
    next: u32,
    /// Slots below this have been handed out before (and may hold counts).
    used: u32,
    capacity: u32,
    /// Slots taken that held counts once and are not yet zeroed.
    to_zero: Vec<u32>,
}

impl StatsSlots {
    /// The slots of a change from `before` to `after`.
    fn for_change(before: &Snapshot, after: &Table, capacity: u32) -> StatsSlots {
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
        StatsSlots::new(held_before, kept, next, used, capacity)
    }

    fn new(
        held_before: HashSet<u32>,
        kept: HashSet<u32>,
        next: u32,
        used: u32,
        capacity: u32,
    ) -> StatsSlots {
        StatsSlots {
            held_before,
            kept,
            taken: HashSet::new(),
            next,
            used,
            capacity,
            to_zero: Vec::new(),
        }
    }

    fn take(&mut self) -> Result<u32> {
        for avoid in [&self.held_before, &self.kept] {
            let found = (0..self.capacity)
                .map(|i| (self.next + i) % self.capacity)
                .find(|slot| !avoid.contains(slot) && !self.taken.contains(slot));
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
        Err(Error::plain("no free counter slot"))
    }
}

/// Services fit the services map; services and real servers together fit the counter
/// slots (a real server's entries in the real-server array come with its slot).
fn check_capacity(after: &Table, counter_slots: u32) -> std::result::Result<(), StoreError> {
    let dests = |t: &Table| t.services.iter().map(|s| s.dests.len()).sum::<usize>();
    let services = after.services.len();
    if services > MAX_SERVICES as usize {
        return Err(StoreError::Full(format!(
            "{services} services: more than this director's {MAX_SERVICES}"
        )));
    }
    if services + dests(after) > counter_slots as usize {
        return Err(StoreError::Full(format!(
            "{services} services and {} real servers: more than this director's {counter_slots} \
             counter slots (set {} when creating it)",
            dests(after),
            crate::objects::COUNTER_SLOTS_ENV
        )));
    }
    Ok(())
}

impl Director {
    /// Expired, not yet swept connections by (service id, slot): (active, inactive).
    fn expired_counts(&self) -> Result<HashMap<(u32, u16), (u32, u32)>> {
        let now = monotonic_ns();
        let mut gone: HashMap<(u32, u16), (u32, u32)> = HashMap::new();
        for item in self.conns.iter() {
            let (key, conn) = item.map_err(map_error("cannot read the connection table"))?;
            // The reply entry is read only for a request entry past its own expiry.
            if conn.flags & conn_flags::REPLY != 0
                || conn.expires > now
                || self.expiry(&key, &conn) > now
            {
                continue;
            }
            let counts = gone.entry((conn.service_id, conn.slot)).or_default();
            if conn.flags & conn_flags::ACTIVE != 0 {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
        Ok(gone)
    }

    /// When the connection of request entry `conn` expires: for NAT the later of its two
    /// entries' expiries (replies push the reply entry's).
    fn expiry(&self, key: &ConnKey, conn: &Conn) -> u64 {
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
fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain data; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_slots_go_round_and_reuse_removed_ones_last() {
        // Four slots, all handed out once; 0 and 1 held before the change, 0 kept by it.
        let mut slots = StatsSlots::new(HashSet::from([0, 1]), HashSet::from([0]), 1, 4, 4);
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
        let mut slots = StatsSlots::new(HashSet::new(), HashSet::new(), 0, 2, 8);
        let taken: Vec<u32> = (0..4).map(|_| slots.take().unwrap()).collect();
        assert_eq!(taken, [0, 1, 2, 3]);
        assert_eq!(slots.to_zero, [0, 1]);
        assert_eq!(slots.used, 4);
    }
}
