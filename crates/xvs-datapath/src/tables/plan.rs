//! What a change writes, decided without touching a map: [`plan`] compares the table as it
//! was read ([`Snapshot`]) with the table wanted and returns the map operations, in the
//! order the writer must carry them out. Every refusal (a map would overflow, too many
//! real servers, no free slot) comes from here, before anything is written, so a refused
//! change leaves the table as it was. The writer (`Director::apply`) is a short loop.
//!
//! The order keeps the datapath consistent at every step: a service's changed real
//! servers go to the halves of the real-server array its live set does not read, its new
//! wrr cycle under a new set id, and only then is its entry switched to the new set, after
//! which the old cycle is dropped.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use xvs_common::{
    DestValue, LOOKUP_NONE, LOOKUP_SLOTS, LookupTable, MAX_SERVICES, MAX_SET, MAX_SET_LARGE,
    MAX_WRR_CYCLE, ServiceEntry, ServiceKey as MapKey, ServiceValue, SetEntry, TREE_NONE, WrrKey,
    forward, meta,
};
use xvs_core::{
    model::{LocalAddress, Service, Stats},
    sched::{Candidate, Scheduler, Wrr, lookup_table},
    table::Table,
};

use super::{
    Snapshot, StoredService,
    encode::{Address, encode_dest, encode_key, encode_service, scheduler_of},
    slots::StatsSlots,
};
use crate::{Error, ErrorKind, Result};

/// One map operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Zero a counter slot on every CPU (taken again, or `-Z`).
    ZeroCounters(u32),
    /// Write a real server into its entry of the real-server array.
    WriteDest(DestValue),
    /// Clear both entries of a removed real server's counter slot.
    ClearDest(u32),
    /// Write one position of a set's wrr cycle: the set index it chooses.
    WriteWrr(WrrKey, u32),
    /// Create a service's scheduler state (by service id) in its set's class: a new
    /// service's, or one whose set moves to the other class.
    StartService { id: u32, large: bool },
    /// Find the source address tunnelled packets to this real server leave from.
    TunnelSource(DestValue),
    /// Write a service's entry: its parameters and real-server set (the used part; see
    /// [`service_entry`]), switched whole. A service whose value says `large` has its set
    /// written to the large services map first, then its entry in the services map,
    /// which switches the datapath to it.
    WriteService {
        key: MapKey,
        service: ServiceValue,
        set: Vec<SetEntry>,
        wrr_len: u32,
    },
    /// Drop a replaced or removed set's wrr cycle.
    DropWrr { set: u32, len: u32 },
    /// Write a set's sh, dh or mh table (the used slots; the rest are empty).
    WriteLookup { set: u32, slots: Vec<u16> },
    /// Drop a replaced or removed set's sh, dh or mh table.
    DropLookup(u32),
    /// Remove a service's entry.
    RemoveService(MapKey),
    /// Remove a service's entry in the large services map (removed, or its set moved
    /// back into its entry in the services map).
    RemoveLargeService(MapKey),
    /// Drop a service's scheduler state (by service id) in a class: the service was
    /// removed, or its set moved to the other class.
    DropSched { id: u32, large: bool },
    /// Write a slot of the control array.
    SetMeta(u32, u64),
    /// Have the kernel resolve the next hops of these new real servers.
    PrepareNextHops(Vec<IpAddr>),
    /// Write a service's FULLNAT local addresses (by service id), each with the interface
    /// it was given with; what the datapath counted for an address that stays is kept.
    WriteLocalAddresses {
        id: u32,
        laddrs: Vec<(IpAddr, Option<String>)>,
    },
    /// Drop a service's local addresses (it has none left, or is removed).
    DropLocalAddresses(u32),
}

