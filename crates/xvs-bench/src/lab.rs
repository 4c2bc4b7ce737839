//! `xvs-bench lab [--quick]`: real connections through a lab, xvs beside what a user
//! would use instead, measured in one run with the contenders alternating so that the
//! machine's drift hits each alike (docs/BENCHMARKS.md, "Lab").
//!
//! Two labs of the seed's shape, built once: the NAT lab (client 1.1.1.1, director, web1
//! and web2 behind it on a bridge) for the direct path, xvs NAT and FULLNAT, nftables DNAT
//! and HAProxy;
//! the DR lab (all on one segment, real servers holding the VIP on `lo`) for xvs DR; the
//! tunnel lab (real servers in another subnet, decapsulating with xvs's program) for xvs
//! tunnel. The
//! real servers run nginx and iperf3; the client runs wrk and iperf3. Each contender is
//! set up before its measurements and removed after them, completely (xvs's program
//! detached from every interface, the nftables table deleted, HAProxy stopped).

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use xvs_lab::{Lab, topology};

/// The contenders, in the order of a round (each round starts one further on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    Direct,
    XvsNat,
    XvsFullnat,
    XvsNatFwmark,
    XvsDr,
    XvsTunnel,
    Nftables,
    Haproxy,
}

const CONTENDERS: [Contender; 8] = [
    Contender::Direct,
    Contender::XvsNat,
    Contender::XvsFullnat,
    Contender::XvsNatFwmark,
    Contender::XvsDr,
    Contender::XvsTunnel,
    Contender::Nftables,
    Contender::Haproxy,
];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Direct => "direct",
            Contender::XvsNat => "xvs NAT",
            Contender::XvsFullnat => "xvs FULLNAT",
            Contender::XvsNatFwmark => "xvs NAT fwmark",
            Contender::XvsDr => "xvs DR",
            Contender::XvsTunnel => "xvs tunnel",
            Contender::Nftables => "nftables DNAT",
            Contender::Haproxy => "HAProxy (TCP)",
        }
    }

    /// The address the client talks to.
    fn target(self) -> &'static str {
        match self {
            Contender::Direct => "192.168.1.10",
            _ => "1.1.1.254",
        }
    }
}

/// What one measurement round found for one contender.
#[derive(Debug, Clone, Default)]
struct Sample {
    new_conns_per_s: f64,
    requests_per_s_16: f64,
    p50_ms_16: f64,
    p99_ms_16: f64,
    requests_per_s_64: f64,
    p99_ms_64: f64,
    stream_gbit_s: f64,
    retransmits: f64,
    /// Machine CPU (all cores, /proc/stat) per new connection and per request, µs.
    cpu_us_per_conn: f64,
    cpu_us_per_request: f64,
    /// Of that, softirq time (where XDP, netfilter and the TCP stacks' receive run) per
    /// new connection, µs.
    softirq_us_per_conn: f64,
    /// The contender's own process (HAProxy; none for the others) per new connection, µs.
    process_us_per_conn: f64,
}

/// One line of the report.
struct Metric {
    name: &'static str,
    value: fn(&Sample) -> f64,
    /// Plotted as a ratio to direct (throughputs).
    plotted: bool,
}

