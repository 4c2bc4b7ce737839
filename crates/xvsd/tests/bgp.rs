//! Scale-out behind ECMP (#13 lab c): three xvsd directors announce the VIP over BGP
//! (each through its own BIRD) to a router namespace running BIRD, which installs one
//! multipath route and spreads the client's flows over the directors by a hash of
//! addresses and ports. Every director schedules with `mh` over the same real servers, so
//! a flow that lands on another director after the router's set changes still reaches
//! its real server. One director is taken away cleanly (xvsd stops: BIRD closes its
//! session), one by cutting it off the network (BFD notices): no established connection
//! breaks either time, and `xvsd drain` withdraws a director without stopping it.
//! How long each withdrawal took to reach the router is printed (docs/BENCHMARKS.md).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use xvs_lab::{Lab, LabBuilder, ServerKind, end, topology};

const XVSD: &str = env!("CARGO_BIN_EXE_xvsd");
const VIP: &str = topology::VIP;
const DIRECTORS: [&str; 3] = ["d1", "d2", "d3"];
/// Long-lived connections kept open through every change.
const FLOWS: usize = 24;

fn lab() -> Lab {
    let mut builder = LabBuilder::new()
        .host("client")
        .host("router")
        .host("d1")
        .host("d2")
        .host("d3")
        .host("web1")
        .host("web2")
        .host("lan")
        .link(
            end("client", "eth0", &["2.2.2.1/24"]),
            end("router", "eth0", &["2.2.2.254/24"]),
        )
        .bridge(
            "lan",
            "br0",
            vec![
                end("router", "eth1", &["10.0.0.254/24"]),
                end("d1", "eth0", &["10.0.0.1/24"]),
                end("d2", "eth0", &["10.0.0.2/24"]),
                end("d3", "eth0", &["10.0.0.3/24"]),
                end("web1", "eth0", &["10.0.0.10/24"]),
                end("web2", "eth0", &["10.0.0.20/24"]),
            ],
        )
        .route("client", &["default", "via", "2.2.2.254"])
        .route("web1", &["default", "via", "10.0.0.254"])
        .route("web2", &["default", "via", "10.0.0.254"])
        .sysctl("router", "net.ipv4.ip_forward", "1")
        // A hash of addresses, protocol and ports (policy 1 would reuse the socket's own
        // hash, which changes on a retransmission timeout: conn-sync-and-ecmp.md).
        .sysctl("router", "net.ipv4.fib_multipath_hash_policy", "3")
        .sysctl("router", "net.ipv4.fib_multipath_hash_fields", "0x0037");
    for director in DIRECTORS {
        builder = builder.sysctl(director, "net.ipv4.ip_forward", "1");
    }
    topology::real_servers_hold_vip(builder).build().unwrap()
}

/// The router's BIRD: eBGP with BFD to each director, routes merged into one multipath
/// route in the kernel.
const ROUTER_BIRD: &str = r#"
log stderr { warning, error, fatal };
router id 10.0.0.254;
protocol device {}
protocol kernel { ipv4 { export all; }; merge paths on; }
protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
template bgp director { local as 65000; hold time 9; bfd on; ipv4 { import all; export none; }; }
protocol bgp d1 from director { neighbor 10.0.0.1 as 65001; }
protocol bgp d2 from director { neighbor 10.0.0.2 as 65001; }
protocol bgp d3 from director { neighbor 10.0.0.3 as 65001; }
"#;

