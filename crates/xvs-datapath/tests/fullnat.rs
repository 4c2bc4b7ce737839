//! FULLNAT through the installed director, frame by frame (BPF_PROG_TEST_RUN): both
//! addresses and ports rewritten on the way to the real server and back, checksums right,
//! a local port never handed out twice, and a refusal counted when none is left.

mod common;

use std::collections::HashSet;

use common::*;
use xvs_common::{FULLNAT_PORT_FIRST, FULLNAT_PORTS, counter};
use xvs_datapath::Director;

const LADDR: [u8; 4] = [10, 0, 0, 254];

const RULES: &[&str] = &[
    "-A -t 1.1.1.254:80 -s rr",
    "-a -t 1.1.1.254:80 -r 10.0.0.10:8080 -b",
    "-P -t 1.1.1.254:80 -z 10.0.0.254 -F eth0",
];

/// Source address and port, destination address and port of an IPv4 frame.
fn tuple(frame: &[u8]) -> ([u8; 4], u16, [u8; 4], u16) {
    let ip = &frame[14..];
    let l4 = &ip[usize::from(ip[0] & 0x0f) * 4..];
    (
        ip[12..16].try_into().unwrap(),
        u16::from_be_bytes([l4[0], l4[1]]),
        ip[16..20].try_into().unwrap(),
        u16::from_be_bytes([l4[2], l4[3]]),
    )
}

#[test]
fn fullnat_rewrites_both_sides_both_ways() {
    Rig::new().with(RULES, |director, eth0| {
        let syn = tcp4(CLIENT, VIP, 41000, 80, true, CLIENT_MAC);
        let (out, _) = director.run_frame(eth0, &syn).unwrap();
        assert_eq!(out.verdict, XDP_TX);
        let (src, lport, dst, dport) = tuple(&out.frame);
        assert_eq!(
            (src, dst, dport),
            (LADDR, RS1, 8080),
            "to the real server, from the local address"
        );
        assert!((FULLNAT_PORT_FIRST..FULLNAT_PORT_FIRST + FULLNAT_PORTS as u16).contains(&lport));
        assert!(checksums_ok(&out.frame, 14));
        // The client's next segment leaves from the same local port.
        let data = tcp4(CLIENT, VIP, 41000, 80, false, CLIENT_MAC);
        let (out, _) = director.run_frame(eth0, &data).unwrap();
        assert_eq!(tuple(&out.frame), (LADDR, lport, RS1, 8080));
        assert!(checksums_ok(&out.frame, 14));
        // The real server's answer goes back from the VIP to the client, one hop less.
        let reply = tcp4(RS1, LADDR, 8080, lport, false, RS1_MAC);
        let (out, _) = director.run_frame(eth0, &reply).unwrap();
        assert_eq!(out.verdict, XDP_TX);
        assert_eq!(tuple(&out.frame), (VIP, 80, CLIENT, 41000));
        assert_eq!(out.frame[14 + 8], 63, "TTL");
        assert!(checksums_ok(&out.frame, 14));
        assert_eq!(&out.frame[0..6], &CLIENT_MAC, "back to the client's MAC");
        // Listed with both tuples.
        let conns = director.connections().unwrap();
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].local, Some(("10.0.0.254".parse().unwrap(), lport)));
        assert_eq!(conns[0].dest, ("10.0.0.10".parse().unwrap(), 8080));
        // A reply to a local port no connection holds is not the director's: to the stack.
        let stray = tcp4(RS1, LADDR, 8080, lport.wrapping_add(1), false, RS1_MAC);
        assert_eq!(
            director.run_frame(eth0, &stray).unwrap().0.verdict,
            XDP_PASS
        );
    });
}

