//! End-to-end: the director program attached by `xvsd` in the seed's NAT lab sees the
//! client's traffic cross the director, passes it untouched, and its state stays in the
//! director's namespace.

use xvs_lab::{Lab, ServerKind, topology};

const XVSD: &str = env!("CARGO_BIN_EXE_xvsd");

fn status(lab: &Lab, host: &str) -> String {
    lab.run_ok(host, &[XVSD, "status"]).unwrap()
}

fn counter(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

#[test]
fn frames_cross_the_director_program_between_two_namespaces() {
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    assert!(status(&lab, "director").contains("no director"));

    lab.run_ok("director", &[XVSD, "attach", "eth0", "eth1"])
        .unwrap();
    let before = status(&lab, "director");
    assert!(before.contains("attached to lo eth0 eth1"), "{before}");

    // Real client, real server, real TCP through the director's forwarding.
    let page = lab
        .run_ok(
            "client",
            &["curl", "-s", "--max-time", "10", "http://192.168.1.10/"],
        )
        .unwrap();
    assert_eq!(page, "web1\n");

    let after = status(&lab, "director");
    // A TCP exchange is at least 3 frames each way, each seen on the way in (eth0 from
    // the client, eth1 from web1).
    let seen = counter(&after, "rx_frames") - counter(&before, "rx_frames");
    assert!(seen >= 6, "only {seen} frames counted:\n{after}");
    assert!(counter(&after, "rx_bytes") > counter(&before, "rx_bytes"));

    // Other namespaces of the lab have no director; destroy removes it everywhere.
    assert!(status(&lab, "client").contains("no director"));
    lab.run_ok("director", &[XVSD, "destroy"]).unwrap();
    assert!(status(&lab, "director").contains("no director"));
    let links = lab.run_ok("director", &["ip", "link", "show"]).unwrap();
    assert!(!links.contains("xdp"), "{links}");
}

/// `xvsd upgrade` under traffic, in the seed's NAT lab: a TCP connection open across the
/// upgrade carries on (its NAT entry is in the kept maps), the table and the counters are
/// the same afterwards, and the program on every interface is the new one.
#[test]
fn an_upgrade_keeps_open_connections_the_table_and_the_counters() {
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 7, ServerKind::Echo).unwrap();
    // Configured as `xvsadm -R` would (through the same edit transaction).
    let table = || {
        lab.within("director", || {
            let director = xvs_datapath::Director::find().unwrap().unwrap();
            director.load().unwrap().table
        })
        .unwrap()
    };
    lab.within("director", || {
        xvs_datapath::Director::change(xvs_datapath::ChangeOptions::default(), |t| {
            xvs_core::restore::restore(
                "-A -t 1.1.1.254:7 -s rr\n-a -t 1.1.1.254:7 -r 192.168.1.10:7 -m",
                t,
                &xvs_core::text::NoNames,
                "xvsadm",
            )
        })
        .unwrap()
    })
    .unwrap();
    let before_table = table();
    // A connection that sends, waits across the upgrade, and sends again.
    let client = lab
        .command(
            "client",
            &[
                "sh",
                "-c",
                "(printf first; sleep 2; printf second) | socat -t 3 - TCP:1.1.1.254:7",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let before = status(&lab, "director");
    let report = lab.run_ok("director", &[XVSD, "upgrade"]).unwrap();
    assert!(report.contains("replaced by"), "{report}");
    let echoed = client.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), "firstsecond");
    let after = status(&lab, "director");
    let id = |s: &str| s.lines().next().unwrap().to_string();
    assert_ne!(id(&before), id(&after), "a new program");
    assert!(after.contains("attached to lo eth0 eth1"), "{after}");
    assert_eq!(
        counter(&after, "new_connections"),
        counter(&before, "new_connections"),
        "the counters were kept"
    );
    assert!(counter(&after, "forwarded") > counter(&before, "forwarded"));
    let after_table = table();
    assert_eq!(after_table.services.len(), before_table.services.len());
    assert_eq!(
        xvs_core::listing::save(&after_table, true, &xvs_core::text::NoNames),
        xvs_core::listing::save(&before_table, true, &xvs_core::text::NoNames)
    );
}

/// The director programs of earlier builds, their debug sections stripped: what a director
/// running that build has on its interfaces. 25: before connection sync; 26: before
/// FULLNAT; 27: before the PROXY protocol.
static LAYOUT_25: &[u8] = include_bytes!("fixtures/director-layout-25.o");
static LAYOUT_26: &[u8] = include_bytes!("fixtures/director-layout-26.o");
static LAYOUT_27: &[u8] = include_bytes!("fixtures/director-layout-27.o");

