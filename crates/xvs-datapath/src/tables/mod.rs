//! The IPVS table in the director's maps: read into the core model ([`Director::load`]) and
//! written back as the fewest map changes ([`Director::store`]): [`plan::plan`] decides
//! them without touching a map, [`Director::apply`] carries them out.
//!
//! Ids (of services, real servers and sets) come from one counter in the meta map and are
//! never reused. Traffic counters live in a per-CPU array, one slot per service and per
//! real server (`slots.rs`).

mod connections;
pub mod encode;
mod laddrs;
mod local;
pub mod plan;
mod slots;
pub mod sync;

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use aya::maps::{MapError, PerCpuValues};
use xvs_common::{
    Counters, DestCounts, DestValue, MAX_SET, MAX_SET_LARGE, ServiceKey as MapKey, ServiceSched,
    ServiceValue, TunnelSource, WrrKey, dest_index, meta, persistence_engine,
};
use xvs_core::{
    model::{ConnCounts, LocalAddress, PersistenceEngine, Service, Stats, Timeouts},
    table::Table,
};

use crate::{Director, Error, Result, neighbours, netlink};
use encode::{decode_dest, decode_key, encode_addr, encode_key, scheduler_of};
use plan::Op;

/// A table as read from the maps, with what is needed to write changes back.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub table: Table,
    stored: HashMap<MapKey, StoredService>,
    next_id: u64,
    next_stats: u64,
    stats_used: u64,
}

impl Snapshot {
    /// A snapshot of services as the maps hold them (each with its real servers and the
    /// length of its wrr cycle), listed in creation order, counters all zero.
    /// `[next id, next counter slot, counter slots used]` are the meta values.
    fn assemble(
        timeouts: Timeouts,
        [next_id, next_stats, stats_used]: [u64; 3],
        mut entries: Vec<StoredEntry>,
    ) -> Snapshot {
        entries.sort_by_key(|(_, value, ..)| value.order);
        let mut services = Vec::with_capacity(entries.len());
        let mut stored = HashMap::with_capacity(entries.len());
        for (map_key, value, dests, wrr_len, laddrs) in entries {
            let Some(key) = decode_key(&map_key) else {
                continue;
            };
            services.push(Service {
                key,
                scheduler: scheduler_of(value.scheduler),
                flags: value.flags,
                timeout: value.timeout,
                netmask: value.netmask,
                pe: (value.pe == persistence_engine::SIP).then_some(PersistenceEngine::Sip),
                dests: dests
                    .iter()
                    .map(|d| decode_dest(d, Stats::default()))
                    .collect(),
                laddrs,
                stats: Stats::default(),
            });
            stored.insert(
                map_key,
                StoredService {
                    value,
                    dests,
                    wrr_len,
                },
            );
        }
        Snapshot {
            table: Table::from_services(services, timeouts),
            stored,
            next_id,
            next_stats,
            stats_used,
        }
    }
}

/// A service as the maps hold it: its key, value, real servers, wrr cycle length and
/// local addresses.
type StoredEntry = (MapKey, ServiceValue, Vec<DestValue>, u32, Vec<LocalAddress>);

#[derive(Debug, Clone)]
struct StoredService {
    value: ServiceValue,
    dests: Vec<DestValue>,
    /// Positions of its set's wrr cycle in the wrr map (to drop with the set).
    wrr_len: u32,
}

fn map_error(what: &str) -> impl Fn(MapError) -> Error + '_ {
    move |e| Error::new(what, e)
}

/// A removal of something already gone is fine.
/// Drops service `id`'s entry from a map the datapath writes by service id (lblc's and
/// twos's), if the director has that map.
fn drop_entry<V: aya::Pod>(
    map: Option<&mut aya::maps::HashMap<aya::maps::MapData, u32, V>>,
    id: &u32,
) -> Result<()> {
    match map {
        Some(map) => removed(map.remove(id), "cannot drop a service's scheduler state"),
        None => Ok(()),
    }
}

