//! End-to-end load balancing in the seed's labs: real clients (curl, socat), real servers,
//! the director configured with xvsadm exactly as an operator types it, results checked
//! from the client's side and from `xvsadm -L -n --stats`.

mod common;

use std::time::{Duration, Instant};

use common::{XVSADM, get, xvsadm};
use xvs_lab::{Lab, ServerKind, topology};

fn serve_names(lab: &mut Lab) {
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
}

/// The numbers of one line of `-L -n --stats` (service or real server).
fn stats_of(listing: &str, name: &str) -> Vec<u64> {
    let line = listing
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == name))
        .unwrap_or_else(|| panic!("no {name} in\n{listing}"));
    line.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn experiment_two_direct_routing_round_robin() {
    let mut lab = topology::dr().build().unwrap();
    serve_names(&mut lab);
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.10 -g");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.20 -g");
    let pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    // IPVS's list has the newest server first: rr starts there.
    assert_eq!(pages, ["web2\n", "web1\n", "web2\n", "web1\n"]);

    let stats = xvsadm(&lab, "-L -n --stats");
    let service = stats_of(&stats, "1.1.1.254:80");
    assert_eq!(service[0], 4, "four connections:\n{stats}");
    assert!(service[1] >= 4 * 5, "every client packet counted:\n{stats}");
    assert_eq!(
        (service[2], service[4]),
        (0, 0),
        "DR never sees replies:\n{stats}"
    );
    assert_eq!(stats_of(&stats, "1.1.1.10:80")[0], 2);
    assert_eq!(stats_of(&stats, "1.1.1.20:80")[0], 2);
    let connections = xvsadm(&lab, "-L -n -c");
    assert_eq!(connections.lines().count(), 2 + 4, "{connections}");
}

/// IPVS's local node: a real server at the director's own address is served by the
/// director's own stack (listed as `Local`, whatever method was asked), beside a DR real
/// server: rr alternates between them. One that asks another port than the service's is
/// refused, nothing changed.
#[test]
fn a_real_server_at_the_director_s_own_address_is_served_by_its_stack() {
    let mut lab = topology::dr().build().unwrap();
    serve_names(&mut lab);
    lab.serve("director", 80, ServerKind::Http("director".into()))
        .unwrap();
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.10 -g");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.253 -g");
    let listed = xvsadm(&lab, "-L -n");
    assert!(
        listed.contains("  -> 1.1.1.253:80                 Local   1"),
        "{listed}"
    );
    let mut pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    pages.sort();
    assert_eq!(pages, ["director\n", "director\n", "web1\n", "web1\n"]);
    let before = xvsadm(&lab, "-L -n");
    let refused = lab
        .run(
            "director",
            &[
                XVSADM,
                "-a",
                "-t",
                "1.1.1.254:80",
                "-r",
                "127.0.0.1:8080",
                "-m",
            ],
        )
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("is this director's own address"), "{said}");
    assert_eq!(xvsadm(&lab, "-L -n"), before, "nothing changed");
}

/// Experiment II with xvsadm alone: a real server that does not answer ARP when it is
/// added (its link is down) takes no other server's share meanwhile, and is reached once
/// it answers, without being added again. The
/// director has no forwarding; the datapath asks the kernel's neighbour table, which goes
/// on resolving the server, as from `lo`.
#[test]
fn a_dr_real_server_down_when_added_is_reached_once_it_is_up() {
    let lab = dr_with_web2_down_when_added("-s rr");
    // rr picks web2 first, its SYN is dropped and the rotation turns, so the client's
    // retransmitted SYN goes to web1.
    let pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    assert_eq!(pages, ["web1\n"; 4]);
    wait_until_web2_serves(&lab);
    let mut pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    pages.sort();
    assert_eq!(pages, ["web1\n", "web1\n", "web2\n", "web2\n"]);
}

/// The same under wlc, ipvsadm's default scheduler: web2, down and holding no
/// connection, is the least loaded for ever, so without more every new connection of the
/// service went to it and none was served. The server without a next hop is set aside
/// (for 5 s at a time: the first client's retransmitted SYN goes to web1) and every
/// client is served.
#[test]
fn a_dr_real_server_down_when_added_takes_no_client_from_the_least_connection_schedulers() {
    // No -s: wlc, ipvsadm's default.
    let lab = dr_with_web2_down_when_added("");
    for _ in 0..6 {
        assert_eq!(get(&lab, "http://1.1.1.254/"), "web1\n");
    }
    let stats = xvsadm(&lab, "-L -n --stats");
    assert_eq!(stats_of(&stats, "1.1.1.10:80")[0], 6, "{stats}");
    assert_eq!(stats_of(&stats, "1.1.1.20:80")[0], 0, "{stats}");
    wait_until_web2_serves(&lab);
    // Both take connections again (web2, with fewer, all of them first).
    for _ in 0..4 {
        assert_eq!(get(&lab, "http://1.1.1.254/"), "web2\n");
    }
}

