//! xvsd's config file (TOML): the virtual services xvsd owns, their real servers, and the
//! checks that watch them. Parsed and validated without touching anything; every problem
//! is reported with its line and column.
//!
//! ```toml
//! [[service]]
//! protocol = "tcp"              # tcp (default) or udp
//! address = "1.1.1.254:80"
//! scheduler = "rr"              # default wlc
//! method = "nat"                # the real servers' default: nat, dr (default) or tunnel
//!
//! [service.check]               # the real servers' default check
//! type = "http"                 # tcp (default) or http
//! path = "/"
//! expect = [200]
//! interval = 1.0                # seconds between checks
//! timeout = 1.0
//! rise = 1
//! fall = 2
//!
//! [[service.real_server]]
//! address = "192.168.1.10:80"
//! weight = 1
//! ```

use std::{net::SocketAddr, time::Duration};

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Nat,
    #[default]
    Dr,
    Tunnel,
}

impl Method {
    /// ipvsadm's switch.
    pub fn switch(self) -> &'static str {
        match self {
            Method::Nat => "-m",
            Method::Dr => "-g",
            Method::Tunnel => "-i",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub protocol: Protocol,
    pub address: SocketAddr,
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
    /// Persistence timeout, seconds (`-p`).
    pub persistence: Option<u32>,
    #[serde(default)]
    pub method: Method,
    /// A failed real server stays with weight 0 instead of leaving the service.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Real servers start down until a check passes (keepalived's `alpha`).
    #[serde(default)]
    pub alpha: bool,
    #[serde(default)]
    pub check: CheckConfig,
    #[serde(default, rename = "real_server")]
    pub real_servers: Vec<RealServerConfig>,
}

fn default_scheduler() -> String {
    "wlc".to_string()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerConfig {
    pub address: SocketAddr,
    #[serde(default = "one")]
    pub weight: u32,
    pub method: Option<Method>,
    /// Its own check instead of the service's.
    pub check: Option<CheckConfig>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    #[default]
    Tcp,
    Http,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    #[serde(default, rename = "type")]
    pub kind: CheckType,
    /// The port checked (default: the real server's).
    pub port: Option<u16>,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default = "ok")]
    pub expect: Vec<u16>,
    #[serde(default = "second")]
    pub interval: f64,
    #[serde(default = "second")]
    pub timeout: f64,
    #[serde(default = "one")]
    pub rise: u32,
    #[serde(default = "one")]
    pub fall: u32,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            kind: CheckType::Tcp,
            port: None,
            path: root(),
            expect: ok(),
            interval: second(),
            timeout: second(),
            rise: 1,
            fall: 1,
        }
    }
}

fn root() -> String {
    "/".to_string()
}

fn ok() -> Vec<u16> {
    vec![200]
}

fn second() -> f64 {
    1.0
}

impl CheckConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}

/// One real server to watch: where, how, and what the table should hold for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// Index of its service in the config.
    pub service: usize,
    pub address: SocketAddr,
    pub check: CheckConfig,
}

impl Config {
    /// Parses and validates `text`; every problem with its line and column.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        let mut services = std::collections::HashSet::new();
        for (i, service) in config.services.iter().enumerate() {
            let name = format!("service {} ({})", i + 1, service.address);
            if !services.insert((service.protocol, service.address)) {
                problems.push(format!("{name}: defined twice"));
            }
            let mut servers = std::collections::HashSet::new();
            for rs in &service.real_servers {
                if !servers.insert(rs.address) {
                    problems.push(format!("{name}: real server {} listed twice", rs.address));
                }
            }
            if xvs_core::sched::Scheduler::from_name(&service.scheduler).is_none() {
                problems.push(format!("{name}: no scheduler {:?}", service.scheduler));
            }
            if service.address.port() == 0 && service.persistence.is_none() {
                problems.push(format!("{name}: port 0 needs persistence, as in ipvsadm"));
            }
            let mut checks = vec![("its check".to_string(), &service.check)];
            for rs in &service.real_servers {
                if rs.weight > 65_535 {
                    problems.push(format!("{name}: {}: weight above 65535", rs.address));
                }
                if let Some(check) = &rs.check {
                    checks.push((rs.address.to_string(), check));
                }
            }
            for (what, check) in checks {
                if !(check.interval > 0.0 && check.timeout > 0.0) {
                    problems.push(format!("{name}: {what}: interval and timeout must be > 0"));
                }
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Every real server to watch.
    pub fn watches(&self) -> Vec<Watch> {
        self.services
            .iter()
            .enumerate()
            .flat_map(|(i, service)| {
                service.real_servers.iter().map(move |rs| Watch {
                    service: i,
                    address: rs.address,
                    check: rs.check.clone().unwrap_or_else(|| service.check.clone()),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"

[service.check]
type = "http"
interval = 0.5
fall = 2

[[service.real_server]]
address = "192.168.1.10:80"

[[service.real_server]]
address = "192.168.1.20:80"
weight = 2
check = { type = "tcp", port = 8080 }
"#;

    #[test]
    fn the_seed_config_parses_with_its_defaults() {
        let config = Config::parse(SEED).unwrap();
        let service = &config.services[0];
        assert_eq!(service.protocol, Protocol::Tcp);
        assert_eq!(service.method, Method::Nat);
        assert_eq!(service.real_servers[0].weight, 1);
        let watches = config.watches();
        assert_eq!(watches.len(), 2);
        assert_eq!(watches[0].check.kind, CheckType::Http);
        assert_eq!(watches[0].check.fall, 2);
        assert_eq!(watches[0].check.expect, [200]);
        assert_eq!(watches[1].check.kind, CheckType::Tcp);
        assert_eq!(watches[1].check.port, Some(8080));
    }

    #[test]
    fn problems_are_named_with_their_place() {
        let typo = Config::parse("[[service]]\naddress = \"1.1.1.254:80\"\nschedular = \"rr\"\n")
            .unwrap_err();
        assert!(typo.contains("line 3"), "{typo}");
        assert!(typo.contains("schedular"), "{typo}");
        let bad = Config::parse("[[service]]\naddress = \"1.1.1.254:80\"\nscheduler = \"xx\"\n")
            .unwrap_err();
        assert!(bad.contains("no scheduler \"xx\""), "{bad}");
        let twice = Config::parse(&format!(
            "{SEED}\n[[service.real_server]]\naddress = \"192.168.1.10:80\"\n"
        ))
        .unwrap_err();
        assert!(twice.contains("192.168.1.10:80 listed twice"), "{twice}");
        let address = Config::parse("[[service]]\naddress = \"nowhere\"\n").unwrap_err();
        assert!(address.contains("line 2"), "{address}");
    }
}