fn removed(result: std::result::Result<(), MapError>, what: &str) -> Result<()> {
    match result {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(Error::new(what, e)),
    }
}

impl Snapshot {
    /// The counter slots of its services and real servers.
    pub fn counter_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.stored.values().flat_map(|stored| {
            std::iter::once(stored.value.stats).chain(stored.dests.iter().map(|d| d.stats))
        })
    }
}

impl Director {
    /// Every real server's connection counts, by counter slot (a copy of the datapath's).
    pub(crate) fn dest_counts(&self) -> Result<Box<DestCounts>> {
        use std::os::fd::AsFd;
        crate::counts::read(self.dest_counts.fd().as_fd())
    }

    /// The counters in a slot, summed over CPUs, with the rates xvsd estimated for it if
    /// `rates`.
    fn counters_of(&self, slot: u32, rates: bool) -> Result<Stats> {
        let mut stats = self.summed_counters(slot)?;
        if let (true, Ok(estimate)) = (rates, self.rates.get(&slot, 0)) {
            crate::rates::core_estimate(&estimate).read_into(&mut stats);
        }
        Ok(stats)
    }

    /// The counters in a slot, summed over CPUs (no rates).
    pub(crate) fn summed_counters(&self, slot: u32) -> Result<Stats> {
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
            .map_err(|e| Error::new("cannot zero counters", e))?;
        // As IPVS zeroes the estimator with the counters.
        removed(self.rates.remove(&slot), "cannot zero rates")
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
        let meta_value = |slot| self.meta(slot);
        let timeouts = Timeouts {
            tcp: meta_value(meta::TIMEOUT_TCP)? as u32,
            tcp_fin: meta_value(meta::TIMEOUT_TCP_FIN)? as u32,
            udp: meta_value(meta::TIMEOUT_UDP)? as u32,
        };
        let mut entries = Vec::new();
        let mut names = laddrs::InterfaceNames::default();
        for entry in self.services.iter() {
            let (key, entry) = entry.map_err(map_error("cannot read the services"))?;
            // Only the set's used entries are read: a whole set is 5 KiB (20 KiB large).
            let used = entry.service.dest_count as usize;
            let large;
            let (members, wrr_len) = if entry.service.large != 0 {
                large = self
                    .services_large
                    .get(&key, 0)
                    .map_err(map_error("cannot read a large service"))?;
                (
                    &large.set.entries[..used.min(MAX_SET_LARGE)],
                    large.set.wrr_len,
                )
            } else {
                (&entry.set.entries[..used.min(MAX_SET)], entry.set.wrr_len)
            };
            let mut dests = Vec::with_capacity(used);
            for member in members {
                dests.push(
                    self.dests
                        .get(&dest_index(member.stats, member.half), 0)
                        .map_err(map_error("cannot read a real server"))?,
                );
            }
            let laddrs = self.local_addresses(entry.service.id, &mut names)?;
            entries.push((key, entry.service, dests, wrr_len, laddrs));
        }
        let mut snapshot = Snapshot::assemble(
            timeouts,
            [
                meta_value(meta::NEXT_ID)?,
                meta_value(meta::NEXT_STATS)?,
                meta_value(meta::STATS_USED)?,
            ],
            entries,
        );
        if counters {
            self.add_counters(&mut snapshot)?;
        }
        Ok(snapshot)
    }