/// `xvsd upgrade` from layout 25 (two migrations back: 26 made the counts map anew, its
/// content copied and what the old program counted meanwhile added; 27 the scratch space).
#[test]
fn an_upgrade_from_layout_25_keeps_connections_table_counters_and_counts() {
    upgrade_from_older_layout(LAYOUT_25, 25);
}

/// `xvsd upgrade` from layout 26 (27 adds the FULLNAT maps and grows the scratch space).
#[test]
fn an_upgrade_from_layout_26_keeps_connections_table_counters_and_counts() {
    upgrade_from_older_layout(LAYOUT_26, 26);
}

/// `xvsd upgrade` from layout 27 (the previous one: 28, the PROXY protocol, grows the
/// scratch space).
#[test]
fn an_upgrade_from_layout_27_keeps_connections_table_counters_and_counts() {
    upgrade_from_older_layout(LAYOUT_27, 27);
}

/// `xvsd upgrade` from an older build's director (`object`, of map layout `layout`), in
/// the seed's NAT lab under traffic: a TCP connection open across the upgrade carries on,
/// the table and counters are kept, the connection counts too, and this build's tools
/// read the director afterwards.
fn upgrade_from_older_layout(object: &[u8], layout: u64) {
    use xvs_datapath::Director;
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 7, ServerKind::Echo).unwrap();
    lab.within("director", || {
        // The older director, its table written as its xvsadm wrote it: the maps it has
        // have this layout's formats, so this build's writer writes the same bytes (it is
        // given the director as this layout, then the layout is set back).
        Director::create_from_object(object, xvs_common::LAYOUT_VERSION).unwrap();
        Director::change(xvs_datapath::ChangeOptions::default(), |t| {
            xvs_core::restore::restore(
                "-A -t 1.1.1.254:7 -s rr\n-a -t 1.1.1.254:7 -r 192.168.1.10:7 -m",
                t,
                &xvs_core::text::NoNames,
                "xvsadm",
            )
        })
        .unwrap();
        let mut director = Director::find().unwrap().unwrap();
        director
            .set_meta(xvs_common::meta::LAYOUT_VERSION, layout)
            .unwrap();
    })
    .unwrap();
    let refused = lab.run("director", &[XVSD, "status"]).unwrap();
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!("layout {layout}")),
        "this build does not drive an older layout's director"
    );
    let client = lab
        .command(
            "client",
            &[
                "sh",
                "-c",
                "(printf first; sleep 2; printf second) | socat -t 3 - TCP:1.1.1.254:7",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let report = lab.run_ok("director", &[XVSD, "upgrade"]).unwrap();
    assert!(
        report.contains(&format!(
            "(layout {layout} → {})",
            xvs_common::LAYOUT_VERSION
        )),
        "{report}"
    );
    let echoed = client.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), "firstsecond");
    let after = status(&lab, "director");
    assert!(after.contains("attached to lo eth0 eth1"), "{after}");
    assert_eq!(
        counter(&after, "new_connections"),
        1,
        "the counters were kept"
    );
    let conns = lab
        .within("director", || {
            let table = Director::find().unwrap().unwrap().load().unwrap().table;
            table.services[0].dests[0].conns
        })
        .unwrap();
    // The connection, made under the old program and closed under the new, is counted
    // once: as inactive (closing), not active. Counts not carried over would have gone
    // below zero.
    assert_eq!((conns.active, conns.inactive), (0, 1), "{conns:?}");
}