#[test]
fn fullnat_udp_and_no_local_address() {
    Rig::new().with(
        &[
            "-A -u 1.1.1.254:53 -s rr",
            "-a -u 1.1.1.254:53 -r 10.0.0.10:53 -b",
        ],
        |director, eth0| {
            // No local address yet: refused, counted.
            let query = udp4(CLIENT, VIP, 5353, 53, b"question");
            let (out, _) = director.run_frame(eth0, &query).unwrap();
            assert_eq!(out.verdict, XDP_DROP);
            assert_eq!(counters(director)[counter::NO_LOCAL_PORT as usize], 1);
            change(director, &["-P -u 1.1.1.254:53 -z 10.0.0.254"]);
            let (out, _) = director.run_frame(eth0, &query).unwrap();
            assert_eq!(out.verdict, XDP_TX);
            let (src, lport, dst, dport) = tuple(&out.frame);
            assert_eq!((src, dst, dport), (LADDR, RS1, 53));
            assert!(checksums_ok(&out.frame, 14));
            let answer = udp4(RS1, LADDR, 53, lport, b"answer");
            let (out, _) = director.run_frame(eth0, &answer).unwrap();
            assert_eq!(out.verdict, XDP_TX);
            assert_eq!(tuple(&out.frame), (VIP, 53, CLIENT, 5353));
            assert!(checksums_ok(&out.frame, 14));
            // The listing of local addresses counts the connection.
            let mut table = director.load().unwrap().table;
            director.count_local_address_use(&mut table).unwrap();
            assert_eq!(table.services[0].laddrs[0].conns, 1);
        },
    );
}

/// Every local port toward one real server is taken once, then the next connection is
/// refused and counted: never a tuple in use handed out again.
#[test]
fn an_exhausted_local_port_range_refuses_and_never_reuses_a_tuple() {
    pin_to_first_cpu();
    Rig::new().with(RULES, |director: &mut Director, eth0| {
        let mut ports = HashSet::new();
        let clients = FULLNAT_PORTS as usize;
        for i in 0..clients {
            let client = [1, 1, (i >> 8) as u8 + 10, i as u8];
            let syn = tcp4(client, VIP, 40000, 80, true, CLIENT_MAC);
            let (out, _) = director.run_frame(eth0, &syn).unwrap();
            assert_eq!(out.verdict, XDP_TX, "connection {i}");
            let (_, lport, _, _) = tuple(&out.frame);
            assert!(ports.insert(lport), "local port {lport} handed out twice");
        }
        let syn = tcp4([1, 1, 250, 1], VIP, 40000, 80, true, CLIENT_MAC);
        let (out, _) = director.run_frame(eth0, &syn).unwrap();
        assert_eq!(out.verdict, XDP_DROP);
        assert_eq!(counters(director)[counter::NO_LOCAL_PORT as usize], 1);
        let table = director.load().unwrap().table;
        assert_eq!(table.services[0].dests[0].conns.active, FULLNAT_PORTS);
    });
}

/// A client that starts a new connection from the port of a closed one (IPVS's
/// conn_reuse_mode) gets a new local port; the old one stays held until the old connection
/// would have expired, since the real server may still hold that tuple in TIME_WAIT and
/// would answer the new SYN for the old connection. With every port taken, the new
/// connection is refused rather than given the held port; the hold is swept when it
/// expires (CLOSE: 10 s).
#[test]
fn a_reused_client_port_leaves_its_old_local_port_held_until_it_expires() {
    pin_to_first_cpu();
    Rig::new().with(RULES, |director: &mut Director, eth0| {
        let client = |i: usize| [1, 1, (i >> 8) as u8 + 10, i as u8];
        for i in 0..FULLNAT_PORTS as usize {
            let syn = tcp4(client(i), VIP, 40000, 80, true, CLIENT_MAC);
            assert_eq!(
                director.run_frame(eth0, &syn).unwrap().0.verdict,
                XDP_TX,
                "{i}"
            );
        }
        // The first client completes its connection, resets it (CLOSE), then opens a new
        // one from the same port: its old local port is held, no other is free.
        let ack = tcp4(client(0), VIP, 40000, 80, false, CLIENT_MAC);
        assert_eq!(director.run_frame(eth0, &ack).unwrap().0.verdict, XDP_TX);
        let reset = tcp4_flags(client(0), VIP, 40000, 80, Flags::Rst);
        assert_eq!(director.run_frame(eth0, &reset).unwrap().0.verdict, XDP_TX);
        let again = tcp4(client(0), VIP, 40000, 80, true, CLIENT_MAC);
        assert_eq!(
            director.run_frame(eth0, &again).unwrap().0.verdict,
            XDP_DROP
        );
        assert_eq!(counters(director)[counter::NO_LOCAL_PORT as usize], 1);
        // The hold expires with the old connection (CLOSE's 10 s) and is swept by the
        // next SYN, counted as expired (the other connections have 60 s left). (Whether
        // that SYN finds the one free port among 31,744 in its 16 tries is chance.)
        assert_eq!(counters(director)[counter::EXPIRED as usize], 0);
        std::thread::sleep(std::time::Duration::from_secs(11));
        director.run_frame(eth0, &again).unwrap();
        assert_eq!(
            counters(director)[counter::EXPIRED as usize],
            1,
            "the hold, swept"
        );
    });
}

