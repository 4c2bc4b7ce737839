//! The seed's Experiment III, with xvsd in place of the shell script: in the NAT lab,
//! `xvsd run` defines the virtual service from its config, takes web2 out when its HTTP
//! server stops and brings it back when it answers again, while a client keeps being
//! served and a service xvsd does not own stays as it was.

use std::{
    collections::BTreeSet,
    process::Command,
    time::{Duration, Instant},
};

use xvs_core::{listing::save, text::NoNames};
use xvs_datapath::{ChangeOptions, Director};
use xvs_lab::{Lab, ServerKind, topology};

const XVSD: &str = env!("CARGO_BIN_EXE_xvsd");

const CONFIG: &str = r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"

[service.check]
type = "http"
path = "/"
interval = 0.2
timeout = 0.5
fall = 2
rise = 2

[[service.real_server]]
address = "192.168.1.10:80"

[[service.real_server]]
address = "192.168.1.20:80"
"#;

/// The seed's NAT lab, each web server's page its name.
fn nat_lab_serving_names() -> Lab {
    let mut lab = topology::nat().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Http(web.into())).unwrap();
    }
    lab
}

fn write_config(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("xvsd-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn saved(lab: &Lab) -> String {
    lab.within("director", || match Director::find().unwrap() {
        Some(director) => save(&director.load().unwrap().table, true, &NoNames),
        None => String::new(),
    })
    .unwrap()
}

/// Waits (at most 30 s, a bound on a hang and not a speed goal) until the table holds
/// what `wanted` accepts; the table it found.
fn table_until(lab: &Lab, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let table = saved(lab);
        if wanted(&table) {
            return table;
        }
        assert!(Instant::now() < deadline, "never {what}; table:\n{table}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pages of `n` new connections to the VIP.
fn pages(lab: &Lab, n: usize) -> BTreeSet<String> {
    pages_of(lab, 80, n)
}

/// The pages of `n` new connections to the VIP's `port`.
fn pages_of(lab: &Lab, port: u16, n: usize) -> BTreeSet<String> {
    let url = format!("http://1.1.1.254:{port}/");
    (0..n)
        .map(|_| {
            lab.run_ok("client", &["curl", "-s", "--max-time", "5", &url])
                .unwrap()
        })
        .collect()
}

#[test]
fn a_stopped_real_server_leaves_the_service_and_comes_back_when_it_answers() {
    let mut lab = nat_lab_serving_names();
    // Someone else's service, defined before xvsd starts.
    by_hand(&lab, "-A -u 1.1.1.254:53 -s wrr");
    let config = write_config("nat", CONFIG);
    lab.spawn("director", &[XVSD, "run", &config]).unwrap();

    let both = table_until(&lab, "both real servers in", |t| {
        t.contains("-r 192.168.1.10:80 -m -w 1") && t.contains("-r 192.168.1.20:80 -m -w 1")
    });
    assert!(both.contains("-A -t 1.1.1.254:80 -s rr"), "{both}");
    assert!(both.contains("-A -u 1.1.1.254:53 -s wrr"), "{both}");
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );

    lab.stop_servers("web2");
    let without = table_until(&lab, "web2 taken out", |t| !t.contains("192.168.1.20"));
    assert!(without.contains("-r 192.168.1.10:80 -m -w 1"), "{without}");
    assert!(
        without.contains("-A -u 1.1.1.254:53 -s wrr"),
        "not xvsd's: kept"
    );
    assert_eq!(pages(&lab, 4), ["web1\n"].map(String::from).into());

    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let back = table_until(&lab, "web2 back", |t| t.contains("192.168.1.20:80"));
    assert!(back.contains("-A -u 1.1.1.254:53 -s wrr"), "{back}");
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );
    let _ = std::fs::remove_file(config);
}

/// keepalived's `connect_ip` and `bindto`: each check goes to its own address, from its
/// own source. The real servers' check port (8080) drops what comes from the director's
/// own address on their side (192.168.1.254), and web1 answers it only on a management
/// address (192.168.1.110): both real servers come in only because their checks are sent
/// from 192.168.1.253 and web1's to its management address.
#[test]
fn checks_go_to_their_own_address_from_their_own_source() {
    let mut lab = topology::nat().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Http(web.into())).unwrap();
        lab.serve(web, 8080, ServerKind::Http("ok".into())).unwrap();
        lab.run_ok(
            web,
            &[
                "iptables",
                "-A",
                "INPUT",
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                "192.168.1.254",
                "-j",
                "DROP",
            ],
        )
        .unwrap();
    }
    lab.run_ok(
        "web1",
        &["ip", "addr", "add", "192.168.1.110/24", "dev", "eth0"],
    )
    .unwrap();
    lab.run_ok(
        "web1",
        &[
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "8080",
            "-d",
            "192.168.1.10",
            "-j",
            "DROP",
        ],
    )
    .unwrap();
    lab.run_ok(
        "director",
        &["ip", "addr", "add", "192.168.1.253/24", "dev", "eth1"],
    )
    .unwrap();
    let config = write_config(
        "check-address",
        r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"

[[service.real_server]]
address = "192.168.1.10:80"
[[service.real_server.check]]
type = "http"
port = 8080
address = "192.168.1.110"
source = "192.168.1.253"
interval = 0.2
timeout = 0.5

[[service.real_server]]
address = "192.168.1.20:80"
[[service.real_server.check]]
type = "tcp"
port = 8080
source = "192.168.1.253"
interval = 0.2
timeout = 0.5
"#,
    );
    lab.spawn("director", &[XVSD, "run", &config]).unwrap();
    // Passed, not only "up" (xvsd starts with every real server in).
    health_until(&lab, "both checks passed", |h| {
        h.contains("192.168.1.10:80 up weight 1 (passed)")
            && h.contains("192.168.1.20:80 up weight 1 (passed)")
    });
    table_until(&lab, "both real servers in", |t| {
        t.contains("-r 192.168.1.10:80 -m -w 1") && t.contains("-r 192.168.1.20:80 -m -w 1")
    });
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );
    // web1's check port stops answering on its management address: web1 leaves.
    lab.run_ok(
        "web1",
        &[
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "8080",
            "-d",
            "192.168.1.110",
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ],
    )
    .unwrap();
    let health = health_until(&lab, "web1's check failed", |h| {
        h.contains("192.168.1.10:80 down")
    });
    assert!(
        health.contains("connect to 192.168.1.110:8080 from 192.168.1.253"),
        "{health}"
    );
    table_until(&lab, "web1 taken out", |t| !t.contains("192.168.1.10:80"));
    let _ = std::fs::remove_file(config);
}

