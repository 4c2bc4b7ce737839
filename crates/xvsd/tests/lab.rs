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