/// The operations that turn the maps from `before` into `after`. `counter_slots` is the
/// director's counter capacity; `busy(slot)` says whether a counter slot handed out
/// before still counts connections (asked only of slots a new service or real server
/// might take).
pub fn plan(
    before: &Snapshot,
    after: &Table,
    counter_slots: u32,
    busy: &dyn Fn(u32) -> bool,
) -> Result<Vec<Op>> {
    check_capacity(after, counter_slots)?;
    check_protocols(after)?;
    let mut ops = Vec::new();
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
    let mut slots = StatsSlots::for_change(before, after, counter_slots, busy);
    let mut kept = HashSet::with_capacity(after.services.len());
    let mut new_hops = Vec::new();
    // The counter slots real servers hold after the change.
    let mut held = HashSet::new();
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
        let dests = place_dests(service, old, &mut take_id, &mut slots)?;
        // Local addresses first: a FULLNAT server the new set brings finds them there.
        let had = before_services.get(&key).map(|(s, _)| s.laddrs.as_slice());
        let same = |a: &[LocalAddress], b: &[LocalAddress]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.addr == y.addr && x.ifname == y.ifname)
        };
        if !same(had.unwrap_or(&[]), &service.laddrs) {
            ops.push(if service.laddrs.is_empty() {
                Op::DropLocalAddresses(value.id)
            } else {
                Op::WriteLocalAddresses {
                    id: value.id,
                    laddrs: service
                        .laddrs
                        .iter()
                        .map(|l| (l.addr, l.ifname.clone()))
                        .collect(),
                }
            });
        }
        held.extend(dests.iter().map(|d| d.stats));
        ops.extend(slots.to_zero.drain(..).map(Op::ZeroCounters));
        let large = dests.len() > MAX_SET;
        value.large = large as u8;
        let unchanged = old.is_some_and(|s| same_parameters(&s.value, &value) && s.dests == dests);
        // The class the service's set was in, if it had one.
        let was_large = old.map(|s| s.value.large != 0);
        if !unchanged {
            value.dest_set = take_id();
            value.dest_count = dests.len() as u32;
            let wrr_len = write_set(&mut ops, service, &value, &dests);
            if was_large != Some(large) {
                ops.push(Op::StartService {
                    id: value.id,
                    large,
                });
            }
            for dest in &dests {
                let was = old.and_then(|s| s.dests.iter().find(|d| d.id == dest.id));
                if was.is_none() {
                    new_hops.push(dest.addr_and_family().0);
                }
                // A new tunnel real server, or one switched to tunnelling (`-e … -i`).
                if dest.forward == forward::TUNNEL
                    && was.is_none_or(|w| w.forward != forward::TUNNEL)
                {
                    ops.push(Op::TunnelSource(*dest));
                }
            }
            // The switch: from here the datapath schedules over the new set.
            ops.push(Op::WriteService {
                key,
                service: value,
                set: dests.iter().map(set_entry).collect(),
                wrr_len,
            });
            if let Some(stored) = old {
                drop_set(&mut ops, stored);
            }
            // A set that moved between classes leaves the other class's entries behind.
            if let Some(was_large) = was_large
                && was_large != large
            {
                if was_large {
                    ops.push(Op::RemoveLargeService(key));
                }
                ops.push(Op::DropSched {
                    id: value.id,
                    large: was_large,
                });
            }
        }
        // -Z: counters that were read as non-zero and now are zero.
        if let Some((old_service, _)) = before_services.get(&key) {
            if old_service.stats != Stats::default() && service.stats == Stats::default() {
                ops.push(Op::ZeroCounters(value.stats));
            }
            for (dest, encoded) in service.dests.iter().zip(&dests) {
                let was = old_service.dest(&dest.addr, dest.port);
                if was.is_some_and(|w| w.stats != Stats::default())
                    && dest.stats == Stats::default()
                {
                    ops.push(Op::ZeroCounters(encoded.stats));
                }
            }
        }
    }
    for (key, (service, stored)) in &before_services {
        if kept.contains(key) {
            continue;
        }
        ops.push(Op::RemoveService(*key));
        let large = stored.value.large != 0;
        if large {
            ops.push(Op::RemoveLargeService(*key));
        }
        drop_set(&mut ops, stored);
        ops.push(Op::DropSched {
            id: stored.value.id,
            large,
        });
        if !service.laddrs.is_empty() {
            ops.push(Op::DropLocalAddresses(stored.value.id));
        }
    }
    // A removed real server's entries are cleared (unless a new server took its slot):
    // the datapath then sees its connections' server gone (IPVS's expire_nodest_conn).
    let mut cleared = HashSet::new();
    for (_, stored) in before_services.values() {
        for dest in &stored.dests {
            if !held.contains(&dest.stats) && cleared.insert(dest.stats) {
                ops.push(Op::ClearDest(dest.stats));
            }
        }
    }
    let (t, was) = (after.timeouts, before.table.timeouts);
    for (slot, now, then) in [
        (meta::TIMEOUT_TCP, t.tcp, was.tcp),
        (meta::TIMEOUT_TCP_FIN, t.tcp_fin, was.tcp_fin),
        (meta::TIMEOUT_UDP, t.udp, was.udp),
    ] {
        if now != then {
            ops.push(Op::SetMeta(slot, u64::from(now)));
        }
    }
    for (slot, now, then) in [
        (meta::NEXT_ID, next_id, before.next_id),
        (meta::NEXT_STATS, u64::from(slots.next), before.next_stats),
        (meta::STATS_USED, u64::from(slots.used), before.stats_used),
    ] {
        if now != then {
            ops.push(Op::SetMeta(slot, now));
        }
    }
    if !new_hops.is_empty() {
        ops.push(Op::PrepareNextHops(new_hops));
    }
    Ok(ops)
}