/// Counts of packets that `iptables -L INPUT` shows for rules naming `what`, in `host`.
fn iptables_packets(lab: &Lab, host: &str, what: &str) -> u64 {
    let rules = lab
        .run_ok(host, &["iptables", "-L", "INPUT", "-n", "-v", "-x"])
        .unwrap();
    rules
        .lines()
        .filter(|line| line.contains(what))
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// keepalived's `bind_port`, `bind_if` and `fwmark`: a check leaves from its own source
/// port (again and again: each connection from it ends with a reset), by its own interface, and with
/// its own mark, which the director's policy routing follows. web1 lets its check port in
/// only from port 6000, web2 only from an address the director uses for packets marked 7.
#[test]
fn checks_leave_by_their_own_port_interface_and_mark() {
    let mut lab = nat_lab_serving_names();
    for web in ["web1", "web2"] {
        lab.serve(web, 8080, ServerKind::Http("ok".into())).unwrap();
    }
    let iptables = |host: &str, rule: &str| {
        let mut args = vec!["iptables"];
        args.extend(rule.split_whitespace());
        lab.run_ok(host, &args).unwrap();
    };
    iptables(
        "web1",
        "-A INPUT -p tcp --dport 8080 --sport 6000 --syn -j ACCEPT",
    );
    iptables("web1", "-A INPUT -p tcp --dport 8080 --syn -j DROP");
    iptables(
        "web2",
        "-A INPUT -p tcp --dport 8080 -s 192.168.1.253 --syn -j ACCEPT",
    );
    iptables("web2", "-A INPUT -p tcp --dport 8080 --syn -j DROP");
    for command in [
        "ip addr add 192.168.1.253/24 dev eth1",
        "ip route add 192.168.1.0/24 dev eth1 src 192.168.1.253 table 100",
        "ip rule add fwmark 7 lookup 100",
    ] {
        lab.run_ok("director", &command.split_whitespace().collect::<Vec<_>>())
            .unwrap();
    }
    let config_text = |interface: &str, mark: &str| {
        format!(
            r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"

[[service.real_server]]
address = "192.168.1.10:80"
[[service.real_server.check]]
type = "tcp"
port = 8080
source_port = 6000
interface = "{interface}"
interval = 0.2
timeout = 0.5

[[service.real_server]]
address = "192.168.1.20:80"
[[service.real_server.check]]
type = "tcp"
port = 8080
{mark}
interval = 0.2
timeout = 0.5
"#
        )
    };
    let config = write_config("check-origin", &config_text("eth1", "mark = 7"));
    let xvsd = Xvsd::start(&lab, &config, "check-origin");
    health_until(&lab, "both checks passed", |h| {
        h.contains("192.168.1.10:80 up weight 1 (passed)")
            && h.contains("192.168.1.20:80 up weight 1 (passed)")
    });
    // Five more checks of web1 from port 6000, each let in.
    let first = iptables_packets(&lab, "web1", "spt:6000");
    let deadline = Instant::now() + Duration::from_secs(30);
    while iptables_packets(&lab, "web1", "spt:6000") < first + 5 {
        assert!(
            Instant::now() < deadline,
            "web1 is not checked from port 6000"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = lab.run_ok("director", &[XVSD, "health"]).unwrap();
    assert!(
        health.contains("192.168.1.10:80 up weight 1 (passed)"),
        "{health}"
    );
    assert_eq!(
        iptables_packets(&lab, "web1", "DROP"),
        0,
        "a check from another port"
    );
    table_until(&lab, "both real servers in", |t| {
        t.contains("-r 192.168.1.10:80 -m -w 1") && t.contains("-r 192.168.1.20:80 -m -w 1")
    });
    // By the client side's interface (no route to web1 there) web1 is out of reach;
    // without the mark, web2's check leaves from the director's usual address, dropped
    // (and with `log_all_failures` each failure is logged, not only the first).
    std::fs::write(&config, config_text("eth0", "log_all_failures = true")).unwrap();
    lab.run_ok("director", &[XVSD, "reload"]).unwrap();
    health_until(&lab, "both checks failed", |h| {
        h.contains("192.168.1.10:80 down") && h.contains("192.168.1.20:80 down")
    });
    table_until(&lab, "both real servers out", |t| {
        !t.contains("192.168.1.10:80") && !t.contains("192.168.1.20:80")
    });
    xvsd.wait_for("real server 192.168.1.10:80 of TCP 1.1.1.254:80 is down");
    xvsd.wait_for("real server 192.168.1.20:80 of TCP 1.1.1.254:80 is down");
    let deadline = Instant::now() + Duration::from_secs(30);
    let again = "real server 192.168.1.20:80 of TCP 1.1.1.254:80: check 1 failed: connect to 192.168.1.20:8080";
    while xvsd.log().matches(again).count() < 2 {
        assert!(Instant::now() < deadline, "{}", xvsd.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !xvsd
            .log()
            .contains("192.168.1.10:80 of TCP 1.1.1.254:80: check"),
        "{}",
        xvsd.log()
    );
    let _ = std::fs::remove_file(config);
}

/// A real server's connection thresholds in the config (keepalived's `uthreshold` and
/// `lthreshold`) reach the table as ipvsadm's `-x` and `-y`.
#[test]
fn a_real_server_s_thresholds_reach_the_table() {
    let mut lab = nat_lab_serving_names();
    let config = write_config(
        "thresholds",
        &CONFIG.replace(
            "address = \"192.168.1.20:80\"\n",
            "address = \"192.168.1.20:80\"\nu_threshold = 100\nl_threshold = 50\n",
        ),
    );
    lab.spawn("director", &[XVSD, "run", &config]).unwrap();
    table_until(&lab, "both real servers in", |t| {
        t.contains("192.168.1.20:80")
    });
    let thresholds = lab
        .within("director", || {
            let table = Director::find().unwrap().unwrap().load().unwrap().table;
            table
                .services
                .iter()
                .flat_map(|s| &s.dests)
                .map(|d| (d.addr.to_string(), d.u_threshold, d.l_threshold))
                .collect::<std::collections::BTreeSet<_>>()
        })
        .unwrap();
    assert_eq!(
        thresholds,
        [
            ("192.168.1.10".to_string(), 0, 0),
            ("192.168.1.20".to_string(), 100, 50)
        ]
        .into()
    );
    let _ = std::fs::remove_file(config);
}

/// One real server pool behind two VIP ports, checked alike (as an imported
/// `virtual_server_group` is): one probe per real server serves both services, and a
/// stopped server leaves both, each service's health naming the failure.
#[test]
fn a_real_server_in_two_services_is_checked_once_and_leaves_both() {
    let mut lab = nat_lab_serving_names();
    let second = CONFIG.replacen("1.1.1.254:80", "1.1.1.254:8080", 1);
    let config = write_config("two-services", &format!("{CONFIG}\n{second}"));
    lab.spawn("director", &[XVSD, "run", &config]).unwrap();
    health_until(&lab, "every check passed", |h| {
        h.matches("up weight 1 (passed)").count() == 4
    });
    assert_eq!(
        pages_of(&lab, 8080, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );
    assert_eq!(
        checker_threads(&config),
        2,
        "one checker per real server, not four"
    );
    lab.stop_servers("web2");
    let health = health_until(&lab, "web2 down in both", |h| {
        h.matches("192.168.1.20:80 down").count() == 2
    });
    assert_eq!(health.matches("(passed)").count(), 2, "{health}");
    table_until(&lab, "web2 out of both", |t| !t.contains("192.168.1.20"));
    assert_eq!(pages_of(&lab, 8080, 4), ["web1\n"].map(String::from).into());
    let _ = std::fs::remove_file(config);
}

/// The checker threads (named `check ADDRESS`) of the xvsd running `config`.
fn checker_threads(config: &str) -> usize {
    let pids = Command::new("pgrep")
        .args(["-f", &format!("xvsd run {config}")])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&pids.stdout).into_owned();
    let mut count = 0;
    for pid in pids.split_whitespace() {
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let comm =
                std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap_or_default();
            count += comm.starts_with("check ") as usize;
        }
    }
    count
}

/// Waits (at most 30 s, a bound on a hang) until `xvsd health` says what `wanted`
/// accepts; what it said.
fn health_until(lab: &Lab, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = lab
            .run_ok("director", &[XVSD, "health"])
            .unwrap_or_default();
        if wanted(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{health}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fwmark service from the config: iptables marks two ports of the VIP, the real
/// servers keep each packet's port (port 0) and are checked on port 80.
#[test]
fn a_fwmark_service_of_the_config_is_checked_and_balanced() {
    let mut lab = topology::nat().build().unwrap();
    for host in ["web1", "web2"] {
        for port in [80, 8080] {
            lab.serve(host, port, ServerKind::Http(host.into()))
                .unwrap();
        }
    }
    let mark = "iptables -t mangle -A PREROUTING -d 1.1.1.254/32 -p tcp -m multiport --dports 80,8080 -j MARK --set-mark 1";
    lab.run_ok("director", &mark.split(' ').collect::<Vec<_>>())
        .unwrap();
    let config = write_config(
        "fwmark",
        r#"
[[service]]
fwmark = 1
scheduler = "rr"
method = "nat"
[service.check]
port = 80
interval = 0.2
timeout = 0.5
fall = 2
[[service.real_server]]
address = "192.168.1.10:0"
[[service.real_server]]
address = "192.168.1.20:0"
"#,
    );
    lab.spawn("director", &[XVSD, "run", &config]).unwrap();
    let both = table_until(&lab, "both real servers in", |t| {
        t.contains("-a -f 1 -r 192.168.1.10:0 -m -w 1")
            && t.contains("-a -f 1 -r 192.168.1.20:0 -m -w 1")
    });
    assert!(both.contains("-A -f 1 -s rr"), "{both}");
    let both_pages: BTreeSet<String> = ["web1\n", "web2\n"].map(String::from).into();
    assert_eq!(pages_of(&lab, 80, 4), both_pages);
    assert_eq!(pages_of(&lab, 8080, 4), both_pages);

    lab.stop_servers("web2");
    table_until(&lab, "web2 taken out", |t| !t.contains("192.168.1.20"));
    assert_eq!(pages_of(&lab, 8080, 4), ["web1\n"].map(String::from).into());
    let health = lab.run_ok("director", &[XVSD, "health"]).unwrap();
    assert!(health.contains("FWM 1"), "{health}");

    for port in [80, 8080] {
        lab.serve("web2", port, ServerKind::Http("web2".into()))
            .unwrap();
    }
    table_until(&lab, "web2 back", |t| t.contains("192.168.1.20:0"));
    assert_eq!(pages_of(&lab, 8080, 4), both_pages);
    let _ = std::fs::remove_file(config);
}

#[test]
fn check_config_accepts_a_good_file_and_names_the_line_of_a_bad_one() {
    let good = write_config("good", CONFIG);
    let output = Command::new(XVSD)
        .args(["check-config", &good])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout).ends_with(": ok (1 services, 2 real servers)\n")
    );
    let bad = write_config(
        "bad",
        &CONFIG.replace("scheduler = \"rr\"", "sheduler = \"rr\""),
    );
    let output = Command::new(XVSD)
        .args(["check-config", &bad])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("sheduler"), "{message}");
    for path in [good, bad] {
        let _ = std::fs::remove_file(path);
    }
}

fn dist() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist")
}

#[test]
fn the_shipped_example_configs_are_valid() {
    for example in [
        "xvsd.toml",
        "xvsd-dr.toml",
        "xvsd-pair.toml",
        "xvsd-fleet.toml",
    ] {
        let output = Command::new(XVSD)
            .arg("--check-config")
            .arg(dist().join(example))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// systemd-analyze checks that the commands exist: the unit is verified with this build's
/// xvsd where it names /usr/sbin/xvsd.
#[test]
fn the_unit_passes_systemd_analyze_verify_and_checks_the_config_first() {
    let unit = std::fs::read_to_string(dist().join("systemd/xvsd.service")).unwrap();
    assert!(unit.contains("ExecStartPre=/usr/sbin/xvsd check-config /etc/xvs/xvsd.toml"));
    assert!(unit.contains("ExecStart=/usr/sbin/xvsd run /etc/xvs/xvsd.toml"));
    let folder = std::env::temp_dir().join(format!("xvsd-unit-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let copy = folder.join("xvsd.service");
    std::fs::write(&copy, unit.replace("/usr/sbin/xvsd", XVSD)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian package systemd, installed by cargo xtask setup)");
    let _ = std::fs::remove_dir_all(&folder);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One HTTP/1.0 request to the VIP from the client's namespace (this thread must be in
/// it); the page.
fn get_page() -> Result<String, String> {
    use std::io::{Read, Write};
    let vip: std::net::SocketAddr = "1.1.1.254:80".parse().unwrap();
    let mut stream = std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| format!("receive: {e}"))?;
    match reply.split_once("\r\n\r\n") {
        Some((head, page)) if head.starts_with("HTTP/1.1 200") => Ok(page.to_string()),
        _ => Err(format!("bad answer {reply:?}")),
    }
}

/// xvsd started in the director with its output in a file; killed on drop.
struct Xvsd {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Xvsd {
    fn start(lab: &Lab, config: &str, name: &str) -> Xvsd {
        let log = std::env::temp_dir().join(format!("xvsd-{}-{name}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let child = lab
            .command("director", &[XVSD, "run", config])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Xvsd { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 30 s, a bound on a hang and not a speed goal) until xvsd has logged
    /// `wanted`.
    fn wait_for(&self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains(wanted) {
            assert!(
                Instant::now() < deadline,
                "xvsd never logged {wanted:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Changes the director's table by `rules` (`-R` lines), as an operator's xvsadm would.
fn by_hand(lab: &Lab, rules: &str) {
    lab.within("director", || {
        Director::change(ChangeOptions::default(), |t| {
            xvs_core::restore::restore(rules, t, &NoNames, "xvsadm")
        })
        .unwrap()
    })
    .unwrap();
}

impl Drop for Xvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// keepalived's quorum and sorry server, then a reload and a restart of xvsd while a
/// client keeps asking: the sorry server alone answers while no real server is up, a
/// returning server takes over, and neither the reload (a changed weight, an added
/// server) nor the restart costs a single request.
#[test]
fn sorry_server_while_the_quorum_is_lost_then_reload_and_restart_under_load() {
    let mut lab = nat_lab_serving_names();
    let marks = std::env::temp_dir().join(format!("xvsd-{}-quorum", std::process::id()));
    let _ = std::fs::remove_file(&marks);
    let quorum = format!(
        "sorry_server = \"192.168.1.10:8080\"\nquorum_up = \"echo up $XVS_SERVICE >> {m}\"\nquorum_down = \"echo down $XVS_SERVICE >> {m}\"\n",
        m = marks.display()
    );
    let text = CONFIG.replace("method = \"nat\"\n", &format!("method = \"nat\"\n{quorum}"));
    let config = write_config("quorum", &text);
    let xvsd = Xvsd::start(&lab, &config, "quorum");
    table_until(&lab, "both real servers in", |t| {
        t.contains("192.168.1.20:80")
    });

    lab.stop_servers("web1");
    lab.stop_servers("web2");
    lab.serve("web1", 8080, ServerKind::Http("sorry".into()))
        .unwrap();
    let sorry = table_until(&lab, "the sorry server alone", |t| {
        !t.contains(":80 -m") && t.contains("-r 192.168.1.10:8080 -m -w 1")
    });
    assert!(sorry.contains("-A -t 1.1.1.254:80 -s rr"), "{sorry}");
    assert_eq!(pages(&lab, 3), ["sorry\n"].map(String::from).into());

    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let back = table_until(&lab, "web2 instead of the sorry server", |t| {
        t.contains("-r 192.168.1.20:80 -m -w 1") && !t.contains(":8080")
    });
    assert!(!back.contains("192.168.1.10:80 "), "{back}");
    assert_eq!(pages(&lab, 3), ["web2\n"].map(String::from).into());
    let log = xvsd.log();
    assert!(
        log.contains("TCP 1.1.1.254:80: quorum lost; sorry server 192.168.1.10:8080"),
        "{log}"
    );
    assert!(log.contains("TCP 1.1.1.254:80: quorum gained"), "{log}");
    let notified = std::fs::read_to_string(&marks).unwrap_or_default();
    assert_eq!(notified, "down TCP 1.1.1.254:80\nup TCP 1.1.1.254:80\n");
    let _ = std::fs::remove_file(&marks);

    // Under a steady load: a bad reload, a good one, a restart.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (served, failures) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            lab.within("client", || {
                let (mut served, mut failures) = (Vec::new(), Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match get_page() {
                        Ok(page) => served.push(page),
                        Err(why) => failures.push(why),
                    }
                }
                (served, failures)
            })
            .unwrap()
        });

        std::fs::write(&config, text.replace("scheduler = \"rr\"", "scheduler = 7")).unwrap();
        let refused = lab.run("director", &[XVSD, "reload"]).unwrap();
        assert!(!refused.status.success());
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(
            why.contains("reload refused, nothing changed") && why.contains("line 4"),
            "{why}"
        );

        // web2's weight changes, the sorry instance joins as a real server, and a
        // sysctl is set.
        let reloaded = text
            .replace("sorry_server = \"192.168.1.10:8080\"\n", "")
            .replace(
                "address = \"192.168.1.20:80\"\n",
                "address = \"192.168.1.20:80\"\nweight = 3\n[[service.real_server]]\naddress = \"192.168.1.10:8080\"\n",
            )
            + "\n[sysctl]\nexpire_quiescent_template = 1\n";
        std::fs::write(&config, &reloaded).unwrap();
        let said = lab.run_ok("director", &[XVSD, "reload"]).unwrap();
        assert!(said.starts_with("reloaded "), "{said}");
        table_until(&lab, "the reload applied", |t| {
            t.contains("-r 192.168.1.20:80 -m -w 3") && t.contains("-r 192.168.1.10:8080 -m -w 1")
        });
        let health = lab.run_ok("director", &[XVSD, "health"]).unwrap();
        assert!(health.contains("192.168.1.20:80 up weight 3"), "{health}");
        let sysctl = lab
            .run_ok("director", &[XVSD, "sysctl", "expire_quiescent_template"])
            .unwrap();
        assert_eq!(sysctl, "net.ipv4.vs.expire_quiescent_template = 1\n");
        // SIGHUP reloads too.
        std::fs::write(&config, reloaded.replace("weight = 3", "weight = 4")).unwrap();
        let pid = xvsd.child.id().to_string();
        Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        table_until(&lab, "the SIGHUP reload applied", |t| {
            t.contains("-r 192.168.1.20:80 -m -w 4")
        });
        std::thread::sleep(Duration::from_millis(500));

        drop(xvsd);
        let again = Xvsd::start(&lab, &config, "again");
        // The restarted daemon answers once it has adopted the table.
        let deadline = Instant::now() + Duration::from_secs(30);
        while lab
            .run("director", &[XVSD, "health"])
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            assert!(
                Instant::now() < deadline,
                "xvsd never came back: {}",
                again.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let result = load.join().unwrap();
        let log = again.log();
        assert!(
            !log.contains("is down") && !log.contains("changed by hand"),
            "{log}"
        );
        result
    });
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "after {} served",
        served.len()
    );
    let distinct: BTreeSet<String> = served.into_iter().collect();
    assert_eq!(distinct, ["sorry\n", "web2\n"].map(String::from).into());
    let _ = std::fs::remove_file(config);
}

/// Stops xvsd as a service manager does (SIGTERM) and waits until it has exited; its log.
fn terminate(mut xvsd: Xvsd) -> String {
    let pid = xvsd.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = xvsd.child.wait().unwrap();
    assert!(status.success(), "{status}: {}", xvsd.log());
    xvsd.log()
}

/// What xvsd leaves when it stops: by default its services as they were, forwarding (a
/// restart breaks nothing); with `on_stop = "remove"` none of them, as keepalived leaves
/// none, and with `omega` the down notifies of what was up. A service xvsd does not own
/// stays either way.
#[test]
fn a_stop_keeps_the_services_or_removes_them_as_keepalived_does() {
    let lab = nat_lab_serving_names();
    by_hand(&lab, "-A -u 1.1.1.254:53 -s rr\n");
    let config = write_config("keep-on-stop", CONFIG);
    let xvsd = Xvsd::start(&lab, &config, "keep-on-stop");
    let both = table_until(&lab, "both real servers in", |t| {
        t.contains("192.168.1.20:80")
    });
    let log = terminate(xvsd);
    assert!(log.contains("stopped; the table stays as it is"), "{log}");
    assert_eq!(saved(&lab), both);
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );

    let marks = std::env::temp_dir().join(format!("xvsd-{}-omega", std::process::id()));
    let _ = std::fs::remove_file(&marks);
    let m = marks.display();
    let text = format!(
        "on_stop = \"remove\"\n{}",
        CONFIG.replace(
            "method = \"nat\"\n",
            &format!(
                "method = \"nat\"\nomega = true\nnotify_down = \"echo down $XVS_REAL_SERVER >> {m}\"\nquorum_down = \"echo quorum down >> {m}\"\n"
            ),
        )
    );
    let config = write_config("remove-on-stop", &text);
    let xvsd = Xvsd::start(&lab, &config, "remove-on-stop");
    xvsd.wait_for("xvsd: 1 services");
    std::thread::sleep(Duration::from_millis(500));
    let log = terminate(xvsd);
    assert!(
        log.contains("its services are removed from the table"),
        "{log}"
    );
    assert!(
        log.contains("real server 192.168.1.10:80 of TCP 1.1.1.254:80 is down"),
        "{log}"
    );
    assert_eq!(saved(&lab), "-A -u 1.1.1.254:53 -s rr\n");
    // xvsd waited for the notifies it ran.
    let notified = std::fs::read_to_string(&marks).unwrap_or_default();
    let mut lines: Vec<&str> = notified.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "down 192.168.1.10:80",
            "down 192.168.1.20:80",
            "quorum down"
        ],
        "{log}"
    );
    let _ = std::fs::remove_file(&marks);
    let _ = std::fs::remove_file(config);
}

/// A check that fails on a 500 page takes its server out; a dynamic command check sets
/// its server's weight from the command's exit code.
#[test]
fn an_http_500_fails_and_a_command_sets_the_weight() {
    let lab = nat_lab_serving_names();
    let weight = std::env::temp_dir().join(format!("xvsd-{}-weight", std::process::id()));
    std::fs::write(&weight, "7").unwrap();
    let text = CONFIG
        .replace(
            "address = \"192.168.1.10:80\"\n",
            &format!(
                "address = \"192.168.1.10:80\"\ncheck = {{ type = \"command\", command = \"exit $(cat {})\", dynamic = true, interval = 0.2 }}\n",
                weight.display()
            ),
        )
        .replace(
            "address = \"192.168.1.20:80\"\n",
            "address = \"192.168.1.20:80\"\ncheck = { type = \"http\", path = \"/status/500\", interval = 0.2 }\n",
        );
    let config = write_config("checks", &text);
    let xvsd = Xvsd::start(&lab, &config, "checks");
    let table = table_until(&lab, "web1 at weight 5, web2 out", |t| {
        t.contains("-r 192.168.1.10:80 -m -w 5") && !t.contains("192.168.1.20")
    });
    assert!(table.contains("-A -t 1.1.1.254:80 -s rr"), "{table}");
    std::fs::write(&weight, "1").unwrap();
    table_until(&lab, "web1 out", |t| !t.contains("192.168.1.10"));
    let log = xvsd.log();
    assert!(log.contains("status 500, expected [200]"), "{log}");
    assert!(log.contains("exited with 1"), "{log}");
    let _ = std::fs::remove_file(weight);
    let _ = std::fs::remove_file(config);
}

/// The director's `-L -n --rate` listing, as xvsadm prints it.
fn rate_listing(lab: &Lab) -> String {
    lab.within("director", || {
        let table = Director::find().unwrap().unwrap().load().unwrap().table;
        let format = xvs_core::cli::Format {
            numeric: true,
            rate: true,
            ..Default::default()
        };
        xvs_core::listing::list(&table, xvs_core::cli::ListWhat::All, format, &NoNames).unwrap()
    })
    .unwrap()
}

/// `xvsadm -L -n --rate` reads the rates xvsd estimates as IPVS does: while a client
/// keeps opening connections, the service and both real servers show connections,
/// packets and bytes per second; the rows add up as IPVS's do.
#[test]
fn the_rates_of_a_loaded_service_are_estimated() {
    let lab = nat_lab_serving_names();
    let config = write_config("rates", CONFIG);
    let _xvsd = Xvsd::start(&lab, &config, "rates");
    table_until(&lab, "both real servers in", |t| {
        t.contains("192.168.1.20:80")
    });
    let before = rate_listing(&lab);
    assert!(
        before.contains(
            "TCP  1.1.1.254:80                        0        0        0        0        0"
        ),
        "no traffic, no rate:\n{before}"
    );
    // Requests for three sampling intervals and more.
    let deadline = Instant::now() + Duration::from_secs(7);
    let served = lab
        .within("client", || {
            let mut served = 0;
            while Instant::now() < deadline {
                served += usize::from(get_page().is_ok());
            }
            served
        })
        .unwrap();
    assert!(served > 0);
    // Read right after a sample: xvsd writes the slots one by one, and a listing read
    // while it does mixes two samples (IPVS's estimator walks its slots the same way).
    let sampled = |lab: &Lab| {
        lab.within("director", || {
            Director::find()
                .unwrap()
                .unwrap()
                .meta(xvs_common::meta::RATES_SAMPLED)
                .unwrap()
        })
        .unwrap()
    };
    let last = sampled(&lab);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sampled(&lab) == last {
        assert!(Instant::now() < deadline, "xvsd stopped sampling");
        std::thread::sleep(Duration::from_millis(5));
    }
    let listing = rate_listing(&lab);
    let rows: Vec<Vec<u64>> = listing
        .lines()
        .filter(|l| l.starts_with("TCP") || l.starts_with("  ->"))
        .filter(|l| !l.contains("RemoteAddress"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 3, "{listing}");
    for row in &rows {
        assert_eq!(row.len(), 5, "CPS InPPS OutPPS InBPS OutBPS: {listing}");
        assert!(row.iter().all(|&rate| rate > 0), "{listing}");
    }
    // The service's rates are its real servers' (IPVS estimates each on its own, so
    // rounding may differ by one; and the sampler reads the service's counters and then
    // its servers' while traffic flows, so a sample's inputs can differ by the packets in
    // between: a thousandth at most).
    for (column, service) in rows[0].iter().enumerate() {
        let servers = rows[1][column] + rows[2][column];
        assert!(
            service.abs_diff(servers) <= 2 + service / 1000,
            "column {column}: {listing}"
        );
    }
    let _ = std::fs::remove_file(config);
}

/// A forwarding-aware check catches what a check of the real server's own address cannot:
/// in the DR lab, web2 loses the VIP from `lo` while its own address still answers. Its
/// plain TCP check (web1's) would pass; the forwarded one sends the SYN to the VIP through
/// web2's MAC, gets no answer, and takes web2 out; with the VIP back, web2 returns.
#[test]
fn a_forwarded_check_catches_a_dr_real_server_without_the_vip() {
    let mut lab = topology::dr().build().unwrap();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let config = write_config(
        "forwarded",
        r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "dr"
[service.check]
type = "tcp"
forwarded = true
interval = 0.2
timeout = 0.5
[[service.real_server]]
address = "1.1.1.10:80"
[[service.real_server]]
address = "1.1.1.20:80"
"#,
    );
    let xvsd = Xvsd::start(&lab, &config, "forwarded");
    table_until(&lab, "both real servers in", |t| {
        t.contains("-r 1.1.1.10:80 -g -w 1") && t.contains("-r 1.1.1.20:80 -g -w 1")
    });
    // Both stay in: their forwarded checks pass.
    std::thread::sleep(Duration::from_secs(1));
    let both = saved(&lab);
    assert!(
        both.contains("1.1.1.10:80") && both.contains("1.1.1.20:80"),
        "{both}\n{}",
        xvsd.log()
    );

    lab.run_ok("web2", &["ip", "addr", "del", "1.1.1.254/32", "dev", "lo"])
        .unwrap();
    // Its own address still answers.
    lab.run_ok(
        "client",
        &["curl", "-sf", "--max-time", "5", "http://1.1.1.20/"],
    )
    .unwrap();
    table_until(&lab, "web2 out", |t| !t.contains("1.1.1.20:80"));
    let log = xvsd.log();
    assert!(
        log.contains("no answer from 1.1.1.254:80 through 1.1.1.20's MAC"),
        "{log}"
    );
    assert_eq!(pages(&lab, 4), ["web1\n"].map(String::from).into());

    lab.run_ok("web2", &["ip", "addr", "add", "1.1.1.254/32", "dev", "lo"])
        .unwrap();
    table_until(&lab, "web2 back", |t| t.contains("1.1.1.20:80"));
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );
    let _ = std::fs::remove_file(config);
}

/// A DR director forwards nothing itself: the datapath asks the kernel's FIB as from `lo`,
/// and xvsd keeps the neighbour map it falls back on. When web2 is replaced by a machine
/// with another MAC (here: its MAC changes, and it says so with a gratuitous ARP), xvsd
/// copies the kernel's new neighbour into the map, and new connections reach web2 again
/// instead of going to a MAC nobody holds.
#[test]
fn a_dr_real_server_whose_mac_changes_is_reached_at_its_new_mac() {
    let mut lab = topology::dr().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Http(web.into())).unwrap();
    }
    let config = write_config(
        "mac-change",
        r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "dr"
[service.check]
type = "tcp"
interval = 0.2
timeout = 0.5
[[service.real_server]]
address = "1.1.1.10:80"
[[service.real_server]]
address = "1.1.1.20:80"
"#,
    );
    let xvsd = Xvsd::start(&lab, &config, "mac-change");
    table_until(&lab, "both real servers in", |t| {
        t.contains("1.1.1.10:80") && t.contains("1.1.1.20:80")
    });
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );

    // The new machine announces itself (gratuitous ARP on a changed address, as a
    // replacement with `arp_notify` or keepalived on the real servers does).
    lab.run_ok(
        "web2",
        &["sysctl", "-qw", "net.ipv4.conf.eth0.arp_notify=1"],
    )
    .unwrap();
    let new_mac = "02:00:00:00:20:99";
    lab.run_ok(
        "web2",
        &["ip", "link", "set", "dev", "eth0", "address", new_mac],
    )
    .unwrap();
    xvsd.wait_for(&format!("to {new_mac}"));
    assert!(
        xvsd.log()
            .contains("next hop of real server 1.1.1.20 moved from"),
        "{}",
        xvsd.log()
    );
    // web2 stayed in throughout (its checks, through the kernel, kept passing), and new
    // connections reach it again.
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );
    let _ = std::fs::remove_file(config);
}

