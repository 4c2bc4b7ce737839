//! FULLNAT services' local addresses in the datapath's `XVS_LADDRS` map: read into the
//! core model, written from it, and what the datapath counted for each (`--get-laddr`).

use std::{collections::HashMap, net::IpAddr};

use xvs_common::{FAMILY_V4, FAMILY_V6, LocalAddresses, MAX_LOCAL_ADDRESSES};
use xvs_core::{
    model::{LocalAddress, ServiceKey},
    table::Table,
};

use super::{
    encode::{decode_addr, encode_addr},
    plan::Op,
};
use crate::{Director, Error, Result, netlink};

/// Interface names by index, read once when first needed.
#[derive(Default)]
pub(super) struct InterfaceNames(Option<HashMap<u32, String>>);

impl InterfaceNames {
    fn name(&mut self, index: u32) -> Option<String> {
        let names = self.0.get_or_insert_with(|| {
            netlink::interfaces()
                .map(|all| all.into_iter().map(|i| (i.index, i.name)).collect())
                .unwrap_or_default()
        });
        names.get(&index).cloned()
    }
}

/// The index of interface `name`.
fn interface_index(name: &str) -> Result<u32> {
    netlink::interfaces()
        .map_err(|e| Error::new("cannot list interfaces", e))?
        .into_iter()
        .find(|i| i.name == name)
        .map(|i| i.index)
        .ok_or_else(|| Error::plain(format!("no interface {name} for a local address (-F)")))
}

/// Refuses a change whose local addresses name an interface this namespace lacks.
pub(super) fn check_interfaces(ops: &[Op]) -> Result<()> {
    for op in ops {
        if let Op::WriteLocalAddresses { laddrs, .. } = op {
            for name in laddrs.iter().filter_map(|(_, name)| name.as_deref()) {
                interface_index(name)?;
            }
        }
    }
    Ok(())
}

impl Director {
    /// Service `id`'s local addresses, as the map holds them.
    pub(super) fn local_addresses(
        &self,
        id: u32,
        names: &mut InterfaceNames,
    ) -> Result<Vec<LocalAddress>> {
        let Some(Ok(pool)) = self.laddrs.as_ref().map(|m| m.get(&id, 0)) else {
            return Ok(Vec::new());
        };
        let count = (pool.count as usize).min(MAX_LOCAL_ADDRESSES);
        Ok((0..count)
            .map(|i| {
                let mut laddr = LocalAddress::new(
                    decode_addr(&pool.addrs[i], pool.family),
                    (pool.ifindexes[i] != 0)
                        .then(|| names.name(pool.ifindexes[i]))
                        .flatten(),
                );
                laddr.conflicts = pool.conflicts[i];
                laddr
            })
            .collect())
    }

    /// Writes service `id`'s local addresses, keeping the conflicts counted for those that
    /// stay.
    pub(super) fn write_local_addresses(
        &mut self,
        id: u32,
        laddrs: &[(IpAddr, Option<String>)],
    ) -> Result<()> {
        let Some(map) = self.laddrs.as_mut() else {
            return Err(Error::plain(
                "this director's program has no FULLNAT maps: upgrade it (`xvsd upgrade`)",
            ));
        };
        let old = map.get(&id, 0).ok();
        let mut pool = LocalAddresses::default();
        for (i, (addr, ifname)) in laddrs.iter().take(MAX_LOCAL_ADDRESSES).enumerate() {
            let (encoded, family) = encode_addr(addr);
            pool.addrs[i] = encoded;
            pool.family = family;
            pool.ifindexes[i] = match ifname {
                Some(name) => interface_index(name)?,
                None => 0,
            };
            if let Some(old) = &old
                && let Some(j) = (0..(old.count as usize).min(MAX_LOCAL_ADDRESSES))
                    .find(|&j| old.addrs[j] == encoded && old.family == family)
            {
                pool.conflicts[i] = old.conflicts[j];
            }
            pool.count = i as u32 + 1;
        }
        debug_assert!(pool.family == FAMILY_V4 || pool.family == FAMILY_V6);
        map.insert(id, pool, 0)
            .map_err(|e| Error::new("cannot write a service's local addresses", e))
    }

    /// Fills in the connections leaving from each local address of `table` (its
    /// `conns`): FULLNAT request entries by the local address they took, counted from the
    /// map of the entries' other sides (a request entry's is its local address; its key
    /// is the client's packet, to the service's address and port).
    pub fn count_local_address_use(&self, table: &mut Table) -> Result<()> {
        let mut by_service: HashMap<(IpAddr, u16, u8), HashMap<IpAddr, u64>> = HashMap::new();
        let mut by_addr: HashMap<IpAddr, u64> = HashMap::new();
        for (key, peer) in self.fullnat_entries()? {
            let local = decode_addr(&peer.addr, peer.family);
            let vip = decode_addr(&key.dst, key.family);
            *by_service
                .entry((vip, u16::from_be(key.dport), key.protocol))
                .or_default()
                .entry(local)
                .or_default() += 1;
            *by_addr.entry(local).or_default() += 1;
        }
        for service in &mut table.services {
            let counts = match service.key {
                ServiceKey::Inet {
                    addr,
                    port,
                    protocol,
                } => by_service.get(&(addr, port, protocol.number())),
                // A fwmark service's VIPs are many: its addresses' connections in all.
                ServiceKey::Fwmark { .. } => Some(&by_addr),
            };
            for laddr in &mut service.laddrs {
                laddr.conns = counts
                    .and_then(|c| c.get(&laddr.addr))
                    .copied()
                    .unwrap_or(0);
            }
        }
        Ok(())
    }
}
