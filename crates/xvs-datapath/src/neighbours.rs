//! Next hops the datapath needs when the kernel's FIB lookup cannot serve it.
//!
//! `bpf_fib_lookup` refuses to answer on an interface where forwarding is off, and a DR
//! director (like IPVS's) does not need forwarding. There the datapath falls back to the
//! neighbour map, which user space fills when real servers are added: the kernel keeps
//! those neighbours resolved (managed entries), and their MACs are copied into the map.
//!
//! A real server can be added before its neighbour resolves (it is down, booting, or the
//! first requests were lost), and a real server's MAC can change (a replaced machine, a
//! migrated VM). The kernel follows both by itself, and the datapath asks it as from `lo`
//! (which [`let_lo_forward`] lets forward) so it learns both without user space. Where
//! that cannot be turned on, [`NextHops`] copies what the kernel learns into the map, and
//! xvsd runs it every few seconds.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    time::{Duration, Instant},
};

use xvs_common::Neighbour;

use crate::{Director, Error, Result, lock::TableLock, netlink, tables::encode::encode_addr};

/// How long a real server's route is trusted before it is asked again.
const ROUTE_FRESH: Duration = Duration::from_secs(30);

/// How long a change waits, in all, for new real servers' neighbours to resolve.
const PATIENCE: Duration = Duration::from_millis(1500);

/// Whether forwarding is on for interface `index` (as `bpf_fib_lookup` checks it).
pub(crate) fn forwarding(index: u32, ipv4: bool) -> bool {
    netlink::interfaces()
        .ok()
        .and_then(|all| all.into_iter().find(|i| i.index == index))
        .is_some_and(|i| forwarding_named(&i.name, ipv4))
}

fn forwarding_named(name: &str, ipv4: bool) -> bool {
    let path = if ipv4 {
        format!("/proc/sys/net/ipv4/conf/{name}/forwarding")
    } else {
        format!("/proc/sys/net/ipv6/conf/{name}/forwarding")
    };
    std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1")
}

/// Sets the kernel's switch at `path` (a file under /proc/sys) to 1 unless it is already.
pub(crate) fn switch_on(path: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1")
}

/// Lets the datapath ask the kernel for next hops where forwarding is off: it asks as
/// from `lo` when the packet's own interface does not forward, and the kernel answers
/// only for an interface that does. Forwarding on `lo` forwards nothing (`lo` receives
/// only what the host sends to its own addresses). Best effort: where /proc/sys is read
/// only, the neighbour map still serves.
pub(crate) fn let_lo_forward(ipv4: bool) {
    let family = if ipv4 { "ipv4" } else { "ipv6" };
    let _ = switch_on(&format!("/proc/sys/net/{family}/conf/lo/forwarding"));
}

/// Waits (up to [`PATIENCE`] in all) for the next hops of `servers` — (server, interface,
/// next hop) — to resolve; what resolved, by server.
pub(crate) fn wait_for(servers: &[(IpAddr, u32, IpAddr)]) -> Vec<(IpAddr, Neighbour)> {
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

/// A real server's way out as the kernel routes it.
#[derive(Debug, Clone, Copy)]
struct Way {
    oif: u32,
    next_hop: IpAddr,
}

/// A change a refresh made to the neighbour map, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopChange {
    /// The real server's next hop resolved: new connections to it can be forwarded.
    Resolved { server: IpAddr, mac: [u8; 6] },
    /// The next hop answers from another MAC (or interface) than before.
    Moved {
        server: IpAddr,
        was: [u8; 6],
        now: [u8; 6],
    },
}

impl std::fmt::Display for HopChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mac = |m: &[u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        match self {
            HopChange::Resolved { server, mac: m } => {
                write!(f, "next hop of real server {server} resolved: {}", mac(m))
            }
            HopChange::Moved { server, was, now } => write!(
                f,
                "next hop of real server {server} moved from {} to {}",
                mac(was),
                mac(now)
            ),
        }
    }
}

/// Keeps the director's neighbour map as the kernel's neighbour table says, for the real
/// servers whose interface has forwarding off (the others are served by the FIB lookup).
/// Routes are remembered for [`ROUTE_FRESH`]; each refresh reads the neighbour table once.
#[derive(Debug, Default)]
pub struct NextHops {
    ways: HashMap<IpAddr, (Instant, Option<Way>)>,
}