/// IPv6 FULLNAT both ways, checksums right (IPv6 has no header checksum: the TCP sum
/// carries every address change).
#[test]
fn fullnat_over_ipv6() {
    const LADDR6: [u8; 16] = [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe];
    Rig::new().with(
        &[
            "-A -t [fd00:1::fe]:80 -s rr",
            "-a -t [fd00:1::fe]:80 -r [fd00:2::10]:8080 -b",
            "-P -t [fd00:1::fe]:80 -z fd00:2::fe",
        ],
        |director, eth0| {
            let (out, _) = director
                .run_frame(eth0, &tcp6(CLIENT6, VIP6, 41000, 80))
                .unwrap();
            assert_eq!(out.verdict, XDP_TX);
            let ip = &out.frame[14..];
            assert_eq!(&ip[8..24], &LADDR6, "from the local address");
            assert_eq!(&ip[24..40], &RS6, "to the real server");
            let lport = u16::from_be_bytes([ip[40], ip[41]]);
            assert_eq!(u16::from_be_bytes([ip[42], ip[43]]), 8080);
            assert!(checksums_ok(&out.frame, 14));
            let b = etherparse::PacketBuilder::ethernet2(RS1_MAC, [0x02, 0, 0, 0, 0, 0xfe])
                .ipv6(RS6, LADDR6, 64)
                .tcp(8080, lport, 5000, 64240)
                .syn()
                .ack(1001);
            let mut reply = Vec::new();
            b.write(&mut reply, &[]).unwrap();
            let (out, _) = director.run_frame(eth0, &reply).unwrap();
            assert_eq!(out.verdict, XDP_TX);
            let ip = &out.frame[14..];
            assert_eq!(&ip[8..24], &VIP6, "from the VIP");
            assert_eq!(&ip[24..40], &CLIENT6, "to the client");
            assert_eq!(&ip[40..44], &[0, 80, 0xa0, 0x28], "ports 80 → 41000");
            assert_eq!(ip[7], 63, "one hop less");
            assert!(checksums_ok(&out.frame, 14));
        },
    );
}

/// A persistent FULLNAT service keeps a client on one real server across connections,
/// each from a local port of its own.
#[test]
fn a_persistent_fullnat_service_keeps_its_client() {
    Rig::new().with(
        &[
            "-A -t 1.1.1.254:80 -s rr -p 300",
            "-a -t 1.1.1.254:80 -r 10.0.0.10:80 -b",
            "-a -t 1.1.1.254:80 -r 10.0.0.20:80 -b",
            "-P -t 1.1.1.254:80 -z 10.0.0.254",
        ],
        |director, eth0| {
            let mut seen = Vec::new();
            for sport in 41000..41006 {
                let (out, _) = director
                    .run_frame(eth0, &tcp4(CLIENT, VIP, sport, 80, true, CLIENT_MAC))
                    .unwrap();
                assert_eq!(out.verdict, XDP_TX);
                seen.push(tuple(&out.frame));
            }
            assert!(
                seen.iter().all(|t| t.2 == seen[0].2),
                "one real server: {seen:?}"
            );
            let ports: HashSet<u16> = seen.iter().map(|t| t.1).collect();
            assert_eq!(ports.len(), seen.len(), "a local port each");
            let table = director.load().unwrap().table;
            let persistent: u32 = table.services[0]
                .dests
                .iter()
                .map(|d| d.conns.persistent)
                .sum();
            assert_eq!(persistent, 1, "one template");
        },
    );
}