/// Drops what a replaced or removed set had besides its entry: its wrr cycle, its table.
fn drop_set(ops: &mut Vec<Op>, stored: &StoredService) {
    let set = stored.value.dest_set;
    ops.push(Op::DropWrr {
        set,
        len: stored.wrr_len,
    });
    let had_table = lookup_table(scheduler_of(stored.value.scheduler), 0, &[]).is_some();
    if had_table {
        ops.push(Op::DropLookup(set));
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

/// Encodes a service's real servers, keeping the ids, counter slots and tree slots of
/// those it had; new ones get a fresh id, a free counter slot (whose connection counts
/// have drained: see `slots.rs`) and a tree slot no other server of the set holds.
fn place_dests(
    service: &Service,
    old: Option<&StoredService>,
    take_id: &mut impl FnMut() -> u32,
    slots: &mut StatsSlots,
) -> Result<Vec<DestValue>> {
    if service.dests.len() > MAX_SET_LARGE {
        return Err(Error::of(
            ErrorKind::Refused,
            format!("a service can have at most {MAX_SET_LARGE} real servers in xvs"),
        ));
    }
    // Tree slots: as many as the set's class has room for.
    let room = if service.dests.len() > MAX_SET {
        MAX_SET_LARGE
    } else {
        MAX_SET
    };
    let mut used = vec![false; room];
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
            if (kept.slot as usize) < room {
                used[kept.slot as usize] = true;
            } else {
                // Its set moved to the smaller class: it takes a tree slot there.
                encoded.slot = u16::MAX;
            }
            if encoded != *kept {
                encoded.half ^= 1;
            }
        } else {
            encoded.id = take_id();
            encoded.slot = u16::MAX;
            encoded.stats = slots.take()?;
        }
        placed.push(encoded);
    }
    let mut free = (0..room).filter(|&slot| !used[slot]);
    for encoded in placed.iter_mut().filter(|d| d.slot == u16::MAX) {
        // As many slots as servers, and no more servers than slots: one is free.
        encoded.slot = free.next().unwrap_or_default() as u16;
    }
    Ok(placed)
}

