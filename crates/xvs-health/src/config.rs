//! xvsd's config file (TOML): the virtual services xvsd owns, their real servers, and the
//! checks that watch them. Parsed and validated without touching anything; every problem
//! is reported with its line and column.
//!
//! ```toml
//! [[service]]
//! protocol = "tcp"              # tcp (default) or udp
//! address = "1.1.1.254:80"
//! scheduler = "rr"              # default wlc
//! method = "nat"                # the real servers' default: nat, dr (default), tunnel or fullnat
//! # local_addresses = ["10.0.0.253"]   # fullnat: the addresses connections leave from (-P)
//! # proxy_protocol = "v2"       # fullnat, tcp: the client's address in a PROXY v2 header
//!
//! [service.check]               # the real servers' default check ([[service.check]]: several)
//! type = "http"                 # tcp (default), http, udp, dns or command
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
//!
//! A fwmark service (`-A -f 1`) names `fwmark = 1` instead of `protocol` and `address`;
//! its family is its real servers' (or `family = "inet6"`).

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use serde::Deserialize;
use xvs_core::model::{self, ServiceKey};

mod bgp;
mod check;
mod sync;
mod vrrp;

pub use bgp::BgpConfig;
pub use check::{CheckConfig, CheckType, Checks, HttpVersion, QUERY_TYPES};
pub use sync::SyncConfig;
pub use vrrp::{TrackScript, VrrpConfig};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What a stopping `xvsd run` (SIGTERM, SIGINT) does with its services.
    #[serde(default)]
    pub on_stop: OnStop,
    /// Where the metrics and the status page are served.
    #[serde(default)]
    pub http: HttpConfig,
    /// VRRP instances that hold the VIPs on the master director: `[vrrp]` for one,
    /// `[[vrrp]]` for several (an IPv4 and an IPv6 one, say), each on its own.
    #[serde(default, deserialize_with = "vrrp::one_or_many")]
    pub vrrp: Vec<VrrpConfig>,
    /// Connection sync with the other directors.
    pub sync: Option<SyncConfig>,
    /// VIPs announced to routers over BGP.
    pub bgp: Option<BgpConfig>,
    /// IPVS's sysctls, set on the director at start and at each reload.
    #[serde(default)]
    pub sysctl: SysctlConfig,
    /// IPVS's connection timeouts (`ipvsadm --set`), kept on the director.
    pub timeouts: Option<TimeoutsConfig>,
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConfig>,
}

/// Why ipvsadm would refuse command `line` (or lines; its first line of message), if it
/// would:
/// what xvsd applies is checked by the parser xvsadm uses, in ipvsadm's words.
fn ipvsadm_refusal(line: &str) -> Option<String> {
    let refused = xvs_core::restore::restore(
        line,
        &mut xvs_core::table::Table::default(),
        &xvs_core::text::NoNames,
        "xvsd",
    )
    .err()?
    .message("xvsd");
    // "line N: ", as restore names the line.
    let why = refused
        .split_once(": ")
        .filter(|(place, _)| place.starts_with("line "))
        .map_or(refused.as_str(), |(_, why)| why);
    Some(why.lines().next().unwrap_or(why).to_string())
}

/// IPVS's connection timeouts in seconds, as `ipvsadm --set TCP TCPFIN UDP` sets them
/// (keepalived's `lvs_timeouts`): TCP ESTABLISHED, TCP after a FIN, UDP; one left out
/// (or 0) leaves the director's as it is.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    #[serde(default)]
    pub tcp: u32,
    #[serde(default)]
    pub tcpfin: u32,
    #[serde(default)]
    pub udp: u32,
}

impl TimeoutsConfig {
    /// The ipvsadm line that sets them.
    pub fn set_command(&self) -> String {
        format!("--set {} {} {}", self.tcp, self.tcpfin, self.udp)
    }
}

/// IPVS's sysctls that xvs carries out (`net.ipv4.vs.NAME` on an IPVS director), set on
/// the director when xvsd starts and at each reload; a key left out leaves the director's
/// value as it is (`xvsd sysctl` shows and sets them by hand).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SysctlConfig {
    pub conn_reuse_mode: Option<ReuseMode>,
    pub expire_nodest_conn: Option<Switch>,
    pub expire_quiescent_template: Option<Switch>,
    pub sloppy_tcp: Option<Switch>,
}

impl SysctlConfig {
    /// The settings the file names, by IPVS's name, with their values.
    pub fn settings(&self) -> Vec<(&'static str, u64)> {
        let switch = |value: Option<Switch>| value.map(|Switch(on)| on as u64);
        [
            ("conn_reuse_mode", self.conn_reuse_mode.map(|m| m.0 as u64)),
            ("expire_nodest_conn", switch(self.expire_nodest_conn)),
            (
                "expire_quiescent_template",
                switch(self.expire_quiescent_template),
            ),
            ("sloppy_tcp", switch(self.sloppy_tcp)),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect()
    }
}

/// IPVS's `conn_reuse_mode`: 0 to 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseMode(pub u8);

impl<'de> Deserialize<'de> for ReuseMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        match u8::try_from(value) {
            Ok(mode @ 0..=3) => Ok(ReuseMode(mode)),
            _ => Err(serde::de::Error::custom(format!(
                "must be 0 to 3, not {value}"
            ))),
        }
    }
}

/// An on/off setting, written as sysctl.conf writes it (0 or 1) or as a TOML boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

impl<'de> Deserialize<'de> for Switch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Switch;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("0 or 1")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<Switch, E> {
                Ok(Switch(on))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Switch, E> {
                match value {
                    0 | 1 => Ok(Switch(value == 1)),
                    _ => Err(E::custom(format!("must be 0 or 1, not {value}"))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// xvsd's HTTP listener: `/metrics` (Prometheus), `/` (the status page), `/api/status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            enabled: true,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9180))
}

fn second() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// What `xvsd run` leaves behind when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnStop {
    /// Its services stay as the last checks left them and go on forwarding, unchecked: a
    /// restart (or `xvsd upgrade`) breaks no connection.
    #[default]
    Keep,
    /// Its services are deleted, as keepalived deletes its virtual servers when it stops
    /// (unless started with `--dont-release-ipvs`): their connections end as a deleted
    /// service's do. Services xvsd does not own stay.
    Remove,
}

/// The dead-server policy of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Out of the table: its TCP connections end at their next packet (the director's
    /// stack resets them), its UDP flows move to another server with their next datagram.
    #[default]
    Remove,
    /// Kept at weight 0: open connections go on, new ones go elsewhere (keepalived's
    /// `inhibit_on_failure`), for `drain` seconds if given.
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Nat,
    #[default]
    Dr,
    Tunnel,
    /// DPVS's FULLNAT (`-b`): needs the service's `local_addresses`.
    Fullnat,
}

impl Method {
    /// The forward column's word in ipvsadm's listing.
    pub fn forward_name(self) -> &'static str {
        match self {
            Method::Nat => "Masq",
            Method::Dr => "Route",
            Method::Tunnel => "Tunnel",
            Method::Fullnat => "FullNat",
        }
    }