/// The seed's DR lab, serving, with web2's link down while it is added (by xvsadm alone,
/// with `scheduler`).
fn dr_with_web2_down_when_added(scheduler: &str) -> Lab {
    let mut lab = topology::dr().build().unwrap();
    serve_names(&mut lab);
    lab.run_ok("web2", &["ip", "link", "set", "eth0", "down"])
        .unwrap();
    xvsadm(&lab, &format!("-A -t 1.1.1.254:80 {scheduler}"));
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.10 -g");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.20 -g");
    lab
}

/// Brings web2's link up and waits until a request reaches it. The kernel probes a failed
/// neighbour it keeps resolved every 5 s; until then web2's SYNs are dropped (counted as
/// no_route).
fn wait_until_web2_serves(lab: &Lab) {
    lab.run_ok("web2", &["ip", "link", "set", "eth0", "up"])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while lab
        .run_ok(
            "client",
            &["curl", "-s", "--max-time", "2", "http://1.1.1.254/"],
        )
        .unwrap_or_default()
        != "web2\n"
    {
        assert!(
            Instant::now() < deadline,
            "web2 was never reached:\n{}",
            xvsadm(lab, "-L -n --stats")
        );
    }
}

#[test]
fn experiment_one_nat_with_the_seeds_commands() {
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 80, ServerKind::Http("192.168.1.10".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("192.168.1.20".into()))
        .unwrap();
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m");
    let pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    assert_eq!(
        pages,
        [
            "192.168.1.20\n",
            "192.168.1.10\n",
            "192.168.1.20\n",
            "192.168.1.10\n"
        ]
    );
    let stats = xvsadm(&lab, "-L -n --stats");
    let service = stats_of(&stats, "1.1.1.254:80");
    assert_eq!(service[0], 4);
    assert!(service[2] >= 4 * 3, "NAT counts the replies:\n{stats}");
    assert!(service[4] > 0, "{stats}");

    // Delete a server: the other takes every new connection.
    xvsadm(&lab, "-d -t 1.1.1.254:80 -r 192.168.1.20:80");
    for _ in 0..3 {
        assert_eq!(get(&lab, "http://1.1.1.254/"), "192.168.1.10\n");
    }
    // Back, with wrr and weights 2:1 (the seed's -E and -e).
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m");
    xvsadm(&lab, "-E -t 1.1.1.254:80 -s wrr");
    xvsadm(&lab, "-e -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 2");
    let mut tens = 0;
    for _ in 0..9 {
        if get(&lab, "http://1.1.1.254/") == "192.168.1.10\n" {
            tens += 1;
        }
    }
    assert_eq!(tens, 6, "wrr 2:1 over three cycles");
    // A multi-megabyte answer arrives intact through NAT.
    let body = lab
        .run(
            "client",
            &[
                "curl",
                "-s",
                "--max-time",
                "20",
                "http://1.1.1.254/bytes/5000000",
            ],
        )
        .unwrap()
        .stdout;
    assert_eq!(body.len(), 5_000_000);
    assert!(
        body == xvs_lab::pattern(5_000_000),
        "bytes changed on the way"
    );
    // -C: no more balancing; the VIP is the director's own address again.
    xvsadm(&lab, "-C");
    let refused = lab
        .run(
            "client",
            &["curl", "-s", "--max-time", "5", "http://1.1.1.254/"],
        )
        .unwrap();
    assert!(
        !refused.status.success(),
        "nothing listens on the director itself"
    );
}

#[test]
fn tunnel_mode_to_real_servers_without_an_ipip_driver() {
    let mut lab = topology::tun().build().unwrap();
    serve_names(&mut lab);
    lab.serve("web1", 9, ServerKind::Sink).unwrap();
    lab.serve("web2", 9, ServerKind::Sink).unwrap();
    for web in ["web1", "web2"] {
        lab.within(web, || xvs_datapath::decap::attach("eth0", None).unwrap())
            .unwrap();
    }
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 10.0.0.10 -i");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 10.0.0.20 -i");
    let pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    assert_eq!(pages, ["web2\n", "web1\n", "web2\n", "web1\n"]);
    let listing = xvsadm(&lab, "-L -n --tun-info");
    assert!(listing.contains("Tunnel  ipip"), "{listing}");

    // Megabytes up the tunnel (full-size packets, encapsulated) arrive intact.
    xvsadm(&lab, "-A -t 1.1.1.254:9 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:9 -r 10.0.0.10 -i");
    let counted = lab
        .run_ok(
            "client",
            &[
                "sh",
                "-c",
                "head -c 3000000 /dev/urandom | socat -t 10 - TCP:1.1.1.254:9",
            ],
        )
        .unwrap();
    assert_eq!(counted, "3000000\n");
    let stats = xvsadm(&lab, "-L -n --stats");
    assert_eq!(stats_of(&stats, "1.1.1.254:80")[0], 4);
    assert_eq!(stats_of(&stats, "1.1.1.254:9")[2], 0, "replies go direct");
}

