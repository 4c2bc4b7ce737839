//! fwmark services (`-f`) with the marks operators set today: iptables' and nftables'
//! mangle rules in prerouting, as ipvsadm's man page shows. Real namespaces, real servers,
//! real clients; the director configured as an operator types it.

mod common;

use common::{get, xvsadm};
use xvs_lab::{Lab, ServerKind, topology};

#[track_caller]
fn director(lab: &Lab, line: &str) -> String {
    let argv: Vec<&str> = line.split_whitespace().collect();
    lab.run_ok("director", &argv)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// Every real server answers on ports 80 and 8080 with its own name.
fn serve_two_ports(lab: &mut Lab, names: [&str; 2]) {
    for (host, name) in ["web1", "web2"].into_iter().zip(names) {
        for port in [80, 8080] {
            lab.serve(host, port, ServerKind::Http(name.into()))
                .unwrap();
        }
    }
}

/// The director's routing rules, as `ip rule` prints them.
fn rules(lab: &Lab) -> String {
    director(lab, "ip rule show")
}

#[test]
fn a_fwmark_service_balances_what_iptables_marks_through_nat() {
    let mut lab = topology::nat().build().unwrap();
    serve_two_ports(&mut lab, ["192.168.1.10", "192.168.1.20"]);
    let rules_before = rules(&lab);
    // ipvsadm(8)'s example: one mark for two ports of the VIP.
    director(
        &lab,
        "iptables -t mangle -A PREROUTING -d 1.1.1.254/32 -p tcp -m multiport --dports 80,8080 -j MARK --set-mark 1",
    );
    xvsadm(&lab, "-A -f 1 -s rr");
    xvsadm(&lab, "-a -f 1 -r 192.168.1.10:0 -m");
    xvsadm(&lab, "-a -f 1 -r 192.168.1.20:0 -m");
    let pages: Vec<String> = ["80", "8080", "80", "8080"]
        .iter()
        .map(|port| get(&lab, &format!("http://1.1.1.254:{port}/")))
        .collect();
    assert_eq!(
        pages,
        [
            "192.168.1.20\n",
            "192.168.1.10\n",
            "192.168.1.20\n",
            "192.168.1.10\n"
        ],
        "rr over both real servers, whatever the port"
    );
    let stats = xvsadm(&lab, "-L -n --stats");
    let service = stats
        .lines()
        .find(|l| l.starts_with("FWM  1"))
        .unwrap_or_else(|| panic!("no FWM 1 in\n{stats}"));
    let numbers: Vec<u64> = service
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // FWM, 1, then connections, packets in, packets out.
    assert_eq!(numbers[1], 4, "four connections counted:\n{stats}");
    assert!(numbers[3] > 0, "NAT replies counted too:\n{stats}");
    // Each connection is claimed at eth0 after its first packet: a long download, whose
    // every packet after the SYN came through XDP on eth0 and eth1, arrives whole.
    let body = lab
        .run_ok(
            "client",
            &[
                "sh",
                "-c",
                "curl -s --max-time 20 http://1.1.1.254:8080/bytes/3000000 | wc -c",
            ],
        )
        .unwrap();
    assert_eq!(body.trim(), "3000000");
    // A client the director has no neighbour entry for (it never sent ARP from this
    // address): the replies go back the way its SYN came in.
    lab.run_ok(
        "client",
        &["ip", "addr", "add", "1.1.1.77/24", "dev", "eth0"],
    )
    .unwrap();
    let page = lab
        .run_ok(
            "client",
            &[
                "curl",
                "-s",
                "--max-time",
                "5",
                "--interface",
                "1.1.1.77",
                "http://1.1.1.254/",
            ],
        )
        .unwrap();
    assert!(page.starts_with("192.168.1."), "{page}");
    let connections = xvsadm(&lab, "-L -n -c");
    assert!(
        connections.contains("1.1.1.254:8080") && connections.contains("1.1.1.254:80 "),
        "connections listed by their own address and port:\n{connections}"
    );
    // An address service of the same VIP and port comes first, as in IPVS.
    lab.serve("web1", 8081, ServerKind::Http("address".into()))
        .unwrap();
    director(
        &lab,
        "iptables -t mangle -A PREROUTING -d 1.1.1.254/32 -p tcp --dport 8081 -j MARK --set-mark 1",
    );
    xvsadm(&lab, "-A -t 1.1.1.254:8081 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:8081 -r 192.168.1.10:8081 -m");
    assert_eq!(get(&lab, "http://1.1.1.254:8081/"), "address\n");

    // The loop goes with the last fwmark service, and the rules are as they were.
    assert!(
        rules(&lab).contains("fwmark 0x1 lookup 30838"),
        "{}",
        rules(&lab)
    );
    xvsadm(&lab, "-D -f 1");
    assert_eq!(rules(&lab), rules_before);
    assert!(
        lab.run_ok("director", &["ip", "link", "show", "xvsfw0"])
            .is_err()
    );
    // Unserved, the marked packets are the director's own again: nobody listens there.
    assert!(
        lab.run_ok(
            "client",
            &["curl", "-s", "--max-time", "3", "http://1.1.1.254/"]
        )
        .is_err()
    );
}

#[test]
fn a_persistent_fwmark_service_keeps_a_client_on_one_server_for_every_port() {
    let mut lab = topology::dr().build().unwrap();
    serve_two_ports(&mut lab, ["web1", "web2"]);
    // nftables, the other way operators mark.
    director(&lab, "nft add table ip mangle");
    director(
        &lab,
        "nft add chain ip mangle prerouting { type filter hook prerouting priority mangle ; }",
    );
    director(
        &lab,
        "nft add rule ip mangle prerouting ip daddr 1.1.1.254 tcp dport { 80, 8080 } meta mark set 7",
    );
    xvsadm(&lab, "-A -f 7 -s rr -p 60");
    xvsadm(&lab, "-a -f 7 -r 1.1.1.10 -g");
    xvsadm(&lab, "-a -f 7 -r 1.1.1.20 -g");
    let pages: Vec<String> = ["80", "8080", "80", "8080", "8080"]
        .iter()
        .map(|port| get(&lab, &format!("http://1.1.1.254:{port}/")))
        .collect();
    assert!(
        pages.iter().all(|page| *page == pages[0]),
        "one real server for the client on both ports: {pages:?}"
    );
    let connections = xvsadm(&lab, "-L -n -c");
    // IPVS's template of a fwmark service: protocol IP, the mark as its virtual address.
    let templates: Vec<&str> = connections
        .lines()
        .filter(|l| l.starts_with("IP "))
        .collect();
    assert_eq!(templates.len(), 1, "one template:\n{connections}");
    assert!(
        templates[0].contains("1.1.1.1:0") && templates[0].contains("0.0.0.7:0"),
        "{connections}"
    );
    let listing = xvsadm(&lab, "-L -n --persistent-conn");
    assert!(listing.contains("FWM  7 rr persistent 60"), "{listing}");
}

/// An IPv6 page through the client (`curl -g`: the brackets are the address's).
fn get6(lab: &Lab, url: &str) -> String {
    lab.run_ok("client", &["curl", "-g", "-s", "--max-time", "5", url])
        .unwrap_or_else(|e| panic!("curl {url}: {e}"))
}

/// IPv6 in the dual-stack NAT lab, with real curl: an address service first, then a fwmark
/// service of ip6tables' mark (`-f 2 -6`), balanced over both real servers whatever the
/// port, a long download whole; the IPv6 rule and the loop go with the last fwmark service.
#[test]
fn an_ipv6_fwmark_service_balances_what_ip6tables_marks_through_nat() {
    let mut lab = topology::nat_dual_stack().build().unwrap();
    serve_two_ports(&mut lab, ["web1", "web2"]);
    xvsadm(&lab, "-A -t [fd00:1::fe]:80 -s rr");
    xvsadm(&lab, "-a -t [fd00:1::fe]:80 -r [fd00:2::10]:80 -m");
    xvsadm(&lab, "-a -t [fd00:1::fe]:80 -r [fd00:2::20]:80 -m");
    let mut pages: Vec<String> = (0..2).map(|_| get6(&lab, "http://[fd00:1::fe]/")).collect();
    pages.sort();
    assert_eq!(pages, ["web1\n", "web2\n"], "an IPv6 address service, NAT");
    xvsadm(&lab, "-D -t [fd00:1::fe]:80");

    let rules_before = director(&lab, "ip -6 rule show");
    director(
        &lab,
        "ip6tables -t mangle -A PREROUTING -d fd00:1::fe/128 -p tcp -m multiport --dports 80,8080 -j MARK --set-mark 2",
    );
    xvsadm(&lab, "-A -f 2 -6 -s rr");
    xvsadm(&lab, "-a -f 2 -6 -r [fd00:2::10]:0 -m");
    xvsadm(&lab, "-a -f 2 -6 -r [fd00:2::20]:0 -m");
    let pages: Vec<String> = ["80", "8080", "80", "8080"]
        .iter()
        .map(|port| get6(&lab, &format!("http://[fd00:1::fe]:{port}/")))
        .collect();
    assert_ne!(pages[0], pages[1], "rr whatever the port: {pages:?}");
    assert_eq!((&pages[0], &pages[1]), (&pages[2], &pages[3]), "{pages:?}");
    let stats = xvsadm(&lab, "-L -n --stats");
    let service = stats
        .lines()
        .find(|l| l.starts_with("FWM  2 IPv6"))
        .unwrap_or_else(|| panic!("no FWM 2 IPv6 in\n{stats}"));
    let numbers: Vec<u64> = service
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers[1], 4, "four connections counted:\n{stats}");
    let body = lab
        .run_ok(
            "client",
            &[
                "sh",
                "-c",
                "curl -g -s --max-time 20 'http://[fd00:1::fe]:8080/bytes/3000000' | wc -c",
            ],
        )
        .unwrap();
    assert_eq!(body.trim(), "3000000");
    assert!(
        director(&lab, "ip -6 rule show").contains("fwmark 0x2 lookup 30838"),
        "{}",
        director(&lab, "ip -6 rule show")
    );

    xvsadm(&lab, "-D -f 2 -6");
    assert_eq!(director(&lab, "ip -6 rule show"), rules_before);
    assert!(
        lab.run_ok("director", &["ip", "link", "show", "xvsfw0"])
            .is_err()
    );
}