    /// ipvsadm's switch.
    pub fn switch(self) -> &'static str {
        match self {
            Method::Nat => "-m",
            Method::Dr => "-g",
            Method::Tunnel => "-i",
            Method::Fullnat => "-b",
        }
    }
}

/// A tunnel real server's encapsulation (`tunnel_type`: ipvsadm's `--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    Ipip,
    Gue,
    Gre,
}

/// A tunnel's checksum (`tunnel_checksum`: `--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelChecksum {
    None,
    Csum,
    Remcsum,
}

/// How a tunnel real server's packets are wrapped, as ipvsadm's `--tun-*` options say
/// (a service's `tunnel_type`, `tunnel_port` and `tunnel_checksum`, or a real server's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelConfig {
    pub tunnel_type: Option<TunnelType>,
    pub tunnel_port: Option<u16>,
    pub tunnel_checksum: Option<TunnelChecksum>,
}

impl TunnelConfig {
    fn is_empty(&self) -> bool {
        *self == TunnelConfig::default()
    }

    /// `own`'s settings where it has them, else these; all of `own` if it names its own
    /// type (a GRE server under a GUE service takes no port from it).
    fn under(&self, own: &TunnelConfig) -> TunnelConfig {
        if own.tunnel_type.is_some() {
            return *own;
        }
        TunnelConfig {
            tunnel_type: own.tunnel_type.or(self.tunnel_type),
            tunnel_port: own.tunnel_port.or(self.tunnel_port),
            tunnel_checksum: own.tunnel_checksum.or(self.tunnel_checksum),
        }
    }

    /// As ipvsadm's options, each with a space before it.
    fn options(&self) -> String {
        let mut out = String::new();
        if let Some(kind) = self.tunnel_type {
            let name = match kind {
                TunnelType::Ipip => "ipip",
                TunnelType::Gue => "gue",
                TunnelType::Gre => "gre",
            };
            out.push_str(&format!(" --tun-type {name}"));
        }
        if let Some(port) = self.tunnel_port {
            out.push_str(&format!(" --tun-port {port}"));
        }
        if let Some(checksum) = self.tunnel_checksum {
            out.push_str(match checksum {
                TunnelChecksum::None => " --tun-nocsum",
                TunnelChecksum::Csum => " --tun-csum",
                TunnelChecksum::Remcsum => " --tun-remcsum",
            });
        }
        out
    }
}

/// The PROXY protocol version a service sends (`proxy_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    V2,
}

/// The address family of a fwmark service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// tcp (default) or udp; an address service's only.
    pub protocol: Option<Protocol>,
    /// The virtual address and port (`-t`/`-u`), or
    pub address: Option<SocketAddr>,
    /// the firewall mark (`-f`) netfilter rules set on the service's packets.
    pub fwmark: Option<u32>,
    /// A fwmark service's family (default: its real servers').
    pub family: Option<Family>,
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
    /// Persistence timeout, seconds (`-p`).
    pub persistence: Option<u32>,
    /// Persistence granularity (`-M`): an IPv4 netmask, or an IPv6 prefix length.
    pub netmask: Option<String>,
    /// Persistence engine (`--pe`): `sip` keeps a template per call.
    pub persistence_engine: Option<String>,
    /// One-packet scheduling (`-o`, UDP): every datagram scheduled on its own.
    #[serde(default)]
    pub ops: bool,
    /// Scheduler flags (`-b`): `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`,
    /// `flag-1`, `flag-2`, `flag-3`.
    #[serde(default)]
    pub scheduler_flags: Vec<String>,
    #[serde(default)]
    pub method: Method,
    /// FULLNAT's local addresses (`-P -z`): addresses of the director that the real
    /// servers route to it.
    #[serde(default)]
    pub local_addresses: Vec<std::net::IpAddr>,
    /// `--proxy-protocol v2`: FULLNAT connections start with a PROXY protocol v2 header
    /// carrying the client's address (every real server FULLNAT, TCP only).
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Its tunnel real servers' encapsulation (`--tun-type`: ipip, gue, gre), unless a
    /// real server says otherwise; with GUE's UDP port on the real servers
    /// (`--tun-port`), which GUE needs, and the checksum (none, csum, remcsum).
    pub tunnel_type: Option<TunnelType>,
    pub tunnel_port: Option<u16>,
    pub tunnel_checksum: Option<TunnelChecksum>,
    /// A failed real server stays with weight 0 instead of leaving the service (the same
    /// as `on_failure = "keep"`).
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// What a failed real server's open connections get.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// With `keep`: seconds a failed server stays at weight 0 before it is removed (its
    /// remaining connections then end as with `remove`).
    pub drain: Option<f64>,
    /// Real servers start down until a check passes (keepalived's `alpha`).
    #[serde(default)]
    pub alpha: bool,
    /// When xvsd stops and removes the service (`on_stop = "remove"`), its up real servers'
    /// `notify_down` and, with its quorum up, `quorum_down` run first (keepalived's
    /// `omega`).
    #[serde(default)]
    pub omega: bool,
    /// Its checks pause while its VIP is not an address of this director (keepalived's
    /// `ha_suspend`): a VRRP backup, which does not hold the VIP, does not probe the real
    /// servers; they keep the state the last checks gave them.
    #[serde(default)]
    pub ha_suspend: bool,
    /// The sum of up real servers' weights the service needs (keepalived's `quorum`).
    #[serde(default = "one")]
    pub quorum: u32,
    /// Flap damping around `quorum`: gained at `quorum + hysteresis`, lost below
    /// `quorum - hysteresis`.
    #[serde(default)]
    pub hysteresis: u32,
    /// The server that alone takes the service's connections while its quorum is lost.
    pub sorry_server: Option<SocketAddr>,
    /// How the sorry server is reached (default: the service's method).
    pub sorry_method: Option<Method>,
    /// The sorry server stays in the table at weight 0 while the quorum holds, so that
    /// its connections go on when the real servers come back (keepalived's
    /// `sorry_server_inhibit`); without it, it is removed.
    #[serde(default)]
    pub sorry_server_inhibit: bool,
    /// Commands run (by `sh -c`) when the quorum is gained or lost.
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    /// Commands run when one of its real servers comes up or goes down.
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// The real servers' default checks: one table or an array of them, all must pass.
    #[serde(default = "default_checks", rename = "check")]
    pub checks: Checks,
    #[serde(default, rename = "real_server")]
    pub real_servers: Vec<RealServerConfig>,
}

fn default_scheduler() -> String {
    "wlc".to_string()
}

