//! FULLNAT with real clients and servers: the real servers sit in another subnet, behind
//! a router with no way back to the client (NAT fails there), and see the director's
//! local address as their client. TCP and UDP, IPv4 and IPv6, a 1 MB download, the
//! listings an operator reads, and a save that restores.

mod common;

use std::net::IpAddr;

use common::{get, xvsadm};
use xvs_lab::{Lab, ServerKind, topology};

/// A TCP server on `port` of `host`, IPv4 and IPv6, that answers each connection with
/// the address it came from.
fn serve_peer_address(lab: &mut Lab, host: &str, port: u16) {
    for listen in [
        format!("TCP4-LISTEN:{port},fork,reuseaddr"),
        format!("TCP6-LISTEN:{port},fork,reuseaddr,ipv6only=1"),
    ] {
        lab.spawn(host, &["socat", &listen, "SYSTEM:echo $SOCAT_PEERADDR"])
            .unwrap();
    }
}

/// The address the server at `address` (socat's form) says the client came from; None if
/// nothing came.
fn ask(lab: &Lab, address: &str) -> Option<IpAddr> {
    let out = lab
        .run("client", &["socat", "-T", "3", "-", address])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

fn ip(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

#[test]
fn fullnat_reaches_real_servers_that_nat_cannot() {
    let mut lab = topology::fullnat().build().unwrap();
    serve_peer_address(&mut lab, "web1", 81);
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    lab.reach("client", "1.1.1.254").unwrap();
    lab.reach("director", "192.168.5.10").unwrap();
    lab.reach("director", "192.168.5.20").unwrap();

    // NAT: the real server's answer goes to its router, which cannot reach the client.
    xvsadm(&lab, "-A -t 1.1.1.254:81 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:81 -r 192.168.5.10:81 -m");
    let nat = ask(&lab, "TCP:1.1.1.254:81,connect-timeout=2");
    assert_eq!(nat, None, "NAT cannot work behind this router");

    // FULLNAT: from the local address, the answer comes back to the director.
    xvsadm(&lab, "-e -t 1.1.1.254:81 -r 192.168.5.10:81 -b");
    xvsadm(&lab, "-P -t 1.1.1.254:81 -z 10.0.0.253 -F eth1");
    let seen = ask(&lab, "TCP:1.1.1.254:81,connect-timeout=2");
    assert_eq!(seen, ip("10.0.0.253"), "the real server's client");

    // HTTP over two real servers and two local addresses, and a 1 MB download intact.
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.5.10:80 -b");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.5.20:80 -b");
    xvsadm(&lab, "-P -t 1.1.1.254:80 -z 10.0.0.253");
    xvsadm(&lab, "-P -t 1.1.1.254:80 -z 10.0.0.252");
    let pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    assert_eq!(pages, ["web2\n", "web1\n", "web2\n", "web1\n"]);
    let size = lab
        .run_ok(
            "client",
            &[
                "sh",
                "-c",
                "curl -s --max-time 10 http://1.1.1.254/bytes/1000000 | sha256sum",
            ],
        )
        .unwrap();
    let expected = {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&xvs_lab::pattern(1_000_000))
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    assert_eq!(size, expected, "the 1 MB download arrived intact");

    // UDP.
    lab.serve("web2", 53, ServerKind::UdpName("web2".into()))
        .unwrap();
    xvsadm(&lab, "-A -u 1.1.1.254:53 -s rr");
    xvsadm(&lab, "-a -u 1.1.1.254:53 -r 192.168.5.20:53 -b");
    xvsadm(&lab, "-P -u 1.1.1.254:53 -z 10.0.0.252");
    let answer = lab
        .run_ok(
            "client",
            &["sh", "-c", "echo question | socat -T 2 - UDP:1.1.1.254:53"],
        )
        .unwrap();
    assert_eq!(answer.trim(), "web2");

    // IPv6.
    xvsadm(&lab, "-A -t [fd00:1::fe]:81 -s rr");
    xvsadm(&lab, "-a -t [fd00:1::fe]:81 -r [fd00:6::10]:81 -b");
    xvsadm(&lab, "-P -t [fd00:1::fe]:81 -z fd00:5::fd -F eth1");
    let seen = ask(&lab, "TCP6:[fd00:1::fe]:81,connect-timeout=2");
    assert_eq!(seen, ip("fd00:5::fd"), "the real server's client");

    // What the operator reads.
    let listing = xvsadm(&lab, "-L -n");
    assert!(
        listing.contains("  -> 192.168.5.10:80              FullNat 1"),
        "{listing}"
    );
    let connections = xvsadm(&lab, "-L -n -c");
    assert!(
        connections.lines().nth(1).unwrap().contains(" local "),
        "{connections}"
    );
    assert!(connections.contains(" 10.0.0.252:"), "{connections}");
    // Each local address with its connections: the five above (four pages and the
    // download) between them. (Which address a connection takes is a hash of the client's
    // port, so one address may have had them all: a test that wanted one on each failed
    // one run in sixteen.)
    let laddrs = xvsadm(&lab, "-G -t 1.1.1.254:80");
    let conns_of = |laddr: &str| -> u64 {
        let line = laddrs
            .lines()
            .find(|l| l.contains(laddr))
            .unwrap_or_else(|| panic!("{laddrs}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert!(
        conns_of("10.0.0.253") + conns_of("10.0.0.252") >= 5,
        "{laddrs}"
    );
    // The save restores the same table, local addresses included.
    let saved = xvsadm(&lab, "-S -n");
    assert!(
        saved.contains("-P -t 1.1.1.254:80 -z 10.0.0.253\n"),
        "{saved}"
    );
    assert!(saved.contains("-r 192.168.5.10:80 -b -w 1"), "{saved}");
    xvsadm(&lab, "-C");
    lab.feed(
        lab.command("director", &[env!("CARGO_BIN_EXE_xvsadm"), "-R"]),
        &saved,
    )
    .unwrap();
    assert_eq!(xvsadm(&lab, "-S -n"), saved);
    let seen = ask(&lab, "TCP:1.1.1.254:81,connect-timeout=2");
    assert_eq!(seen, ip("10.0.0.253"), "after the restore");
}