/// Starts capturing, on `lan`'s bridge port toward `port_of`, the first frame that
/// matches `filter`; returns once tcpdump listens. (There the frames are as the director
/// sent them: the real server's decapsulator has not seen them yet.)
fn capture_one(lab: &Lab, port_of: &str, filter: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = lab
        .command(
            "lan",
            &[
                "timeout", "20", "tcpdump", "-i", port_of, "-n", "-c", "1", filter,
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("listening on"))),
        "tcpdump did not start"
    );
    // Read to its end: tcpdump's last words must not meet a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// `--tun-type gue --tun-port N` and `--tun-type gre`, with checksums: the director sends
/// GUE and GRE (seen on the wire), and real servers whose kernel has no tunnel driver take
/// them with xvs's decapsulator (GUE on the port it was given; given another port, GUE
/// is not its to take). Pages and a 3 MB upload arrive.
#[test]
fn gue_and_gre_tunnels_to_real_servers_without_tunnel_drivers() {
    let mut lab = topology::tun().build().unwrap();
    serve_names(&mut lab);
    lab.serve("web1", 9, ServerKind::Sink).unwrap();
    lab.within("web1", || {
        xvs_datapath::decap::attach("eth0", Some(6081)).unwrap()
    })
    .unwrap();
    lab.within("web2", || {
        xvs_datapath::decap::attach("eth0", None).unwrap()
    })
    .unwrap();
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr");
    xvsadm(
        &lab,
        "-a -t 1.1.1.254:80 -r 10.0.0.10 -i --tun-type gue --tun-port 6080 --tun-csum",
    );
    xvsadm(
        &lab,
        "-a -t 1.1.1.254:80 -r 10.0.0.20 -i --tun-type gre --tun-csum",
    );
    let url = "http://1.1.1.254/";
    let gue = capture_one(&lab, "web1", "udp dst port 6080 and udp[8:2] = 0x0004");
    let gre = capture_one(&lab, "web2", "ip proto 47 and ip[20:2] = 0x8000");
    assert_eq!(get(&lab, url), "web2\n");
    // GUE to 6080, which web1's decapsulator does not take: web1 never answers.
    assert!(
        lab.run_ok("client", &["curl", "-s", "--max-time", "2", url])
            .is_err(),
        "web1 answered GUE on a port it was not given"
    );
    for (what, child) in [("GUE", gue), ("GRE with a checksum", gre)] {
        assert!(
            child.wait_with_output().unwrap().status.success(),
            "no {what} on the wire"
        );
    }
    // The port it is given now (in place, as `xvs-decap eth0 --gue-port 6080` does).
    lab.within("web1", || {
        xvs_datapath::decap::attach("eth0", Some(6080)).unwrap();
        assert_eq!(xvs_datapath::decap::gue_port("eth0").unwrap(), Some(6080));
    })
    .unwrap();
    let mut pages: Vec<String> = (0..4).map(|_| get(&lab, url)).collect();
    pages.sort();
    assert_eq!(pages, ["web1\n", "web1\n", "web2\n", "web2\n"]);

    xvsadm(&lab, "-A -t 1.1.1.254:9 -s rr");
    xvsadm(
        &lab,
        "-a -t 1.1.1.254:9 -r 10.0.0.10 -i --tun-type gue --tun-port 6080",
    );
    let counted = lab
        .run_ok(
            "client",
            &[
                "sh",
                "-c",
                "head -c 3000000 /dev/urandom | socat -t 10 - TCP:1.1.1.254:9",
            ],
        )
        .unwrap();
    assert_eq!(counted, "3000000\n");
}