/// A real server added (here by hand, beside xvsd's own service) before its address
/// answers ARP gets no next hop at first: its connections are dropped and counted. Once it
/// answers, the kernel's managed neighbour entry resolves (and the datapath sees it), xvsd
/// copies it into the fallback map, and the service works without being touched again.
#[test]
fn a_dr_real_server_that_answers_only_after_it_was_added_is_reached() {
    let mut lab = topology::dr().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Http(web.into())).unwrap();
    }
    lab.serve("web2", 81, ServerKind::Http("late".into()))
        .unwrap();
    let config = write_config(
        "late-neighbour",
        r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "dr"
[service.check]
type = "tcp"
interval = 0.2
timeout = 0.5
[[service.real_server]]
address = "1.1.1.10:80"
[[service.real_server]]
address = "1.1.1.20:80"
"#,
    );
    let xvsd = Xvsd::start(&lab, &config, "late-neighbour");
    table_until(&lab, "xvsd's service in", |t| t.contains("1.1.1.20:80"));
    // 1.1.1.21 is nobody's yet.
    by_hand(
        &lab,
        "-A -t 1.1.1.254:81 -s rr\n-a -t 1.1.1.254:81 -r 1.1.1.21 -g",
    );
    let late = ["curl", "-s", "--max-time", "2", "http://1.1.1.254:81/"];
    assert!(
        lab.run_ok("client", &late).is_err(),
        "served before it exists"
    );
    let no_route = lab
        .within("director", || {
            Director::find().unwrap().unwrap().counters().unwrap()
                [xvs_common::counter::NO_ROUTE as usize]
        })
        .unwrap();
    assert!(no_route > 0, "the dropped SYNs are not counted");

    lab.run_ok("web2", &["ip", "addr", "add", "1.1.1.21/24", "dev", "eth0"])
        .unwrap();
    xvsd.wait_for("next hop of real server 1.1.1.21 resolved");
    assert_eq!(lab.run_ok("client", &late).unwrap(), "late\n");
    let _ = std::fs::remove_file(config);
}

