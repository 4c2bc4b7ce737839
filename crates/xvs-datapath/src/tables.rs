//! The IPVS table in the director's maps: read into the core model ([`Director::load`]) and
//! written back as the fewest map changes ([`Director::store`]).
//!
//! A service's real servers are written as a new set before the service entry is switched
//! to it and the old set dropped: the datapath sees a service's old list or its new one,
//! never a mix. Ids (of services, real servers and sets) come from one counter in the meta
//! map and are never reused, so counters never land on the wrong entry.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aya::{
    maps::{MapError, PerCpuValues},
    util::nr_cpus,
};
use xvs_common::{
    Counters, DestKey, DestValue, FAMILY_V4, FAMILY_V6, MAX_DESTS, MAX_SERVICES, MAX_STATS,
    ServiceKey as MapKey, ServiceValue, meta,
};
use xvs_core::{
    model::{
        ConnCounts, Dest, Family, Forward, PersistenceEngine, Protocol, Service, ServiceKey, Stats,
        Timeouts, Tunnel, TunnelChecksum, TunnelType,
    },
    sched::Scheduler,
    table::Table,
};

use crate::{Director, Error, Result};

/// A table as read from the maps, with what is needed to write changes back.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub table: Table,
    stored: HashMap<MapKey, StoredService>,
    next_id: u64,
}

