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