/// The IPv6 DR lab behind a router, web1 serving its name on port 80, the director and
/// the client knowing their neighbours (as running hosts do).
fn dr6_lab() -> Lab {
    let mut lab = topology::dr6_behind_router().build().unwrap();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    for (host, address) in [("director", "fd00:1::10"), ("client", "fd00:9::1")] {
        lab.reach(host, address).unwrap();
    }
    lab
}

/// The same over IPv6 (a DR director behind a router, no IPv6 forwarding on it): a real
/// server whose address appears only after it was added is reached once the kernel's
/// neighbour discovery finds it and xvsd copies it into the datapath.
#[test]
fn an_ipv6_dr_real_server_that_answers_only_after_it_was_added_is_reached() {
    let mut lab = dr6_lab();
    lab.serve("web1", 81, ServerKind::Http("late".into()))
        .unwrap();
    let config = write_config(
        "late-neighbour-6",
        r#"
[[service]]
address = "[fd00:9::1]:80"
scheduler = "rr"
method = "dr"
[service.check]
type = "tcp"
interval = 0.2
timeout = 0.5
[[service.real_server]]
address = "[fd00:1::10]:80"
"#,
    );
    let xvsd = Xvsd::start(&lab, &config, "late-neighbour-6");
    table_until(&lab, "xvsd's service in", |t| t.contains("[fd00:1::10]:80"));
    by_hand(
        &lab,
        "-A -t [fd00:9::1]:81 -s rr\n-a -t [fd00:9::1]:81 -r [fd00:1::21]:81 -g",
    );
    let late = [
        "curl",
        "-g",
        "-s",
        "--max-time",
        "2",
        "http://[fd00:9::1]:81/",
    ];
    assert!(
        lab.run_ok("client", &late).is_err(),
        "served before it exists"
    );

    lab.run_ok(
        "web1",
        &["ip", "addr", "add", "fd00:1::21/64", "dev", "eth0", "nodad"],
    )
    .unwrap();
    xvsd.wait_for("next hop of real server fd00:1::21 resolved");
    assert_eq!(lab.run_ok("client", &late).unwrap(), "late\n");
    let _ = std::fs::remove_file(config);
}

