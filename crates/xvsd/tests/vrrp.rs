//! Two directors, one VIP: xvsd's VRRP in a lab where the client, both directors and two
//! DR real servers share a segment. The higher priority holds the VIP and serves; when
//! it stops, the other takes the VIP (gratuitous ARP moves the client to it) and the
//! client is served again; when the first returns it preempts.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use xvs_lab::{Lab, LabBuilder, ServerKind, end, topology};

const XVSD: &str = env!("CARGO_BIN_EXE_xvsd");
use topology::VIP;

fn lab() -> Lab {
    topology::two_directors().build().unwrap()
}

/// Held by the failover labs whose outcome depends on a returning master's timing, so
/// that two of them never run at once: on this 2-CPU machine, the FULLNAT failover lab
/// beside `a_master_cut_off_and_back_gets_the_connections_made_meanwhile` made the latter
/// fail one run in three (see that test), and never alone.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(name: &str, priority: u8) -> String {
    config_version(name, priority, 3)
}

/// VRRPv2 carries whole seconds; v3 hundredths.
fn interval(version: u8) -> &'static str {
    if version == 2 { "1" } else { "0.2" }
}

fn config_version(name: &str, priority: u8, version: u8) -> String {
    let interval = interval(version);
    let text = format!(
        r#"
[vrrp]
interface = "eth0"
vrid = 51
priority = {priority}
interval = {interval}
version = {version}
addresses = ["{VIP}/24"]

[[service]]
address = "{VIP}:80"
scheduler = "rr"
method = "dr"
[service.check]
interval = 0.5
[[service.real_server]]
address = "1.1.1.10:80"
[[service.real_server]]
address = "1.1.1.20:80"
"#
    );
    let path = std::env::temp_dir().join(format!("xvsd-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn start(lab: &Lab, host: &str, config: &str) -> Child {
    lab.command(host, &[XVSD, "run", config])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Ends a lab's two directors (killed) and removes their configs.
fn stop_both(d1: &mut Child, d2: &mut Child, configs: [impl AsRef<std::path::Path>; 2]) {
    for child in [d1, d2] {
        let _ = child.kill();
        let _ = child.wait();
    }
    for path in configs {
        let _ = std::fs::remove_file(path);
    }
}

fn holds_vip(lab: &Lab, host: &str) -> bool {
    lab.run_ok(host, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .unwrap()
        .contains(&format!("{VIP}/24"))
}

fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn served(lab: &Lab) -> bool {
    lab.run(
        "client",
        &["curl", "-sf", "--max-time", "2", &format!("http://{VIP}/")],
    )
    .is_ok_and(|o| o.status.success())
}

#[test]
fn the_vip_moves_to_the_backup_director_and_back() {
    let mut lab = lab();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let (c1, c2) = (config("d1", 200), config("d2", 100));
    let mut d1 = start(&lab, "d1", &c1);
    let mut d2 = start(&lab, "d2", &c2);
    until("d1 master", || holds_vip(&lab, "d1"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!holds_vip(&lab, "d2"), "one master");
    until("the client served through d1", || served(&lab));

    // d1 stops (SIGTERM): it hands over with priority 0; d2 takes the VIP.
    Command::new("kill")
        .args(["-TERM", &d1.id().to_string()])
        .status()
        .unwrap();
    d1.wait().unwrap();
    until("d2 master", || holds_vip(&lab, "d2"));
    assert!(!holds_vip(&lab, "d1"), "d1 gave the VIP up");
    until("the client served through d2", || served(&lab));

    // d1 returns with the higher priority: it preempts.
    let mut d1 = start(&lab, "d1", &c1);
    until("d1 master again", || {
        holds_vip(&lab, "d1") && !holds_vip(&lab, "d2")
    });
    until("the client served through d1 again", || served(&lab));
    let neighbour = lab.run_ok("client", &["ip", "neigh", "show", VIP]).unwrap();
    let d1_mac = lab
        .run_ok("d1", &["cat", "/sys/class/net/eth0/address"])
        .unwrap();
    assert!(
        neighbour.contains(d1_mac.trim()),
        "gratuitous ARP moved the client: {neighbour}"
    );

    stop_both(&mut d1, &mut d2, [c1, c2]);
}

/// keepalived's VRRP instance for d1: the same version, VRID and VIP.
fn keepalived_config(priority: u8, version: u8, unicast: bool) -> String {
    let interval = interval(version);
    // keepalived on d1 (1.1.1.251), its peer xvsd on d2.
    let peers = if unicast {
        "  unicast_src_ip 1.1.1.251\n  unicast_peer {\n    1.1.1.252\n  }\n"
    } else {
        ""
    };
    let text = format!(
        "global_defs {{\n  vrrp_version {version}\n  script_user root\n  enable_script_security\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n\
           priority {priority}\n  advert_int {interval}\n{peers}  virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
    );
    let path = std::env::temp_dir().join(format!(
        "xvsd-{}-keepalived-{version}-{unicast}.conf",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Where a keepalived started with `config` keeps its pid files (one pair per config:
/// tests run at once).
fn keepalived_pid(config: &str) -> String {
    format!("{}-pid", config.trim_end_matches(".conf"))
}

fn keepalived(lab: &Lab, config: &str) -> Child {
    let pid = keepalived_pid(config);
    lab.command(
        "d1",
        &[
            "keepalived",
            "--dont-fork",
            "--vrrp",
            "--use-file",
            config,
            "--pid",
            &format!("{pid}.pid"),
            "--vrrp_pid",
            &format!("{pid}-vrrp.pid"),
            "--no-syslog",
            "--log-console",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("keepalived (Debian package keepalived, installed by cargo xtask setup)")
}

/// An xvsd director and a keepalived one (Debian's keepalived, VRRPv3 and keepalived's
/// default v2) elect one master and fail over both ways: xvsd with the higher priority
/// takes the VIP from keepalived; stopped, it hands the VIP back to keepalived; started
/// again, it preempts.
#[test]
fn xvsd_and_keepalived_elect_one_master_and_fail_over_both_ways() {
    for version in [3, 2] {
        with_keepalived(version, false);
    }
}

/// The same with unicast advertisements (keepalived's `unicast_peer`, xvsd's
/// `unicast_peers`), multicast VRRP dropped in both directors by nftables, as on a
/// network without multicast.
#[test]
fn xvsd_and_keepalived_fail_over_with_unicast_advertisements() {
    with_keepalived(3, true);
}

fn with_keepalived(version: u8, unicast: bool) {
    let mut lab = lab();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    if unicast {
        for host in ["d1", "d2"] {
            for rule in [
                &["nft", "add", "table", "ip", "novrrp"][..],
                &[
                    "nft",
                    "add chain ip novrrp out { type filter hook output priority 0; }",
                ],
                &["nft", "add rule ip novrrp out ip daddr 224.0.0.18 drop"],
            ] {
                lab.run_ok(host, rule).unwrap();
            }
        }
    }
    let kconfig = keepalived_config(100, version, unicast);
    let mut kept = keepalived(&lab, &kconfig);
    until("keepalived master", || holds_vip(&lab, "d1"));

    let config = config_version(
        &format!("d2-vs-keepalived-{version}-{unicast}"),
        200,
        version,
    );
    if unicast {
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("[vrrp]\n", "[vrrp]\nunicast_peers = [\"1.1.1.251\"]\n");
        std::fs::write(&config, text).unwrap();
    }
    let mut d2 = start(&lab, "d2", &config);
    until("xvsd takes the VIP from keepalived", || {
        holds_vip(&lab, "d2") && !holds_vip(&lab, "d1")
    });
    until("the client served through xvsd", || served(&lab));

    Command::new("kill")
        .args(["-TERM", &d2.id().to_string()])
        .status()
        .unwrap();
    d2.wait().unwrap();
    until("keepalived master again", || {
        holds_vip(&lab, "d1") && !holds_vip(&lab, "d2")
    });

    let mut d2 = start(&lab, "d2", &config);
    until("xvsd preempts keepalived", || {
        holds_vip(&lab, "d2") && !holds_vip(&lab, "d1")
    });
    for child in [&mut d2, &mut kept] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let pid = keepalived_pid(&kconfig);
    for path in [
        config,
        kconfig,
        format!("{pid}.pid"),
        format!("{pid}-vrrp.pid"),
    ] {
        let _ = std::fs::remove_file(path);
    }
}

/// `track_services`: a director whose real servers all fail its checks (here a command
/// check that d1 alone runs) leaves the election and the VIP goes to the director whose
/// checks pass; when its checks pass again it takes the VIP back (preemption).
#[test]
fn a_director_whose_services_lost_their_quorum_gives_the_vip_up() {
    let mut lab = lab();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let flag = std::env::temp_dir().join(format!("xvsd-{}-d1-sees", std::process::id()));
    std::fs::write(&flag, "").unwrap();
    let tracked = config("d1-tracked", 200);
    let text = std::fs::read_to_string(&tracked)
        .unwrap()
        .replace("addresses = [", "track_services = true\naddresses = [")
        .replace(
            "[service.check]\ninterval = 0.5",
            &format!(
                "[service.check]\ntype = \"command\"\ncommand = \"test -e {}\"\ninterval = 0.2",
                flag.display()
            ),
        );
    std::fs::write(&tracked, text).unwrap();
    let other = config("d2-tracked", 100);
    the_flag_moves_the_vip_and_back(
        &lab,
        (&tracked, &other),
        &flag,
        "once d1 lost its quorum",
        || {},
    );
}

/// d1 (config `c1`) and d2 (`c2`) started, d1 master; `flag` removed: d2 master (`why`)
/// and serving, and `meanwhile` run; `flag` back: d1 master again. The directors
/// stopped, the files removed.
fn the_flag_moves_the_vip_and_back(
    lab: &Lab,
    (c1, c2): (&str, &str),
    flag: &std::path::Path,
    why: &str,
    meanwhile: impl Fn(),
) {
    let mut d1 = start(lab, "d1", c1);
    let mut d2 = start(lab, "d2", c2);
    until("d1 master", || {
        holds_vip(lab, "d1") && !holds_vip(lab, "d2")
    });

    std::fs::remove_file(flag).unwrap();
    until(&format!("d2 master {why}"), || {
        holds_vip(lab, "d2") && !holds_vip(lab, "d1")
    });
    until("the client served through d2", || served(lab));
    meanwhile();

    std::fs::write(flag, "").unwrap();
    until("d1 master again", || {
        holds_vip(lab, "d1") && !holds_vip(lab, "d2")
    });
    stop_both(&mut d1, &mut d2, [c1, c2]);
    let _ = std::fs::remove_file(flag);
}

/// `xvsd reload` takes a changed `[vrrp]` section in place, as keepalived's reload does:
/// the master lowered below the backup hands the VIP over (the backup preempts), an
/// address added to the master's section is taken and one removed is given up, and a
/// section naming another virtual router is refused, the instance running on as before.
#[test]
fn a_reload_moves_the_vip_and_changes_its_addresses_in_place() {
    let mut lab = lab();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let (c1, c2) = (config("d1-reload", 200), config("d2-reload", 100));
    let mut d1 = start(&lab, "d1", &c1);
    let mut d2 = start(&lab, "d2", &c2);
    until("d1 master", || {
        holds_vip(&lab, "d1") && !holds_vip(&lab, "d2")
    });
    let reload = |host: &str| lab.run_ok(host, &[XVSD, "reload"]).unwrap();

    config("d1-reload", 50);
    let answer = reload("d1");
    assert!(answer.contains("VRRP 51 on eth0 reloaded"), "{answer}");
    until("d2 master once d1's priority fell below it", || {
        holds_vip(&lab, "d2") && !holds_vip(&lab, "d1")
    });
    until("the client served through d2", || served(&lab));

    let second = "1.1.1.250/24";
    let with_second = |text: String| {
        text.replace(
            &format!("addresses = [\"{VIP}/24\"]"),
            &format!("addresses = [\"{VIP}/24\", \"{second}\"]"),
        )
    };
    edited_config("d2-reload", 100, with_second);
    reload("d2");
    let holds = |host: &str, address: &str| holds(&lab, host, address);
    until("d2 holds the added address", || holds("d2", second));
    assert!(holds_vip(&lab, "d2"), "d2 kept the VIP");
    config("d2-reload", 100);
    reload("d2");
    until("d2 gave the removed address up", || !holds("d2", second));
    assert!(holds_vip(&lab, "d2"), "d2 kept the VIP");

    edited_config("d2-reload", 100, |text| {
        text.replace("version = 3", "version = 2")
            .replace("interval = 0.2", "interval = 1")
    });
    let answer = reload("d2");
    assert!(
        answer.contains("take effect when xvsd restarts"),
        "{answer}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        holds_vip(&lab, "d2") && !holds_vip(&lab, "d1"),
        "the refused change moved nothing"
    );

    stop_both(&mut d1, &mut d2, [c1, c2]);
}

fn holds(lab: &Lab, host: &str, address: &str) -> bool {
    lab.run_ok(host, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .unwrap()
        .contains(address)
}

/// A reload that names a new virtual router starts its instance, and one that no longer
/// names a running one stops it (as keepalived's reload does): both directors add VRID
/// 52 (another address) beside 51, d1 becomes its master too; then d1's config names only
/// 52, its instance of 51 stops and hands the VIP over to d2, and 52 runs on undisturbed.
#[test]
fn a_reload_starts_and_stops_vrrp_instances() {
    // Its VIP moves too: not beside the timing-sensitive failover labs.
    let _one = one_at_a_time();
    let mut lab = lab();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let (c1, c2) = (config("d1-instances", 200), config("d2-instances", 100));
    let mut d1 = start(&lab, "d1", &c1);
    let mut d2 = start(&lab, "d2", &c2);
    until("d1 master", || {
        holds_vip(&lab, "d1") && !holds_vip(&lab, "d2")
    });
    let reload = |host: &str| lab.run_ok(host, &[XVSD, "reload"]).unwrap();
    let second = "1.1.1.250/24";
    let with_52 = |priority: u8| {
        move |text: String| {
            text.replace("[vrrp]", "[[vrrp]]").replace(
                "\n[[service]]",
                &format!(
                    "\n[[vrrp]]\ninterface = \"eth0\"\nvrid = 52\npriority = {priority}\n\
                     interval = 0.2\naddresses = [\"{second}\"]\n\n[[service]]"
                ),
            )
        }
    };
    edited_config("d2-instances", 100, with_52(100));
    let answer = reload("d2");
    assert!(answer.contains("VRRP 52 on eth0 started"), "{answer}");
    edited_config("d1-instances", 200, with_52(200));
    let answer = reload("d1");
    assert!(answer.contains("VRRP 52 on eth0 started"), "{answer}");
    until("d1 master of 52 too", || {
        holds(&lab, "d1", second) && !holds(&lab, "d2", second)
    });
    assert!(holds_vip(&lab, "d1") && !holds_vip(&lab, "d2"), "51 stayed");

    edited_config("d1-instances", 200, |text| {
        text.replace("vrid = 51", "vrid = 52")
            .replace(&format!("[\"{VIP}/24\"]"), &format!("[\"{second}\"]"))
    });
    let answer = reload("d1");
    assert!(answer.contains("VRRP 51 on eth0 stopped"), "{answer}");
    assert!(!answer.contains("VRRP 52"), "52 taken as it was: {answer}");
    until("d2 master of 51", || {
        holds_vip(&lab, "d2") && !holds_vip(&lab, "d1")
    });
    until("the client served through d2", || served(&lab));
    assert!(
        holds(&lab, "d1", second) && !holds(&lab, "d2", second),
        "52 stayed on d1"
    );

    stop_both(&mut d1, &mut d2, [c1, c2]);
}

/// keepalived's notify commands: the generic `notify` gets `INSTANCE NAME STATE PRIORITY`
/// at every change (BACKUP at the start, MASTER once elected, FAULT while a tracked
/// interface is down, BACKUP and MASTER again once it is up, STOP when xvsd stops), and
/// `notify_fault` runs at the fault.
#[test]
fn notify_commands_tell_every_state_change() {
    let _one = one_at_a_time();
    let mut lab = lab();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    // A link of d1's own to track (this kernel has no dummy driver).
    lab.run_ok(
        "d1",
        &[
            "ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1",
        ],
    )
    .unwrap();
    for link in ["dummy0", "dummy1"] {
        lab.run_ok("d1", &["ip", "link", "set", link, "up"])
            .unwrap();
    }
    let told = std::env::temp_dir().join(format!("xvsd-{}-d1-notify", std::process::id()));
    let fault = std::env::temp_dir().join(format!("xvsd-{}-d1-fault", std::process::id()));
    let (told_path, fault_path) = (told.display().to_string(), fault.display().to_string());
    let c1 = edited_config("d1-notify", 200, |text| {
        text.replace(
            &format!("addresses = [\"{VIP}/24\"]\n"),
            &format!(
                "addresses = [\"{VIP}/24\"]\nname = \"web\"\ntrack_interfaces = [\"dummy0\"]\n\
                 notify = \"printf '%s %s %s %s\\\\n' >> {told_path}\"\n\
                 notify_fault = \"echo $XVS_VRRP_STATE >> {fault_path}\"\n"
            ),
        )
    });
    let c2 = config("d2-notify", 100);
    let mut d1 = start(&lab, "d1", &c1);
    let mut d2 = start(&lab, "d2", &c2);
    let lines = || {
        std::fs::read_to_string(&told)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let told_until = |what: &str, count: usize| {
        until(what, || lines().len() >= count);
        lines()
    };
    told_until("d1 master", 2);
    assert!(holds_vip(&lab, "d1"));
    lab.run_ok("d1", &["ip", "link", "set", "dummy0", "down"])
        .unwrap();
    told_until("d1 in fault", 3);
    until("d2 master", || {
        holds_vip(&lab, "d2") && !holds_vip(&lab, "d1")
    });
    lab.run_ok("d1", &["ip", "link", "set", "dummy0", "up"])
        .unwrap();
    told_until("d1 master again", 5);
    until("d1 holds the VIP again", || holds_vip(&lab, "d1"));
    Command::new("kill")
        .args(["-TERM", &d1.id().to_string()])
        .status()
        .unwrap();
    let _ = d1.wait();
    let all = told_until("d1 stopped", 6);
    assert_eq!(
        all,
        [
            "INSTANCE web BACKUP 200",
            "INSTANCE web MASTER 200",
            "INSTANCE web FAULT 200",
            "INSTANCE web BACKUP 200",
            "INSTANCE web MASTER 200",
            "INSTANCE web STOP 200",
        ]
    );
    assert_eq!(std::fs::read_to_string(&fault).unwrap(), "FAULT\n");
    let _ = d2.kill();
    let _ = d2.wait();
    for path in [c1, c2, told_path, fault_path] {
        let _ = std::fs::remove_file(path);
    }
}

/// A track script (keepalived's `vrrp_script`) sways the election: while d1's script
/// fails, its weight (-150) takes d1's priority from 200 to 50, below d2's 100, and d2
/// preempts; once it passes again d1 takes the VIP back.
#[test]
fn a_failing_track_script_lowers_the_priority_and_the_vip_moves() {
    let mut lab = lab();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let flag = std::env::temp_dir().join(format!("xvsd-{}-d1-script", std::process::id()));
    std::fs::write(&flag, "").unwrap();
    let c1 = edited_config("d1-script", 200, |text| {
        text.replace(
            &format!("addresses = [\"{VIP}/24\"]\n"),
            &format!(
                "addresses = [\"{VIP}/24\"]\n[[vrrp.track_script]]\ncommand = \"test -e {}\"\n\
                 interval = 0.2\nfall = 2\nweight = -150\n",
                flag.display()
            ),
        )
    });
    assert!(
        std::fs::read_to_string(&c1)
            .unwrap()
            .contains("track_script")
    );
    let c2 = config("d2-script", 100);
    // What d1 says of itself on /metrics meanwhile: the priority its script left it.
    let priority = || {
        lab.run_ok("d1", &["curl", "-sf", "http://127.0.0.1:9180/metrics"])
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("xvs_vrrp_priority{instance=\"VRRP 51 on eth0\"} "))
            .map(str::to_string)
    };
    the_flag_moves_the_vip_and_back(&lab, (&c1, &c2), &flag, "while d1's script fails", || {
        assert_eq!(priority().as_deref(), Some("50"))
    });
}

/// With a scheduler that hashes the client (`mh`) both directors choose alike, so an
/// established connection survives a failover without connection sync: the backup picks
/// its segments up and sends them to the same real server. (With wlc the same test
/// fails: the backup's stack resets the connection.)
#[test]
fn an_mh_connection_survives_the_failover() {
    use std::io::{Read, Write};
    let mut lab = lab();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Echo).unwrap();
    }
    let mh = |name: &str, priority: u8| {
        let path = config(name, priority);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("scheduler = \"rr\"", "scheduler = \"mh\"");
        std::fs::write(&path, text).unwrap();
        path
    };
    let (c1, c2) = (mh("d1-mh", 200), mh("d2-mh", 100));
    let mut d1 = start(&lab, "d1", &c1);
    let mut d2 = start(&lab, "d2", &c2);
    until("d1 master", || {
        holds_vip(&lab, "d1") && !holds_vip(&lab, "d2")
    });
    let vip: std::net::SocketAddr = format!("{VIP}:80").parse().unwrap();
    let mut stream = lab
        .within("client", || {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(2)) {
                    Ok(stream) => return stream,
                    Err(e) => assert!(Instant::now() < deadline, "{e}"),
                }
            }
        })
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let echo = |stream: &mut std::net::TcpStream, text: &[u8]| {
        stream.write_all(text).unwrap();
        let mut back = vec![0u8; text.len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, text);
    };
    echo(&mut stream, b"before\n");

    Command::new("kill")
        .args(["-TERM", &d1.id().to_string()])
        .status()
        .unwrap();
    d1.wait().unwrap();
    until("d2 master", || {
        holds_vip(&lab, "d2") && !holds_vip(&lab, "d1")
    });
    // The same connection, now through d2.
    echo(&mut stream, b"after the failover\n");
    let _ = d2.kill();
    let _ = d2.wait();
    for path in [c1, c2] {
        let _ = std::fs::remove_file(path);
    }
}

/// A connection through the VIP from the client, echoing what it is sent.
fn connect(lab: &Lab) -> std::net::TcpStream {
    let vip: std::net::SocketAddr = format!("{VIP}:80").parse().unwrap();
    let stream = lab
        .within("client", || {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(2)) {
                    Ok(stream) => return stream,
                    Err(e) => assert!(Instant::now() < deadline, "{e}"),
                }
            }
        })
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

fn echo(stream: &mut std::net::TcpStream, text: &str) {
    try_echo(stream, text).unwrap_or_else(|e| panic!("{text}: {e}"));
}

fn try_echo(stream: &mut std::net::TcpStream, text: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    stream.write_all(text.as_bytes())?;
    let mut back = vec![0u8; text.len()];
    stream.read_exact(&mut back)?;
    assert_eq!(back, text.as_bytes());
    Ok(())
}

/// What both directors hold and counted, for a failure's message: their counters, real
/// servers and connections (the failures these labs are after depend on timing; their
/// cause is in these).
fn both_directors(lab: &Lab) -> String {
    let mut out = String::new();
    for host in ["d1", "d2"] {
        let status = lab
            .run(host, &[XVSD, "status"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let counters: Vec<&str> = status
            .lines()
            .filter(|l| !l.ends_with(" 0") && !l.starts_with("rx_"))
            .collect();
        let held = lab
            .within(host, || {
                let director = xvs_datapath::Director::find().ok().flatten()?;
                let table = director.load().ok()?.table;
                let saved = xvs_core::listing::save(&table, true, &xvs_core::text::NoNames);
                let connections: Vec<String> = director
                    .connections()
                    .ok()?
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {} {:?} -> {:?} ({}s)",
                            c.protocol, c.state, c.client, c.dest, c.expires_seconds
                        )
                    })
                    .collect();
                Some(format!("{saved}{}", connections.join("\n")))
            })
            .ok()
            .flatten()
            .unwrap_or_default();
        out.push_str(&format!("--- {host}: {}\n{held}\n", counters.join(", ")));
    }
    out
}

/// Established connections in a director's table (listed as `-L -c` lists them).
fn established(lab: &Lab, host: &str) -> usize {
    lab.within(host, || {
        xvs_datapath::Director::find()
            .ok()
            .flatten()
            .and_then(|d| d.connections().ok())
            .map_or(0, |c| c.iter().filter(|e| e.state == "ESTABLISHED").count())
    })
    .unwrap()
}

/// The two-director lab with an echo server on both real servers.
fn echo_lab() -> Lab {
    let mut lab = lab();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Echo).unwrap();
    }
    lab
}

/// A `[sync]` section signed with a shared key, put before `[vrrp]` (after it, it would
/// land in the last table).
const SIGNED_SYNC: &str = "[sync]\ninterface = \"eth0\"\nkey = \"a shared secret\"\n\n[vrrp]";

/// [`config`] with its text changed by `edit`.
fn edited_config(name: &str, priority: u8, edit: impl Fn(String) -> String) -> String {
    let path = config(name, priority);
    let text = edit(std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts d1 (config `c1`, the higher priority) and d2 (`c2`), waits for d1 to be
/// master, opens four connections through it (each echoed once), and waits until d2
/// holds them synced.
fn four_synced_connections(
    lab: &Lab,
    c1: &str,
    c2: &str,
) -> (Child, Child, Vec<std::net::TcpStream>) {
    let d1 = start(lab, "d1", c1);
    let d2 = start(lab, "d2", c2);
    until("d1 master", || {
        holds_vip(lab, "d1") && !holds_vip(lab, "d2")
    });
    // rr spreads them over both real servers.
    let mut streams: Vec<_> = (0..4).map(|_| connect(lab)).collect();
    echo_all(&mut streams, "before");
    until("d2 holds d1's connections", || established(lab, "d2") >= 4);
    (d1, d2, streams)
}

/// Each stream echoes `what` and its number.
fn echo_all(streams: &mut [std::net::TcpStream], what: &str) {
    for (i, stream) in streams.iter_mut().enumerate() {
        echo(stream, &format!("{what} {i}\n"));
    }
}

/// Stops d1 (SIGTERM) and waits until d2 holds the VIP alone.
fn stop_d1(lab: &Lab, d1: &mut Child) {
    Command::new("kill")
        .args(["-TERM", &d1.id().to_string()])
        .status()
        .unwrap();
    d1.wait().unwrap();
    until("d2 master", || {
        holds_vip(lab, "d2") && !holds_vip(lab, "d1")
    });
}

/// Connection sync (`[sync]`) with a scheduler that does not hash the client (rr): the
/// backup holds the master's connections, so none breaks when the master stops and the
/// backup takes the VIP. When the first director returns it starts as backup, asks for
/// the whole table (bulk catch-up: a connection opened while it was away included), and
/// only then preempts (`preempt_delay`): still nothing breaks. Without `[sync]` the
/// same test fails at the first failover: the backup's stack resets connections it
/// never saw.
#[test]
fn connections_survive_failover_and_return_with_sync() {
    let lab = echo_lab();
    let synced = |name: &str, priority: u8| {
        edited_config(name, priority, |text| {
            text.replace("version = 3\n", "version = 3\npreempt_delay = 3\n")
                .replacen("[vrrp]", SIGNED_SYNC, 1)
        })
    };
    let (c1, c2) = (synced("d1-sync", 200), synced("d2-sync", 100));
    let checked = Command::new(XVSD)
        .args(["check-config", &c1])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    for line in [
        "vrrp: 51 on eth0, priority 200, 1.1.1.254/24 (version 3, multicast)",
        "sync: on eth0 to 224.0.0.81:8848, syncid 51, signed",
    ] {
        assert!(said.lines().any(|l| l == line), "{line}:\n{said}");
    }
    let (mut d1, mut d2, mut streams) = four_synced_connections(&lab, &c1, &c2);
    // What each says of it on /metrics.
    let metric = |host: &str, line: &str| -> Option<u64> {
        let text = lab
            .run_ok(host, &["curl", "-sf", "http://127.0.0.1:9180/metrics"])
            .ok()?;
        let found = text.lines().find(|l| l.starts_with(line))?;
        found.rsplit(' ').next()?.parse().ok()
    };
    assert_eq!(
        metric("d1", "xvs_vrrp_master{instance=\"VRRP 51 on eth0\"}"),
        Some(1)
    );
    assert_eq!(
        metric("d2", "xvs_vrrp_master{instance=\"VRRP 51 on eth0\"}"),
        Some(0)
    );
    assert!(metric("d1", "xvs_sync_connections_sent_total").is_some_and(|n| n >= 4));
    assert!(
        metric("d2", "xvs_sync_connections_received_total{result=\"new\"}").is_some_and(|n| n >= 4)
    );

    stop_d1(&lab, &mut d1);
    echo_all(&mut streams, "through d2");
    // One more, opened through d2 while d1 is away.
    streams.push(connect(&lab));
    echo(streams.last_mut().unwrap(), "opened through d2\n");

    // d1 returns: backup first, the whole table from d2, then it preempts.
    let mut d1 = start(&lab, "d1", &c1);
    until("d1 master again", || {
        holds_vip(&lab, "d1") && !holds_vip(&lab, "d2")
    });
    for (i, stream) in streams.iter_mut().enumerate() {
        if let Err(e) = try_echo(stream, &format!("through d1 again {i}\n")) {
            let port = stream.local_addr().map(|a| a.port()).unwrap_or_default();
            panic!(
                "through d1 again {i} (client port {port}): {e}\n{}",
                both_directors(&lab)
            );
        }
    }
    stop_both(&mut d1, &mut d2, [c1, c2]);
}

/// FULLNAT with connection sync: the local address moves with the VIP (both are the
/// VRRP instance's addresses), and the master's connections reach the backup with their
/// local address and port, so when the master stops, every connection goes on through
/// the backup: the real servers keep seeing the same client (a different local port
/// would meet their reset).
#[test]
fn fullnat_connections_survive_failover_with_sync() {
    let _alone = one_at_a_time();
    let lab = echo_lab();
    let fullnat = |name: &str, priority: u8| {
        edited_config(name, priority, |text| {
            text.replace(
                &format!("addresses = [\"{VIP}/24\"]"),
                &format!("addresses = [\"{VIP}/24\", \"1.1.1.253/24\"]"),
            )
            .replace(
                "method = \"dr\"",
                "method = \"fullnat\"\nlocal_addresses = [\"1.1.1.253\"]",
            )
            .replacen("[vrrp]", SIGNED_SYNC, 1)
        })
    };
    let (c1, c2) = (fullnat("d1-fnat", 200), fullnat("d2-fnat", 100));
    let checked = Command::new(XVSD)
        .args(["check-config", &c1])
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    let (mut d1, mut d2, mut streams) = four_synced_connections(&lab, &c1, &c2);
    stop_d1(&lab, &mut d1);
    echo_all(&mut streams, "through d2");
    let _ = d2.kill();
    let _ = d2.wait();
    for path in [c1, c2] {
        let _ = std::fs::remove_file(path);
    }
}

/// The master is cut off the network (its link down: `track_interfaces` puts it in
/// FAULT, giving the VIP up) and comes back with no preempt delay: the backup takes
/// over and serves the synced connections and one opened meanwhile; when the first
/// returns it preempts at once, and the backup, handing over, sends it its whole table:
/// every connection goes on through the returned master. (Timing-sensitive: with another
/// failover lab beside it, one connection failed after the return one run in three. The
/// whole table reaches the returned master before its health checks have added the real
/// servers back; records of servers it did not have were dropped, and now wait for them
/// (`xvs_sync::Waiting`). Without the lock above, the whole file then failed here one run
/// in fifteen (2026-12-07): a connection got no answer through the returned master for
/// 5 s. Not understood yet; note that `established` below also counts the returned
/// master's own entries of removed servers, so the wait may end before the waiting
/// records are placed. Twelve runs of the whole file without the lock passed later that
/// day; should it fail again, its message now carries both directors' counters, real
/// servers and connections.)
#[test]
fn a_master_cut_off_and_back_gets_the_connections_made_meanwhile() {
    let _alone = one_at_a_time();
    let lab = echo_lab();
    let synced = |name: &str, priority: u8| {
        edited_config(name, priority, |text| {
            text.replace(
                "version = 3\n",
                "version = 3\ntrack_interfaces = [\"eth0\"]\n",
            )
            .replacen("[vrrp]", "[sync]\ninterface = \"eth0\"\n\n[vrrp]", 1)
        })
    };
    let (c1, c2) = (synced("d1-cut", 200), synced("d2-cut", 100));
    let (mut d1, mut d2, mut streams) = four_synced_connections(&lab, &c1, &c2);

    // Short connections meanwhile: one every 20 ms from the client, each connect, echo,
    // close, until a second after the takeover; how many fail, how long the slowest took.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let short = {
        let stop = stop.clone();
        let ns = lab.namespace("client");
        std::thread::spawn(move || {
            xvs_lab::enter_namespace(&ns).unwrap();
            let vip: std::net::SocketAddr = format!("{VIP}:80").parse().unwrap();
            let (mut made, mut failed, mut slowest) = (0, 0, Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let ok = std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(5))
                    .and_then(|mut s| {
                        use std::io::{Read, Write};
                        s.set_read_timeout(Some(Duration::from_secs(5)))?;
                        s.write_all(b"short\n")?;
                        let mut back = [0u8; 6];
                        s.read_exact(&mut back)
                    })
                    .is_ok();
                made += 1;
                failed += usize::from(!ok);
                slowest = slowest.max(started.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            (made, failed, slowest)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let cut = Instant::now();
    lab.run_ok("d1", &["ip", "link", "set", "eth0", "down"])
        .unwrap();
    until("d2 master", || holds_vip(&lab, "d2"));
    // 3 × 0.2 s + skew ((256 - 100) / 256 × 0.2 s) = 0.72 s by RFC 5798.
    println!("d2 held the VIP {:?} after d1 was cut off", cut.elapsed());
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (made, failed, slowest) = short.join().unwrap();
    println!(
        "short connections across the takeover: {made} made, {failed} failed, slowest {slowest:?}"
    );
    // The one connection that may be in flight at the cut (its handshake or its echo
    // through d1 when d1's link went down) is younger than a sync round: d2 has no entry
    // for its next segment and it is reset, as IPVS's backup would (README: a connection
    // younger than a round is lost on failover). It happened once in a full run. Every
    // other connection, those begun in the second without a master too, must get through.
    assert!(
        failed <= 1,
        "{failed} short connections failed across the takeover"
    );
    for (i, stream) in streams.iter_mut().enumerate() {
        echo(stream, &format!("through d2 {i}\n"));
    }
    streams.push(connect(&lab));
    echo(streams.last_mut().unwrap(), "opened through d2\n");

    lab.run_ok("d1", &["ip", "link", "set", "eth0", "up"])
        .unwrap();
    until("d1 master again", || {
        holds_vip(&lab, "d1") && !holds_vip(&lab, "d2")
    });
    until("d1 holds the connection opened through d2", || {
        established(&lab, "d1") >= 5
    });
    // The client's packets go by ARP: to d1 from now on.
    lab.run_ok("client", &["ip", "neigh", "flush", "dev", "eth0"])
        .unwrap();
    for (i, stream) in streams.iter_mut().enumerate() {
        if let Err(e) = try_echo(stream, &format!("through d1 again {i}\n")) {
            let port = stream.local_addr().map(|a| a.port()).unwrap_or_default();
            panic!(
                "through d1 again {i} (client port {port}): {e}\n{}",
                both_directors(&lab)
            );
        }
    }
    stop_both(&mut d1, &mut d2, [c1, c2]);
}

/// The dual-stack VIP of the labs below (the IPv4 one is `VIP`).
const VIP6: &str = "fd00:1::fe";

/// `client`, `d1` and `d2` on one bridge, each with an IPv6 and an IPv4 address.
fn dual_stack_lab() -> Lab {
    LabBuilder::new()
        .host("client")
        .host("d1")
        .host("d2")
        .host("lan")
        .bridge(
            "lan",
            "br0",
            vec![
                end("client", "eth0", &["fd00:1::1/64", "1.1.1.1/24"]),
                end("d1", "eth0", &["fd00:1::251/64", "1.1.1.251/24"]),
                end("d2", "eth0", &["fd00:1::252/64", "1.1.1.252/24"]),
            ],
        )
        .build()
        .unwrap()
}

/// How many of the two VIPs `host` holds (the instances move one after the other).
fn vips_held(lab: &Lab, host: &str) -> usize {
    let addresses = lab
        .run_ok(host, &["ip", "-o", "addr", "show", "dev", "eth0"])
        .unwrap();
    [format!("{VIP6}/64"), format!("{VIP}/24")]
        .iter()
        .filter(|vip| addresses.contains(vip.as_str()))
        .count()
}

/// VRRPv3 over IPv6 beside IPv4 (two instances, `[[vrrp]]`): advertisements from the
/// directors' link-local addresses to ff02::12; the master holds the IPv6 VIP and
/// announces it with unsolicited neighbour advertisements, which move the client's
/// neighbour entry on each change of master (no cache flushed here); the IPv4 instance
/// moves its VIP with it.
#[test]
fn an_ipv6_vip_moves_and_neighbour_advertisements_move_the_client() {
    let lab = dual_stack_lab();
    let config6 = |name: &str, priority: u8| {
        // Dual stack: an IPv6 instance and an IPv4 one, each on its own.
        let text = format!(
            "[[vrrp]]\ninterface = \"eth0\"\nvrid = 61\npriority = {priority}\ninterval = 0.2\naddresses = [\"{VIP6}/64\"]\n\
             [[vrrp]]\ninterface = \"eth0\"\nvrid = 61\npriority = {priority}\ninterval = 0.2\naddresses = [\"{VIP}/24\"]\n"
        );
        let path = std::env::temp_dir().join(format!("xvsd-{}-{name}-v6.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let held = |host: &str| vips_held(&lab, host);
    let master = |host: &str, other: &str| held(host) == 2 && held(other) == 0;
    let mac = |host: &str| {
        lab.run_ok(host, &["cat", "/sys/class/net/eth0/address"])
            .unwrap()
            .trim()
            .to_string()
    };
    // The client's neighbour entry for the VIP names `host`'s MAC. Read without sending
    // anything: only the new master's advertisement can have changed it.
    let neighbour_is = |host: &str| {
        lab.run_ok("client", &["ip", "-6", "neigh", "show", VIP6])
            .unwrap()
            .contains(&mac(host))
    };
    let client_goes_to = |host: &str| {
        neighbour_is(host)
            && lab
                .run_ok("client", &["ping", "-6", "-c", "1", "-W", "1", VIP6])
                .is_ok()
    };
    let (c1, c2) = (config6("d1", 200), config6("d2", 100));
    let mut d1 = start(&lab, "d1", &c1);
    let mut d2 = start(&lab, "d2", &c2);
    until("d1 master", || master("d1", "d2"));
    until("the client reaches the VIP", || {
        lab.run_ok("client", &["ping", "-6", "-c", "1", "-W", "1", VIP6])
            .is_ok()
    });
    until("the client reaches the VIP at d1", || client_goes_to("d1"));

    Command::new("kill")
        .args(["-TERM", &d1.id().to_string()])
        .status()
        .unwrap();
    d1.wait().unwrap();
    until("d2 master", || master("d2", "d1"));
    until("the client reaches the VIP at d2", || client_goes_to("d2"));

    let mut d1 = start(&lab, "d1", &c1);
    until("d1 master again", || master("d1", "d2"));
    until("the client reaches the VIP at d1 again", || {
        client_goes_to("d1")
    });
    until("the client reaches the IPv4 VIP", || {
        lab.run_ok("client", &["ping", "-c", "1", "-W", "1", VIP])
            .is_ok()
    });
    stop_both(&mut d1, &mut d2, [c1, c2]);
}

/// Gives d1 an interface of its own to track, `up0`, up (no dummy driver here: a veth
/// pair, `up0` and `up1`).
fn d1_interface_to_track(lab: &Lab) {
    lab.run_ok(
        "d1",
        &[
            "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1",
        ],
    )
    .unwrap();
    for link in ["up0", "up1"] {
        lab.run_ok("d1", &["ip", "link", "set", link, "up"])
            .unwrap();
    }
}

/// A VRRP group (keepalived's `vrrp_sync_group`): the IPv4 instance tracks an interface of
/// d1's that the IPv6 one does not; when it goes down the IPv4 instance is in fault, and
/// so, by the group, is the IPv6 one: both VIPs move to d2, and come back together.
#[test]
fn a_group_moves_both_families_when_one_instance_faults() {
    let lab = dual_stack_lab();
    d1_interface_to_track(&lab);
    let config = |name: &str, priority: u8| {
        let text = format!(
            "[[vrrp]]\ninterface = \"eth0\"\nvrid = 71\npriority = {priority}\ninterval = 0.2\naddresses = [\"{VIP6}/64\"]\ngroup = \"web\"\n\
             [[vrrp]]\ninterface = \"eth0\"\nvrid = 71\npriority = {priority}\ninterval = 0.2\naddresses = [\"{VIP}/24\"]\ngroup = \"web\"\ntrack_interfaces = [\"{}\"]\n",
            if name == "d1" { "up0" } else { "eth0" }
        );
        let path =
            std::env::temp_dir().join(format!("xvsd-{}-{name}-group.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let held = |host: &str| vips_held(&lab, host);
    let (c1, c2) = (config("d1", 200), config("d2", 100));
    let mut d1 = start(&lab, "d1", &c1);
    let mut d2 = start(&lab, "d2", &c2);
    until("d1 master of both", || held("d1") == 2 && held("d2") == 0);
    lab.run_ok("d1", &["ip", "link", "set", "up0", "down"])
        .unwrap();
    until("both VIPs at d2", || held("d2") == 2 && held("d1") == 0);
    lab.run_ok("d1", &["ip", "link", "set", "up0", "up"])
        .unwrap();
    until("both VIPs back at d1", || {
        held("d1") == 2 && held("d2") == 0
    });
    stop_both(&mut d1, &mut d2, [c1, c2]);
}

/// A VRRP group follows a member that lost its election (keepalived's
/// `vrrp_sync_group`): d1 is master of both instances; d2 starts with a higher priority,
/// but d1 never hears d2's IPv6 advertisements (nftables drops them), so only d1's IPv4
/// instance loses its election. Its IPv6 instance follows it to backup and stays there
/// (else both directors would hold the IPv6 VIP, and the group's two VIPs would sit on
/// two directors); when d2 stops, d1 takes both back.
#[test]
fn a_group_follows_a_member_that_lost_its_election() {
    let lab = dual_stack_lab();
    for rule in [
        &["nft", "add", "table", "ip6", "novrrp"][..],
        &[
            "nft",
            "add chain ip6 novrrp in { type filter hook input priority 0; }",
        ],
        &["nft", "add rule ip6 novrrp in meta l4proto 112 drop"],
    ] {
        lab.run_ok("d1", rule).unwrap();
    }
    let config = |name: &str, priority: u8| {
        let text = format!(
            "[[vrrp]]\ninterface = \"eth0\"\nvrid = 81\npriority = {priority}\ninterval = 0.2\naddresses = [\"{VIP6}/64\"]\ngroup = \"web\"\n\
             [[vrrp]]\ninterface = \"eth0\"\nvrid = 81\npriority = {priority}\ninterval = 0.2\naddresses = [\"{VIP}/24\"]\ngroup = \"web\"\n"
        );
        let path =
            std::env::temp_dir().join(format!("xvsd-{}-{name}-follow.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let held = |host: &str| vips_held(&lab, host);
    let (c1, c2) = (config("d1", 100), config("d2", 200));
    let mut d1 = start(&lab, "d1", &c1);
    until("d1 master of both", || held("d1") == 2);
    let mut d2 = start(&lab, "d2", &c2);
    until("both VIPs at d2 alone", || {
        held("d2") == 2 && held("d1") == 0
    });
    // And there it stays: a moment later both are still at d2. (That d1's IPv6 instance
    // never takes over meanwhile is proven on a virtual clock, xvs-vrrp's
    // `a_sync_group_follows_a_member_that_lost_its_election`; sampled here it is not:
    // under the full suite's load d2's advertisements, every 0.2 s, can come late enough
    // for d1's instances to take over for a moment, one after the other, as a group
    // does: sampled checks failed so twice.)
    std::thread::sleep(Duration::from_secs(2));
    until("both VIPs at d2 alone, still", || {
        held("d2") == 2 && held("d1") == 0
    });
    Command::new("kill")
        .args(["-TERM", &d2.id().to_string()])
        .status()
        .unwrap();
    d2.wait().unwrap();
    until("both VIPs back at d1", || held("d1") == 2);
    stop_both(&mut d1, &mut d2, [c1, c2]);
}

/// A reload adds a member to a running sync group, moves it and removes it (keepalived's
/// reload does all three): both directors run an IPv4 instance in group "web"; a reload adds an IPv6
/// one to the group, which d1, master of the group, takes at once. The new member is in
/// the group: its tracked interface going down on d1 moves both VIPs to d2, and back. A
/// reload that moves it to a group of its own takes it in place: its fault then moves its
/// VIP alone. A reload without it stops it, the IPv4 instance going on at d1.
#[test]
fn a_reload_adds_moves_and_removes_members_of_a_group() {
    let lab = dual_stack_lab();
    d1_interface_to_track(&lab);
    let path = |name: &str| {
        std::env::temp_dir()
            .join(format!("xvsd-{}-{name}-members.toml", std::process::id()))
            .to_string_lossy()
            .into_owned()
    };
    // The IPv6 instance: none, or in sync group `Some(group)`.
    let write = |name: &str, priority: u8, ipv6: Option<&str>| {
        let mut text = format!(
            "[[vrrp]]\ninterface = \"eth0\"\nvrid = 91\npriority = {priority}\ninterval = 0.2\naddresses = [\"{VIP}/24\"]\ngroup = \"web\"\n"
        );
        if let Some(group) = ipv6 {
            let track = if name == "d1" { "up0" } else { "eth0" };
            text.push_str(&format!(
                "[[vrrp]]\ninterface = \"eth0\"\nvrid = 91\npriority = {priority}\ninterval = 0.2\naddresses = [\"{VIP6}/64\"]\ngroup = \"{group}\"\ntrack_interfaces = [\"{track}\"]\n"
            ));
        }
        std::fs::write(path(name), text).unwrap();
    };
    let held = |host: &str| vips_held(&lab, host);
    let reload = |host: &str| lab.run_ok(host, &[XVSD, "reload"]).unwrap();
    write("d1", 200, None);
    write("d2", 100, None);
    let mut d1 = start(&lab, "d1", &path("d1"));
    let mut d2 = start(&lab, "d2", &path("d2"));
    until("d1 master of the IPv4 instance", || {
        held("d1") == 1 && held("d2") == 0
    });

    for (host, priority) in [("d2", 100), ("d1", 200)] {
        write(host, priority, Some("web"));
        let answer = reload(host);
        assert!(
            answer.contains("VRRP 91 on eth0 (IPv6) started"),
            "{host}: {answer}"
        );
    }
    until("d1 master of both", || held("d1") == 2 && held("d2") == 0);
    let ipv6_fault_moves = |both: bool| {
        lab.run_ok("d1", &["ip", "link", "set", "up0", "down"])
            .unwrap();
        if both {
            until("both VIPs at d2", || held("d2") == 2 && held("d1") == 0);
        } else {
            until("the IPv6 VIP at d2, the IPv4 one at d1", || {
                held("d2") == 1 && held("d1") == 1 && holds_vip(&lab, "d1")
            });
        }
        lab.run_ok("d1", &["ip", "link", "set", "up0", "up"])
            .unwrap();
        until("both VIPs back at d1", || {
            held("d1") == 2 && held("d2") == 0
        });
    };
    ipv6_fault_moves(true);

    // The IPv6 instance moved to a group of its own, in place: its fault moves its VIP
    // alone.
    for (host, priority) in [("d2", 100), ("d1", 200)] {
        write(host, priority, Some("v6"));
        let answer = reload(host);
        assert!(
            answer.contains("VRRP 91 on eth0 (IPv6) reloaded"),
            "{host}: {answer}"
        );
    }
    ipv6_fault_moves(false);

    for (host, priority) in [("d1", 200), ("d2", 100)] {
        write(host, priority, None);
        let answer = reload(host);
        assert!(
            answer.contains("VRRP 91 on eth0 (IPv6) stopped"),
            "{host}: {answer}"
        );
    }
    until("the IPv4 VIP alone, at d1", || {
        held("d1") == 1 && held("d2") == 0 && holds_vip(&lab, "d1")
    });
    stop_both(&mut d1, &mut d2, [path("d1"), path("d2")]);
}