#[test]
fn direct_routing_carries_megabytes_and_quiesced_servers_keep_their_connections() {
    let mut lab = topology::dr().build().unwrap();
    serve_names(&mut lab);
    lab.serve("web1", 9, ServerKind::Sink).unwrap();
    lab.serve("web2", 9, ServerKind::Sink).unwrap();
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s wlc");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.10 -g");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.20 -g");
    let body = lab
        .run(
            "client",
            &[
                "curl",
                "-s",
                "--max-time",
                "20",
                "http://1.1.1.254/bytes/4000000",
            ],
        )
        .unwrap()
        .stdout;
    assert!(body == xvs_lab::pattern(4_000_000), "4 MB down, intact");
    xvsadm(&lab, "-A -t 1.1.1.254:9 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:9 -r 1.1.1.10 -g");
    let counted = lab
        .run_ok(
            "client",
            &[
                "sh",
                "-c",
                "head -c 4000000 /dev/zero | socat -t 10 - TCP:1.1.1.254:9",
            ],
        )
        .unwrap();
    assert_eq!(counted, "4000000\n", "4 MB up, every byte");

    // Weight 0 (quiescent): no new connections; a connection already open carries on.
    let mut open = lab
        .command(
            "client",
            &["socat", "-t", "10", "-", "TCP:1.1.1.254:9,sourceport=45000"],
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = open.stdin.take().unwrap();
    use std::io::Write;
    input.write_all(&[7u8; 1000]).unwrap();
    // Quiesce only once the connection is established (socat connects in its own time).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !xvsadm(&lab, "-L -n -c")
        .lines()
        .any(|l| l.contains("ESTABLISHED") && l.contains(":45000"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "socat never connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    xvsadm(&lab, "-e -t 1.1.1.254:9 -r 1.1.1.10 -g -w 0");
    input.write_all(&[7u8; 1000]).unwrap();
    drop(input);
    let out = open.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2000\n",
        "the open connection went on"
    );
    let refused = lab
        .run(
            "client",
            &[
                "sh",
                "-c",
                "printf x | socat -t 3 - TCP:1.1.1.254:9,connect-timeout=3",
            ],
        )
        .unwrap();
    assert!(
        !refused.status.success(),
        "no server may take a new connection"
    );
}

#[test]
fn udp_connections_expire_by_themselves_and_counts_follow() {
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 53, ServerKind::UdpName("web1".into()))
        .unwrap();
    xvsadm(&lab, "--set 0 0 4");
    xvsadm(&lab, "-A -u 1.1.1.254:53 -s rr");
    xvsadm(&lab, "-a -u 1.1.1.254:53 -r 192.168.1.10 -m");
    let answer = lab
        .run_ok(
            "client",
            &["sh", "-c", "printf q | socat -t 0.5 - UDP:1.1.1.254:53"],
        )
        .unwrap();
    assert_eq!(answer, "web1\n");
    let listing = xvsadm(&lab, "-L -n");
    assert!(
        listing.contains("Masq    1      0          1"),
        "one inactive (UDP) connection:\n{listing}"
    );
    // It expires by itself (4 s UDP timeout): no daemon runs here.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let connections = xvsadm(&lab, "-L -n -c");
        if connections.lines().count() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never expired:\n{connections}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let listing = xvsadm(&lab, "-L -n");
    assert!(
        listing.contains("Masq    1      0          0"),
        "counts back to zero:\n{listing}"
    );
}

/// The seed's NAT lab with a persistent service: one client keeps one web server, the
/// template shows in `-L -n -c` and in `--persistent-conn`, and `-C` clears it all.
#[test]
fn persistent_service_keeps_a_client_on_one_real_server() {
    let mut lab = topology::nat().build().unwrap();
    serve_names(&mut lab);
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr -p 300");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m");
    let pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    assert!(pages.iter().all(|p| *p == pages[0]), "{pages:?}");
    let connections = xvsadm(&lab, "-L -n -c");
    let template: Vec<&str> = connections
        .lines()
        .filter(|l| l.contains("1.1.1.1:0 "))
        .collect();
    assert_eq!(template.len(), 1, "{connections}");
    assert!(template[0].starts_with("TCP "), "{connections}");
    assert!(template[0].contains(" NONE "), "{connections}");
    let persistent = xvsadm(&lab, "-L -n --persistent-conn");
    let web = if pages[0].trim() == "web1" {
        "192.168.1.10:80"
    } else {
        "192.168.1.20:80"
    };
    let line = persistent
        .lines()
        .find(|l| l.contains(web))
        .unwrap_or_else(|| panic!("{persistent}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // Weight, PersistConn, ActiveConn, InActConn.
    assert_eq!(numbers[1], 1, "{persistent}");
}

/// The seed's NAT lab with a SIP service (`-p -M 0.0.0.0 --pe sip`, as SIP directors
/// run IPVS): every message of a call reaches one real server though each comes from a
/// socket of its own (a new connection each), the calls are spread over both, a message
/// without a Call-ID is not answered, and `-L -n -c --persistent-conn` lists each call's
/// template with its Call-ID.
#[test]
fn each_sip_call_keeps_one_real_server() {
    let mut lab = topology::nat().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 5060, ServerKind::UdpName(web.into()))
            .unwrap();
    }
    xvsadm(&lab, "-A -u 1.1.1.254:5060 -s rr -p 60 -M 0.0.0.0 --pe sip");
    xvsadm(&lab, "-a -u 1.1.1.254:5060 -r 192.168.1.10 -m");
    xvsadm(&lab, "-a -u 1.1.1.254:5060 -r 192.168.1.20 -m");
    // Each message from a socket of its own, sent at most `tries` times, `wait` seconds
    // apart, as SIP over UDP retransmits (the director may still be resolving a real
    // server's MAC on a loaded machine): the answer (the server's name), or "".
    let send = |message: String, wait: u64, tries: u32| {
        lab.within("client", move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            socket
                .set_read_timeout(Some(std::time::Duration::from_secs(wait)))
                .unwrap();
            let mut answer = [0u8; 64];
            for _ in 0..tries {
                socket
                    .send_to(message.as_bytes(), "1.1.1.254:5060")
                    .unwrap();
                if let Ok(n) = socket.recv(&mut answer) {
                    return String::from_utf8_lossy(&answer[..n]).into_owned();
                }
            }
            String::new()
        })
        .unwrap()
    };
    let request = |call: &str, method: &str| {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 1.1.1.1\r\n\
             Call-ID: {call}\r\nCSeq: 1 {method}\r\n\r\n"
        )
    };
    let calls = [
        "one@1.1.1.1",
        "two@1.1.1.1",
        "three@1.1.1.1",
        "four@1.1.1.1",
    ];
    let mut servers = Vec::new();
    for call in calls {
        let answers: Vec<String> = ["INVITE", "ACK", "BYE"]
            .iter()
            .map(|method| send(request(call, method), 2, 5))
            .collect();
        assert!(!answers[0].is_empty(), "{call}: no answer");
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "{call}: {answers:?}"
        );
        servers.push(answers[0].clone());
    }
    servers.sort();
    assert_eq!(
        servers,
        ["web1\n", "web1\n", "web2\n", "web2\n"],
        "calls spread"
    );
    let stray = "OPTIONS sip:x SIP/2.0\r\nVia: v\r\n\r\n".to_string();
    assert_eq!(send(stray, 1, 1), "", "a message without a Call-ID");
    let listing = xvsadm(&lab, "-L -n -c --persistent-conn");
    for call in calls {
        let line = listing
            .lines()
            .find(|l| l.ends_with(&format!(" sip                {call}")))
            .unwrap_or_else(|| panic!("{call}: {listing}"));
        assert!(
            line.starts_with("UDP ") && line.contains(" 0.0.0.0:0 "),
            "{line}"
        );
    }
}