#[derive(Debug, Clone)]
struct StoredService {
    value: ServiceValue,
    dests: Vec<DestValue>,
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

fn encode_addr(addr: &IpAddr) -> ([u8; 16], u8) {
    let mut bytes = [0u8; 16];
    match addr {
        IpAddr::V4(v4) => {
            bytes[..4].copy_from_slice(&v4.octets());
            (bytes, FAMILY_V4)
        }
        IpAddr::V6(v6) => (v6.octets(), FAMILY_V6),
    }
}

fn decode_addr(bytes: &[u8; 16], family: u8) -> IpAddr {
    if family == FAMILY_V6 {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

fn family_code(family: Family) -> u8 {
    match family {
        Family::V4 => FAMILY_V4,
        Family::V6 => FAMILY_V6,
    }
}

/// The map key of a service.
pub fn encode_key(key: &ServiceKey) -> MapKey {
    match *key {
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            let (addr, family) = encode_addr(&addr);
            MapKey {
                addr,
                fwmark: 0,
                port: port.to_be(),
                family,
                protocol: protocol.number(),
            }
        }
        ServiceKey::Fwmark { mark, family } => MapKey {
            fwmark: mark,
            family: family_code(family),
            ..MapKey::default()
        },
    }
}

fn decode_key(key: &MapKey) -> Option<ServiceKey> {
    if key.fwmark != 0 {
        return Some(ServiceKey::Fwmark {
            mark: key.fwmark,
            family: if key.family == FAMILY_V6 {
                Family::V6
            } else {
                Family::V4
            },
        });
    }
    Some(ServiceKey::Inet {
        protocol: Protocol::from_number(key.protocol)?,
        addr: decode_addr(&key.addr, key.family),
        port: u16::from_be(key.port),
    })
}

fn encode_service(service: &Service) -> ServiceValue {
    ServiceValue {
        flags: service.flags,
        timeout: service.timeout,
        netmask: service.netmask,
        scheduler: service.scheduler.code(),
        pe: service.pe.map_or(0, |_| 1),
        ..ServiceValue::default()
    }
}

fn encode_dest(dest: &Dest) -> DestValue {
    let (addr, family) = encode_addr(&dest.addr);
    DestValue {
        addr,
        id: 0,
        weight: dest.weight,
        last_weight: dest.last_weight,
        u_threshold: dest.u_threshold,
        l_threshold: dest.l_threshold,
        port: dest.port.to_be(),
        tun_port: dest.tunnel.port,
        family,
        forward: dest.forward.code(),
        tun_type: dest.tunnel.kind.code(),
        tun_csum: dest.tunnel.checksum.code(),
    }
}

fn decode_dest(value: &DestValue, stats: Stats) -> Dest {
    Dest {
        addr: decode_addr(&value.addr, value.family),
        port: u16::from_be(value.port),
        forward: Forward::from_code(value.forward).unwrap_or(Forward::Route),
        weight: value.weight,
        last_weight: value.last_weight,
        u_threshold: value.u_threshold,
        l_threshold: value.l_threshold,
        tunnel: Tunnel {
            kind: TunnelType::from_code(value.tun_type).unwrap_or(TunnelType::Ipip),
            port: value.tun_port,
            checksum: TunnelChecksum::from_code(value.tun_csum).unwrap_or(TunnelChecksum::None),
        },
        conns: ConnCounts::default(),
        stats,
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
    fn counters_of(&self, id: u32) -> Result<Stats> {
        match self.stats.get(&id, 0) {
            Ok(per_cpu) => {
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
            Err(MapError::KeyNotFound) => Ok(Stats::default()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(Stats::default())
            }
            Err(e) => Err(Error::new("cannot read counters", e)),
        }
    }

    fn zero_counters(&mut self, id: u32) -> Result<()> {
        let cpus = nr_cpus().map_err(|(_, e)| Error::new("cannot count CPUs", e))?;
        let zeros = PerCpuValues::try_from(vec![Counters::default(); cpus])
            .map_err(|e| Error::new("cannot build counters", e))?;
        self.stats
            .insert(id, zeros, 0)
            .map_err(map_error("cannot zero counters"))
    }

    fn forget_counters(&mut self, id: u32) -> Result<()> {
        removed(self.stats.remove(&id), "cannot drop counters")
    }

    fn remove_dest_set(&mut self, set: u32, count: u32) -> Result<()> {
        for index in 0..count {
            removed(
                self.dests.remove(&DestKey { set, index }),
                "cannot remove a real server",
            )?;
        }
        Ok(())
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
        let mut entries = Vec::new();
        for entry in self.services.iter() {
            let (key, value) = entry.map_err(map_error("cannot read the services"))?;
            entries.push((key, value));
        }
        entries.sort_by_key(|(_, value)| value.order);
        let mut services = Vec::with_capacity(entries.len());
        let mut stored = HashMap::with_capacity(entries.len());
        for (map_key, value) in entries {
            let Some(key) = decode_key(&map_key) else {
                continue;
            };
            let mut dest_values = Vec::with_capacity(value.dest_count as usize);
            let mut dests = Vec::with_capacity(value.dest_count as usize);
            for index in 0..value.dest_count {
                let dest = self
                    .dests
                    .get(
                        &DestKey {
                            set: value.dest_set,
                            index,
                        },
                        0,
                    )
                    .map_err(map_error("cannot read a real server"))?;
                dests.push(decode_dest(&dest, counters_of(dest.id)?));
                dest_values.push(dest);
            }
            services.push(Service {
                key,
                scheduler: Scheduler::from_code(value.scheduler).unwrap_or(Scheduler::Wlc),
                flags: value.flags,
                timeout: value.timeout,
                netmask: value.netmask,
                pe: (value.pe == 1).then_some(PersistenceEngine::Sip),
                dests,
                stats: counters_of(value.id)?,
            });
            stored.insert(
                map_key,
                StoredService {
                    value,
                    dests: dest_values,
                },
            );
        }
        Ok(Snapshot {
            table: Table::from_services(services, timeouts),
            stored,
            next_id,
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
        check_capacity(before, after)?;
        self.write(before, after).map_err(StoreError::Map)
    }

    fn write(&mut self, before: &Snapshot, after: &Table) -> Result<()> {
        let mut next_id = before.next_id;
        let mut take_id = || {
            let id = next_id as u32;
            next_id += 1;
            id
        };
        let before_stats: HashMap<MapKey, (&Service, &StoredService)> = before
            .table
            .services
            .iter()
            .filter_map(|s| {
                let key = encode_key(&s.key);
                before.stored.get(&key).map(|stored| (key, (s, stored)))
            })
            .collect();
        let mut kept = Vec::with_capacity(after.services.len());
        for service in &after.services {
            let key = encode_key(&service.key);
            kept.push(key);
            let old = before_stats.get(&key);
            let mut value = encode_service(service);
            match old {
                Some((_, stored)) => {
                    value.id = stored.value.id;
                    value.order = stored.value.order;
                }
                None => {
                    value.id = take_id();
                    value.order = take_id();
                }
            }
            let dests: Vec<DestValue> = service
                .dests
                .iter()
                .map(|dest| {
                    let mut encoded = encode_dest(dest);
                    encoded.id = old
                        .and_then(|(_, stored)| {
                            stored
                                .dests
                                .iter()
                                .find(|d| d.addr == encoded.addr && d.port == encoded.port)
                                .map(|d| d.id)
                        })
                        .unwrap_or_else(&mut take_id);
                    encoded
                })
                .collect();
            let unchanged = old.is_some_and(|(_, stored)| {
                same_parameters(&stored.value, &value) && stored.dests == dests
            });
            if !unchanged {
                value.dest_set = take_id();
                value.dest_count = dests.len() as u32;
                for (index, dest) in dests.iter().enumerate() {
                    let dest_key = DestKey {
                        set: value.dest_set,
                        index: index as u32,
                    };
                    self.dests
                        .insert(dest_key, *dest, 0)
                        .map_err(map_error("cannot write a real server"))?;
                }
                self.services
                    .insert(key, value, 0)
                    .map_err(map_error("cannot write a service"))?;
                if let Some((_, stored)) = old {
                    self.remove_dest_set(stored.value.dest_set, stored.value.dest_count)?;
                    for gone in stored
                        .dests
                        .iter()
                        .filter(|d| !dests.iter().any(|n| n.id == d.id))
                    {
                        self.forget_counters(gone.id)?;
                    }
                }
            }
            // -Z: counters that were read as non-zero and now are zero.
            if let Some((old_service, _)) = old {
                if old_service.stats != Stats::default() && service.stats == Stats::default() {
                    self.zero_counters(value.id)?;
                }
                for (dest, encoded) in service.dests.iter().zip(&dests) {
                    let was = old_service
                        .dests
                        .iter()
                        .find(|d| d.addr == dest.addr && d.port == dest.port);
                    if was.is_some_and(|w| w.stats != Stats::default())
                        && dest.stats == Stats::default()
                    {
                        self.zero_counters(encoded.id)?;
                    }
                }
            }
        }
        for (key, (_, stored)) in &before_stats {
            if kept.contains(key) {
                continue;
            }
            removed(self.services.remove(key), "cannot remove a service")?;
            self.remove_dest_set(stored.value.dest_set, stored.value.dest_count)?;
            self.forget_counters(stored.value.id)?;
            for dest in &stored.dests {
                self.forget_counters(dest.id)?;
            }
        }
        let t = after.timeouts;
        for (slot, value) in [
            (meta::TIMEOUT_TCP, t.tcp),
            (meta::TIMEOUT_TCP_FIN, t.tcp_fin),
            (meta::TIMEOUT_UDP, t.udp),
        ] {
            self.set_meta(slot, u64::from(value))?;
        }
        self.set_meta(meta::NEXT_ID, next_id)
    }
}

fn check_capacity(before: &Snapshot, after: &Table) -> std::result::Result<(), StoreError> {
    let dests = |t: &Table| t.services.iter().map(|s| s.dests.len()).sum::<usize>();
    let largest = after
        .services
        .iter()
        .map(|s| s.dests.len())
        .max()
        .unwrap_or(0);
    let services = after.services.len();
    let peak_dests = dests(&before.table).max(dests(after)) + largest;
    if services > MAX_SERVICES as usize {
        return Err(StoreError::Full(format!(
            "{services} services: more than this director's {MAX_SERVICES}"
        )));
    }
    if peak_dests > MAX_DESTS as usize || services + dests(after) > MAX_STATS as usize {
        return Err(StoreError::Full(format!(
            "{} real servers: more than this director's {} can hold",
            dests(after),
            MAX_DESTS
        )));
    }
    Ok(())
}