    /// Fills in the traffic counters and connection counts of a snapshot's services and
    /// real servers.
    fn add_counters(&self, snapshot: &mut Snapshot) -> Result<()> {
        // Connections past their expiry that the datapath has not swept yet still sit in
        // the counts: a listing leaves them out, as IPVS's timers would have.
        let expired = self.expired_counts()?;
        let counts = self.dest_counts()?;
        let rates = crate::rates::fresh(self)?;
        for service in &mut snapshot.table.services {
            let Some(stored) = snapshot.stored.get(&encode_key(&service.key)) else {
                continue;
            };
            service.stats = self.counters_of(stored.value.stats, rates)?;
            for (dest, encoded) in service.dests.iter_mut().zip(&stored.dests) {
                dest.stats = self.counters_of(encoded.stats, rates)?;
                let counts = counts.of(encoded.stats);
                let gone = expired.get(&encoded.stats).copied().unwrap_or_default();
                dest.conns = ConnCounts {
                    active: counts.active.saturating_sub(gone.active),
                    inactive: counts.inactive.saturating_sub(gone.inactive),
                    persistent: counts.persistent().saturating_sub(gone.persistent),
                };
            }
        }
        Ok(())
    }

    /// Writes `after` over what `before` was read as: only the services that changed are
    /// rewritten, each switched whole. Nothing is written if the change is refused. Call
    /// with the namespace's [`crate::lock::TableLock`] held since `before` was loaded (or
    /// use [`Director::change`], which does all of it).
    pub fn store(&mut self, before: &Snapshot, after: &Table) -> Result<()> {
        let counts = self.dest_counts()?;
        let busy = |slot: u32| !counts.of(slot).is_empty();
        let local = local::with_local_nodes(after)?;
        let after = local.as_ref().unwrap_or(after);
        let ops = plan::plan(before, after, self.stats_slots, &busy)?;
        // Refused before anything is written, as plan's refusals are.
        laddrs::check_interfaces(&ops)?;
        self.apply(&ops)
    }

    /// Carries out planned operations, in order.
    pub fn apply(&mut self, ops: &[Op]) -> Result<()> {
        for op in ops {
            match op {
                Op::ZeroCounters(slot) => self.zero_counters(*slot)?,
                Op::WriteDest(dest) => self
                    .dests
                    .set(dest.array_index(), *dest, 0)
                    .map_err(map_error("cannot write a real server"))?,
                Op::ClearDest(slot) => {
                    for half in 0..2 {
                        self.dests
                            .set(dest_index(*slot, half), DestValue::default(), 0)
                            .map_err(map_error("cannot clear a real server"))?;
                    }
                }
                Op::WriteWrr(key, index) => self
                    .wrr
                    .insert(key, index, 0)
                    .map_err(map_error("cannot write the wrr cycle"))?,
                // The datapath builds the least-connection tree when it first schedules.
                Op::StartService { id, large: false } => self
                    .sched_states
                    .insert(id, ServiceSched::default(), 0)
                    .map_err(map_error("cannot create a service's scheduler state"))?,
                Op::StartService { id, large: true } => {
                    // SAFETY: plain integers, for which all zeros is a valid value.
                    let mut sched: Box<ServiceSched<MAX_SET_LARGE>> =
                        unsafe { Box::new_zeroed().assume_init() };
                    sched.tree = Default::default();
                    self.sched_large
                        .insert(id, sched, 0)
                        .map_err(map_error("cannot create a service's scheduler state"))?
                }
                Op::TunnelSource(dest) => self.set_tunnel_source(dest)?,
                Op::WriteService {
                    key,
                    service,
                    set,
                    wrr_len,
                } if service.large != 0 => {
                    let large = plan::service_entry::<MAX_SET_LARGE>(*service, set, *wrr_len);
                    self.services_large
                        .insert(key, large, 0)
                        .map_err(map_error("cannot write a service"))?;
                    // The switch: the entry in the services map says where the set is.
                    let entry = plan::service_entry::<MAX_SET>(*service, &[], *wrr_len);
                    self.services
                        .insert(key, entry, 0)
                        .map_err(map_error("cannot write a service"))?
                }
                Op::WriteService {
                    key,
                    service,
                    set,
                    wrr_len,
                } => self
                    .services
                    .insert(key, plan::service_entry(*service, set, *wrr_len), 0)
                    .map_err(map_error("cannot write a service"))?,
                Op::DropWrr { set, len } => {
                    for position in 0..*len {
                        let key = WrrKey {
                            set: *set,
                            position,
                        };
                        removed(self.wrr.remove(&key), "cannot remove a wrr position")?;
                    }
                }
                Op::WriteLookup { set, slots } => self
                    .lookup
                    .insert(set, *plan::lookup_entry(slots), 0)
                    .map_err(map_error("cannot write a scheduler table"))?,
                Op::DropLookup(set) => {
                    removed(self.lookup.remove(set), "cannot remove a scheduler table")?
                }
                Op::RemoveService(key) => {
                    removed(self.services.remove(key), "cannot remove a service")?
                }
                Op::RemoveLargeService(key) => {
                    removed(self.services_large.remove(key), "cannot remove a service")?
                }
                Op::DropSched { id, large } => {
                    let state = if *large {
                        self.sched_large.remove(id)
                    } else {
                        self.sched_states.remove(id)
                    };
                    removed(state, "cannot drop a service's scheduler state")?;
                    drop_entry(self.below_half.as_mut(), id)?;
                    drop_entry(self.twos.as_mut(), id)?;
                    drop_entry(self.persist.as_mut(), id)?;
                }
                Op::SetMeta(slot, value) => self.set_meta(*slot, *value)?,
                Op::PrepareNextHops(servers) => self.prepare_next_hops(servers)?,
                Op::WriteLocalAddresses { id, laddrs } => {
                    self.write_local_addresses(*id, laddrs)?
                }
                Op::DropLocalAddresses(id) => removed(
                    match self.laddrs.as_mut() {
                        Some(map) => map.remove(id),
                        None => Ok(()),
                    },
                    "cannot drop a service's local addresses",
                )?,
            }
        }
        Ok(())
    }