const METRICS: [Metric; 12] = [
    Metric {
        name: "new connections/s (Connection: close, 16)",
        value: |s| s.new_conns_per_s,
        plotted: true,
    },
    Metric {
        name: "kept-alive requests/s, 16 connections",
        value: |s| s.requests_per_s_16,
        plotted: true,
    },
    Metric {
        name: "kept-alive p50 latency, 16 (ms)",
        value: |s| s.p50_ms_16,
        plotted: false,
    },
    Metric {
        name: "kept-alive p99 latency, 16 (ms)",
        value: |s| s.p99_ms_16,
        plotted: false,
    },
    Metric {
        name: "kept-alive requests/s, 64 connections",
        value: |s| s.requests_per_s_64,
        plotted: true,
    },
    Metric {
        name: "kept-alive p99 latency, 64 (ms)",
        value: |s| s.p99_ms_64,
        plotted: false,
    },
    Metric {
        name: "single stream (Gbit/s)",
        value: |s| s.stream_gbit_s,
        plotted: true,
    },
    Metric {
        name: "single stream retransmitted segments",
        value: |s| s.retransmits,
        plotted: false,
    },
    Metric {
        name: "machine CPU per new connection (µs)",
        value: |s| s.cpu_us_per_conn,
        plotted: false,
    },
    Metric {
        name: "of which softirq, per new connection (µs)",
        value: |s| s.softirq_us_per_conn,
        plotted: false,
    },
    Metric {
        name: "of which the contender's own process, per new connection (µs)",
        value: |s| s.process_us_per_conn,
        plotted: false,
    },
    Metric {
        name: "machine CPU per kept-alive request (µs)",
        value: |s| s.cpu_us_per_request,
        plotted: false,
    },
];

/// What one wrk run found: requests per second, p50 and p99 latency (ms), and machine CPU
/// and its softirq part per request (µs).
#[derive(Debug, Clone, Copy)]
struct Load {
    rps: f64,
    p50: f64,
    p99: f64,
    cpu_us: f64,
    softirq_us: f64,
}

const JIFFY_US: f64 = 10_000.0;

struct Labs {
    nat: Lab,
    dr: Lab,
    tun: Lab,
    xvsadm: std::path::PathBuf,
    xvsd: std::path::PathBuf,
    haproxy: Option<Child>,
}

fn nginx_config(dir: &std::path::Path, name: &str) -> Result<String, String> {
    let path = dir.join(format!("{name}.conf"));
    let text = format!(
        "daemon off;\nworker_processes 1;\npid {dir}/{name}.pid;\nerror_log {dir}/{name}.err;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n\
           client_body_temp_path {dir}/{name}-body;\n  proxy_temp_path {dir}/{name}-proxy;\n\
           fastcgi_temp_path {dir}/{name}-fcgi;\n  uwsgi_temp_path {dir}/{name}-uwsgi;\n\
           scgi_temp_path {dir}/{name}-scgi;\n\
           server {{ listen 80 reuseport backlog=4096; location / {{ return 200 \"{name}\\n\"; }} }}\n}}\n",
        dir = dir.display()
    );
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path.to_string_lossy().into_owned())
}

/// Starts `argv` in `host` of `lab`, in the background, silent; killed with the lab.
fn background(lab: &mut Lab, host: &str, argv: &[&str]) -> Result<(), String> {
    lab.spawn(host, argv).map_err(|e| e.to_string())
}