fn default_checks() -> Checks {
    Checks(vec![CheckConfig::default()])
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerConfig {
    pub address: SocketAddr,
    #[serde(default = "one")]
    pub weight: u32,
    pub method: Option<Method>,
    /// Its own checks instead of the service's.
    #[serde(rename = "check")]
    pub checks: Option<Checks>,
    /// Its own notify commands instead of the service's.
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// Its own tunnel encapsulation, as the service's `tunnel_*` keys (with its own
    /// `tunnel_type` it takes none of the service's).
    pub tunnel_type: Option<TunnelType>,
    pub tunnel_port: Option<u16>,
    pub tunnel_checksum: Option<TunnelChecksum>,
    /// Connection thresholds (ipvsadm's `-x` and `-y`, keepalived's `uthreshold` and
    /// `lthreshold`; 0: none): no new connection while its active and inactive ones
    /// reach the upper one.
    #[serde(default)]
    pub u_threshold: u32,
    #[serde(default)]
    pub l_threshold: u32,
    /// Its own `inhibit_on_failure` instead of the service's (keepalived's, given in a
    /// `real_server`): true keeps it at weight 0 when it fails, false takes it out.
    pub inhibit_on_failure: Option<bool>,
    /// Its own `alpha` instead of the service's: true starts it down until a check passes.
    pub alpha: Option<bool>,
}

impl RealServerConfig {
    /// Its own tunnel settings.
    pub fn tunnel(&self) -> TunnelConfig {
        TunnelConfig {
            tunnel_type: self.tunnel_type,
            tunnel_port: self.tunnel_port,
            tunnel_checksum: self.tunnel_checksum,
        }
    }
}

fn one() -> u32 {
    1
}

/// One check of one real server: where, how, and whose.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// Index of its service in the config.
    pub service: usize,
    /// Index of the real server in its service.
    pub server: usize,
    /// Index of the check among the real server's.
    pub check_index: usize,
    pub address: SocketAddr,
    pub check: CheckConfig,
    /// The service's address (what a forwarded check asks for); none for fwmark services.
    pub vip: Option<SocketAddr>,
    /// How the director reaches the real server.
    pub method: Method,
    /// A tunnel real server's encapsulation (what a forwarded check wraps itself in).
    pub tunnel: TunnelConfig,
}

impl Watch {
    /// What the check sends and where: two watches alike in it (one real server in two
    /// services, or in every member of an imported `virtual_server_group`) are served by
    /// one probe, as keepalived checks a real server once for its group. The VIP, method
    /// and tunnel count only for a forwarded check, which goes through them.
    pub fn probe(&self) -> String {
        if self.check.forwarded {
            format!(
                "{} {:?} {:?} {:?} {:?}",
                self.address, self.check, self.vip, self.method, self.tunnel
            )
        } else {
            format!("{} {:?}", self.address, self.check)
        }
    }
}

/// The watches each probe serves (indexes into `watches`), probes in the order of their
/// first watch: one probe for all the watches alike in [`Watch::probe`].
pub fn probes(watches: &[Watch]) -> Vec<Vec<usize>> {
    let mut probes: Vec<Vec<usize>> = Vec::new();
    let mut of: HashMap<String, usize> = HashMap::new();
    for (i, watch) in watches.iter().enumerate() {
        let next = probes.len();
        let probe = *of.entry(watch.probe()).or_insert(next);
        if probe == next {
            probes.push(Vec::new());
        }
        probes[probe].push(i);
    }
    probes
}

impl ServiceConfig {
    /// Whether a failed real server is kept at weight 0, unless it says otherwise.
    pub fn keeps_failed(&self) -> bool {
        self.inhibit_on_failure || self.on_failure == OnFailure::Keep
    }

    /// Whether real server `rs`, failed, is kept at weight 0.
    pub fn keeps(&self, rs: &RealServerConfig) -> bool {
        rs.inhibit_on_failure.unwrap_or(self.keeps_failed())
    }

    /// Whether real server `rs` starts down until a check passes.
    pub fn starts_down(&self, rs: &RealServerConfig) -> bool {
        rs.alpha.unwrap_or(self.alpha)
    }

    /// How long a failed real server is kept, if not for good.
    pub fn drain(&self) -> Option<Duration> {
        self.drain.map(Duration::from_secs_f64)
    }

    /// The table's key of the service. A config that parsed names an address or a mark;
    /// a fwmark service's family is `family`, or its real servers' (IPv4 if it has none).
    pub fn service_key(&self) -> ServiceKey {
        match (self.fwmark, self.address) {
            (Some(mark), _) => {
                let v6 = match self.family {
                    Some(family) => family == Family::Inet6,
                    None => self
                        .real_servers
                        .first()
                        .is_some_and(|rs| rs.address.is_ipv6()),
                };
                ServiceKey::Fwmark {
                    mark,
                    family: if v6 {
                        model::Family::V6
                    } else {
                        model::Family::V4
                    },
                }
            }
            (None, address) => {
                let address = address.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                ServiceKey::Inet {
                    protocol: match self.protocol.unwrap_or_default() {
                        Protocol::Tcp => model::Protocol::Tcp,
                        Protocol::Udp => model::Protocol::Udp,
                    },
                    addr: address.ip(),
                    port: address.port(),
                }
            }
        }
    }

    /// ipvsadm's switch and the service, as in `-t 1.1.1.254:80` or `-f 1 -6`.
    pub fn key(&self) -> String {
        match self.service_key() {
            ServiceKey::Fwmark { mark, family } => match family {
                model::Family::V4 => format!("-f {mark}"),
                model::Family::V6 => format!("-f {mark} -6"),
            },
            ServiceKey::Inet { addr, port, .. } => {
                let protocol = self.protocol.unwrap_or_default();
                format!("{} {}", protocol.switch(), SocketAddr::new(addr, port))
            }
        }
    }

    /// The ipvsadm line that adds the service: `-A`, its key, scheduler and options.
    pub fn add_command(&self) -> String {
        let mut line = format!("-A {} -s {}", self.key(), self.scheduler);
        if let Some(timeout) = self.persistence {
            line.push_str(&format!(" -p {timeout}"));
        }
        if let Some(netmask) = &self.netmask {
            line.push_str(&format!(" -M {netmask}"));
        }
        if let Some(engine) = &self.persistence_engine {
            line.push_str(&format!(" --pe {engine}"));
        }
        if self.ops {
            line.push_str(" -o");
        }
        if !self.scheduler_flags.is_empty() {
            line.push_str(&format!(" -b {}", self.scheduler_flags.join(",")));
        }
        if self.proxy_protocol.is_some() {
            line.push_str(" --proxy-protocol v2");
        }
        line
    }

    /// Its tunnel real servers' settings (a real server's own come first).
    pub fn tunnel(&self) -> TunnelConfig {
        TunnelConfig {
            tunnel_type: self.tunnel_type,
            tunnel_port: self.tunnel_port,
            tunnel_checksum: self.tunnel_checksum,
        }
    }