/// IPVS's `expire_nodest_conn` set by `xvsd sysctl`, with real TCP in the seed's NAT lab:
/// at 0 a removed real server's open connection is kept and its client's segments are
/// dropped (counted as `dest_gone`), so the client sees no reset and the entry stays;
/// set back to 1, the client's next segment ends it with a reset from the director's
/// stack. A command line with one bad word (a setting xvs has fixed, asked for
/// another value) sets nothing.
#[test]
fn expire_nodest_conn_set_by_xvsd_sysctl_keeps_or_ends_a_removed_servers_connection() {
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 7, ServerKind::Echo).unwrap();
    let lab = lab;
    let sysctl = |words: &[&str]| {
        let argv: Vec<&str> = [XVSD, "sysctl"].iter().chain(words).copied().collect();
        lab.run_ok("director", &argv).unwrap()
    };
    let defaults = sysctl(&[]);
    for line in [
        "net.ipv4.vs.conn_reuse_mode = 1\n",
        "net.ipv4.vs.conntrack = 0\n",
        "net.ipv4.vs.expire_nodest_conn = 1\n",
        "net.ipv4.vs.expire_quiescent_template = 0\n",
        "net.ipv4.vs.sloppy_tcp = 0\n",
    ] {
        assert!(
            defaults.contains(line),
            "a director's defaults, shown before there is one: {defaults}"
        );
    }
    let change = |rules: &str| {
        lab.within("director", || {
            xvs_datapath::Director::change(xvs_datapath::ChangeOptions::default(), |t| {
                xvs_core::restore::restore(rules, t, &xvs_core::text::NoNames, "xvsadm")
            })
            .unwrap()
        })
        .unwrap()
    };
    change("-A -t 1.1.1.254:7 -s rr\n-a -t 1.1.1.254:7 -r 192.168.1.10:7 -m");
    assert_eq!(
        sysctl(&["-w", "net.ipv4.vs.expire_nodest_conn=0"]),
        "net.ipv4.vs.expire_nodest_conn = 0\n"
    );
    let bad = lab
        .run(
            "director",
            &[XVSD, "sysctl", "expire_quiescent_template=1", "conntrack=1"],
        )
        .unwrap();
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("net.ipv4.vs.conntrack is 0 in xvs, which cannot be changed"),
        "{said}"
    );
    assert_eq!(
        sysctl(&["expire_quiescent_template"]),
        "net.ipv4.vs.expire_quiescent_template = 0\n",
        "nothing set"
    );
    // A sysctl.conf written for IPVS: its net.ipv4.vs lines set, the others left to
    // sysctl(8); one wrong line sets nothing.
    let conf = std::env::temp_dir().join(format!("xvs-{}-ipvs.conf", std::process::id()));
    let conf_text = "# IPVS\nnet.ipv4.ip_forward = 1\nnet.ipv4.vs.conn_reuse_mode = 0\n\
                     -net.ipv4.vs.conntrack = 0\nnet.ipv4.vs.sloppy_tcp=1\n";
    std::fs::write(&conf, conf_text.replace("sloppy_tcp=1", "sloppy_tcp=2")).unwrap();
    let conf_path = conf.to_string_lossy().into_owned();
    assert!(
        !lab.run("director", &[XVSD, "sysctl", "-p", &conf_path])
            .unwrap()
            .status
            .success()
    );
    assert_eq!(
        sysctl(&["conn_reuse_mode"]),
        "net.ipv4.vs.conn_reuse_mode = 1\n",
        "nothing set"
    );
    std::fs::write(&conf, conf_text).unwrap();
    assert_eq!(
        sysctl(&["-p", &conf_path]),
        "net.ipv4.vs.conn_reuse_mode = 0\nnet.ipv4.vs.conntrack = 0\nnet.ipv4.vs.sloppy_tcp = 1\n"
    );
    let _ = std::fs::remove_file(&conf);
    assert_eq!(
        sysctl(&["conn_reuse_mode", "sloppy_tcp"]),
        "net.ipv4.vs.conn_reuse_mode = 0\nnet.ipv4.vs.sloppy_tcp = 1\n"
    );
    sysctl(&["conn_reuse_mode=1", "sloppy_tcp=0"]);

    // A client that writes a byte every 200 ms on one connection until a write fails.
    let mut client = lab
        .command(
            "client",
            &[
                "bash",
                "-c",
                "trap '' PIPE; exec 3<>/dev/tcp/1.1.1.254/7 || exit 1; \
                 while printf x >&3 2>/dev/null; do sleep 0.2; done; echo ended",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let open = || {
        lab.within("director", || {
            let director = xvs_datapath::Director::find().unwrap().unwrap();
            director
                .connections()
                .unwrap()
                .iter()
                .filter(|c| c.virtual_.1 == 7 && c.state == "ESTABLISHED")
                .count()
        })
        .unwrap()
    };
    // Bounds on a hang, not speed goals.
    let until = |what: &str, seconds: u64, done: &mut dyn FnMut() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "waited for {what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    until("the connection", 10, &mut || open() == 1);
    let gone = counter(&status(&lab, "director"), "dest_gone");
    change("-d -t 1.1.1.254:7 -r 192.168.1.10:7");
    until("dropped segments", 30, &mut || {
        counter(&status(&lab, "director"), "dest_gone") >= gone + 2
    });
    assert!(client.try_wait().unwrap().is_none(), "no reset reached it");
    assert_eq!(open(), 1, "the entry is kept");

    sysctl(&["expire_nodest_conn=1"]);
    until("the reset", 60, &mut || {
        client.try_wait().unwrap().is_some()
    });
    let mut said = String::new();
    std::io::Read::read_to_string(&mut client.stdout.take().unwrap(), &mut said).unwrap();
    assert_eq!(
        said, "ended\n",
        "its write failed: the connection was reset"
    );
    assert_eq!(open(), 0, "forgotten");
}