/// The same over IPv6 (a DR director behind a router): the forwarded check is an IPv6 SYN
/// to the VIP through web1's MAC; without the VIP on its `lo` web1 does not answer and
/// leaves the service, with it back it returns.
#[test]
fn an_ipv6_forwarded_check_catches_a_dr_real_server_without_the_vip() {
    let lab = dr6_lab();
    let config = write_config(
        "forwarded-6",
        r#"
[[service]]
address = "[fd00:9::1]:80"
scheduler = "rr"
method = "dr"
[service.check]
type = "tcp"
forwarded = true
interval = 0.2
timeout = 0.5
[[service.real_server]]
address = "[fd00:1::10]:80"
"#,
    );
    let xvsd = Xvsd::start(&lab, &config, "forwarded-6");
    table_until(&lab, "web1 in", |t| {
        t.contains("-r [fd00:1::10]:80 -g -w 1")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(saved(&lab).contains("fd00:1::10"), "{}", xvsd.log());

    lab.run_ok("web1", &["ip", "addr", "del", "fd00:9::1/128", "dev", "lo"])
        .unwrap();
    table_until(&lab, "web1 out", |t| !t.contains("fd00:1::10"));
    let log = xvsd.log();
    assert!(
        log.contains("no answer from [fd00:9::1]:80 through fd00:1::10's MAC"),
        "{log}"
    );
    lab.run_ok("web1", &["ip", "addr", "add", "fd00:9::1/128", "dev", "lo"])
        .unwrap();
    table_until(&lab, "web1 back", |t| t.contains("fd00:1::10"));
    let _ = std::fs::remove_file(config);
}

/// The same through a tunnel: the forwarded check is an IP-in-IP packet to the real
/// server, so it fails on one that no longer decapsulates, and passes again when it does.
#[test]
fn a_forwarded_check_catches_a_tunnel_real_server_that_does_not_decapsulate() {
    let mut lab = topology::tun().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Http(web.into())).unwrap();
        lab.within(web, || xvs_datapath::decap::attach("eth0", None).unwrap())
            .unwrap();
    }
    let config = write_config(
        "tunnel",
        r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "tunnel"
[service.check]
forwarded = true
interval = 0.2
timeout = 0.5
[[service.real_server]]
address = "10.0.0.10:80"
[[service.real_server]]
address = "10.0.0.20:80"
"#,
    );
    let xvsd = Xvsd::start(&lab, &config, "tunnel");
    table_until(&lab, "both real servers in", |t| {
        t.contains("-r 10.0.0.10:80 -i -w 1") && t.contains("-r 10.0.0.20:80 -i -w 1")
    });
    lab.within("web2", || xvs_datapath::decap::detach("eth0").unwrap())
        .unwrap();
    table_until(&lab, "web2 out", |t| !t.contains("10.0.0.20:80"));
    assert!(
        xvsd.log()
            .contains("no answer from 1.1.1.254:80 tunnelled to 10.0.0.20"),
        "{}",
        xvsd.log()
    );
    assert!(
        saved(&lab).contains("-r 10.0.0.10:80 -i -w 1"),
        "web1 stays"
    );
    lab.within("web2", || {
        xvs_datapath::decap::attach("eth0", None).unwrap()
    })
    .unwrap();
    table_until(&lab, "web2 back", |t| t.contains("10.0.0.20:80"));
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );
    let _ = std::fs::remove_file(config);
}

