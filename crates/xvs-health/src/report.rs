//! What xvsd shows of the director: every service of the table with its real servers,
//! traffic (counters and IPVS-estimated rates), connection counts, and, for the services
//! xvsd owns, their health. One `Report` is made from the table and xvsd's state, then
//! rendered for Prometheus (`/metrics`) or as JSON for the status page (`/api/status`).
//! Pure: xvsd reads the table and the state, these functions only arrange them.

use std::{fmt::Write, net::SocketAddr, time::Duration};

use serde::Serialize;
use xvs_core::{
    model::{Service, ServiceKey, Stats},
    table::Table,
};

use crate::{config::Config, state::State};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub services: Vec<ServiceReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReport {
    /// As listings name it: `TCP 1.1.1.254:80`, `FWM 1`.
    pub name: String,
    pub scheduler: String,
    /// Whether xvsd's config names it (health is known only then).
    pub owned: bool,
    pub quorum_up: Option<bool>,
    /// Its checks are paused: `ha_suspend` and its VIP is not here (xvsd's services).
    pub checks_paused: Option<bool>,
    pub traffic: Traffic,
    pub real_servers: Vec<ServerReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerReport {
    pub address: String,
    /// False for a real server of xvsd's config that is out of the table (down).
    pub in_table: bool,
    /// `Masq`, `Route`, `Tunnel` as ipvsadm lists them.
    pub forward: String,
    pub weight: u32,
    pub active_connections: u32,
    pub inactive_connections: u32,
    /// Known for real servers of xvsd's services.
    pub up: Option<bool>,
    /// Each check's last result, in the config's order.
    pub checks: Vec<CheckReport>,
    pub traffic: Traffic,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub up: bool,
    /// The last run: passed, or why not; `None` before the first.
    pub last: Option<Result<(), String>>,
    /// How long the last run took, seconds (retries included).
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Traffic {
    pub connections: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections_per_second: u64,
    pub packets_in_per_second: u64,
    pub packets_out_per_second: u64,
    pub bytes_in_per_second: u64,
    pub bytes_out_per_second: u64,
}

impl From<&Stats> for Traffic {
    fn from(s: &Stats) -> Traffic {
        Traffic {
            connections: s.conns,
            packets_in: s.inpkts,
            packets_out: s.outpkts,
            bytes_in: s.inbytes,
            bytes_out: s.outbytes,
            connections_per_second: s.cps,
            packets_in_per_second: s.inpps,
            packets_out_per_second: s.outpps,
            bytes_in_per_second: s.inbps,
            bytes_out_per_second: s.outbps,
        }
    }
}

/// The last result and duration of each check, by the config's indexes.
pub trait CheckResults {
    fn last(
        &self,
        service: usize,
        server: usize,
        check: usize,
    ) -> Option<(Result<(), String>, Duration)>;

    /// Whether the checks of service `service` are paused (`ha_suspend`).
    fn paused(&self, service: usize) -> bool;
}

fn name_of(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => format!("{} {}", protocol.name(), SocketAddr::new(addr, port)),
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

/// The report of `table` (read with its counters), with the health `state` knows for the
/// services of `config`.
pub fn report(config: &Config, state: &State, table: &Table, checks: &dyn CheckResults) -> Report {
    let services = table
        .services
        .iter()
        .map(|service| service_report(config, state, service, checks))
        .collect();
    Report { services }
}

fn service_report(
    config: &Config,
    state: &State,
    service: &Service,
    checks: &dyn CheckResults,
) -> ServiceReport {
    let name = name_of(&service.key);
    let owned = config.services.iter().position(|s| s.name() == name);
    let mut real_servers: Vec<ServerReport> = service
        .dests
        .iter()
        .map(|dest| {
            let address = SocketAddr::new(dest.addr, dest.port);
            let known = owned.and_then(|i| {
                let j = config.services[i]
                    .real_servers
                    .iter()
                    .position(|rs| rs.address == address)?;
                Some((i, j, &state.services[i].servers[j]))
            });
            ServerReport {
                address: address.to_string(),
                in_table: true,
                forward: dest.forward.name().to_string(),
                weight: dest.weight,
                active_connections: dest.conns.active,
                inactive_connections: dest.conns.inactive,
                up: known.map(|(_, _, s)| s.is_up()),
                checks: known
                    .map(|(i, j, _)| check_reports(state, checks, i, j))
                    .unwrap_or_default(),
                traffic: Traffic::from(&dest.stats),
            }
        })
        .collect();
    // xvsd's real servers out of the table are shown too: down ones matter most.
    if let Some(i) = owned {
        let configured = &config.services[i];
        for (j, rs) in configured.real_servers.iter().enumerate() {
            let address = rs.address.to_string();
            if real_servers.iter().any(|r| r.address == address) {
                continue;
            }
            let server = &state.services[i].servers[j];
            real_servers.push(ServerReport {
                address,
                in_table: false,
                forward: rs
                    .method
                    .unwrap_or(configured.method)
                    .forward_name()
                    .to_string(),
                weight: 0,
                active_connections: 0,
                inactive_connections: 0,
                up: Some(server.is_up()),
                checks: check_reports(state, checks, i, j),
                traffic: Traffic::default(),
            });
        }
    }
    ServiceReport {
        name,
        scheduler: service.scheduler.name().to_string(),
        owned: owned.is_some(),
        quorum_up: owned.map(|i| state.services[i].quorum_up),
        checks_paused: owned.map(|i| checks.paused(i)),
        traffic: Traffic::from(&service.stats),
        real_servers,
    }
}

fn check_reports(
    state: &State,
    checks: &dyn CheckResults,
    service: usize,
    server: usize,
) -> Vec<CheckReport> {
    state.services[service].servers[server]
        .checks
        .iter()
        .enumerate()
        .map(|(k, health)| {
            let last = checks.last(service, server, k);
            CheckReport {
                up: health.is_up(),
                seconds: last.as_ref().map(|(_, d)| d.as_secs_f64()),
                last: last.map(|(r, _)| r),
            }
        })
        .collect()
}

impl Report {
    /// The status page's data.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Prometheus's text format (version 0.0.4): counters end in `_total`, rates are
    /// gauges, every family has its HELP and TYPE once.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let traffic_families: [TrafficFamily; 10] = [
            (
                "connections_total",
                "counter",
                "Connections scheduled.",
                |t| t.connections,
            ),
            (
                "packets_in_total",
                "counter",
                "Packets toward the real servers.",
                |t| t.packets_in,
            ),
            (
                "packets_out_total",
                "counter",
                "Packets back from the real servers (NAT).",
                |t| t.packets_out,
            ),
            (
                "bytes_in_total",
                "counter",
                "Bytes toward the real servers.",
                |t| t.bytes_in,
            ),
            (
                "bytes_out_total",
                "counter",
                "Bytes back from the real servers (NAT).",
                |t| t.bytes_out,
            ),
            (
                "connections_per_second",
                "gauge",
                "Connection rate as IPVS estimates it.",
                |t| t.connections_per_second,
            ),
            (
                "packets_in_per_second",
                "gauge",
                "Inbound packet rate as IPVS estimates it.",
                |t| t.packets_in_per_second,
            ),
            (
                "packets_out_per_second",
                "gauge",
                "Outbound packet rate as IPVS estimates it.",
                |t| t.packets_out_per_second,
            ),
            (
                "bytes_in_per_second",
                "gauge",
                "Inbound byte rate as IPVS estimates it.",
                |t| t.bytes_in_per_second,
            ),
            (
                "bytes_out_per_second",
                "gauge",
                "Outbound byte rate as IPVS estimates it.",
                |t| t.bytes_out_per_second,
            ),
        ];
        for (suffix, kind, help, value) in traffic_families {
            family(&mut out, &format!("xvs_service_{suffix}"), kind, help);
            for s in &self.services {
                sample(
                    &mut out,
                    &format!("xvs_service_{suffix}"),
                    &[("service", &s.name)],
                    value(&s.traffic),
                );
            }
            family(&mut out, &format!("xvs_real_server_{suffix}"), kind, help);
            for (s, r) in self.servers() {
                sample(
                    &mut out,
                    &format!("xvs_real_server_{suffix}"),
                    &server_labels(s, r),
                    value(&r.traffic),
                );
            }
        }
        family(
            &mut out,
            "xvs_real_server_weight",
            "gauge",
            "The real server's weight in the table.",
        );
        for (s, r) in self.servers() {
            sample(
                &mut out,
                "xvs_real_server_weight",
                &server_labels(s, r),
                u64::from(r.weight),
            );
        }
        family(
            &mut out,
            "xvs_real_server_active_connections",
            "gauge",
            "Connections in an active TCP state.",
        );
        for (s, r) in self.servers() {
            sample(
                &mut out,
                "xvs_real_server_active_connections",
                &server_labels(s, r),
                u64::from(r.active_connections),
            );
        }
        family(
            &mut out,
            "xvs_real_server_inactive_connections",
            "gauge",
            "Other connections.",
        );
        for (s, r) in self.servers() {
            sample(
                &mut out,
                "xvs_real_server_inactive_connections",
                &server_labels(s, r),
                u64::from(r.inactive_connections),
            );
        }
        family(
            &mut out,
            "xvs_service_quorum_up",
            "gauge",
            "1 while the service has its quorum (xvsd's services).",
        );
        for s in &self.services {
            if let Some(up) = s.quorum_up {
                sample(
                    &mut out,
                    "xvs_service_quorum_up",
                    &[("service", &s.name)],
                    u64::from(up),
                );
            }
        }
        family(
            &mut out,
            "xvs_service_checks_paused",
            "gauge",
            "1 while the service's checks are paused: ha_suspend and its VIP not here (xvsd's services).",
        );
        for s in &self.services {
            if let Some(paused) = s.checks_paused {
                sample(
                    &mut out,
                    "xvs_service_checks_paused",
                    &[("service", &s.name)],
                    u64::from(paused),
                );
            }
        }
        family(
            &mut out,
            "xvs_real_server_up",
            "gauge",
            "1 while every check of the real server passes (xvsd's services).",
        );
        for (s, r) in self.servers() {
            if let Some(up) = r.up {
                sample(
                    &mut out,
                    "xvs_real_server_up",
                    &server_labels(s, r),
                    u64::from(up),
                );
            }
        }
        family(
            &mut out,
            "xvs_check_duration_seconds",
            "gauge",
            "How long the check's last run took, retries included.",
        );
        for (s, r) in self.servers() {
            for (k, check) in r.checks.iter().enumerate() {
                if let Some(seconds) = check.seconds {
                    let index = k.to_string();
                    let mut labels = server_labels(s, r);
                    labels.push(("check", &index));
                    let _ = writeln!(
                        out,
                        "xvs_check_duration_seconds{} {seconds}",
                        label_text(&labels)
                    );
                }
            }
        }
        out
    }

    fn servers(&self) -> impl Iterator<Item = (&ServiceReport, &ServerReport)> {
        self.services
            .iter()
            .flat_map(|s| s.real_servers.iter().map(move |r| (s, r)))
    }
}

/// A metric family of traffic: name suffix, type, help, and its value.
type TrafficFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Traffic) -> u64,
);