    /// The ipvsadm line that adds real server `rs` (the sorry server with `None`) at
    /// `weight`: `-a`, the service's key, the server, its method (with a tunnel's
    /// options) and weight.
    pub fn server_command(&self, rs: Option<&RealServerConfig>, weight: u32) -> String {
        let (address, method, own) = match rs {
            Some(rs) => (
                rs.address.to_string(),
                rs.method.unwrap_or(self.method),
                rs.tunnel(),
            ),
            None => (
                self.sorry_server.map(|s| s.to_string()).unwrap_or_default(),
                self.sorry_method.unwrap_or(self.method),
                TunnelConfig::default(),
            ),
        };
        let tunnel = if method == Method::Tunnel {
            self.tunnel().under(&own).options()
        } else {
            String::new()
        };
        let mut thresholds = String::new();
        if let Some(rs) = rs {
            if rs.u_threshold != 0 {
                thresholds.push_str(&format!(" -x {}", rs.u_threshold));
            }
            if rs.l_threshold != 0 {
                thresholds.push_str(&format!(" -y {}", rs.l_threshold));
            }
        }
        format!(
            "-a {} -r {address} {}{tunnel} -w {weight}{thresholds}",
            self.key(),
            method.switch()
        )
    }

    /// As logs and listings name it: `TCP 1.1.1.254:80`, `FWM 1`.
    pub fn name(&self) -> String {
        match self.service_key() {
            ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
            ServiceKey::Inet { addr, port, .. } => {
                let protocol = self.protocol.unwrap_or_default();
                format!("{} {}", protocol.name(), SocketAddr::new(addr, port))
            }
        }
    }

    /// The checks of its real server `rs`.
    pub fn checks_of<'a>(&'a self, rs: &'a RealServerConfig) -> &'a [CheckConfig] {
        &rs.checks.as_ref().unwrap_or(&self.checks).0
    }
}