/// Through GUE: the forwarded check wraps itself as the real servers' `tunnel_type`
/// says, so a real server that takes GUE on another port than the director sends to fails
/// it (an IPIP check would have passed), and passes once its port is right.
#[test]
fn a_forwarded_check_through_gue_catches_a_real_server_on_another_port() {
    let mut lab = topology::tun().build().unwrap();
    for (web, port) in [("web1", 6080), ("web2", 6081)] {
        lab.serve(web, 80, ServerKind::Http(web.into())).unwrap();
        lab.within(web, || {
            xvs_datapath::decap::attach("eth0", Some(port)).unwrap()
        })
        .unwrap();
    }
    let config = write_config(
        "gue",
        r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "tunnel"
tunnel_type = "gue"
tunnel_port = 6080
tunnel_checksum = "csum"
[service.check]
forwarded = true
interval = 0.2
timeout = 0.5
[[service.real_server]]
address = "10.0.0.10:80"
[[service.real_server]]
address = "10.0.0.20:80"
"#,
    );
    let xvsd = Xvsd::start(&lab, &config, "gue");
    let gue = "-i -w 1 --tun-type gue --tun-port 6080 --tun-csum";
    table_until(&lab, "web1 in through GUE", |t| {
        t.contains(&format!("-r 10.0.0.10:80 {gue}"))
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(!saved(&lab).contains("10.0.0.20:80"), "web2 never in");
    assert!(
        xvsd.log()
            .contains("no answer from 1.1.1.254:80 tunnelled to 10.0.0.20"),
        "{}",
        xvsd.log()
    );
    lab.within("web2", || {
        xvs_datapath::decap::attach("eth0", Some(6080)).unwrap()
    })
    .unwrap();
    table_until(&lab, "web2 in", |t| {
        t.contains(&format!("-r 10.0.0.20:80 {gue}"))
    });
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );
    let _ = std::fs::remove_file(config);
}

/// `xvsd import-keepalived` turns a keepalived.conf into a config `check-config` accepts,
/// and names on stderr, with its line, what it could not translate.
#[test]
fn a_keepalived_config_imports_into_a_valid_one() {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keepalived.conf");
    let output = Command::new(XVSD)
        .arg("import-keepalived")
        .arg(&source)
        .output()
        .unwrap();
    assert!(output.status.success());
    let notes = String::from_utf8_lossy(&output.stderr);
    assert!(notes.is_empty(), "everything translated: {notes}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("type = \"https\"\ntls_verify = false"),
        "SSL_GET checks no certificate, as keepalived's: {text}"
    );
    let imported = write_config("imported", &String::from_utf8_lossy(&output.stdout));
    let checked = Command::new(XVSD)
        .args(["check-config", &imported])
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        String::from_utf8_lossy(&checked.stdout).ends_with("ok (2 services, 3 real servers)\n")
    );
    let _ = std::fs::remove_file(imported);
}

/// The dead-server policy `on_failure = "keep"` with `drain`: a failed real server stays
/// at weight 0 and its open connection goes on; once the drain time is over it is
/// removed and that connection ends, while the other server's goes on throughout.
#[test]
fn a_kept_server_s_connections_go_on_until_it_has_drained() {
    use std::io::{Read, Write};
    let mut lab = topology::nat().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Echo).unwrap();
    }
    let up = std::env::temp_dir().join(format!("xvsd-{}-web2-up", std::process::id()));
    std::fs::write(&up, "").unwrap();
    let config = write_config(
        "drain",
        &format!(
            r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"
on_failure = "keep"
drain = 3
[service.check]
interval = 0.2
[[service.real_server]]
address = "192.168.1.10:80"
[[service.real_server]]
address = "192.168.1.20:80"
check = {{ type = "command", command = "test -e {}", interval = 0.2 }}
"#,
            up.display()
        ),
    );
    let _xvsd = Xvsd::start(&lab, &config, "drain");
    table_until(&lab, "both in", |t| {
        t.contains("192.168.1.10:80 -m -w 1") && t.contains("192.168.1.20:80 -m -w 1")
    });
    // One long-lived connection to each server (rr).
    let vip: std::net::SocketAddr = "1.1.1.254:80".parse().unwrap();
    let mut streams = lab
        .within("client", || {
            [0, 1].map(|_| {
                std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(5)).unwrap()
            })
        })
        .unwrap();
    let echoes = |stream: &mut std::net::TcpStream| -> bool {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut answer = [0u8; 5];
        stream.write_all(b"ping\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"ping\n"
    };
    assert!(streams.iter_mut().all(echoes));

    std::fs::remove_file(&up).unwrap();
    table_until(&lab, "web2 at weight 0", |t| {
        t.contains("192.168.1.20:80 -m -w 0")
    });
    assert!(
        streams.iter_mut().all(echoes),
        "both go on while web2 drains"
    );
    table_until(&lab, "web2 removed after its drain", |t| {
        !t.contains("192.168.1.20")
    });
    let alive: Vec<bool> = streams.iter_mut().map(echoes).collect();
    assert_eq!(
        alive.iter().filter(|&&a| a).count(),
        1,
        "web1's connection goes on, web2's ended: {alive:?}"
    );
    let _ = std::fs::remove_file(config);
}