fn server_labels<'a>(s: &'a ServiceReport, r: &'a ServerReport) -> Vec<(&'static str, &'a str)> {
    vec![("service", &s.name), ("real_server", &r.address)]
}

/// What the director's high-availability parts say, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaView {
    /// Each VRRP instance.
    pub vrrp: Vec<VrrpView>,
    /// Connection sync's totals, if `[sync]` runs.
    pub sync: Option<SyncTotals>,
    /// Each VIP BGP may announce, and whether it is announced now.
    pub bgp: Vec<(String, bool)>,
}

/// One VRRP instance as this director takes part in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VrrpView {
    /// `VRRP 51 on eth0`.
    pub name: String,
    /// Whether this director is its master.
    pub master: bool,
    /// The priority it advertises: the configured one, swayed by track scripts.
    pub priority: u8,
}

/// Connection sync's counts since xvsd started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncTotals {
    pub sent: u64,
    pub messages_sent: u64,
    pub made: u64,
    pub updated: u64,
    pub in_use: u64,
    /// Records given up: of services or real servers this director did not get in time.
    pub unknown: u64,
    /// Records waiting now for their service or real server.
    pub waiting: u64,
    pub table_full: u64,
    pub dropped_messages: u64,
}

impl HaView {
    /// The families of the Prometheus text format, appended to [`Report::metrics`].
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        if !self.vrrp.is_empty() {
            family(
                &mut out,
                "xvs_vrrp_master",
                "gauge",
                "1 while this director is master of the VRRP instance.",
            );
            for instance in &self.vrrp {
                sample(
                    &mut out,
                    "xvs_vrrp_master",
                    &[("instance", &instance.name)],
                    u64::from(instance.master),
                );
            }
            family(
                &mut out,
                "xvs_vrrp_priority",
                "gauge",
                "The priority this director advertises: its configured one, swayed by track scripts.",
            );
            for instance in &self.vrrp {
                sample(
                    &mut out,
                    "xvs_vrrp_priority",
                    &[("instance", &instance.name)],
                    u64::from(instance.priority),
                );
            }
        }
        if let Some(sync) = &self.sync {
            family(
                &mut out,
                "xvs_sync_connections_sent_total",
                "counter",
                "Connections told to the backups.",
            );
            sample(&mut out, "xvs_sync_connections_sent_total", &[], sync.sent);
            family(
                &mut out,
                "xvs_sync_messages_sent_total",
                "counter",
                "Sync messages sent.",
            );
            sample(
                &mut out,
                "xvs_sync_messages_sent_total",
                &[],
                sync.messages_sent,
            );
            family(
                &mut out,
                "xvs_sync_connections_received_total",
                "counter",
                "Connections received from a master, by what became of them.",
            );
            for (result, value) in [
                ("new", sync.made),
                ("updated", sync.updated),
                ("in_use", sync.in_use),
                ("unknown", sync.unknown),
                ("table_full", sync.table_full),
            ] {
                sample(
                    &mut out,
                    "xvs_sync_connections_received_total",
                    &[("result", result)],
                    value,
                );
            }
            family(
                &mut out,
                "xvs_sync_connections_waiting",
                "gauge",
                "Connections received for services or real servers this director does not have yet, tried again when its table changes.",
            );
            sample(&mut out, "xvs_sync_connections_waiting", &[], sync.waiting);
            family(
                &mut out,
                "xvs_sync_messages_dropped_total",
                "counter",
                "Sync messages dropped: malformed, another version, or a wrong or missing HMAC.",
            );
            sample(
                &mut out,
                "xvs_sync_messages_dropped_total",
                &[],
                sync.dropped_messages,
            );
        }
        if !self.bgp.is_empty() {
            family(
                &mut out,
                "xvs_bgp_announced",
                "gauge",
                "1 while the VIP is announced to the BGP routers.",
            );
            for (vip, announced) in &self.bgp {
                sample(
                    &mut out,
                    "xvs_bgp_announced",
                    &[("vip", vip)],
                    u64::from(*announced),
                );
            }
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let _ = writeln!(out, "{name}{} {value}", label_text(labels));
}

/// `{a="x",b="y"}`, values escaped as the text format asks; nothing without labels.
fn label_text(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Outcome;
    use xvs_core::{restore::restore, text::NoNames};

    struct Latencies;
    impl CheckResults for Latencies {
        fn last(
            &self,
            _: usize,
            server: usize,
            _: usize,
        ) -> Option<(Result<(), String>, Duration)> {
            (server == 0).then(|| (Ok(()), Duration::from_millis(3)))
        }

        fn paused(&self, _: usize) -> bool {
            false
        }
    }

    #[test]
    fn every_service_is_reported_and_health_only_for_xvsd_s() {
        let config = Config::parse(
            "[[service]]\naddress = \"1.1.1.254:80\"\n[[service.real_server]]\naddress = \"192.168.1.10:80\"\n[[service.real_server]]\naddress = \"192.168.1.20:80\"\n",
        )
        .unwrap();
        let mut table = Table::default();
        restore(
            "-A -t 1.1.1.254:80 -s wlc\n-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 2\n-A -u 10.0.0.1:53 -s rr\n-a -u 10.0.0.1:53 -r 10.0.0.2:53 -m",
            &mut table,
            &NoNames,
            "x",
        )
        .unwrap();
        table.services[0].stats.conns = 7;
        table.services[0].dests[0].stats.inpkts = 70;
        let mut state = State::new(&config, &table);
        state.observe(&config, 0, 1, 0, Outcome::Failure, None, Duration::ZERO);
        let report = report(&config, &state, &table, &Latencies);
        assert_eq!(report.services.len(), 2);
        assert_eq!(report.services[0].quorum_up, Some(true));
        assert_eq!(report.services[1].quorum_up, None, "not xvsd's");
        assert_eq!(report.services[0].real_servers[0].up, Some(true));
        // The configured server that is not in the table is shown, down.
        let out = &report.services[0].real_servers[1];
        assert_eq!(
            (out.address.as_str(), out.in_table, out.up),
            ("192.168.1.20:80", false, Some(false))
        );

        let metrics = report.metrics();
        for line in [
            "# TYPE xvs_service_connections_total counter",
            "xvs_service_connections_total{service=\"TCP 1.1.1.254:80\"} 7",
            "xvs_service_connections_total{service=\"UDP 10.0.0.1:53\"} 0",
            "xvs_real_server_packets_in_total{service=\"TCP 1.1.1.254:80\",real_server=\"192.168.1.10:80\"} 70",
            "xvs_real_server_weight{service=\"TCP 1.1.1.254:80\",real_server=\"192.168.1.10:80\"} 2",
            "xvs_real_server_up{service=\"TCP 1.1.1.254:80\",real_server=\"192.168.1.10:80\"} 1",
            "xvs_service_quorum_up{service=\"TCP 1.1.1.254:80\"} 1",
            "xvs_service_checks_paused{service=\"TCP 1.1.1.254:80\"} 0",
            "xvs_check_duration_seconds{service=\"TCP 1.1.1.254:80\",real_server=\"192.168.1.10:80\",check=\"0\"} 0.003",
            "xvs_real_server_up{service=\"TCP 1.1.1.254:80\",real_server=\"192.168.1.20:80\"} 0",
        ] {
            assert!(
                metrics.lines().any(|l| l == line),
                "{line} missing:\n{metrics}"
            );
        }
        assert!(!metrics.contains("xvs_real_server_up{service=\"UDP"));
        let ha = HaView {
            vrrp: vec![VrrpView {
                name: "VRRP 51 on eth0".to_string(),
                master: true,
                priority: 150,
            }],
            sync: Some(SyncTotals {
                sent: 4,
                made: 3,
                waiting: 2,
                dropped_messages: 1,
                ..SyncTotals::default()
            }),
            bgp: vec![("1.1.1.254".to_string(), false)],
        }
        .metrics();
        for line in [
            "# TYPE xvs_vrrp_master gauge",
            "xvs_vrrp_master{instance=\"VRRP 51 on eth0\"} 1",
            "xvs_vrrp_priority{instance=\"VRRP 51 on eth0\"} 150",
            "xvs_sync_connections_sent_total 4",
            "xvs_sync_connections_received_total{result=\"new\"} 3",
            "xvs_sync_connections_waiting 2",
            "xvs_sync_messages_dropped_total 1",
            "xvs_bgp_announced{vip=\"1.1.1.254\"} 0",
        ] {
            assert!(ha.lines().any(|l| l == line), "{line}:\n{ha}");
        }
        assert_eq!(HaView::default().metrics(), "");
        // Every sample belongs to a family declared once.
        let mut declared = std::collections::HashSet::new();
        for line in metrics.lines() {
            if let Some(name) = line.strip_prefix("# TYPE ") {
                assert!(declared.insert(name.split(' ').next().unwrap().to_string()));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{line}");
            }
        }
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["services"][0]["name"], "TCP 1.1.1.254:80");
        assert_eq!(
            json["services"][0]["real_servers"][0]["traffic"]["packets_in"],
            70
        );
    }
}