/// A persistent client's open connection keeps its template past the persistence
/// timeout, as in IPVS (an FTP control connection keeps the client's data connections on
/// its server): real TCP through the NAT lab, `-p 2`, a second connection three seconds
/// after the first (rr alone would send it to the other server). Found past its timeout
/// by the sweep, the template is kept for 60 s, as IPVS re-arms it, and listed so.
#[test]
fn an_open_connection_keeps_its_clients_template_past_the_timeout() {
    use std::io::{Read, Write};
    let mut lab = topology::nat().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Echo).unwrap();
    }
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr -p 2");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m");
    let connect = || {
        lab.within("client", || {
            let mut stream = std::net::TcpStream::connect("1.1.1.254:80").unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            stream.write_all(b"hello\n").unwrap();
            let mut back = [0u8; 6];
            stream.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"hello\n");
            stream
        })
        .unwrap()
    };
    // The real server of the client's connection from `port`, as `-L -n -c` lists it.
    let server_of = |stream: &std::net::TcpStream| {
        let port = stream.local_addr().unwrap().port();
        let listing = xvsadm(&lab, "-L -n -c");
        listing
            .lines()
            .find(|l| l.contains(&format!("1.1.1.1:{port} ")))
            .and_then(|l| l.split_whitespace().nth(5).map(str::to_string))
            .unwrap_or_else(|| panic!("no connection from port {port}:\n{listing}"))
    };
    let first = connect();
    let server = server_of(&first);
    std::thread::sleep(std::time::Duration::from_secs(3));
    // A SYN to a port without a service runs the sweep (the kernel resets it).
    let _ = lab.run(
        "client",
        &["curl", "-s", "--max-time", "1", "http://1.1.1.254:81/"],
    );
    let listing = xvsadm(&lab, "-L -n -c");
    let template = listing
        .lines()
        .find(|l| l.contains("1.1.1.1:0 "))
        .unwrap_or_else(|| panic!("no template:\n{listing}"));
    let expire = template.split_whitespace().nth(1).unwrap();
    assert!(
        expire == "01:00" || expire.starts_with("00:5"),
        "kept for 60 s:\n{listing}"
    );
    let second = connect();
    assert_eq!(server_of(&second), server, "the template outlived its 2 s");
    drop((first, second));
}