/// Runs openssl (Debian's, as the real servers' TLS) with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &str) {
    let status = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl {args}");
}

/// HTTPS checks against real TLS servers (openssl s_server): web1's certificate verifies
/// against the CA file the check names; web2's check trusts only the system's roots, so
/// the certificate is refused and web2 leaves; reloaded with `tls_verify = false`, it
/// returns. Reloaded with `tls_name` (keepalived's `sni_name`), web1's check asks for
/// www.example.com in its handshake, gets the certificate s_server keeps for that name and
/// verifies it by that name (without the name sent, web1's own certificate would not
/// carry it, and web1 would leave).
#[test]
fn https_checks_verify_certificates_unless_told_not_to() {
    let mut lab = topology::nat().build().unwrap();
    let dir = std::env::temp_dir().join(format!("xvsd-{}-tls", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=lab-ca",
    );
    for (web, name) in [
        ("web1", "IP:192.168.1.10"),
        ("web2", "IP:192.168.1.20"),
        ("www", "DNS:www.example.com"),
    ] {
        openssl(
            &dir,
            &format!(
                "req -newkey rsa:2048 -nodes -keyout {web}.key -out {web}.csr -subj /CN={web}"
            ),
        );
        std::fs::write(
            dir.join(format!("{web}.ext")),
            format!("subjectAltName={name}\n"),
        )
        .unwrap();
        openssl(
            &dir,
            &format!(
                "x509 -req -in {web}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {web}.pem -days 2 -extfile {web}.ext"
            ),
        );
    }
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    for web in ["web1", "web2"] {
        let (cert, key) = (file(&format!("{web}.pem")), file(&format!("{web}.key")));
        let (www_cert, www_key) = (file("www.pem"), file("www.key"));
        let mut argv = vec![
            "openssl", "s_server", "-quiet", "-www", "-accept", "443", "-cert", &cert, "-key", &key,
        ];
        // web1 has a second certificate, for the clients that ask for www.example.com.
        if web == "web1" {
            argv.extend([
                "-servername",
                "www.example.com",
                "-cert2",
                &www_cert,
                "-key2",
                &www_key,
            ]);
        }
        lab.spawn(web, &argv).unwrap();
    }
    let text = |web1_check: &str, web2_check: &str| {
        format!(
            r#"
[[service]]
address = "1.1.1.254:443"
scheduler = "rr"
method = "nat"
[[service.real_server]]
address = "192.168.1.10:443"
check = {{ type = "https", ca_file = "{}", interval = 0.2{web1_check} }}
[[service.real_server]]
address = "192.168.1.20:443"
check = {{ type = "https", interval = 0.2{web2_check} }}
"#,
            dir.join("ca.pem").display()
        )
    };
    let config = write_config("https", &text("", ""));
    let xvsd = Xvsd::start(&lab, &config, "https");
    let table = table_until(&lab, "web1 in, web2 out", |t| {
        t.contains("-r 192.168.1.10:443 -m -w 1") && !t.contains("192.168.1.20")
    });
    assert!(table.contains("-A -t 1.1.1.254:443 -s rr"), "{table}");
    // Give web2's check time to run: it fails on the certificate, not on anything else.
    std::thread::sleep(Duration::from_millis(600));
    let log = xvsd.log();
    assert!(log.contains("UnknownIssuer"), "{log}");
    assert!(
        !log.contains("192.168.1.10:443 of TCP 1.1.1.254:443 is down"),
        "{log}"
    );

    std::fs::write(&config, text("", ", tls_verify = false")).unwrap();
    lab.run_ok("director", &[XVSD, "reload"]).unwrap();
    table_until(&lab, "web2 in", |t| {
        t.contains("-r 192.168.1.20:443 -m -w 1")
    });

    let named = ", tls_name = \"www.example.com\"";
    std::fs::write(&config, text(named, ", tls_verify = false")).unwrap();
    lab.run_ok("director", &[XVSD, "reload"]).unwrap();
    // Five rounds of checks by the name: each would take web1 out if it failed.
    std::thread::sleep(Duration::from_millis(1000));
    let log = xvsd.log();
    assert!(
        !log.contains("192.168.1.10:443 of TCP 1.1.1.254:443 is down"),
        "{log}"
    );
    assert!(saved(&lab).contains("-r 192.168.1.10:443 -m -w 1"));
    // A name that neither certificate carries fails, so the name is checked.
    let other = ", tls_name = \"other.example.com\"";
    std::fs::write(&config, text(other, ", tls_verify = false")).unwrap();
    lab.run_ok("director", &[XVSD, "reload"]).unwrap();
    table_until(&lab, "web1 out by its name", |t| {
        !t.contains("192.168.1.10")
    });
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(config);
}

/// keepalived's SMTP_CHECK and PING_CHECK as xvsd's `smtp` and `ping` checks: a mail
/// server's opening passes and an HTTP server on the SMTP port fails; a real server that
/// answers pings (its kernel does) stays and an address nobody holds leaves; the SMTP
/// server stopped, its real server leaves too.
#[test]
fn smtp_and_ping_checks_keep_the_servers_that_answer() {
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 25, ServerKind::Smtp("web1".into()))
        .unwrap();
    lab.serve("web2", 25, ServerKind::Http("web2".into()))
        .unwrap();
    let config = write_config(
        "smtp-ping",
        r#"
[[service]]
address = "1.1.1.254:25"
scheduler = "rr"
method = "nat"
check = { type = "smtp", helo_name = "director.example", interval = 0.2, timeout = 0.5 }

[[service.real_server]]
address = "192.168.1.10:25"

[[service.real_server]]
address = "192.168.1.20:25"

[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"
check = { type = "ping", interval = 0.2, timeout = 0.5 }

[[service.real_server]]
address = "192.168.1.20:80"

[[service.real_server]]
address = "192.168.1.99:80"
"#,
    );
    let xvsd = Xvsd::start(&lab, &config, "smtp-ping");
    table_until(
        &lab,
        "the SMTP and the pinged servers kept, the others out",
        |t| {
            t.contains("-r 192.168.1.10:25")
                && !t.contains("192.168.1.20:25")
                && t.contains("-r 192.168.1.20:80")
                && !t.contains("192.168.1.99")
        },
    );
    lab.stop_servers("web1");
    table_until(&lab, "the stopped SMTP server out", |t| {
        !t.contains("192.168.1.10:25")
    });
    let log = xvsd.log();
    assert!(log.contains("smtp on 192.168.1.20:25"), "{log}");
    assert!(log.contains("ping 192.168.1.99"), "{log}");
    let _ = std::fs::remove_file(config);
}

/// keepalived's FILE_CHECK (a track file of weight 0) as xvsd's `file` check, the
/// operator's maintenance switch: `echo 1 > FILE` takes the real server out, `echo 0`
/// brings it back; a missing file keeps it out.
#[test]
fn a_file_check_takes_a_real_server_out_while_its_file_holds_a_non_zero_value() {
    let lab = topology::nat().build().unwrap();
    let folder = std::env::temp_dir().join(format!("xvsd-{}-files", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let (web1, web2) = (folder.join("web1"), folder.join("web2"));
    std::fs::write(&web1, "0\n").unwrap();
    let config = write_config(
        "file",
        &format!(
            r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"

[[service.real_server]]
address = "192.168.1.10:80"
check = {{ type = "file", file = "{}", interval = 0.2 }}

[[service.real_server]]
address = "192.168.1.20:80"
check = {{ type = "file", file = "{}", interval = 0.2 }}
"#,
            web1.display(),
            web2.display()
        ),
    );
    let xvsd = Xvsd::start(&lab, &config, "file");
    table_until(&lab, "web1 in, web2 (no file) out", |t| {
        t.contains("-r 192.168.1.10:80") && !t.contains("192.168.1.20")
    });
    std::fs::write(&web2, "0\n").unwrap();
    table_until(&lab, "web2 in once its file says 0", |t| {
        t.contains("-r 192.168.1.20:80")
    });
    std::fs::write(&web1, "1\n").unwrap();
    table_until(&lab, "web1 out for maintenance", |t| {
        !t.contains("192.168.1.10") && t.contains("-r 192.168.1.20:80")
    });
    std::fs::write(&web1, "0\n").unwrap();
    table_until(&lab, "web1 back", |t| t.contains("-r 192.168.1.10:80"));
    let log = xvsd.log();
    assert!(log.contains("holds 1"), "{log}");
    let _ = std::fs::remove_dir_all(folder);
    let _ = std::fs::remove_file(config);
}

/// A file check with a weight (keepalived's track file weight) moves its real server's
/// weight by the file's value times it, from the configured weight, within 0..=65535:
/// the operator's dial for a server's share, and `reverse` for a load figure. The server
/// is never taken out by it (at weight 0 it takes no new connections but stays).
#[test]
fn a_weighted_file_check_moves_its_real_server_s_weight() {
    let lab = topology::nat().build().unwrap();
    let folder = std::env::temp_dir().join(format!("xvsd-{}-weights", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let (share, load) = (folder.join("share"), folder.join("load"));
    let config = write_config(
        "weights",
        &format!(
            r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "wrr"
method = "nat"

[[service.real_server]]
address = "192.168.1.10:80"
weight = 2
check = {{ type = "file", file = "{}", weight = 10, interval = 0.2 }}

[[service.real_server]]
address = "192.168.1.20:80"
weight = 100
check = {{ type = "file", file = "{}", weight = 20, reverse = true, interval = 0.2 }}
"#,
            share.display(),
            load.display()
        ),
    );
    let xvsd = Xvsd::start(&lab, &config, "weights");
    // No files yet: they count 0, so the configured weights.
    table_until(&lab, "the configured weights", |t| {
        t.contains("-r 192.168.1.10:80 -m -w 2") && t.contains("-r 192.168.1.20:80 -m -w 100")
    });
    std::fs::write(&share, "3\n").unwrap();
    std::fs::write(&load, "4\n").unwrap();
    table_until(&lab, "2 + 3 x 10 and 100 - 4 x 20", |t| {
        t.contains("-r 192.168.1.10:80 -m -w 32") && t.contains("-r 192.168.1.20:80 -m -w 20")
    });
    std::fs::write(&load, "9\n").unwrap();
    table_until(&lab, "100 - 9 x 20, kept at 0", |t| {
        t.contains("-r 192.168.1.20:80 -m -w 0")
    });
    std::fs::remove_file(&share).unwrap();
    table_until(&lab, "a removed file counts 0", |t| {
        t.contains("-r 192.168.1.10:80 -m -w 2")
    });
    let log = xvsd.log();
    assert!(
        log.contains("real server 192.168.1.10:80 of TCP 1.1.1.254:80: weight 32 by its check"),
        "{log}"
    );
    assert!(!log.contains("is down"), "{log}");
    let _ = std::fs::remove_dir_all(folder);
    let _ = std::fs::remove_file(config);
}

/// keepalived's `ha_suspend`: a service's checks pause while its VIP is not the
/// director's (as on a VRRP backup) and resume when it comes, while a service whose VIP
/// is here is checked all along.
#[test]
fn ha_suspend_pauses_a_service_s_checks_while_its_vip_is_elsewhere() {
    let lab = topology::nat().build().unwrap();
    let folder = std::env::temp_dir().join(format!("xvsd-{}-suspend", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let (here, away) = (folder.join("here"), folder.join("away"));
    let service = |vip: &str, file: &std::path::Path| {
        format!(
            r#"
[[service]]
address = "{vip}:80"
scheduler = "rr"
method = "nat"
ha_suspend = true
check = {{ type = "command", command = "echo >> {}", interval = 0.2 }}

[[service.real_server]]
address = "192.168.1.10:80"
"#,
            file.display()
        )
    };
    let config = write_config(
        "suspend",
        &(service("1.1.1.254", &here) + &service("1.1.1.253", &away)),
    );
    let runs = |file: &std::path::Path| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    // At most 30 s: a bound on a hang, not a speed goal.
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "never {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let xvsd = Xvsd::start(&lab, &config, "suspend");
    let paused = "TCP 1.1.1.253:80: its VIP is not here: checks paused (ha_suspend)";
    xvsd.wait_for(paused);
    until("three checks of the service whose VIP is here", &|| {
        runs(&here) >= 3
    });
    assert_eq!(runs(&away), 0, "checked while its VIP is elsewhere");
    assert!(
        !xvsd.log().contains("1.1.1.254:80: its VIP"),
        "{}",
        xvsd.log()
    );
    // `xvsd health` and the metrics say so too.
    let health = lab.run_ok("director", &[XVSD, "health"]).unwrap();
    assert!(
        health.contains(
            "TCP 1.1.1.253:80 quorum up, checks paused (ha_suspend: its VIP is not here)"
        ) && health.contains("TCP 1.1.1.254:80 quorum up\n"),
        "{health}"
    );
    let metrics = lab
        .run_ok("director", &["curl", "-s", "http://127.0.0.1:9180/metrics"])
        .unwrap();
    assert!(
        metrics.contains("xvs_service_checks_paused{service=\"TCP 1.1.1.253:80\"} 1")
            && metrics.contains("xvs_service_checks_paused{service=\"TCP 1.1.1.254:80\"} 0"),
        "{metrics}"
    );

    // The VIP comes, as VRRP would add it, and goes.
    lab.run_ok(
        "director",
        &["ip", "addr", "add", "1.1.1.253/32", "dev", "eth0"],
    )
    .unwrap();
    xvsd.wait_for("TCP 1.1.1.253:80: its VIP is here: checks resumed (ha_suspend)");
    until("three checks once the VIP is here", &|| runs(&away) >= 3);
    lab.run_ok(
        "director",
        &["ip", "addr", "del", "1.1.1.253/32", "dev", "eth0"],
    )
    .unwrap();
    until("paused again", &|| xvsd.log().matches(paused).count() == 2);
    let (stopped_at, other) = (runs(&away), runs(&here));
    until("five more checks of the other service", &|| {
        runs(&here) >= other + 5
    });
    // One check may have been under way when the pause came.
    assert!(runs(&away) <= stopped_at + 1, "checked while paused");
    assert!(!xvsd.log().contains("is down"), "{}", xvsd.log());
    let _ = std::fs::remove_dir_all(folder);
    let _ = std::fs::remove_file(config);
}

/// The config's `[timeouts]` (ipvsadm's `--set`) are the director's, and a reload that
/// changes them changes the director's.
#[test]
fn the_config_s_timeouts_are_the_director_s() {
    let lab = topology::nat().build().unwrap();
    let text = |tcp: u32| {
        format!(
            r#"
[timeouts]
tcp = {tcp}
udp = 60

[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"
check = {{ type = "ping", interval = 0.2 }}

[[service.real_server]]
address = "192.168.1.10:80"
"#
        )
    };
    let config = write_config("timeouts", &text(7200));
    let timeouts = || {
        lab.within("director", || {
            Director::find()
                .unwrap()
                .map(|d| d.load().unwrap().table.timeouts)
                .map(|t| (t.tcp, t.tcp_fin, t.udp))
        })
        .unwrap()
    };
    let _xvsd = Xvsd::start(&lab, &config, "timeouts");
    table_until(&lab, "the service in", |t| t.contains("-r 192.168.1.10:80"));
    // tcpfin left out: IPVS's default kept.
    assert_eq!(timeouts(), Some((7200, 120, 60)));
    std::fs::write(&config, text(3600)).unwrap();
    lab.run_ok("director", &[XVSD, "reload"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while timeouts() != Some((3600, 120, 60)) {
        assert!(Instant::now() < deadline, "{:?}", timeouts());
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(config);
}