impl Labs {
    fn build(dir: &std::path::Path) -> Result<Labs, String> {
        let mut nat = topology::nat().build().map_err(|e| e.to_string())?;
        // More addresses of the director on the real servers' side: FULLNAT's local
        // addresses.
        for address in ["192.168.1.253/24", "192.168.1.252/24", "192.168.1.251/24"] {
            nat.run_ok("director", &["ip", "addr", "add", address, "dev", "eth1"])
                .map_err(|e| e.to_string())?;
        }
        let mut dr = topology::dr().build().map_err(|e| e.to_string())?;
        let mut tun = topology::tun().build().map_err(|e| e.to_string())?;
        // The tunnel's real servers decapsulate with xvs's program (no ipip driver here).
        for web in ["web1", "web2"] {
            tun.within(web, || xvs_datapath::decap::attach("eth0", None))
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        for (lab, label) in [(&mut nat, "nat"), (&mut dr, "dr"), (&mut tun, "tun")] {
            for web in ["web1", "web2"] {
                let config = nginx_config(dir, &format!("{label}-{web}"))?;
                background(lab, web, &["nginx", "-c", &config])?;
                background(lab, web, &["iperf3", "-s", "-p", "5201"])?;
            }
        }
        // The client's own limits: many ports, quick reuse of closed ones.
        for lab in [&nat, &dr, &tun] {
            for (key, value) in [
                ("net.ipv4.ip_local_port_range", "1024 65000"),
                ("net.ipv4.tcp_tw_reuse", "1"),
            ] {
                let _ = lab.run("client", &["sysctl", "-qw", &format!("{key}={value}")]);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        Ok(Labs {
            nat,
            dr,
            tun,
            xvsadm: crate::beside("xvsadm")?,
            xvsd: crate::beside("xvsd")?,
            haproxy: None,
        })
    }

    fn lab(&self, contender: Contender) -> &Lab {
        match contender {
            Contender::XvsDr => &self.dr,
            Contender::XvsTunnel => &self.tun,
            _ => &self.nat,
        }
    }

    fn xvsadm(&self, lab: &Lab, lines: &[&str]) -> Result<(), String> {
        for line in lines {
            let mut argv = vec![self.xvsadm.to_str().unwrap_or("xvsadm")];
            argv.extend(line.split_whitespace());
            lab.run_ok("director", &argv).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn set_up(&mut self, contender: Contender, dir: &std::path::Path) -> Result<(), String> {
        match contender {
            Contender::Direct => Ok(()),
            Contender::XvsNat => self.xvsadm(
                &self.nat,
                &[
                    "-A -t 1.1.1.254:80 -s rr",
                    "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m",
                    "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m",
                    "-A -t 1.1.1.254:5201 -s rr",
                    "-a -t 1.1.1.254:5201 -r 192.168.1.10:5201 -m",
                ],
            ),
            // FULLNAT in the same lab (its real servers would answer the director anyway):
            // the director's inside addresses as local addresses, four of them, so that
            // a round of new connections (each holding its local port through TIME_WAIT)
            // never runs out of ports.
            Contender::XvsFullnat => self.xvsadm(
                &self.nat,
                &[
                    "-A -t 1.1.1.254:80 -s rr",
                    "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -b",
                    "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -b",
                    "-P -t 1.1.1.254:80 -z 192.168.1.254",
                    "-P -t 1.1.1.254:80 -z 192.168.1.253",
                    "-P -t 1.1.1.254:80 -z 192.168.1.252",
                    "-P -t 1.1.1.254:80 -z 192.168.1.251",
                    "-A -t 1.1.1.254:5201 -s rr",
                    "-a -t 1.1.1.254:5201 -r 192.168.1.10:5201 -b",
                    "-P -t 1.1.1.254:5201 -z 192.168.1.254",
                ],
            ),
            // The same, by marks nftables sets: every connection's first packet takes
            // the fwmark loop (docs/DECISIONS.md).
            Contender::XvsNatFwmark => {
                let rules = "table ip xvsmark {\n chain pre {\n  type filter hook prerouting priority mangle;\n  ip daddr 1.1.1.254 tcp dport 80 meta mark set 1\n  ip daddr 1.1.1.254 tcp dport 5201 meta mark set 2\n }\n}\n";
                let path = dir.join("mark.rules");
                std::fs::write(&path, rules).map_err(|e| e.to_string())?;
                self.nat
                    .run_ok("director", &["nft", "-f", &path.to_string_lossy()])
                    .map_err(|e| e.to_string())?;
                self.xvsadm(
                    &self.nat,
                    &[
                        "-A -f 1 -s rr",
                        "-a -f 1 -r 192.168.1.10:80 -m",
                        "-a -f 1 -r 192.168.1.20:80 -m",
                        "-A -f 2 -s rr",
                        "-a -f 2 -r 192.168.1.10:5201 -m",
                    ],
                )
            }
            Contender::XvsDr => self.xvsadm(
                &self.dr,
                &[
                    "-A -t 1.1.1.254:80 -s rr",
                    "-a -t 1.1.1.254:80 -r 1.1.1.10:80 -g",
                    "-a -t 1.1.1.254:80 -r 1.1.1.20:80 -g",
                    "-A -t 1.1.1.254:5201 -s rr",
                    "-a -t 1.1.1.254:5201 -r 1.1.1.10:5201 -g",
                ],
            ),
            Contender::XvsTunnel => self.xvsadm(
                &self.tun,
                &[
                    "-A -t 1.1.1.254:80 -s rr",
                    "-a -t 1.1.1.254:80 -r 10.0.0.10:80 -i",
                    "-a -t 1.1.1.254:80 -r 10.0.0.20:80 -i",
                    "-A -t 1.1.1.254:5201 -s rr",
                    "-a -t 1.1.1.254:5201 -r 10.0.0.10:5201 -i",
                ],
            ),
            Contender::Nftables => {
                let rules = "table ip xvsbench {\n chain pre {\n  type nat hook prerouting priority -100;\n  ip daddr 1.1.1.254 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 192.168.1.10, 1 : 192.168.1.20 }\n  ip daddr 1.1.1.254 tcp dport 5201 dnat to 192.168.1.10\n }\n}\n";
                let path = dir.join("nft.rules");
                std::fs::write(&path, rules).map_err(|e| e.to_string())?;
                self.nat
                    .run_ok("director", &["nft", "-f", &path.to_string_lossy()])
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Contender::Haproxy => {
                let config = "global\n  maxconn 8000\n  nbthread 2\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
                    frontend web\n  bind 1.1.1.254:80\n  default_backend web\nbackend web\n  balance roundrobin\n  server web1 192.168.1.10:80\n  server web2 192.168.1.20:80\n\
                    frontend stream\n  bind 1.1.1.254:5201\n  default_backend stream\nbackend stream\n  server web1 192.168.1.10:5201\n";
                let path = dir.join("haproxy.cfg");
                std::fs::write(&path, config).map_err(|e| e.to_string())?;
                let child = self
                    .nat
                    .command(
                        "director",
                        &["haproxy", "-db", "-f", &path.to_string_lossy()],
                    )
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("haproxy: {e}"))?;
                self.haproxy = Some(child);
                std::thread::sleep(Duration::from_millis(500));
                Ok(())
            }
        }
    }

    /// Removes `contender` entirely.
    fn tear_down(&mut self, contender: Contender) {
        let xvsd = self.xvsd.to_string_lossy().into_owned();
        match contender {
            Contender::Direct => {}
            Contender::XvsNat
            | Contender::XvsFullnat
            | Contender::XvsNatFwmark
            | Contender::XvsDr
            | Contender::XvsTunnel => {
                let lab = self.lab(contender);
                let _ = self.xvsadm(lab, &["-C"]);
                let _ = lab.run("director", &[&xvsd, "destroy"]);
                if contender == Contender::XvsNatFwmark {
                    let _ = lab.run("director", &["nft", "delete", "table", "ip", "xvsmark"]);
                }
            }
            Contender::Nftables => {
                let _ = self
                    .nat
                    .run("director", &["nft", "delete", "table", "ip", "xvsbench"]);
            }
            Contender::Haproxy => {
                if let Some(mut child) = self.haproxy.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

/// Busy and softirq jiffies of the machine (all CPUs).
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().sum();
    // idle and iowait
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, values.get(6).copied().unwrap_or(0))
}

/// wrk's figures: requests per second, and the p50 and p99 latencies in ms.
fn wrk(lab: &Lab, url: &str, connections: u32, seconds: u64, close: bool) -> Result<Load, String> {
    let connections = connections.to_string();
    let duration = format!("{seconds}s");
    let mut argv = vec![
        "wrk",
        "-t",
        "2",
        "-c",
        &connections,
        "-d",
        &duration,
        "--latency",
    ];
    if close {
        argv.extend(["-H", "Connection: close"]);
    }
    argv.push(url);
    let (busy_before, softirq_before) = cpu_jiffies();
    let out = lab.run_ok("client", &argv).map_err(|e| e.to_string())?;
    let (busy_after, softirq_after) = cpu_jiffies();
    let number = |prefix: &str| -> Option<f64> {
        out.lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix).map(str::trim))
            .and_then(|v| parse_wrk_value(v.split_whitespace().next().unwrap_or("")))
    };
    let rps = number("Requests/sec:")
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{out}"))?;
    let p50 = number("50%").unwrap_or(0.0);
    let p99 = number("99%").unwrap_or(0.0);
    let requests = (rps * seconds as f64).max(1.0);
    Ok(Load {
        rps,
        p50,
        p99,
        cpu_us: (busy_after - busy_before) as f64 * JIFFY_US / requests,
        softirq_us: (softirq_after - softirq_before) as f64 * JIFFY_US / requests,
    })
}

/// `12.34ms`, `1.20s`, `850.00us`, `12345.67` as milliseconds (latencies) or numbers.
fn parse_wrk_value(v: &str) -> Option<f64> {
    if let Some(n) = v.strip_suffix("ms") {
        return n.parse().ok();
    }
    if let Some(n) = v.strip_suffix("us") {
        return n.parse::<f64>().ok().map(|n| n / 1000.0);
    }
    if let Some(n) = v.strip_suffix('s') {
        return n.parse::<f64>().ok().map(|n| n * 1000.0);
    }
    v.parse().ok()
}

/// iperf3's single stream: Gbit/s received, and the sender's retransmitted segments.
fn iperf(lab: &Lab, target: &str, seconds: u64) -> Result<(f64, f64), String> {
    let out = lab
        .run_ok(
            "client",
            &["iperf3", "-c", target, "-t", &seconds.to_string(), "-J"],
        )
        .map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("iperf3: {e}"))?;
    let bits = json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or("iperf3: no throughput")?;
    let retransmits = json["end"]["sum_sent"]["retransmits"]
        .as_f64()
        .unwrap_or(0.0);
    Ok((bits / 1e9, retransmits))
}

/// Makes the client's connections come from `address` (added to its interface): each
/// contender of each round uses an address of its own. Real servers keep a closed
/// connection's tuple in TIME_WAIT for a minute, with the client's TCP timestamps of that
/// path; the same client port reaching the same server by another path (direct, then
/// through NAT) carries other timestamps, and PAWS drops its SYN until the client
/// retries a second later. Without this, whoever comes second is measured slow.
fn use_source(lab: &Lab, address: &str) -> Result<(), String> {
    let _ = lab.run(
        "client",
        &["ip", "addr", "add", &format!("{address}/24"), "dev", "eth0"],
    );
    lab.run_ok(
        "client",
        &[
            "ip",
            "route",
            "replace",
            "1.1.1.0/24",
            "dev",
            "eth0",
            "src",
            address,
        ],
    )
    .map_err(|e| e.to_string())?;
    if lab
        .run_ok("client", &["ip", "route", "show", "default"])
        .map_err(|e| e.to_string())?
        .contains("via")
    {
        lab.run_ok(
            "client",
            &[
                "ip",
                "route",
                "replace",
                "default",
                "via",
                "1.1.1.254",
                "src",
                address,
            ],
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The direct path's wrk: one half of the connections to each real server at once (as a
/// load balancer spreads them), summed; latencies the mean of the medians, the worse p99.
fn wrk_direct(lab: &Lab, connections: u32, seconds: u64, close: bool) -> Result<Load, String> {
    let (busy_before, softirq_before) = cpu_jiffies();
    let halves: Vec<Result<Load, String>> = std::thread::scope(|scope| {
        let runs: Vec<_> = ["192.168.1.10", "192.168.1.20"]
            .map(|server| {
                scope.spawn(move || {
                    wrk(
                        lab,
                        &format!("http://{server}/"),
                        connections / 2,
                        seconds,
                        close,
                    )
                })
            })
            .into_iter()
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|_| Err("wrk thread".into())))
            .collect()
    });
    let (busy_after, softirq_after) = cpu_jiffies();
    let (a, b) = (halves[0].clone()?, halves[1].clone()?);
    let rps = a.rps + b.rps;
    let requests = (rps * seconds as f64).max(1.0);
    Ok(Load {
        rps,
        p50: (a.p50 + b.p50) / 2.0,
        p99: a.p99.max(b.p99),
        cpu_us: (busy_after - busy_before) as f64 * JIFFY_US / requests,
        softirq_us: (softirq_after - softirq_before) as f64 * JIFFY_US / requests,
    })
}

fn measure(labs: &Labs, contender: Contender, seconds: u64) -> Result<Sample, String> {
    let lab = labs.lab(contender);
    let url = format!("http://{}/", contender.target());
    let load = |connections: u32, close: bool| match contender {
        Contender::Direct => wrk_direct(lab, connections, seconds, close),
        _ => wrk(lab, &url, connections, seconds, close),
    };
    let process = labs.haproxy.as_ref().map(Child::id);
    let ticks = |pid: Option<u32>| {
        pid.and_then(|pid| crate::process_ticks(pid).ok())
            .unwrap_or(0)
    };
    let before = ticks(process);
    let close = load(16, true)?;
    let process_us =
        (ticks(process) - before) as f64 * JIFFY_US / (close.rps * seconds as f64).max(1.0);
    let kept = load(16, false)?;
    let many = load(64, false)?;
    let (gbit, retransmits) = iperf(lab, contender.target(), seconds)?;
    Ok(Sample {
        new_conns_per_s: close.rps,
        requests_per_s_16: kept.rps,
        p50_ms_16: kept.p50,
        p99_ms_16: kept.p99,
        requests_per_s_64: many.rps,
        p99_ms_64: many.p99,
        stream_gbit_s: gbit,
        retransmits,
        cpu_us_per_conn: close.cpu_us,
        cpu_us_per_request: kept.cpu_us,
        softirq_us_per_conn: close.softirq_us,
        process_us_per_conn: process_us,
    })
}

fn median(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let (rounds, seconds) = if quick { (1, 2) } else { (3, 8) };
    let dir = std::env::temp_dir().join(format!("xvs-bench-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut labs = Labs::build(&dir)?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); CONTENDERS.len()];
    for round in 0..rounds {
        for k in 0..CONTENDERS.len() {
            let i = (round + k) % CONTENDERS.len();
            let contender = CONTENDERS[i];
            labs.set_up(contender, &dir)?;
            use_source(
                labs.lab(contender),
                &format!("1.1.1.{}", 100 + round * CONTENDERS.len() + i),
            )?;
            let sample = measure(&labs, contender, seconds);
            labs.tear_down(contender);
            let sample = sample.map_err(|e| format!("{}: {e}", contender.name()))?;
            eprintln!("round {}: {} done", round + 1, contender.name());
            samples[i].push(sample);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(&samples, rounds, seconds);
    // xvs never needs IPVS; where the kernel has it, it would be a contender.
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        println!(
            "kernel IPVS: present on this kernel, but not measured yet (no ipvsadm contender)"
        );
    } else {
        println!(
            "kernel IPVS: skipped, this kernel has no ip_vs (no /proc/net/ip_vs, and no module can be loaded)"
        );
    }
    let png = crate::beside("xvs-bench")?.with_file_name("bench-lab.png");
    plot(&labs.nat, &samples, &png)
}

/// The median and range of `metric` for each contender, and the ratio of each median to
/// direct's.
fn summary(samples: &[Vec<Sample>], metric: &Metric) -> Vec<(f64, f64, f64, f64)> {
    let medians: Vec<(f64, f64, f64)> = samples
        .iter()
        .map(|per| {
            let mut v: Vec<f64> = per.iter().map(metric.value).collect();
            median(&mut v)
        })
        .collect();
    let direct = medians[0].0;
    medians
        .into_iter()
        .map(|(m, lo, hi)| (m, lo, hi, if direct > 0.0 { m / direct } else { 0.0 }))
        .collect()
}

fn report(samples: &[Vec<Sample>], rounds: usize, seconds: u64) {
    println!(
        "Lab: {rounds} round(s), {seconds} s per measurement, contenders alternating; median [range] (ratio to direct)"
    );
    print!("| metric |");
    for c in CONTENDERS {
        print!(" {} |", c.name());
    }
    println!();
    println!("|---|{}", "---|".repeat(CONTENDERS.len()));
    for metric in &METRICS {
        print!("| {} |", metric.name);
        for (m, lo, hi, ratio) in summary(samples, metric) {
            print!(" {m:.1} [{lo:.1}–{hi:.1}] ({ratio:.2}) |");
        }
        println!();
    }
}

/// The plot: each throughput's ratio to direct, a group of bars per metric, as SVG in a
/// page that chromium renders to `png` (inside the lab's client namespace: it reaches
/// nothing outside).
fn plot(lab: &Lab, samples: &[Vec<Sample>], png: &std::path::Path) -> Result<(), String> {
    let colours = [
        "#718096", "#2b6cb0", "#319795", "#38a169", "#805ad5", "#d69e2e", "#c53030", "#dd6b20",
    ];
    let metrics: Vec<&Metric> = METRICS.iter().filter(|m| m.plotted).collect();
    let (width, height, top, bottom, left) = (1000.0, 460.0, 40.0, 90.0, 60.0);
    let group = (width - left - 20.0) / metrics.len() as f64;
    let bar = group / (CONTENDERS.len() as f64 + 1.5);
    let scale = |ratio: f64| (height - bottom - top) * ratio / 1.2;
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n<text x='{left}' y='22' font-size='15'>Ratio to the direct path (higher is better), median of the rounds</text>\n"
    );
    for tick in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2] {
        let y = height - bottom - scale(tick);
        svg.push_str(&format!(
            "<line x1='{left}' x2='{}' y1='{y}' y2='{y}' stroke='{}'/><text x='{}' y='{}' text-anchor='end'>{tick:.1}</text>\n",
            width - 20.0,
            if tick == 1.0 { "#333" } else { "#ddd" },
            left - 6.0,
            y + 4.0
        ));
    }
    for (g, metric) in metrics.iter().enumerate() {
        let x0 = left + g as f64 * group + bar * 0.75;
        for (c, (_, _, _, ratio)) in summary(samples, metric).into_iter().enumerate() {
            let h = scale(ratio.min(1.2));
            let x = x0 + c as f64 * bar;
            svg.push_str(&format!(
                "<rect x='{x:.1}' y='{:.1}' width='{:.1}' height='{h:.1}' fill='{}'/><text x='{:.1}' y='{:.1}' text-anchor='middle' font-size='10'>{ratio:.2}</text>\n",
                height - bottom - h,
                bar * 0.9,
                colours[c % colours.len()],
                x + bar * 0.45,
                height - bottom - h - 4.0
            ));
        }
        svg.push_str(&format!(
            "<text x='{:.1}' y='{}' text-anchor='middle'>{}</text>\n",
            x0 + bar * CONTENDERS.len() as f64 / 2.0,
            height - bottom + 18.0,
            metric.name.split(" (").next().unwrap_or(metric.name)
        ));
    }
    for (c, contender) in CONTENDERS.iter().enumerate() {
        let x = left + c as f64 * 150.0;
        svg.push_str(&format!(
            "<rect x='{x}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}'>{}</text>\n",
            height - 40.0,
            colours[c % colours.len()],
            x + 18.0,
            height - 30.0,
            contender.name()
        ));
    }
    svg.push_str("</svg>\n");
    let page = png.with_extension("html");
    std::fs::write(
        &page,
        format!("<!doctype html><html><body style='margin:0'>{svg}</body></html>"),
    )
    .map_err(|e| e.to_string())?;
    let profile = std::env::temp_dir().join(format!("xvs-bench-chromium-{}", std::process::id()));
    let output = lab
        .run(
            "client",
            &[
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &format!("--user-data-dir={}", profile.display()),
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={width},{height}"),
                "--hide-scrollbars",
                &format!("file://{}", page.display()),
            ],
        )
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(profile);
    if !output.status.success() {
        return Err(format!(
            "chromium: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    println!("plot: {}", png.display());
    Ok(())
}