impl Protocol {
    pub fn switch(self) -> &'static str {
        match self {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

impl Config {
    /// The VIPs BGP announces: `[bgp] addresses`, or every address service's VIP of a
    /// family some neighbor has.
    pub fn bgp_addresses(&self) -> Vec<std::net::IpAddr> {
        let Some(bgp) = &self.bgp else {
            return Vec::new();
        };
        if !bgp.addresses.is_empty() {
            return bgp.addresses.clone();
        }
        let mut vips = Vec::new();
        for service in &self.services {
            if let Some(address) = service.address
                && bgp
                    .neighbors
                    .iter()
                    .any(|n| n.is_ipv4() == address.is_ipv4())
                && !vips.contains(&address.ip())
            {
                vips.push(address.ip());
            }
        }
        vips
    }

    /// Parses and validates `text`; every problem with its line and column.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        let headers: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("[[service]]"))
            .map(|(n, _)| n + 1)
            .collect();
        let mut problems = Vec::new();
        for vrrp in &config.vrrp {
            problems.extend(vrrp.problems());
        }
        let mut routers = std::collections::HashSet::new();
        for vrrp in &config.vrrp {
            if !routers.insert(vrrp.router()) {
                problems.push(format!(
                    "vrrp: two instances with vrid {} on {}",
                    vrrp.vrid, vrrp.interface
                ));
            }
        }
        if let Some(sync) = &config.sync {
            problems.extend(sync.problems());
        }
        if let Some(why) = config
            .timeouts
            .as_ref()
            .and_then(|t| ipvsadm_refusal(&t.set_command()))
        {
            problems.push(format!("timeouts: {why}"));
        }
        if let Some(bgp) = &config.bgp {
            problems.extend(bgp.problems());
            if bgp.addresses.is_empty() && config.bgp_addresses().is_empty() {
                problems.push(
                    "bgp: nothing to announce (no address service of a neighbor's family, no addresses)".to_string(),
                );
            }
        }
        let mut services = std::collections::HashSet::new();
        for (i, service) in config.services.iter().enumerate() {
            // Problems of a service are placed at its `[[service]]` header.
            let line = headers
                .get(i)
                .map_or(String::new(), |l| format!("line {l}: "));
            let (name, what) = match (service.address, service.fwmark) {
                (Some(address), None) => (format!("{line}service {} ({address})", i + 1), None),
                (None, Some(0)) => (
                    format!("{line}service {}", i + 1),
                    Some("fwmark must be 1-4294967295"),
                ),
                (None, Some(mark)) => {
                    let problem = if service.protocol.is_some() {
                        Some("a fwmark service has no protocol (its mark picks the packets)")
                    } else if !service.real_servers.is_empty()
                        && service.real_servers.iter().any(|rs| {
                            rs.address.is_ipv6()
                                != (service.service_key().family() == model::Family::V6)
                        })
                    {
                        Some("its real servers are not all of the service's family")
                    } else {
                        None
                    };
                    (format!("{line}service {} (fwmark {mark})", i + 1), problem)
                }
                (Some(_), Some(_)) => (
                    format!("{line}service {}", i + 1),
                    Some("either address or fwmark, not both"),
                ),
                (None, None) => (
                    format!("{line}service {}", i + 1),
                    Some("needs address (or fwmark)"),
                ),
            };
            if let Some(problem) = what {
                problems.push(format!("{name}: {problem}"));
                continue;
            }
            if service.family.is_some() && service.fwmark.is_none() {
                problems.push(format!(
                    "{name}: family is a fwmark service's (an address says its own)"
                ));
            }
            if !services.insert(service.service_key()) {
                problems.push(format!("{name}: defined twice"));
            }
            let mut servers = std::collections::HashSet::new();
            for rs in &service.real_servers {
                if !servers.insert(rs.address) {
                    problems.push(format!("{name}: real server {} listed twice", rs.address));
                }
                // IPVS refuses it (ERANGE), even without an upper threshold.
                if rs.l_threshold > rs.u_threshold {
                    problems.push(format!(
                        "{name}: real server {}: l_threshold {} above u_threshold {}",
                        rs.address, rs.l_threshold, rs.u_threshold
                    ));
                }
            }
            if xvs_core::sched::Scheduler::from_name(&service.scheduler).is_none() {
                problems.push(format!("{name}: no scheduler {:?}", service.scheduler));
            } else if let Some(why) = ipvsadm_refusal(&service.add_command()) {
                // Its options as ipvsadm takes them (netmask, engine, ops, flags).
                problems.push(format!("{name}: {why}"));
            }
            if service.omega && config.on_stop != OnStop::Remove {
                problems.push(format!(
                    "{name}: omega runs the down notifies when xvsd stops and removes the service: it needs on_stop = \"remove\" at the top of the file"
                ));
            }
            if service.ha_suspend && service.fwmark.is_some() {
                problems.push(format!(
                    "{name}: ha_suspend follows the service's VIP, and a fwmark service has none"
                ));
            }
            if let Some(drain) = service.drain
                && !(service.keeps_failed() && drain >= 0.0 && drain.is_finite())
            {
                problems.push(format!(
                    "{name}: drain needs on_failure = \"keep\" and seconds >= 0"
                ));
            }
            if service.address.is_some_and(|a| a.port() == 0) && service.persistence.is_none() {
                problems.push(format!("{name}: port 0 needs persistence, as in ipvsadm"));
            }
            let mut checks = vec![("its check".to_string(), &service.checks)];
            for rs in &service.real_servers {
                if rs.weight > 65_535 {
                    problems.push(format!("{name}: {}: weight above 65535", rs.address));
                }
                if let Some(own) = &rs.checks {
                    checks.push((rs.address.to_string(), own));
                }
            }
            if service
                .sorry_server
                .is_some_and(|s| service.real_servers.iter().any(|rs| rs.address == s))
            {
                problems.push(format!("{name}: the sorry server is also a real server"));
            }
            if service.sorry_server_inhibit && service.sorry_server.is_none() {
                problems.push(format!("{name}: sorry_server_inhibit needs a sorry_server"));
            }
            let fullnat = service
                .real_servers
                .iter()
                .any(|rs| rs.method.unwrap_or(service.method) == Method::Fullnat)
                || service.sorry_method == Some(Method::Fullnat);
            if fullnat && service.local_addresses.is_empty() {
                problems.push(format!(
                    "{name}: fullnat real servers need the service's local_addresses"
                ));
            }
            if service.proxy_protocol.is_some() {
                let all_fullnat = service
                    .real_servers
                    .iter()
                    .all(|rs| rs.method.unwrap_or(service.method) == Method::Fullnat)
                    && (service.sorry_server.is_none()
                        || service.sorry_method.unwrap_or(service.method) == Method::Fullnat);
                if !all_fullnat {
                    problems.push(format!(
                        "{name}: proxy_protocol is sent on FULLNAT connections only: every real server needs method = \"fullnat\""
                    ));
                }
                if service.protocol == Some(Protocol::Udp) {
                    problems.push(format!("{name}: proxy_protocol is for TCP services"));
                }
            }
            if service.local_addresses.len() > model::MAX_LOCAL_ADDRESSES {
                problems.push(format!(
                    "{name}: at most {} local_addresses",
                    model::MAX_LOCAL_ADDRESSES
                ));
            }
            let tunnels = service.method == Method::Tunnel
                || service
                    .real_servers
                    .iter()
                    .any(|rs| rs.method == Some(Method::Tunnel));
            if !service.tunnel().is_empty() && !tunnels {
                problems.push(format!(
                    "{name}: tunnel_type, tunnel_port and tunnel_checksum are for method = \"tunnel\""
                ));
            }
            for rs in &service.real_servers {
                let method = rs.method.unwrap_or(service.method);
                if !service.tunnel().under(&rs.tunnel()).is_empty() {
                    if method != Method::Tunnel {
                        if !rs.tunnel().is_empty() {
                            problems.push(format!(
                                "{name}: {}: tunnel_type, tunnel_port and tunnel_checksum are for method = \"tunnel\"",
                                rs.address
                            ));
                        }
                    } else if let Some(why) = ipvsadm_refusal(&format!(
                        "{}\n{}",
                        service.add_command(),
                        service.server_command(Some(rs), 1)
                    )) {
                        problems.push(format!("{name}: {}: {why}", rs.address));
                    }
                }
                let checks = service.checks_of(rs);
                for check in checks {
                    let checked = check.address.unwrap_or(rs.address.ip());
                    if checked.is_ipv4() != rs.address.is_ipv4()
                        || check
                            .source
                            .is_some_and(|s| s.is_ipv4() != checked.is_ipv4())
                    {
                        problems.push(format!(
                            "{name}: {}: a check's address and source must be of the real server's family",
                            rs.address
                        ));
                    }
                }
                let forwarded = checks.iter().any(|c| c.forwarded);
                let one_family = service
                    .address
                    .is_some_and(|a| a.is_ipv4() == rs.address.is_ipv4());
                if forwarded && (method == Method::Nat || !one_family) {
                    problems.push(format!(
                        "{name}: {}: a forwarded check needs an address service and a DR or tunnel real server of its family",
                        rs.address
                    ));
                }
                // A fwmark service's real server may keep each packet's port (port 0);
                // its checks must then say which port to try.
                let portless = checks.iter().any(|c| {
                    c.port.is_none()
                        && !matches!(
                            c.kind,
                            CheckType::Command | CheckType::Ping | CheckType::File
                        )
                });
                if rs.address.port() == 0 && portless {
                    problems.push(format!(
                        "{name}: {}: port 0, so its check needs `port`",
                        rs.address
                    ));
                }
            }
            for (what, list) in checks {
                if list.0.is_empty() {
                    problems.push(format!("{name}: {what}: no check"));
                }
                for check in &list.0 {
                    problems.extend(check.problems().map(|p| format!("{name}: {what}: {p}")));
                }
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Every check of every real server.
    pub fn watches(&self) -> Vec<Watch> {
        let mut watches = Vec::new();
        for (i, service) in self.services.iter().enumerate() {
            for (j, rs) in service.real_servers.iter().enumerate() {
                for (k, check) in service.checks_of(rs).iter().enumerate() {
                    watches.push(Watch {
                        service: i,
                        server: j,
                        check_index: k,
                        address: rs.address,
                        check: check.clone(),
                        vip: service.address,
                        method: rs.method.unwrap_or(service.method),
                        tunnel: service.tunnel().under(&rs.tunnel()),
                    });
                }
            }
        }
        watches
    }

    /// How many real servers it names.
    pub fn real_servers(&self) -> usize {
        self.services.iter().map(|s| s.real_servers.len()).sum()
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
        assert_eq!(service.key(), "-t 1.1.1.254:80");
        assert_eq!(service.method, Method::Nat);
        assert_eq!(service.real_servers[0].weight, 1);
        let watches = config.watches();
        assert_eq!(watches.len(), 2);
        assert_eq!(watches[0].check.kind, CheckType::Http);
        assert_eq!(watches[0].check.fall, 2);
        assert_eq!(watches[0].check.expect, [200]);
        assert_eq!(watches[1].check.kind, CheckType::Tcp);
        assert_eq!(watches[1].check.port, Some(8080));
        assert_eq!(service.quorum, 1);
        assert_eq!(service.sorry_server, None);
    }

    #[test]
    fn a_vrrp_section_is_checked_whole() {
        let good = Config::parse(
            "[vrrp]\ninterface = \"eth0\"\nvrid = 51\naddresses = [\"1.1.1.254/24\", \"1.1.1.253\"]\n",
        )
        .unwrap();
        let vrrp = &good.vrrp[0];
        assert_eq!((vrrp.priority, vrrp.version, vrrp.preempt), (100, 3, true));
        assert_eq!(
            vrrp.parsed_addresses().unwrap(),
            [
                ("1.1.1.254".parse().unwrap(), 24),
                ("1.1.1.253".parse().unwrap(), 32)
            ]
        );
        let bad = Config::parse(
            "[vrrp]\ninterface = \"eth0\"\nvrid = 0\nversion = 4\ninterval = 60\naddresses = [\"fd00::1/64\", \"1.1.1.1\", \"fd00::2/129\"]\n",
        )
        .unwrap_err();
        for problem in [
            "vrid and priority must be 1-255",
            "version must be 2 or 3",
            "interval must be 0.01-40.95 s",
            "\"fd00::2/129\": bad prefix",
        ] {
            assert!(bad.contains(problem), "{problem}: {bad}");
        }
        let mixed = Config::parse(
            "[vrrp]\ninterface = \"eth0\"\nvrid = 1\naddresses = [\"fd00::1/64\", \"1.1.1.1\"]\n",
        )
        .unwrap_err();
        assert!(mixed.contains("all IPv4 or all IPv6"), "{mixed}");
        let v6 =
            Config::parse("[vrrp]\ninterface = \"eth0\"\nvrid = 1\naddresses = [\"fd00::1/64\"]\n")
                .unwrap();
        assert_eq!(
            v6.vrrp[0].parsed_addresses().unwrap(),
            [("fd00::1".parse().unwrap(), 64)]
        );
        let v2 = Config::parse(
            "[vrrp]\ninterface = \"eth0\"\nvrid = 1\nversion = 2\naddresses = [\"fd00::1\"]\n",
        )
        .unwrap_err();
        assert!(v2.contains("IPv6 addresses need version 3"), "{v2}");
        let peers = Config::parse(
            "[vrrp]\ninterface = \"eth0\"\nvrid = 1\naddresses = [\"1.1.1.1\"]\nunicast_peers = [\"fd00::2\"]\n",
        )
        .unwrap_err();
        assert!(
            peers.contains("unicast_peers must be of the addresses' family"),
            "{peers}"
        );
        let two = Config::parse(
            "[[vrrp]]\ninterface = \"eth0\"\nvrid = 1\naddresses = [\"1.1.1.1\"]\n\
             [[vrrp]]\ninterface = \"eth0\"\nvrid = 1\naddresses = [\"fd00::1\"]\n",
        )
        .unwrap();
        assert_eq!(
            two.vrrp.len(),
            2,
            "an IPv4 and an IPv6 instance may share a vrid"
        );
        let same = Config::parse(
            "[[vrrp]]\ninterface = \"eth0\"\nvrid = 1\naddresses = [\"1.1.1.1\"]\n\
             [[vrrp]]\ninterface = \"eth0\"\nvrid = 1\naddresses = [\"1.1.1.2\"]\n",
        )
        .unwrap_err();
        assert!(same.contains("two instances with vrid 1 on eth0"), "{same}");
        let typo =
            Config::parse("[vrrp]\ninterface = \"eth0\"\nvrid = 1\nadresses = []\n").unwrap_err();
        assert!(
            typo.contains("line 4") && typo.contains("adresses"),
            "{typo}"
        );
    }

    #[test]
    fn several_checks_are_an_array_of_tables() {
        let config = Config::parse(
            r#"
[[service]]
address = "1.1.1.254:80"
sorry_server = "192.168.1.99:80"
[[service.check]]
type = "http"
body = "ok"
[[service.check]]
type = "command"
command = "test -e /tmp/up"
dynamic = true
[[service.real_server]]
address = "192.168.1.10:80"
"#,
        )
        .unwrap();
        let watches = config.watches();
        assert_eq!(watches.len(), 2);
        assert_eq!(watches[1].check_index, 1);
        assert!(watches[1].check.dynamic);
        let wrong = Config::parse(
            "[[service]]\naddress = \"1.1.1.254:80\"\n[[service.check]]\ntype = \"command\"\ntimout = 2\n",
        )
        .unwrap_err();
        assert!(
            wrong.contains("line 5") && wrong.contains("timout"),
            "{wrong}"
        );
        let missing = Config::parse(
            "[[service]]\naddress = \"1.1.1.254:80\"\n[service.check]\ntype = \"command\"\n",
        )
        .unwrap_err();
        assert!(missing.contains("needs `command`"), "{missing}");
    }

    #[test]
    fn a_fwmark_service_is_keyed_by_its_mark_and_its_real_servers_family() {
        let config = Config::parse(
            r#"
[[service]]
fwmark = 1
persistence = 600
[service.check]
port = 443
[[service.real_server]]
address = "192.168.1.10:0"

[[service]]
fwmark = 1
[[service.real_server]]
address = "[fd00::10]:80"

[[service]]
fwmark = 2
family = "inet6"
"#,
        )
        .unwrap();
        let keys: Vec<String> = config.services.iter().map(ServiceConfig::key).collect();
        assert_eq!(keys, ["-f 1", "-f 1 -6", "-f 2 -6"]);
        assert_eq!(config.services[0].name(), "FWM 1");
        assert_eq!(config.watches()[0].vip, None);

        for (text, problem) in [
            ("fwmark = 0", "fwmark must be 1-4294967295"),
            (
                "fwmark = 1\nprotocol = \"udp\"",
                "a fwmark service has no protocol",
            ),
            (
                "fwmark = 1\naddress = \"1.1.1.254:80\"",
                "either address or fwmark",
            ),
            ("scheduler = \"rr\"", "needs address (or fwmark)"),
            (
                "address = \"1.1.1.254:80\"\nfamily = \"inet6\"",
                "family is a fwmark",
            ),
            (
                "fwmark = 1\n[[service.real_server]]\naddress = \"192.168.1.10:0\"",
                "192.168.1.10:0: port 0, so its check needs `port`",
            ),
            (
                "fwmark = 1\nfamily = \"inet6\"\n[[service.real_server]]\naddress = \"192.168.1.10:80\"",
                "not all of the service's family",
            ),
        ] {
            let wrong = Config::parse(&format!("[[service]]\n{text}\n")).unwrap_err();
            assert!(wrong.contains(problem), "{text}: {wrong}");
        }
    }

    /// A real server in several services, alike in its check, is checked once for all;
    /// another port, or a forwarded check through another VIP, is another probe.
    #[test]
    fn alike_checks_of_one_real_server_share_a_probe() {
        let service = |vip: &str, check: &str| {
            format!(
                "[[service]]\naddress = \"{vip}\"\nmethod = \"dr\"\ncheck = {{ {check} }}\n\
                 [[service.real_server]]\naddress = \"192.168.1.10:80\"\n\
                 [[service.real_server]]\naddress = \"192.168.1.20:80\"\n"
            )
        };
        let config = Config::parse(
            &[
                service("1.1.1.254:80", "type = \"http\""),
                service("1.1.1.253:80", "type = \"http\""),
                service("1.1.1.252:80", "type = \"http\", port = 8080"),
                service("1.1.1.251:80", "forwarded = true"),
                service("1.1.1.250:80", "forwarded = true"),
            ]
            .concat(),
        )
        .unwrap();
        let watches = config.watches();
        assert_eq!(watches.len(), 10);
        assert_eq!(
            probes(&watches),
            [
                vec![0, 2],
                vec![1, 3],
                vec![4],
                vec![5],
                vec![6],
                vec![7],
                vec![8],
                vec![9]
            ]
        );
    }

    #[test]
    fn problems_are_named_with_their_place() {
        let typo = Config::parse("[[service]]\naddress = \"1.1.1.254:80\"\nschedular = \"rr\"\n")
            .unwrap_err();
        assert!(typo.contains("line 3"), "{typo}");
        assert!(typo.contains("schedular"), "{typo}");
        let bad = Config::parse("\n[[service]]\naddress = \"1.1.1.254:80\"\nscheduler = \"xx\"\n")
            .unwrap_err();
        assert!(
            bad.contains("line 2: service 1 (1.1.1.254:80): no scheduler \"xx\""),
            "{bad}"
        );
        let twice = Config::parse(&format!(
            "{SEED}\n[[service.real_server]]\naddress = \"192.168.1.10:80\"\n"
        ))
        .unwrap_err();
        assert!(twice.contains("192.168.1.10:80 listed twice"), "{twice}");
        let address = Config::parse("[[service]]\naddress = \"nowhere\"\n").unwrap_err();
        assert!(address.contains("line 2"), "{address}");
        // An SMTP check's HELO name is one word; a ping check needs no port even on a
        // port-0 real server.
        let helo = Config::parse(&SEED.replace(
            "check = { type = \"tcp\", port = 8080 }",
            "check = { type = \"smtp\", helo_name = \"two words\" }",
        ))
        .unwrap_err();
        assert!(helo.contains("helo_name \"two words\""), "{helo}");
        let ping = "[[service]]\nfwmark = 1\nscheduler = \"rr\"\ncheck = { type = \"ping\" }\n\
                    [[service.real_server]]\naddress = \"192.168.1.10:0\"\n";
        assert!(Config::parse(ping).is_ok(), "{:?}", Config::parse(ping));
        // A check's own address and source are of its real server's family.
        let with_check = |check: &str| {
            Config::parse(&format!(
                "[[service]]\naddress = \"1.1.1.254:80\"\ncheck = {{ {check} }}\n\
                 [[service.real_server]]\naddress = \"192.168.1.10:80\"\n"
            ))
        };
        assert!(with_check("address = \"10.0.0.10\", source = \"10.0.0.1\"").is_ok());
        for wrong in ["address = \"fd00::10\"", "source = \"fd00::1\""] {
            let refused = with_check(wrong).unwrap_err();
            assert!(
                refused.contains("address and source must be of the real server's family"),
                "{wrong}: {refused}"
            );
        }
        let command = with_check("type = \"command\", command = \"true\", source = \"10.0.0.1\"")
            .unwrap_err();
        assert!(
            command.contains("`source`, `source_port`, `interface` and `mark` are for checks"),
            "{command}"
        );
        // Where a check leaves from: a port, an interface, a mark.
        assert!(with_check("source_port = 6000, interface = \"eth1\", mark = 7").is_ok());
        for (wrong, why) in [
            ("type = \"ping\", source_port = 6000", "a ping has no port"),
            ("source_port = 0", "source_port must be 1..=65535"),
            (
                "interface = \"a/b\"",
                "interface \"a/b\" is not an interface name",
            ),
            (
                "forwarded = true, mark = 1",
                "a forwarded check is sent the way",
            ),
            (
                "type = \"file\", file = \"/run/x\", mark = 1",
                "are for checks that send",
            ),
            ("user = \"nobody\"", "`user` is for command checks"),
            (
                "type = \"command\", command = \"true\", user = \"a:b:c\"",
                "user \"a:b:c\" is not NAME or NAME:GROUP",
            ),
        ] {
            let refused = with_check(wrong).unwrap_err();
            assert!(refused.contains(why), "{wrong}: {refused}");
        }
        let init =
            with_check("type = \"file\", file = \"/run/x\", init_overwrite = true").unwrap_err();
        assert!(
            init.contains("`init_overwrite` needs `init_file`"),
            "{init}"
        );
        // ha_suspend follows a VIP, which a fwmark service has not.
        let marked = "[[service]]\nfwmark = 1\nscheduler = \"rr\"\nha_suspend = true\n";
        let suspend = Config::parse(marked).unwrap_err();
        assert!(suspend.contains("a fwmark service has none"), "{suspend}");
        // An HTTP version is "1.0" or "1.1", and for HTTP checks.
        assert!(with_check("type = \"http\", http_version = \"1.1\"").is_ok());
        let version = with_check("type = \"http\", http_version = \"2\"").unwrap_err();
        assert!(version.contains("http_version"), "{version}");
        let tcp = with_check("http_version = \"1.1\"").unwrap_err();
        assert!(
            tcp.contains("`http_version` is for http and https checks"),
            "{tcp}"
        );
    }

    #[test]
    fn a_service_s_ipvsadm_options_are_its_add_line_and_checked_as_ipvsadm_checks_them() {
        let sip = "[[service]]\naddress = \"1.1.1.254:5060\"\nprotocol = \"udp\"\n\
                   scheduler = \"rr\"\npersistence = 60\nnetmask = \"0.0.0.0\"\n\
                   persistence_engine = \"sip\"\nops = true\n";
        let config = Config::parse(sip).unwrap();
        assert_eq!(
            config.services[0].add_command(),
            "-A -u 1.1.1.254:5060 -s rr -p 60 -M 0.0.0.0 --pe sip -o"
        );
        let sh = "[[service]]\naddress = \"1.1.1.254:80\"\nscheduler = \"sh\"\n\
                  scheduler_flags = [\"sh-port\", \"sh-fallback\"]\n";
        let config = Config::parse(sh).unwrap();
        assert_eq!(
            config.services[0].add_command(),
            "-A -t 1.1.1.254:80 -s sh -b sh-port,sh-fallback"
        );
        for (wrong, why) in [
            (sip.replace("0.0.0.0", "255.0.255.300"), "persistent mask"),
            (sip.replace("\"sip\"", "\"rtsp\""), "persistence engine"),
            (
                sip.replace("udp", "tcp"),
                "One-Packet Scheduling is only for UDP",
            ),
            (sh.replace("sh-port", "mh-port"), "mh-port"),
        ] {
            let problem = Config::parse(&wrong).unwrap_err();
            assert!(
                problem.contains("line 1: service 1 (") && problem.contains(why),
                "{wrong}: {problem}"
            );
        }
    }

    /// keepalived's `uthreshold` and `lthreshold`: ipvsadm's `-x` and `-y`.
    #[test]
    fn a_real_server_s_thresholds_are_its_x_and_y() {
        let text = "[[service]]\naddress = \"1.1.1.254:80\"\n\
                    [[service.real_server]]\naddress = \"192.168.1.10:80\"\n\
                    u_threshold = 100\nl_threshold = 50\n\
                    [[service.real_server]]\naddress = \"192.168.1.20:80\"\n";
        let config = Config::parse(text).unwrap();
        let service = &config.services[0];
        assert_eq!(
            service.server_command(Some(&service.real_servers[0]), 1),
            "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -g -w 1 -x 100 -y 50"
        );
        assert_eq!(
            service.server_command(Some(&service.real_servers[1]), 1),
            "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -g -w 1"
        );
        let refused = Config::parse(&text.replace("u_threshold = 100", "u_threshold = -1"));
        assert!(refused.is_err());
        let above =
            Config::parse(&text.replace("u_threshold = 100", "u_threshold = 10")).unwrap_err();
        assert!(
            above.contains("l_threshold 50 above u_threshold 10"),
            "{above}"
        );
    }

    #[test]
    fn tunnel_real_servers_take_their_encapsulation_from_themselves_or_their_service() {
        let text = "[[service]]\naddress = \"1.1.1.254:80\"\nscheduler = \"rr\"\n\
                    method = \"tunnel\"\ntunnel_type = \"gue\"\ntunnel_port = 6080\n\
                    [[service.real_server]]\naddress = \"10.0.0.10:80\"\n\
                    [[service.real_server]]\naddress = \"10.0.0.20:80\"\n\
                    tunnel_type = \"gre\"\ntunnel_port = 0\ntunnel_checksum = \"csum\"\n\
                    [[service.real_server]]\naddress = \"10.0.0.30:80\"\nmethod = \"dr\"\n";
        // A port on a GRE server is refused, as ipvsadm refuses it.
        let refused = Config::parse(text).unwrap_err();
        assert!(
            refused.contains("10.0.0.20:80: illegal tunnel port"),
            "{refused}"
        );
        let config = Config::parse(&text.replace("tunnel_port = 0\n", "")).unwrap();
        let service = &config.services[0];
        let lines: Vec<String> = service
            .real_servers
            .iter()
            .map(|rs| service.server_command(Some(rs), 1))
            .collect();
        assert_eq!(
            lines,
            [
                "-a -t 1.1.1.254:80 -r 10.0.0.10:80 -i --tun-type gue --tun-port 6080 -w 1",
                "-a -t 1.1.1.254:80 -r 10.0.0.20:80 -i --tun-type gre --tun-csum -w 1",
                "-a -t 1.1.1.254:80 -r 10.0.0.30:80 -g -w 1",
            ]
        );
        for (wrong, why) in [
            (text.replace("tunnel_port = 6080\n", ""), "tun-port"),
            (
                text.replace("method = \"dr\"", "method = \"dr\"\ntunnel_type = \"gre\""),
                "are for method = \"tunnel\"",
            ),
            (text.replace("\"csum\"", "\"sum\""), "tunnel_checksum"),
            (
                text.replace("method = \"tunnel\"", "method = \"nat\""),
                "are for method = \"tunnel\"",
            ),
        ] {
            let problem = Config::parse(&wrong).unwrap_err();
            assert!(problem.contains(why), "{wrong}: {problem}");
        }
    }

    #[test]
    fn timeouts_are_ipvsadm_s_set_and_checked_as_it_checks_them() {
        let config = Config::parse("[timeouts]\ntcp = 7200\nudp = 60\n").unwrap();
        assert_eq!(config.timeouts.unwrap().set_command(), "--set 7200 0 60");
        let wrong = Config::parse("[timeouts]\ntcp = 2678401\n").unwrap_err();
        assert!(wrong.starts_with("timeouts: "), "{wrong}");
        let typo = Config::parse("[timeouts]\ntcp_fin = 1\n").unwrap_err();
        assert!(typo.contains("tcp_fin"), "{typo}");
    }

    #[test]
    fn a_sync_section_has_ipvs_defaults_and_is_checked() {
        let config = Config::parse("[sync]\ninterface = \"eth1\"\n").unwrap();
        let sync = config.sync.unwrap();
        assert_eq!(
            (
                sync.group.to_string(),
                sync.port,
                sync.maxlen(),
                sync.syncid
            ),
            ("224.0.0.81".to_string(), 8848, 1472, None)
        );
        let bad =
            Config::parse("[sync]\ninterface = \"eth1\"\ngroup = \"10.0.0.1\"\nkey = \"short\"\n")
                .unwrap_err();
        assert!(bad.contains("not a multicast address"), "{bad}");
        assert!(bad.contains("key must be"), "{bad}");
        let typo = Config::parse("[sync]\ninterface = \"eth1\"\nsyncid = 300\n").unwrap_err();
        assert!(typo.contains("syncid"), "{typo}");
        // Over IPv6: IPVS's IPv6 default message size; peers of one family.
        let v6 = Config::parse("[sync]\ninterface = \"eth1\"\ngroup = \"ff02::51\"\n").unwrap();
        let sync = v6.sync.unwrap();
        assert!(sync.over_ipv6());
        assert_eq!(sync.maxlen(), 1452);
        let mixed =
            Config::parse("[sync]\ninterface = \"eth1\"\npeers = [\"10.0.0.2\", \"fd00::2\"]\n")
                .unwrap_err();
        assert!(mixed.contains("all IPv4 or all IPv6"), "{mixed}");
    }

    #[test]
    fn the_sysctl_section_takes_ipvs_names_with_their_values() {
        let config =
            Config::parse("[sysctl]\nexpire_nodest_conn = 0\nexpire_quiescent_template = true\n")
                .unwrap();
        assert_eq!(
            config.sysctl.settings(),
            [("expire_nodest_conn", 0), ("expire_quiescent_template", 1)]
        );
        assert!(Config::parse("").unwrap().sysctl.settings().is_empty());
        let two = Config::parse("[sysctl]\nexpire_nodest_conn = 2\n").unwrap_err();
        assert!(two.contains("line 2"), "{two}");
        assert!(two.contains("must be 0 or 1, not 2"), "{two}");
        let modes = Config::parse("[sysctl]\nconn_reuse_mode = 0\nsloppy_tcp = 1\n").unwrap();
        assert_eq!(
            modes.sysctl.settings(),
            [("conn_reuse_mode", 0), ("sloppy_tcp", 1)]
        );
        let four = Config::parse("[sysctl]\nconn_reuse_mode = 4\n").unwrap_err();
        assert!(four.contains("must be 0 to 3, not 4"), "{four}");
        let unknown = Config::parse("[sysctl]\nsync_threshold = 1\n").unwrap_err();
        assert!(unknown.contains("line 2"), "{unknown}");
        assert!(unknown.contains("sync_threshold"), "{unknown}");
    }
}
