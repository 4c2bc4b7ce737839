//! The `[bgp]` section: the director announces its VIPs to its routers over BGP (through
//! a BIRD 2 that xvsd runs), so that several directors share them by ECMP.

use std::net::{IpAddr, Ipv4Addr};

use serde::Deserialize;

/// BGP sessions with the routers and what is announced over them. A VIP is announced
/// while a service of it has its quorum, and withdrawn when none has (or xvsd stops).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    /// This director's AS number.
    pub local_as: u32,
    /// The routers' AS number.
    pub peer_as: u32,
    /// The routers' addresses: IPv4 VIPs are announced over the sessions with IPv4
    /// neighbors, IPv6 VIPs over those with IPv6 neighbors.
    pub neighbors: Vec<IpAddr>,
    /// BIRD's router id (default: BIRD's choice, the lowest IPv4 address).
    pub router_id: Option<Ipv4Addr>,
    /// BFD with the routers: a frozen or cut-off director is noticed in 0.3 s instead of
    /// the hold time.
    #[serde(default)]
    pub bfd: bool,
    /// Seconds without a word before a session is dropped (BGP's hold time; 3-65535).
    #[serde(default = "hold_time")]
    pub hold_time: u16,
    /// The VIPs to announce, each as a /32 or /128. Default: every address service's VIP.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// The BIRD 2 daemon (`birdc` is looked for beside it).
    #[serde(default = "bird")]
    pub bird: String,
}

fn hold_time() -> u16 {
    9
}

fn bird() -> String {
    "bird".to_string()
}

impl BgpConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.local_as == 0 || self.peer_as == 0 {
            problems.push("bgp: local_as and peer_as must be 1-4294967295".to_string());
        }
        if self.neighbors.is_empty() {
            problems.push("bgp: no neighbors".to_string());
        }
        for vip in &self.addresses {
            if !self.neighbors.iter().any(|n| n.is_ipv4() == vip.is_ipv4()) {
                problems.push(format!(
                    "bgp: no neighbor of {vip}'s family to announce it to"
                ));
            }
        }
        if self.hold_time < 3 {
            problems.push("bgp: hold_time must be 3-65535 seconds".to_string());
        }
        problems
    }
}
