//! Next hops the datapath needs when the kernel's FIB lookup cannot serve it.
//!
//! `bpf_fib_lookup` refuses to answer on an interface where forwarding is off, and a DR
//! director (like IPVS's) does not need forwarding. There the datapath falls back to the
//! neighbour map, which user space fills when real servers are added: the kernel keeps
//! those neighbours resolved (managed entries), and their MACs are copied into the map.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use xvs_common::Neighbour;

use crate::netlink;

/// How long a change waits, in all, for new real servers' neighbours to resolve.
const PATIENCE: Duration = Duration::from_millis(1500);

/// Whether forwarding is on for interface `index` (as `bpf_fib_lookup` checks it).
pub fn forwarding(index: u32, ipv4: bool) -> bool {
    let Some(name) = netlink::interfaces()
        .ok()
        .and_then(|all| all.into_iter().find(|i| i.index == index))
        .map(|i| i.name)
    else {
        return false;
    };
    let path = if ipv4 {
        format!("/proc/sys/net/ipv4/conf/{name}/forwarding")
    } else {
        format!("/proc/sys/net/ipv6/conf/{name}/forwarding")
    };
    std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1")
}

/// Waits (up to [`PATIENCE`] in all) for the next hops of `servers` — (server, interface,
/// next hop) — to resolve; what resolved, by server.
pub fn wait_for(servers: &[(IpAddr, u32, IpAddr)]) -> Vec<(IpAddr, Neighbour)> {
    let deadline = Instant::now() + PATIENCE;
    let mut resolved = Vec::new();
    let mut waiting: Vec<(IpAddr, u32, IpAddr)> = servers.to_vec();
    while !waiting.is_empty() {
        waiting.retain(|&(server, oif, hop)| {
            let Ok(Some(dmac)) = netlink::neighbour_mac(oif, hop) else {
                return true;
            };
            let smac = netlink::interface_mac(oif)
                .ok()
                .flatten()
                .unwrap_or_default();
            resolved.push((
                server,
                Neighbour {
                    ifindex: oif,
                    smac,
                    dmac,
                },
            ));
            false
        });
        if Instant::now() >= deadline {
            break;
        }
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    resolved
}