    /// a tunnel failure rather than use what an earlier holder of the slot left.
    fn set_tunnel_source(&mut self, dest: &DestValue) -> Result<()> {
        let (addr, _) = encode::Address::addr_and_family(dest);
        let source = netlink::route_to(addr)
            .ok()
            .and_then(|route| route.source)
            .map_or([0; 16], |source| encode_addr(&source).0);
        self.tunnel_sources
            .set(dest.stats, TunnelSource { addr: source }, 0)
            .map_err(map_error("cannot write a tunnel source"))
    }

    /// Makes the kernel resolve (and keep resolved) the next hop of each new real server,
    /// so the first packet of a flow finds its neighbour. Where forwarding is off (the
    /// kernel's FIB lookup then refuses to help the datapath) `lo` is let forward, through
    /// which the datapath asks instead, and what resolved within [`neighbours::wait_for`]'s
    /// patience is also written to the neighbour map, the fallback where `lo` cannot
    /// forward. Best effort: an unreachable server is skipped.
    fn prepare_next_hops(&mut self, servers: &[IpAddr]) -> Result<()> {
        // Without an interface besides lo there is no next hop to prepare (and a large
        // restore should not ask the kernel 100,000 times).
        let has_links = netlink::interfaces()
            .map(|all| all.iter().any(|i| i.index != crate::LOOPBACK_INDEX))
            .unwrap_or(false);
        if !has_links {
            return Ok(());
        }
        let unique: HashSet<IpAddr> = servers.iter().copied().collect();
        let mut prepared = HashSet::new();
        let mut pending = Vec::new();
        let mut lo_forwards = HashSet::new();
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
            let entry = netlink::neighbour(route.oif, hop).ok().flatten();
            if !entry.is_some_and(|n| n.is_static()) {
                let _ = netlink::keep_neighbour_resolved(route.oif, hop);
            }
            if !neighbours::forwarding(route.oif, addr.is_ipv4()) {
                if lo_forwards.insert(addr.is_ipv4()) {
                    neighbours::let_lo_forward(addr.is_ipv4());
                }
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