/// Tunnel mode with 1500-byte links everywhere: a full-size client packet does not fit the
/// tunnel's 20 extra bytes; the director answers with ICMP "fragmentation needed" (MTU
/// 1480), the client's TCP sends smaller segments, and a megabyte uploaded arrives whole.
#[test]
fn a_megabyte_up_a_tunnel_with_1500_byte_links() {
    let mut lab = topology::tun_1500().build().unwrap();
    lab.serve("web1", 9, ServerKind::Sink).unwrap();
    lab.within("web1", || {
        xvs_datapath::decap::attach("eth0", None).unwrap()
    })
    .unwrap();
    xvsadm(&lab, "-A -t 1.1.1.254:9 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:9 -r 10.0.0.10 -i");
    let counted = lab
        .run_ok(
            "client",
            &[
                "sh",
                "-c",
                "head -c 1000000 /dev/urandom | socat -t 10 - TCP:1.1.1.254:9",
            ],
        )
        .unwrap();
    assert_eq!(counted, "1000000\n");
    let too_big = lab
        .within("director", || {
            let director = xvs_datapath::Director::find().unwrap().unwrap();
            director.counters().unwrap()[xvs_common::counter::TOO_BIG as usize]
        })
        .unwrap();
    assert!(too_big > 0, "the client was told");
}

/// IPv6 direct routing behind a router with a smaller link toward the client: web1's
/// full-size segments (from the VIP) do not fit, the router's ICMPv6 "packet too big" goes
/// to the VIP, that is to the director, which hands it to web1 by the connection it
/// quotes (IPVS's `ip_vs_in_icmp_v6`); web1's path MTU discovery then sends smaller
/// segments and a megabyte downloaded arrives whole. Without the relay the download stalls
/// (a path MTU black hole).
#[test]
fn ipv6_packet_too_big_reaches_a_dr_real_server_and_a_megabyte_arrives() {
    let mut lab = topology::dr6_behind_router().build().unwrap();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    // web1 and the router are up and known before web1 is added, as running hosts are (a
    // fresh namespace's first neighbour solicitations can go unanswered).
    for (host, address) in [("director", "fd00:1::10"), ("client", "fd00:9::1")] {
        lab.reach(host, address).unwrap();
    }
    xvsadm(&lab, "-A -t [fd00:9::1]:80 -s rr");
    xvsadm(&lab, "-a -t [fd00:9::1]:80 -r [fd00:1::10]:80 -g");
    // Bytes received, curl's exit code and its error, if any.
    let got = lab
        .run(
            "client",
            &[
                "sh",
                "-c",
                "curl -g -s -o /dev/null -w '%{size_download} %{exitcode} %{errormsg}' \
                 --max-time 20 'http://[fd00:9::1]/bytes/1000000'",
            ],
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "1000000 0 ");
    let forwarded = lab
        .within("director", || {
            let director = xvs_datapath::Director::find().unwrap().unwrap();
            director.counters().unwrap()[xvs_common::counter::ICMP_FORWARDED as usize]
        })
        .unwrap();
    assert!(forwarded > 0, "the router's packet too big was relayed");
}

/// The same over IPv6 (a DR director without IPv6 forwarding, behind a router): a real
/// server down when it was added is reached once it is up, with xvsadm alone.
#[test]
fn an_ipv6_dr_real_server_down_when_added_is_reached_once_it_is_up() {
    let mut lab = topology::dr6_behind_router().build().unwrap();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.reach("client", "fd00:1::fd").unwrap();
    // Its address stays through the link's fall, as a server's configured one does.
    lab.run_ok(
        "web1",
        &["sysctl", "-qw", "net.ipv6.conf.eth0.keep_addr_on_down=1"],
    )
    .unwrap();
    lab.run_ok("web1", &["ip", "link", "set", "eth0", "down"])
        .unwrap();
    xvsadm(&lab, "-A -t [fd00:9::1]:80 -s rr");
    xvsadm(&lab, "-a -t [fd00:9::1]:80 -r [fd00:1::10]:80 -g");
    lab.run_ok("web1", &["ip", "link", "set", "eth0", "up"])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let url = "http://[fd00:9::1]/";
    let back = [
        "ip",
        "-6",
        "route",
        "replace",
        "fd00:3::/64",
        "via",
        "fd00:1::1",
    ];
    loop {
        // IPv6 takes a link's routes with it when it goes down: web1's way back to the
        // client, once its link's own route is there again.
        let _ = lab.run("web1", &back);
        let page = lab.run_ok("client", &["curl", "-g", "-s", "--max-time", "2", url]);
        if page.is_ok_and(|p| p == "web1\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "web1 was never reached:\n{}",
            xvsadm(&lab, "-L -n --stats")
        );
    }
}