impl NextHops {
    pub fn new() -> NextHops {
        NextHops::default()
    }

    /// Brings this namespace's neighbour map up to date: writes next hops that resolved
    /// or moved, forgets those of real servers that are gone or whose interface forwards,
    /// and asks the kernel to keep resolving those it lost. Skipped (no change) while
    /// another process changes the table: the next refresh catches up.
    pub fn refresh(&mut self) -> Result<Vec<HopChange>> {
        let Ok(_lock) = TableLock::acquire(Duration::from_millis(100)) else {
            return Ok(Vec::new());
        };
        let Some(mut director) = Director::find()? else {
            self.ways.clear();
            return Ok(Vec::new());
        };
        let table = director.load_for_change()?.table;
        let servers: HashSet<IpAddr> = table
            .services
            .iter()
            .flat_map(|s| s.dests.iter().map(|d| d.addr))
            .collect();
        self.ways.retain(|server, _| servers.contains(server));
        let kernel = netlink::neighbours().map_err(|e| Error::new("cannot read neighbours", e))?;
        let interfaces =
            netlink::interfaces().map_err(|e| Error::new("cannot list interfaces", e))?;
        let mut forwards: HashMap<(u32, bool), bool> = HashMap::new();
        let mut own_macs: HashMap<u32, [u8; 6]> = HashMap::new();
        let mut wanted = HashSet::new();
        let mut changes = Vec::new();
        for &server in &servers {
            let Some(way) = self.way(server) else {
                continue;
            };
            let forwarding = *forwards
                .entry((way.oif, server.is_ipv4()))
                .or_insert_with(|| {
                    interfaces
                        .iter()
                        .find(|i| i.index == way.oif)
                        .is_some_and(|i| forwarding_named(&i.name, server.is_ipv4()))
                });
            if forwarding {
                continue;
            }
            let (key, _) = encode_addr(&server);
            wanted.insert(key);
            let entry = kernel
                .iter()
                .find(|n| n.ifindex == way.oif && n.addr == way.next_hop);
            let Some(dmac) = entry.and_then(|n| n.resolved_mac()) else {
                // Lost (flushed, or never made): the kernel is asked again. A failed managed
                // entry is probed again by the kernel itself. What the map holds stays until
                // a new answer comes.
                if entry.is_none() {
                    let _ = netlink::keep_neighbour_resolved(way.oif, way.next_hop);
                }
                continue;
            };
            let smac = match own_macs.get(&way.oif) {
                Some(mac) => *mac,
                None => {
                    let mac = netlink::interface_mac(way.oif)
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    own_macs.insert(way.oif, mac);
                    mac
                }
            };
            let hop = Neighbour {
                ifindex: way.oif,
                smac,
                dmac,
            };
            let held = director.neighbours.get(&key, 0).ok();
            if held == Some(hop) {
                continue;
            }
            director
                .neighbours
                .insert(key, hop, 0)
                .map_err(|e| Error::new("cannot write a neighbour", e))?;
            changes.push(match held {
                Some(was) => HopChange::Moved {
                    server,
                    was: was.dmac,
                    now: dmac,
                },
                None => HopChange::Resolved { server, mac: dmac },
            });
        }
        let stale: Vec<[u8; 16]> = director
            .neighbours
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| !wanted.contains(k))
            .collect();
        for key in stale {
            let _ = director.neighbours.remove(&key);
        }
        Ok(changes)
    }

    /// The route to `server`, asked of the kernel when not known or too old.
    fn way(&mut self, server: IpAddr) -> Option<Way> {
        if let Some((asked, way)) = self.ways.get(&server)
            && asked.elapsed() < ROUTE_FRESH
        {
            return *way;
        }
        let way = netlink::route_to(server)
            .ok()
            .filter(|r| r.oif != 0 && r.oif != crate::LOOPBACK_INDEX)
            .map(|r| Way {
                oif: r.oif,
                next_hop: r.next_hop(server),
            });
        self.ways.insert(server, (Instant::now(), way));
        way
    }
}
