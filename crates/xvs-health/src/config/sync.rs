//! The `[sync]` section: connection sync with the other directors (IPVS's sync daemon,
//! keepalived's `lvs_sync_daemon`).

use std::net::{IpAddr, Ipv4Addr};

/// The largest message IPVS's master sends by default: a 1500-byte packet less the IP
/// and UDP headers (of IPv4, or of IPv6).
const MAXLEN_V4: usize = 1500 - 20 - 8;
const MAXLEN_V6: usize = 1500 - 40 - 8;

use serde::Deserialize;

/// Where and how this director tells its backups about its connections, and hears its
/// master's. With a `[vrrp]` section the role follows the VRRP instance (the master sends,
/// a backup receives); without one the director does both (active/active, as keepalived
/// without an instance).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The interface the messages go out and come in by (IPVS's `--mcast-interface`).
    pub interface: String,
    /// 0-255; messages of another id are ignored (0: every id is heard). Default: the
    /// VRRP instance's vrid, as keepalived's, or 0.
    pub syncid: Option<u8>,
    /// The multicast group (IPVS's default 224.0.0.81), IPv4 or IPv6 (`ff02::51`: the
    /// messages then go over IPv6).
    #[serde(default = "group")]
    pub group: IpAddr,
    #[serde(default = "port")]
    pub port: u16,
    /// TTL of the multicast messages (IPVS's default 1: they stay on the link).
    #[serde(default = "ttl")]
    pub ttl: u8,
    /// Unicast peers: messages go to each of them instead of the group, and only theirs
    /// are heard.
    #[serde(default)]
    pub peers: Vec<IpAddr>,
    /// A secret the directors share: every message carries its HMAC-SHA256, and a
    /// message without the right one is dropped. (A kernel IPVS director can then not
    /// read them.)
    pub key: Option<String>,
    /// The largest message, bytes (IPVS's `sync_maxlen`; default 1472 over IPv4, 1452
    /// over IPv6: for 1500-byte links). See [`SyncConfig::maxlen`].
    #[serde(rename = "maxlen")]
    pub maxlen_set: Option<usize>,
    /// Bytes per second at most, so that a bulk catch-up of a large table does not
    /// crowd the link (default 10 MB/s).
    #[serde(default = "max_rate")]
    pub max_rate: u64,
}

fn group() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81))
}

fn port() -> u16 {
    8848
}

fn ttl() -> u8 {
    1
}

fn max_rate() -> u64 {
    10_000_000
}

impl SyncConfig {
    /// The settings of IPVS's sync daemon for `interface`, as `ipvsadm --start-daemon`
    /// gives them (no peers, no key).
    pub fn on(interface: &str) -> SyncConfig {
        SyncConfig {
            interface: interface.to_string(),
            syncid: None,
            group: group(),
            port: port(),
            ttl: ttl(),
            peers: Vec::new(),
            key: None,
            maxlen_set: None,
            max_rate: max_rate(),
        }
    }

    /// Whether the messages go over IPv6: to an IPv6 group, or to IPv6 peers.
    pub fn over_ipv6(&self) -> bool {
        self.peers
            .first()
            .map_or(self.group.is_ipv6(), IpAddr::is_ipv6)
    }

    /// The largest message, bytes: as set, or IPVS's default for the family.
    pub fn maxlen(&self) -> usize {
        self.maxlen_set.unwrap_or(if self.over_ipv6() {
            MAXLEN_V6
        } else {
            MAXLEN_V4
        })
    }

    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.group.is_multicast() {
            problems.push(format!(
                "sync: group {} is not a multicast address",
                self.group
            ));
        }
        if self.peers.iter().any(|p| p.is_ipv6() != self.over_ipv6()) {
            problems.push("sync: peers must be all IPv4 or all IPv6".to_string());
        }
        if !(100..=65_000).contains(&self.maxlen()) {
            problems.push("sync: maxlen must be 100-65000".to_string());
        }
        if self.max_rate < 10_000 {
            problems.push("sync: max_rate must be at least 10000 bytes/s".to_string());
        }
        if self.ttl == 0 {
            problems.push("sync: ttl must be 1-255".to_string());
        }
        if self.key.as_ref().is_some_and(|k| k.len() < 8) {
            problems.push("sync: key must be at least 8 characters".to_string());
        }
        problems
    }
}