/// A service of 300 real servers (more than a service's entry holds: its set lives in
/// the large services map) forwards real connections: web1 and web2 with weight 1 among
/// 298 quiescent ones, round robin between the two; the listing shows all 300. Deleting
/// the quiescent ones moves the set back, and nothing changes for clients.
#[test]
fn a_service_of_300_real_servers_forwards_and_lists_them_all() {
    let mut lab = topology::nat().build().unwrap();
    serve_names(&mut lab);
    let mut rules = String::from("-A -t 1.1.1.254:80 -s rr\n");
    for i in 0..298 {
        rules.push_str(&format!(
            "-a -t 1.1.1.254:80 -r 192.168.2.{}:{} -m -w 0\n",
            i % 250 + 1,
            8000 + i
        ));
    }
    rules.push_str("-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m\n");
    rules.push_str("-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m\n");
    let restored = lab
        .command("director", &[env!("CARGO_BIN_EXE_xvsadm"), "-R"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(rules.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let listing = xvsadm(&lab, "-L -n");
    assert_eq!(
        listing.matches("  -> ").count(),
        301,
        "a header and 300:\n{listing}"
    );
    let pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    assert_eq!(pages, ["web2\n", "web1\n", "web2\n", "web1\n"]);
    let stats = xvsadm(&lab, "-L -n --stats");
    assert_eq!(stats_of(&stats, "192.168.1.10:80")[0], 2);
    assert_eq!(stats_of(&stats, "192.168.1.20:80")[0], 2);

    for i in 0..298 {
        xvsadm(
            &lab,
            &format!(
                "-d -t 1.1.1.254:80 -r 192.168.2.{}:{}",
                i % 250 + 1,
                8000 + i
            ),
        );
    }
    let pages: Vec<String> = (0..4).map(|_| get(&lab, "http://1.1.1.254/")).collect();
    assert_eq!(pages, ["web2\n", "web1\n", "web2\n", "web1\n"]);
    let stats = xvsadm(&lab, "-L -n --stats");
    assert_eq!(
        stats_of(&stats, "192.168.1.10:80")[0],
        4,
        "counters kept across"
    );
}

/// Sends two 4,000-byte datagrams from the client to `target` (socat's address), each in
/// fragments; each must reach a real server whole (its answer names it), rr over both,
/// and the director must have sent later fragments on.
fn datagrams_in_fragments_arrive_whole(lab: &Lab, target: &str) {
    let mut answers = Vec::new();
    for _ in 0..2 {
        // The answer may take a while on a loaded machine (the DR and tunnel servers
        // fork a shell per datagram; with the whole suite running, 3 s was once not
        // enough): socat waits up to 10 s for it, and returns as soon as it comes.
        let command = format!("head -c 4000 /dev/zero | socat -t 10 - '{target}'");
        answers.push(lab.run_ok("client", &["sh", "-c", &command]).unwrap());
    }
    answers.sort();
    // (What the director counted, should a datagram go unanswered: the DR variant failed
    // so once in a full run, 2026-12-07, and passed alone every time since.)
    let no_route = lab
        .within("director", || {
            let director = xvs_datapath::Director::find().unwrap().unwrap();
            director.counters().unwrap()[xvs_common::counter::NO_ROUTE as usize]
        })
        .unwrap();
    assert_eq!(
        answers,
        ["web1\n", "web2\n"],
        "rr over whole datagrams; no_route {no_route}:\n{}",
        xvsadm(lab, "-L -n --stats")
    );
    let fragments = lab
        .within("director", || {
            let director = xvs_datapath::Director::find().unwrap().unwrap();
            director.counters().unwrap()[xvs_common::counter::FRAGMENTS_FORWARDED as usize]
        })
        .unwrap();
    assert!(fragments >= 4, "{fragments} later fragments sent on");
}

fn serve_udp_names(lab: &mut Lab) {
    for web in ["web1", "web2"] {
        lab.serve(web, 53, ServerKind::UdpName(web.into())).unwrap();
    }
}

/// UDP servers on the VIP of DR and tunnel real servers: bound to it, as a DNS server is,
/// so that they answer from it (socat answers each datagram with the server's name).
fn serve_udp_names_on_vip(lab: &mut Lab) {
    for web in ["web1", "web2"] {
        let listen = "UDP4-RECVFROM:53,bind=1.1.1.254,fork";
        let answer = format!("SYSTEM:echo {web}");
        lab.spawn(web, &["socat", listen, &answer]).unwrap();
    }
    for web in ["web1", "web2"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !lab
            .run_ok(web, &["ss", "-Huln", "sport", "53"])
            .unwrap()
            .contains("1.1.1.254:53")
        {
            assert!(std::time::Instant::now() < deadline, "socat never listened");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// The seed's NAT lab: a UDP datagram larger than the links' MTU goes out of the client
/// in fragments; the director sends them all to one real server, which reassembles the
/// datagram and answers.
#[test]
fn a_udp_datagram_in_fragments_reaches_its_real_server_whole() {
    let mut lab = topology::nat().build().unwrap();
    serve_udp_names(&mut lab);
    xvsadm(&lab, "-A -u 1.1.1.254:53 -s rr");
    xvsadm(&lab, "-a -u 1.1.1.254:53 -r 192.168.1.10 -m");
    xvsadm(&lab, "-a -u 1.1.1.254:53 -r 192.168.1.20 -m");
    datagrams_in_fragments_arrive_whole(&lab, "UDP:1.1.1.254:53");
}

/// The same in the DR lab: the fragments reach the real server unchanged but for the MACs,
/// and it answers the client from the VIP itself.
#[test]
fn a_udp_datagram_in_fragments_reaches_a_dr_real_server_whole() {
    let mut lab = topology::dr().build().unwrap();
    serve_udp_names_on_vip(&mut lab);
    xvsadm(&lab, "-A -u 1.1.1.254:53 -s rr");
    xvsadm(&lab, "-a -u 1.1.1.254:53 -r 1.1.1.10 -g");
    xvsadm(&lab, "-a -u 1.1.1.254:53 -r 1.1.1.20 -g");
    // The real servers' MACs resolved first: a datagram that comes while the director's
    // ARP request is still out has no next hop and is dropped (`no_route`; a TCP client
    // would send its SYN again, this one datagram is all the client sends). Once in a
    // full run, under load, the first datagram came that soon.
    for web in ["1.1.1.10", "1.1.1.20"] {
        lab.reach("director", web).unwrap();
    }
    datagrams_in_fragments_arrive_whole(&lab, "UDP:1.1.1.254:53");
}

/// The same through the tunnel: each fragment is wrapped in IP-in-IP on its own (the
/// tunnel's links have room for the outer header), the real server decapsulates and
/// reassembles.
#[test]
fn a_udp_datagram_in_fragments_reaches_a_tunnel_real_server_whole() {
    let mut lab = topology::tun().build().unwrap();
    serve_udp_names_on_vip(&mut lab);
    for web in ["web1", "web2"] {
        lab.within(web, || xvs_datapath::decap::attach("eth0", None).unwrap())
            .unwrap();
    }
    xvsadm(&lab, "-A -u 1.1.1.254:53 -s rr");
    xvsadm(&lab, "-a -u 1.1.1.254:53 -r 10.0.0.10 -i");
    xvsadm(&lab, "-a -u 1.1.1.254:53 -r 10.0.0.20 -i");
    datagrams_in_fragments_arrive_whole(&lab, "UDP:1.1.1.254:53");
}

/// The same over IPv6 (the dual-stack NAT lab): the client's kernel sends the datagram in
/// fragments behind a fragment header; the director sends them all to one real server,
/// which reassembles the datagram and answers through NAT.
#[test]
fn an_ipv6_udp_datagram_in_fragments_reaches_its_real_server_whole() {
    let mut lab = topology::nat_dual_stack().build().unwrap();
    serve_udp_names(&mut lab);
    xvsadm(&lab, "-A -u [fd00:1::fe]:53 -s rr");
    xvsadm(&lab, "-a -u [fd00:1::fe]:53 -r [fd00:2::10]:53 -m");
    xvsadm(&lab, "-a -u [fd00:1::fe]:53 -r [fd00:2::20]:53 -m");
    // Fresh IPv6 neighbours: the first solicitations can be lost.
    for (host, target) in [
        ("client", "fd00:1::fe"),
        ("web1", "fd00:2::fe"),
        ("web2", "fd00:2::fe"),
    ] {
        lab.reach(host, target).unwrap();
    }
    datagrams_in_fragments_arrive_whole(&lab, "UDP6:[fd00:1::fe]:53");
}

/// Both ends of a NAT connection close at once, so the client's FIN and the server's FIN
/// are often handled on two CPUs at the same moment: each connection must still move
/// from active to inactive exactly once. After many short connections from parallel
/// clients, each real server's ActiveConn + InActConn equals its entries in `-L -c`, and
/// no count ever wrapped below zero.
#[test]
fn connection_counts_stay_exact_when_both_directions_change_state_at_once() {
    let mut lab = topology::nat().build().unwrap();
    serve_names(&mut lab);
    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m");
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                lab.within("client", || {
                    use std::io::{Read, Write};
                    for _ in 0..100 {
                        let vip: std::net::SocketAddr = "1.1.1.254:80".parse().unwrap();
                        let mut stream = std::net::TcpStream::connect(vip).unwrap();
                        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                        let mut page = Vec::new();
                        stream.read_to_end(&mut page).unwrap();
                        assert!(page.starts_with(b"HTTP/1.1 200"));
                    }
                })
                .unwrap();
            });
        }
    });
    let listing = xvsadm(&lab, "-L -n");
    let entries = xvsadm(&lab, "-L -n -c");
    for server in ["192.168.1.10:80", "192.168.1.20:80"] {
        let counts = stats_of(&listing, server);
        let (active, inactive) = (counts[1], counts[2]);
        assert!(
            active < 1 << 31 && inactive < 1 << 31,
            "wrapped:\n{listing}"
        );
        let listed = entries.lines().filter(|l| l.ends_with(server)).count() as u64;
        assert_eq!(active + inactive, listed, "{server}:\n{listing}\n{entries}");
        assert_eq!(active, 0, "every connection closed:\n{listing}");
    }
}