fn director_config(name: &str) -> String {
    let text = format!(
        r#"
[bgp]
local_as = 65001
peer_as = 65000
neighbors = ["10.0.0.254"]
bfd = true

[[service]]
address = "{VIP}:80"
scheduler = "mh"
method = "dr"
[service.check]
interval = 0.5
[[service.real_server]]
address = "10.0.0.10:80"
[[service.real_server]]
address = "10.0.0.20:80"
"#
    );
    let path = std::env::temp_dir().join(format!("xvsd-{}-{name}-bgp.toml", std::process::id()));
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

/// The directors the router sends the VIP to.
fn next_hops(lab: &Lab, vip: &str) -> Vec<String> {
    let family = if vip.contains(':') { "-6" } else { "-4" };
    let routes = lab
        .run_ok("router", &["ip", family, "route", "show", vip])
        .unwrap_or_default();
    let mut hops: Vec<String> = routes
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect();
    hops.sort();
    hops
}

/// Waits until the router's next hops for `vip` are `wanted`; how long that took.
fn until_hops_of(lab: &Lab, vip: &str, wanted: &[&str]) -> Duration {
    let started = Instant::now();
    while next_hops(lab, vip) != wanted {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the router never sent {vip} to {wanted:?} (it sends it to {:?})",
            next_hops(lab, vip)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

/// [`until_hops_of`] the IPv4 VIP.
fn until_hops(lab: &Lab, wanted: &[&str]) -> Duration {
    until_hops_of(lab, VIP, wanted)
}

/// Connections that still echo what they are sent (each is used, whatever the result).
fn alive(streams: &mut [TcpStream], round: &str) -> usize {
    let mut alive = 0;
    for (i, stream) in streams.iter_mut().enumerate() {
        let text = format!("{round} {i}\n");
        let mut back = vec![0u8; text.len()];
        if stream.write_all(text.as_bytes()).is_ok()
            && stream.read_exact(&mut back).is_ok()
            && back == text.as_bytes()
        {
            alive += 1;
        }
    }
    alive
}

/// How many of the client's connections each director holds.
fn spread(lab: &Lab) -> Vec<usize> {
    DIRECTORS
        .iter()
        .map(|d| {
            lab.within(d, || {
                xvs_datapath::Director::find()
                    .ok()
                    .flatten()
                    .and_then(|d| d.connections().ok())
                    .map_or(0, |c| c.iter().filter(|e| e.state == "ESTABLISHED").count())
            })
            .unwrap()
        })
        .collect()
}

#[test]
fn directors_behind_ecmp_lose_no_connection_when_one_leaves() {
    let mut lab = lab();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Echo).unwrap();
    }
    let router_conf =
        std::env::temp_dir().join(format!("xvs-{}-router-bird.conf", std::process::id()));
    std::fs::write(&router_conf, ROUTER_BIRD).unwrap();
    let socket = std::env::temp_dir().join(format!("xvs-{}-router-bird.ctl", std::process::id()));
    lab.spawn(
        "router",
        &[
            "bird",
            "-f",
            "-c",
            router_conf.to_str().unwrap(),
            "-s",
            socket.to_str().unwrap(),
        ],
    )
    .unwrap();
    let configs: Vec<String> = DIRECTORS.iter().map(|d| director_config(d)).collect();
    let mut daemons: Vec<Child> = DIRECTORS
        .iter()
        .zip(&configs)
        .map(|(d, c)| start(&lab, d, c))
        .collect();
    let all = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    let took = until_hops(&lab, &all);
    println!("all three directors announced within {took:?} of their start");

    let vip: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let mut streams: Vec<TcpStream> = lab
        .within("client", || {
            (0..FLOWS)
                .map(|_| {
                    let s = TcpStream::connect_timeout(&vip, Duration::from_secs(5)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
                    s
                })
                .collect()
        })
        .unwrap();
    assert_eq!(alive(&mut streams, "first"), FLOWS);
    let before = spread(&lab);
    println!("connections per director: {before:?}");
    assert!(
        before.iter().filter(|n| **n > 0).count() >= 2,
        "the router spreads flows over the directors: {before:?}"
    );

    // d3 leaves cleanly: xvsd stops, its BIRD closes the session.
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &daemons[2].id().to_string()])
        .status()
        .unwrap();
    until_hops(&lab, &all[..2]);
    println!(
        "clean stop: the router dropped d3 after {:?}",
        stopped.elapsed()
    );
    daemons[2].wait().unwrap();
    assert_eq!(
        alive(&mut streams, "after d3 left"),
        FLOWS,
        "no connection broke"
    );

    // d2 drains: withdrawn, still running; then announced again.
    let drained = lab.run_ok("d2", &[XVSD, "drain"]).unwrap();
    assert!(drained.contains("withdrawn"), "{drained}");
    until_hops(&lab, &["10.0.0.1"]);
    let metrics = lab
        .run_ok("d2", &["curl", "-sf", "http://127.0.0.1:9180/metrics"])
        .unwrap();
    assert!(
        metrics.contains(&format!("xvs_bgp_announced{{vip=\"{VIP}\"}} 0")),
        "{metrics}"
    );
    assert_eq!(
        alive(&mut streams, "d2 drained"),
        FLOWS,
        "no connection broke"
    );
    lab.run_ok("d2", &[XVSD, "drain", "off"]).unwrap();
    until_hops(&lab, &all[..2]);
    assert_eq!(alive(&mut streams, "d2 back"), FLOWS, "no connection broke");

    // d2 is cut off the network (as a frozen machine is): BFD tells the router.
    let cut = Instant::now();
    lab.run_ok("d2", &["ip", "link", "set", "eth0", "down"])
        .unwrap();
    until_hops(&lab, &["10.0.0.1"]);
    println!("cut off: the router dropped d2 after {:?}", cut.elapsed());
    assert_eq!(
        alive(&mut streams, "after d2 was cut off"),
        FLOWS,
        "no connection broke"
    );
    // And new connections are served.
    let mut fresh = lab
        .within("client", || {
            TcpStream::connect_timeout(&vip, Duration::from_secs(5))
        })
        .unwrap()
        .unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(alive(std::slice::from_mut(&mut fresh), "new"), 1);

    // A reload that names one more VIP: BIRD reads its new config in place, its session
    // and the first VIP stay up (the director's services have their quorum, so a VIP of
    // no service of its own is announced).
    let session = || {
        lab.run_ok(
            "router",
            &[
                "birdc",
                "-s",
                socket.to_str().unwrap(),
                "show",
                "protocols",
                "d1",
            ],
        )
        .unwrap()
        .lines()
        .find(|l| l.starts_with("d1 "))
        .unwrap_or_default()
        .to_string()
    };
    let session_before = session();
    let text = std::fs::read_to_string(&configs[0]).unwrap().replace(
        "bfd = true\n",
        "bfd = true\naddresses = [\"1.1.1.254\", \"1.1.1.253\"]\n",
    );
    std::fs::write(&configs[0], text).unwrap();
    let reloaded = lab.run_ok("d1", &[XVSD, "reload"]).unwrap();
    assert!(reloaded.contains("[bgp] reconfigured"), "{reloaded}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lab
        .run_ok("router", &["ip", "-4", "route", "show", "1.1.1.253"])
        .unwrap_or_default()
        .contains("10.0.0.1")
    {
        assert!(Instant::now() < deadline, "never announced 1.1.1.253");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        alive(&mut streams, "after d1's reload"),
        FLOWS,
        "no connection broke"
    );
    // The session stayed up: the router's BIRD shows it in the same state since the
    // same moment as before the reload.
    assert!(session_before.contains("Established"), "{session_before}");
    assert_eq!(session(), session_before, "the session was not restarted");

    for daemon in &mut daemons {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    for path in configs {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(router_conf);
}

/// The same fleet over IPv6: BGP sessions between IPv6 addresses carry the IPv6 VIP (a
/// /128), the router spreads flows by a hash of IPv6 addresses and ports, the real
/// servers hold the VIP for DR; one director stops, one is cut off: no connection breaks.
#[test]
fn an_ipv6_fleet_loses_no_connection_when_directors_leave() {
    const VIP6: &str = "fd00:1::fe";
    let mut builder = LabBuilder::new()
        .host("client")
        .host("router")
        .host("d1")
        .host("d2")
        .host("web1")
        .host("web2")
        .host("lan")
        .link(
            end("client", "eth0", &["fd00:2::1/64"]),
            end("router", "eth0", &["fd00:2::fe/64"]),
        )
        .bridge(
            "lan",
            "br0",
            vec![
                end("router", "eth1", &["fd00:10::fe/64"]),
                end("d1", "eth0", &["fd00:10::1/64"]),
                end("d2", "eth0", &["fd00:10::2/64"]),
                end("web1", "eth0", &["fd00:10::10/64"]),
                end("web2", "eth0", &["fd00:10::20/64"]),
            ],
        )
        .route("client", &["default", "via", "fd00:2::fe"])
        .route("web1", &["default", "via", "fd00:10::fe"])
        .route("web2", &["default", "via", "fd00:10::fe"])
        .sysctl("router", "net.ipv6.conf.all.forwarding", "1")
        .sysctl("router", "net.ipv6.fib_multipath_hash_policy", "3")
        .sysctl("router", "net.ipv6.fib_multipath_hash_fields", "0x0037");
    for director in ["d1", "d2"] {
        builder = builder.sysctl(director, "net.ipv6.conf.all.forwarding", "1");
    }
    for web in ["web1", "web2"] {
        builder = builder.address(web, "lo", &format!("{VIP6}/128"));
    }
    let mut lab = builder.build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Echo).unwrap();
    }
    let router_conf =
        std::env::temp_dir().join(format!("xvs-{}-router6-bird.conf", std::process::id()));
    std::fs::write(
        &router_conf,
        r#"
log stderr { warning, error, fatal };
router id 10.0.0.254;
protocol device {}
protocol kernel { ipv6 { export all; }; merge paths on; }
protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
template bgp director { local as 65000; hold time 9; bfd on; ipv6 { import all; export none; }; }
protocol bgp d1 from director { neighbor fd00:10::1 as 65001; }
protocol bgp d2 from director { neighbor fd00:10::2 as 65001; }
"#,
    )
    .unwrap();
    let socket = std::env::temp_dir().join(format!("xvs-{}-router6-bird.ctl", std::process::id()));
    lab.spawn(
        "router",
        &[
            "bird",
            "-f",
            "-c",
            router_conf.to_str().unwrap(),
            "-s",
            socket.to_str().unwrap(),
        ],
    )
    .unwrap();
    let configs: Vec<String> = ["d1", "d2"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let text = format!(
                r#"
[bgp]
local_as = 65001
peer_as = 65000
neighbors = ["fd00:10::fe"]
router_id = "10.0.0.{}"
bfd = true

[[service]]
address = "[{VIP6}]:80"
scheduler = "mh"
method = "dr"
[service.check]
interval = 0.5
[[service.real_server]]
address = "[fd00:10::10]:80"
[[service.real_server]]
address = "[fd00:10::20]:80"
"#,
                i + 1
            );
            let path =
                std::env::temp_dir().join(format!("xvsd-{}-{name}-bgp6.toml", std::process::id()));
            std::fs::write(&path, text).unwrap();
            path.to_string_lossy().into_owned()
        })
        .collect();
    let mut daemons: Vec<Child> = ["d1", "d2"]
        .iter()
        .zip(&configs)
        .map(|(d, c)| start(&lab, d, c))
        .collect();
    let until6 = |wanted: &[&str]| until_hops_of(&lab, VIP6, wanted);
    until6(&["fd00:10::1", "fd00:10::2"]);
    let vip: SocketAddr = format!("[{VIP6}]:80").parse().unwrap();
    let mut streams: Vec<TcpStream> = lab
        .within("client", || {
            (0..12)
                .map(|_| {
                    let s = TcpStream::connect_timeout(&vip, Duration::from_secs(5)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
                    s
                })
                .collect()
        })
        .unwrap();
    assert_eq!(alive(&mut streams, "first"), 12);
    let on_d2 = lab
        .within("d2", || {
            xvs_datapath::Director::find()
                .ok()
                .flatten()
                .and_then(|d| d.connections().ok())
                .map_or(0, |c| c.len())
        })
        .unwrap();
    assert!(
        (1..12).contains(&on_d2),
        "the router spreads the flows over both directors: {on_d2} on d2"
    );

    Command::new("kill")
        .args(["-TERM", &daemons[1].id().to_string()])
        .status()
        .unwrap();
    let took = until6(&["fd00:10::1"]);
    println!("IPv6, clean stop: the router dropped d2 after {took:?}");
    daemons[1].wait().unwrap();
    assert_eq!(
        alive(&mut streams, "after d2 left"),
        12,
        "no connection broke"
    );

    // d2 back, then d1 cut off.
    daemons[1] = start(&lab, "d2", &configs[1]);
    until6(&["fd00:10::1", "fd00:10::2"]);
    assert_eq!(alive(&mut streams, "d2 back"), 12, "no connection broke");
    lab.run_ok("d1", &["ip", "link", "set", "eth0", "down"])
        .unwrap();
    let took = until6(&["fd00:10::2"]);
    println!("IPv6, cut off: the router dropped d1 after {took:?}");
    assert_eq!(
        alive(&mut streams, "after d1 was cut off"),
        12,
        "no connection broke"
    );
    for daemon in &mut daemons {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    for path in configs {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(router_conf);
}

/// A director peering with two routers of different ASes (as the two top-of-rack
/// switches of an eBGP fabric often are): `neighbors = ["10.0.0.254", "10.0.0.253 as
/// 65002"]`; both routers learn the VIP from it, and lose it when it stops.
#[test]
fn a_director_announces_to_routers_of_two_ases() {
    let mut lab = LabBuilder::new()
        .host("r1")
        .host("r2")
        .host("d1")
        .host("web1")
        .host("lan")
        .bridge(
            "lan",
            "br0",
            vec![
                end("r1", "eth0", &["10.0.0.254/24"]),
                end("r2", "eth0", &["10.0.0.253/24"]),
                end("d1", "eth0", &["10.0.0.1/24"]),
                end("web1", "eth0", &["10.0.0.10/24"]),
            ],
        )
        .build()
        .unwrap();
    lab.serve("web1", 80, ServerKind::Echo).unwrap();
    let mut files = Vec::new();
    for (router, address, own_as) in [("r1", "10.0.0.254", 65000), ("r2", "10.0.0.253", 65002)] {
        let conf = std::env::temp_dir().join(format!(
            "xvs-{}-{router}-two-ases-bird.conf",
            std::process::id()
        ));
        std::fs::write(
            &conf,
            format!(
                "log stderr {{ warning, error, fatal }};\nrouter id {address};\nprotocol device {{}}\n\
                 protocol kernel {{ ipv4 {{ export all; }}; }}\n\
                 protocol bgp d1 {{ local as {own_as}; neighbor 10.0.0.1 as 65001; hold time 9; \
                 ipv4 {{ import all; export none; }}; }}\n"
            ),
        )
        .unwrap();
        let socket = std::env::temp_dir().join(format!(
            "xvs-{}-{router}-two-ases-bird.ctl",
            std::process::id()
        ));
        let argv = [
            "bird",
            "-f",
            "-c",
            conf.to_str().unwrap(),
            "-s",
            socket.to_str().unwrap(),
        ];
        lab.spawn(router, &argv).unwrap();
        files.push(conf);
        files.push(socket);
    }
    let config = std::env::temp_dir().join(format!("xvsd-{}-two-ases.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "[bgp]\nlocal_as = 65001\npeer_as = 65000\nneighbors = [\"10.0.0.254\", \"10.0.0.253 as 65002\"]\n\n\
             [[service]]\naddress = \"{VIP}:80\"\nmethod = \"dr\"\n[service.check]\ninterval = 0.5\n\
             [[service.real_server]]\naddress = \"10.0.0.10:80\"\n"
        ),
    )
    .unwrap();
    let mut d1 = start(&lab, "d1", config.to_str().unwrap());
    let learned = |router: &str| {
        lab.run_ok(router, &["ip", "-4", "route", "show", VIP])
            .unwrap_or_default()
            .contains("via 10.0.0.1")
    };
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "never {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until("both routers learn the VIP from d1", &|| {
        learned("r1") && learned("r2")
    });
    Command::new("kill")
        .args(["-TERM", &d1.id().to_string()])
        .status()
        .unwrap();
    d1.wait().unwrap();
    until("both routers forget it", &|| {
        !learned("r1") && !learned("r2")
    });
    let _ = std::fs::remove_file(&config);
    for file in files {
        let _ = std::fs::remove_file(file);
    }
}
