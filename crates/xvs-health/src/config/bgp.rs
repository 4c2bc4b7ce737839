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
    /// The routers' AS number (a neighbor may name its own).
    #[serde(default)]
    pub peer_as: Option<u32>,
    /// The routers: IPv4 VIPs are announced over the sessions with IPv4 neighbors, IPv6
    /// VIPs over those with IPv6 neighbors.
    pub neighbors: Vec<Neighbor>,
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

/// A router to peer with: its address, and its AS when it is not the section's `peer_as`
/// (written `"10.0.1.254 as 65002"`, as BIRD writes a neighbor: routers of one fabric
/// often each have their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    pub address: IpAddr,
    pub peer_as: Option<u32>,
}

impl Neighbor {
    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }
}

impl std::str::FromStr for Neighbor {
    type Err = String;

    fn from_str(text: &str) -> Result<Neighbor, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let address = |word: &str| {
            word.parse::<IpAddr>()
                .map_err(|_| format!("bgp: neighbor {text:?}: {word:?} is not an address"))
        };
        match words[..] {
            [one] => Ok(Neighbor {
                address: address(one)?,
                peer_as: None,
            }),
            [one, "as", number] => Ok(Neighbor {
                address: address(one)?,
                peer_as: Some(number.parse().map_err(|_| {
                    format!("bgp: neighbor {text:?}: {number:?} is not an AS number")
                })?),
            }),
            _ => Err(format!(
                "bgp: neighbor {text:?}: an address, or \"ADDRESS as AS\""
            )),
        }
    }
}

impl std::fmt::Display for Neighbor {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.peer_as {
            Some(number) => write!(f, "{} as {number}", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

impl<'de> Deserialize<'de> for Neighbor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl BgpConfig {
    /// The AS of `neighbor`: its own, else the section's `peer_as` (0: neither, a problem).
    pub fn as_of(&self, neighbor: &Neighbor) -> u32 {
        neighbor.peer_as.or(self.peer_as).unwrap_or(0)
    }

    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.local_as == 0 {
            problems.push("bgp: local_as must be 1-4294967295".to_string());
        }
        if self.peer_as == Some(0) {
            problems.push("bgp: peer_as must be 1-4294967295".to_string());
        }
        for neighbor in &self.neighbors {
            if self.as_of(neighbor) == 0 {
                problems.push(format!(
                    "bgp: neighbor {}: no AS (set peer_as, or write \"{} as AS\")",
                    neighbor.address, neighbor.address
                ));
            }
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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// A neighbor is an address, or "ADDRESS as AS" for a router of its own AS; every
    /// neighbor needs an AS from one or the other, and a bad one is named.
    #[test]
    fn neighbors_take_the_section_s_as_or_their_own() {
        let text = "[bgp]\nlocal_as = 65001\npeer_as = 65000\n\
                    neighbors = [\"10.0.0.254\", \"10.0.1.254 as 65002\"]\n\
                    addresses = [\"1.1.1.254\"]\n";
        let config = Config::parse(text).unwrap();
        let bgp = config.bgp.unwrap();
        let ases: Vec<u32> = bgp.neighbors.iter().map(|n| bgp.as_of(n)).collect();
        assert_eq!(ases, [65000, 65002]);
        assert!(bgp.problems().is_empty());

        let without = Config::parse(&text.replace("peer_as = 65000\n", "")).unwrap_err();
        assert!(
            without.contains("bgp: neighbor 10.0.0.254: no AS"),
            "{without}"
        );
        let bad = Config::parse(&text.replace("as 65002", "as sixty")).unwrap_err();
        assert!(bad.contains("\"sixty\" is not an AS number"), "{bad}");
        let bad = Config::parse(&text.replace("10.0.1.254 as", "10.0.1.254 to")).unwrap_err();
        assert!(bad.contains(r#"an address, or "ADDRESS as AS""#), "{bad}");
    }
}
