//! The `[sync]` section: connection sync with the other directors (IPVS's sync daemon,
//! keepalived's `lvs_sync_daemon`).

use std::net::{IpAddr, Ipv4Addr};

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
    /// The multicast group (IPVS's default 224.0.0.81).
    #[serde(default = "group")]
    pub group: Ipv4Addr,
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
    /// The largest message, bytes (IPVS's `sync_maxlen`; default 1472, for 1500-byte
    /// links).
    #[serde(default = "maxlen")]
    pub maxlen: usize,
    /// Bytes per second at most, so that a bulk catch-up of a large table does not
    /// crowd the link (default 10 MB/s).
    #[serde(default = "max_rate")]
    pub max_rate: u64,
}

fn group() -> Ipv4Addr {
    Ipv4Addr::new(224, 0, 0, 81)
}

fn port() -> u16 {
    8848
}

fn ttl() -> u8 {
    1
}

fn maxlen() -> usize {
    1472
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
            maxlen: maxlen(),
            max_rate: max_rate(),
        }
    }

    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.group.is_multicast() {
            problems.push(format!(
                "sync: group {} is not a multicast address",
                self.group
            ));
        }
        if self.peers.iter().any(|p| !p.is_ipv4()) {
            problems.push("sync: peers must be IPv4 addresses".to_string());
        }
        if !(100..=65_000).contains(&self.maxlen) {
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