/// Plans a new real-server set's servers, its sh, dh or mh table, and its wrr cycle;
/// returns the cycle's length.
fn write_set(
    ops: &mut Vec<Op>,
    service: &Service,
    value: &ServiceValue,
    dests: &[DestValue],
) -> u32 {
    ops.extend(dests.iter().map(|dest| Op::WriteDest(*dest)));
    let candidates: Vec<Candidate> = service
        .dests
        .iter()
        .map(|d| Candidate::of(d, false))
        .collect();
    if let Some(table) = lookup_table(service.scheduler, service.flags, &candidates) {
        let slots = table
            .iter()
            .map(|index| index.map_or(LOOKUP_NONE, |i| i as u16))
            .collect();
        ops.push(Op::WriteLookup {
            set: value.dest_set,
            slots,
        });
    }
    if service.scheduler != Scheduler::Wrr {
        return 0;
    }
    let cycle = wrr_cycle(candidates);
    for (position, index) in cycle.iter().enumerate() {
        let key = WrrKey {
            set: value.dest_set,
            position: position as u32,
        };
        ops.push(Op::WriteWrr(key, *index as u32));
    }
    cycle.len() as u32
}

/// What the schedulers read of a real server.
fn set_entry(dest: &DestValue) -> SetEntry {
    SetEntry {
        weight: dest.weight,
        u_threshold: dest.u_threshold,
        lower_threshold: xvs_common::lower_threshold(dest.u_threshold, dest.l_threshold),
        slot: dest.slot,
        half: dest.half,
        stats: dest.stats,
    }
}

/// The lookup map's value for a table's used slots.
pub fn lookup_entry(slots: &[u16]) -> Box<LookupTable> {
    let mut table = Box::new(LookupTable {
        slots: [LOOKUP_NONE; LOOKUP_SLOTS],
    });
    for (slot, index) in table.slots.iter_mut().zip(slots) {
        *slot = *index;
    }
    table
}

/// The value of a services map (of set class `N`) for a service and the used part of its
/// set. (A plan keeps only the used part: a whole set is 5 KiB, and a restore of 10,000
/// services would hold 50 MB of them.)
pub fn service_entry<const N: usize>(
    service: ServiceValue,
    set: &[SetEntry],
    wrr_len: u32,
) -> Box<ServiceEntry<N>> {
    // Made on the heap (a large entry is 20 KiB).
    // SAFETY: a ServiceEntry is plain integers, for which all zeros is a valid value.
    let mut entry: Box<ServiceEntry<N>> = unsafe { Box::new_zeroed().assume_init() };
    entry.service = service;
    entry.set.count = set.len().min(N) as u32;
    entry.set.wrr_len = wrr_len;
    entry.set.index_of = [TREE_NONE; N];
    for (index, (slot, member)) in entry.set.entries.iter_mut().zip(set).enumerate() {
        *slot = *member;
        if let Some(of) = entry.set.index_of.get_mut(member.slot as usize) {
            *of = index as u16;
        }
    }
    entry
}

