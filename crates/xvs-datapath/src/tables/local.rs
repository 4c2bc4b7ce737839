//! IPVS's local node: a real server whose address is one of the director's own is served
//! by the director's own stack, whatever method was asked for (IPVS's
//! `__ip_vs_update_dest` makes it `LOCALNODE` when the address is `RTN_LOCAL`; ipvsadm
//! lists it as `Local`). The datapath passes its packets to the stack unchanged, so such a
//! server takes the service's own port.

use std::{collections::HashSet, net::IpAddr};

use xvs_core::{
    model::{Forward, ServiceKey},
    table::Table,
};

use crate::{Error, ErrorKind, Result, netlink};

/// `after` with its real servers at the director's own addresses made local nodes, or
/// `None` if it has none to change (the common case: nothing copied). Refused if such a
/// server asks for another port than its service's.
pub(super) fn with_local_nodes(after: &Table) -> Result<Option<Table>> {
    if after.services.iter().all(|s| s.dests.is_empty()) {
        return Ok(None);
    }
    let own: HashSet<IpAddr> = netlink::all_addresses()
        .map_err(|e| Error::new("cannot list the interfaces' addresses", e))?
        .into_iter()
        .map(|(_, address, _)| address)
        .collect();
    let is_local = |addr: &IpAddr| addr.is_loopback() || own.contains(addr);
    let mut changed = None::<Table>;
    for (s, service) in after.services.iter().enumerate() {
        for (d, dest) in service.dests.iter().enumerate() {
            if !is_local(&dest.addr) || dest.forward == Forward::Local {
                continue;
            }
            let port = match service.key {
                ServiceKey::Inet { port, .. } => port,
                ServiceKey::Fwmark { .. } => 0,
            };
            if dest.port != 0 && port != 0 && dest.port != port {
                return Err(Error::of(
                    ErrorKind::Refused,
                    format!(
                        "real server {} is this director's own address: it is served by the \
                         director's stack on the service's port {port}, not {} (nothing was \
                         changed)",
                        dest.addr, dest.port
                    ),
                ));
            }
            let table = changed.get_or_insert_with(|| after.clone());
            table.services[s].dests[d].forward = Forward::Local;
        }
    }
    Ok(changed)
}