/// The wrr cycle of a service's real servers, no longer than the datapath stores: with
/// too long a period the weights are scaled down (keeping their proportions as nearly as
/// whole numbers can).
fn wrr_cycle(mut candidates: Vec<Candidate>) -> Vec<usize> {
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

/// Every service is of a protocol the datapath forwards: ipvsadm takes SCTP services
/// (`--sctp-service`), which xvs's datapath does not forward (its packets would go to the
/// director's stack), so one is refused rather than stored and listed for nothing.
fn check_protocols(after: &Table) -> Result<()> {
    let sctp = after.services.iter().find(|service| {
        matches!(
            service.key,
            xvs_core::model::ServiceKey::Inet {
                protocol: xvs_core::model::Protocol::Sctp,
                ..
            }
        )
    });
    match sctp {
        Some(_) => Err(Error::of(
            ErrorKind::Refused,
            "SCTP services are not forwarded by xvs (its datapath has TCP and UDP); nothing \
             was changed",
        )),
        None => Ok(()),
    }
}

/// Services fit the services map; services and real servers together fit the counter
/// slots (a real server's entries in the real-server array come with its slot).
fn check_capacity(after: &Table, counter_slots: u32) -> Result<()> {
    let dests = |t: &Table| t.services.iter().map(|s| s.dests.len()).sum::<usize>();
    let services = after.services.len();
    if services > MAX_SERVICES as usize {
        return Err(Error::of(
            ErrorKind::Full,
            format!("{services} services: more than this director's {MAX_SERVICES}"),
        ));
    }
    if services + dests(after) > counter_slots as usize {
        return Err(Error::of(
            ErrorKind::Full,
            format!(
                "{services} services and {} real servers: more than this director's \
                 {counter_slots} counter slots (set {} when creating it)",
                dests(after),
                crate::objects::COUNTER_SLOTS_ENV
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The plan against maps kept in memory: what a change writes, with no kernel.

    use xvs_core::{model::Timeouts, restore::restore, text::NoNames};

    use super::*;

    /// The director's maps, as plain collections, changed by [`Op`]s as the kernel's are.
    #[derive(Default)]
    struct Maps {
        /// Services: value, set, wrr cycle length (an empty set for a large one).
        services: HashMap<MapKey, (ServiceValue, Vec<SetEntry>, u32)>,
        /// The large services map's sets.
        large: HashMap<MapKey, (ServiceValue, Vec<SetEntry>, u32)>,
        dests: HashMap<u32, DestValue>,
        wrr: HashMap<WrrKey, u32>,
        lookups: HashMap<u32, Vec<u16>>,
        /// Scheduler states: (service id, large).
        sched_states: HashSet<(u32, bool)>,
        meta: HashMap<u32, u64>,
        /// Local addresses by service id.
        laddrs: HashMap<u32, Vec<(IpAddr, Option<String>)>>,
    }

    impl Maps {
        /// A new director's maps (`Director::find_or_create` writes these).
        fn new() -> Maps {
            let t = Timeouts::default();
            Maps {
                meta: HashMap::from([
                    (meta::NEXT_ID, 1),
                    (meta::TIMEOUT_TCP, u64::from(t.tcp)),
                    (meta::TIMEOUT_TCP_FIN, u64::from(t.tcp_fin)),
                    (meta::TIMEOUT_UDP, u64::from(t.udp)),
                ]),
                ..Maps::default()
            }
        }

        fn apply(&mut self, ops: &[Op]) {
            for op in ops {
                match op {
                    Op::ZeroCounters(_) | Op::TunnelSource(_) | Op::PrepareNextHops(_) => {}
                    Op::WriteDest(d) => drop(self.dests.insert(d.array_index(), *d)),
                    Op::ClearDest(slot) => {
                        for half in 0..2 {
                            self.dests.remove(&xvs_common::dest_index(*slot, half));
                        }
                    }
                    Op::WriteWrr(key, index) => drop(self.wrr.insert(*key, *index)),
                    Op::StartService { id, large } => {
                        self.sched_states.insert((*id, *large));
                    }
                    Op::WriteService {
                        key,
                        service,
                        set,
                        wrr_len,
                    } => {
                        let entry = (*service, set.clone(), *wrr_len);
                        if service.large != 0 {
                            self.large.insert(*key, entry);
                            self.services.insert(*key, (*service, Vec::new(), *wrr_len));
                        } else {
                            self.services.insert(*key, entry);
                        }
                    }
                    Op::DropWrr { set, len } => {
                        for position in 0..*len {
                            self.wrr.remove(&WrrKey {
                                set: *set,
                                position,
                            });
                        }
                    }
                    Op::WriteLookup { set, slots } => {
                        drop(self.lookups.insert(*set, slots.clone()))
                    }
                    Op::DropLookup(set) => drop(self.lookups.remove(set)),
                    Op::RemoveService(key) => drop(self.services.remove(key)),
                    Op::RemoveLargeService(key) => drop(self.large.remove(key)),
                    Op::DropSched { id, large } => drop(self.sched_states.remove(&(*id, *large))),
                    Op::SetMeta(slot, value) => drop(self.meta.insert(*slot, *value)),
                    Op::WriteLocalAddresses { id, laddrs } => {
                        drop(self.laddrs.insert(*id, laddrs.clone()))
                    }
                    Op::DropLocalAddresses(id) => drop(self.laddrs.remove(id)),
                }
            }
        }

        /// What `Director::load_for_change` reads from these maps.
        fn snapshot(&self) -> Snapshot {
            let meta = |slot| self.meta.get(&slot).copied().unwrap_or(0);
            let entries = self
                .services
                .iter()
                .map(|(key, (value, set, wrr_len))| {
                    let set = if value.large != 0 {
                        &self.large[key].1
                    } else {
                        set
                    };
                    assert_eq!(set.len(), value.dest_count as usize);
                    let dests = set
                        .iter()
                        .map(|m| self.dests[&xvs_common::dest_index(m.stats, m.half)])
                        .collect();
                    let laddrs = self.laddrs.get(&value.id).map_or_else(Vec::new, |l| {
                        l.iter()
                            .map(|(addr, ifname)| LocalAddress::new(*addr, ifname.clone()))
                            .collect()
                    });
                    (*key, *value, dests, *wrr_len, laddrs)
                })
                .collect();
            let timeouts = Timeouts {
                tcp: meta(meta::TIMEOUT_TCP) as u32,
                tcp_fin: meta(meta::TIMEOUT_TCP_FIN) as u32,
                udp: meta(meta::TIMEOUT_UDP) as u32,
            };
            let counters = [
                meta(meta::NEXT_ID),
                meta(meta::NEXT_STATS),
                meta(meta::STATS_USED),
            ];
            Snapshot::assemble(timeouts, counters, entries)
        }

        /// Plans the change from what the maps hold to `rules` applied to it, and applies it.
        fn change(&mut self, rules: &str) -> Result<(Vec<Op>, Table)> {
            let before = self.snapshot();
            let mut after = before.table.clone();
            restore(rules, &mut after, &NoNames, "test").expect("rules");
            let ops = plan(&before, &after, 4096, &|_| false)?;
            self.apply(&ops);
            Ok((ops, after))
        }
    }

    const SEED: &str = "\
-A -t 1.1.1.254:80 -s wrr
-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 2
-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m
-A -u 1.1.1.254:53 -s rr
-a -u 1.1.1.254:53 -r 192.168.1.10:53 -m
";

    fn seeded() -> Maps {
        let mut maps = Maps::new();
        maps.change(SEED).expect("seed");
        maps
    }

    fn count(ops: &[Op], which: fn(&Op) -> bool) -> usize {
        ops.iter().filter(|op| which(op)).count()
    }

    #[test]
    fn what_is_written_reads_back_as_the_same_table() {
        let mut maps = Maps::new();
        let (_, wanted) = maps.change(SEED).unwrap();
        assert_eq!(maps.snapshot().table, wanted);
    }

    #[test]
    fn no_change_writes_nothing() {
        let mut maps = seeded();
        let (ops, _) = maps.change("").unwrap();
        assert_eq!(ops, []);
    }

    #[test]
    fn a_new_service_writes_its_servers_and_counts_then_switches_in() {
        let mut maps = Maps::new();
        let (ops, _) = maps
            .change("-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 10.0.0.1")
            .unwrap();
        let kinds: Vec<&str> = ops
            .iter()
            .map(|op| match op {
                Op::WriteDest(_) => "dest",
                Op::StartService { .. } => "counts",
                Op::WriteService { .. } => "service",
                Op::SetMeta(..) => "meta",
                Op::PrepareNextHops(_) => "hops",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["dest", "counts", "service", "meta", "meta", "meta", "hops"]
        );
    }

    #[test]
    fn a_weight_change_rewrites_that_server_and_its_service_only() {
        let mut maps = seeded();
        let before = maps.snapshot();
        let (ops, _) = maps
            .change("-e -t 1.1.1.254:80 -r 192.168.1.20:80 -m -w 3")
            .unwrap();
        let written: Vec<&DestValue> = ops
            .iter()
            .filter_map(|op| match op {
                Op::WriteDest(d) => Some(d),
                _ => None,
            })
            .collect();
        // The new set lists both servers; the unchanged one stays where the live set reads
        // it, the changed one goes to its other half.
        assert_eq!(written.len(), 2);
        let old = &before
            .stored
            .values()
            .find(|s| s.dests.len() == 2)
            .unwrap()
            .dests;
        let by_addr = |list: &[DestValue], last: u8| -> DestValue {
            *list.iter().find(|d| d.addr[3] == last).unwrap()
        };
        let written: Vec<DestValue> = written.into_iter().copied().collect();
        assert_eq!(by_addr(&written, 10), by_addr(old, 10));
        let (new, was) = (by_addr(&written, 20), by_addr(old, 20));
        assert_eq!((new.weight, new.id, new.slot), (3, was.id, was.slot));
        assert_ne!(new.half, was.half);
        assert_eq!(count(&ops, |op| matches!(op, Op::WriteService { .. })), 1);
        assert_eq!(count(&ops, |op| matches!(op, Op::DropWrr { .. })), 1);
        assert_eq!(count(&ops, |op| matches!(op, Op::StartService { .. })), 0);
        assert_eq!(count(&ops, |op| matches!(op, Op::PrepareNextHops(_))), 0);
    }

    #[test]
    fn the_switch_comes_after_the_new_set_and_before_the_old_cycle_goes() {
        let mut maps = seeded();
        let (ops, _) = maps
            .change("-a -t 1.1.1.254:80 -r 192.168.1.30:80 -m")
            .unwrap();
        let at = |which: fn(&Op) -> bool| ops.iter().position(which).unwrap();
        let switch = at(|op| matches!(op, Op::WriteService { .. }));
        assert!(at(|op| matches!(op, Op::WriteDest(_))) < switch);
        assert!(at(|op| matches!(op, Op::WriteWrr(..))) < switch);
        assert!(at(|op| matches!(op, Op::DropWrr { .. })) > switch);
    }

    #[test]
    fn a_deleted_service_takes_its_cycle_and_counts_with_it() {
        let mut maps = seeded();
        let (ops, _) = maps.change("-D -t 1.1.1.254:80").unwrap();
        assert!(matches!(
            ops[..],
            [
                Op::RemoveService(_),
                Op::DropWrr { len: 3, .. },
                Op::DropSched { large: false, .. },
                Op::ClearDest(_),
                Op::ClearDest(_),
            ]
        ));
        assert_eq!(maps.services.len(), 1);
        assert_eq!(maps.dests.len(), 1, "its real servers' entries are cleared");
        assert!(maps.wrr.is_empty(), "the wrr cycle is gone");
    }

    #[test]
    fn a_timeout_change_writes_only_its_slot() {
        let mut maps = seeded();
        let (ops, _) = maps.change("--set 0 0 60").unwrap();
        assert_eq!(ops, [Op::SetMeta(meta::TIMEOUT_UDP, 60)]);
    }

    #[test]
    fn refusals_come_before_any_write() {
        let maps = seeded();
        let before = maps.snapshot();
        let mut too_many = before.table.clone();
        restore(
            &servers(1..=MAX_SET_LARGE as u32 + 1),
            &mut too_many,
            &NoNames,
            "test",
        )
        .unwrap();
        let refused = plan(&before, &too_many, 4096, &|_| false).err().unwrap();
        assert_eq!(refused.kind(), ErrorKind::Refused);
        assert!(refused.to_string().contains("at most 1024 real servers"));
        let full = plan(&before, &too_many, 8, &|_| false).err().unwrap();
        assert_eq!(full.kind(), ErrorKind::Full);
        let mut sctp = before.table.clone();
        restore(
            "-A --sctp-service 1.1.1.254:80 -s rr",
            &mut sctp,
            &NoNames,
            "test",
        )
        .unwrap();
        let refused = plan(&before, &sctp, 4096, &|_| false).err().unwrap();
        assert_eq!(refused.kind(), ErrorKind::Refused);
        assert!(
            refused
                .to_string()
                .contains("SCTP services are not forwarded")
        );
    }

    /// `-a` lines adding real servers `numbers` to the UDP service of [`SEED`].
    fn servers(numbers: std::ops::RangeInclusive<u32>) -> String {
        numbers
            .map(|i| {
                format!(
                    "-a -u 1.1.1.254:53 -r 10.0.{}.{}:53\n",
                    i / 200,
                    i % 200 + 1
                )
            })
            .collect()
    }

    #[test]
    fn a_set_that_outgrows_the_services_map_moves_to_the_large_one_and_back() {
        let mut maps = seeded();
        // 256 real servers: still in the services map.
        let (ops, _) = maps.change(&servers(2..=MAX_SET as u32)).unwrap();
        assert!(!ops.iter().any(|op| matches!(op, Op::StartService { .. })));
        assert!(maps.large.is_empty());
        // One more: the set moves, with a scheduler state of its class, and the old one
        // goes after the switch.
        let (ops, wanted) = maps.change(&servers(257..=257)).unwrap();
        let at = |which: &dyn Fn(&Op) -> bool| ops.iter().position(which).unwrap();
        let start = at(&|op| matches!(op, Op::StartService { large: true, .. }));
        let switch = at(&|op| matches!(op, Op::WriteService { service, .. } if service.large != 0));
        let drop = at(&|op| matches!(op, Op::DropSched { large: false, .. }));
        assert!(start < switch && switch < drop, "{start} {switch} {drop}");
        assert_eq!(maps.large.len(), 1);
        assert_eq!(maps.snapshot().table, wanted);
        assert!(maps.sched_states.iter().any(|&(_, large)| large));
        // Tree slots use the large class's room.
        let set = &maps.large.values().next().unwrap().1;
        assert_eq!(set.len(), MAX_SET + 1);
        assert!(set.iter().all(|e| (e.slot as usize) < MAX_SET_LARGE));
        // Back under: the large entry and its state go, and every tree slot fits again.
        let (ops, wanted) = maps
            .change("-d -u 1.1.1.254:53 -r 10.0.0.3:53\n-d -u 1.1.1.254:53 -r 10.0.0.4:53")
            .unwrap();
        assert_eq!(count(&ops, |op| matches!(op, Op::RemoveLargeService(_))), 1);
        assert_eq!(
            count(&ops, |op| matches!(op, Op::DropSched { large: true, .. })),
            1
        );
        assert!(maps.large.is_empty());
        assert_eq!(maps.snapshot().table, wanted);
        let (value, set, _) = maps
            .services
            .values()
            .find(|(_, set, _)| set.len() > 2)
            .unwrap();
        assert_eq!((value.large, set.len()), (0, MAX_SET - 1));
        let mut slots: Vec<u16> = set.iter().map(|e| e.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), set.len(), "tree slots stay distinct");
        assert!(slots.iter().all(|&slot| (slot as usize) < MAX_SET));
    }

    #[test]
    fn a_large_service_deleted_takes_its_entries_in_both_maps() {
        let mut maps = seeded();
        maps.change(&servers(2..=300)).unwrap();
        let (ops, _) = maps.change("-D -u 1.1.1.254:53").unwrap();
        assert_eq!(count(&ops, |op| matches!(op, Op::RemoveService(_))), 1);
        assert_eq!(count(&ops, |op| matches!(op, Op::RemoveLargeService(_))), 1);
        assert!(maps.large.is_empty());
        assert!(!maps.sched_states.iter().any(|&(_, large)| large));
    }
}
