//! Golden frames as a table (TESTING.md level 2): each row is a named case — the rules,
//! the frames sent first, one input frame, and the whole expected outcome: the verdict,
//! the output's fields as parsed (not bytes at offsets), its checksums checked by an
//! independent sum, the counters that move and the connections made. The runner reports
//! every failing row. New frame-by-frame datapath cases are rows here.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use xvs_common::counter;
use xvs_datapath::{Director, netlink};

/// What a case expects of the director's answer to its input frame.
enum Expect {
    /// XDP_PASS with the frame as it came: the kernel takes it.
    Untouched,
    /// XDP_DROP.
    Dropped,
    /// Sent out again (XDP_TX), and this is what it says.
    Sent(Seen),
}

/// A frame as the test reads it back.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    dmac: [u8; 6],
    /// The outer header of a tunnelled packet.
    tunnel: Option<Outer>,
    src: IpAddr,
    dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    ttl: u8,
    /// IPv4 options, as carried.
    options: Vec<u8>,
    sport: u16,
    dport: u16,
    checksum: Checksum,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Outer {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    dont_fragment: bool,
}

/// The state of a frame's checksums (IPv4 headers, outer and inner, and TCP/UDP).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Checksum {
    Right,
    /// Right, and the UDP checksum is zero (none, over IPv4).
    UdpNone,
    Wrong,
}

/// One row.
struct Case {
    name: String,
    rules: &'static [&'static str],
    /// Frames run first (a SYN before its connection's other packets).
    before: Vec<Vec<u8>>,
    input: Vec<u8>,
    expect: Expect,
    /// Counters that move during the case (all others may move too), by how much.
    counted: Vec<(u32, u64)>,
    /// Live connections the case leaves that were not there before it.
    new_connections: usize,
    /// The IP packet (and all above it) leaves exactly as it came: only the MACs change.
    same_ip_packet: bool,
}

const DR: &[&str] = &[
    "-A -t 1.1.1.254:80 -s rr",
    "-a -t 1.1.1.254:80 -r 10.0.0.10 -g",
];
const NAT: &[&str] = &[
    "-A -t 1.1.1.254:80 -s rr",
    "-a -t 1.1.1.254:80 -r 10.0.0.10:8080 -m",
    "-A -u 1.1.1.254:53 -s rr",
    "-a -u 1.1.1.254:53 -r 10.0.0.10:5353 -m",
];
const TUNNEL: &[&str] = &[
    "-A -t 1.1.1.254:80 -s rr",
    "-a -t 1.1.1.254:80 -r 10.0.0.10 -i",
];
const IPV6: &[&str] = &[
    "-A -t [fd00:1::fe]:80 -s rr",
    "-a -t [fd00:1::fe]:80 -r [fd00:2::10]:80 -g",
    "-A -t [fd00:1::fe]:8080 -s rr",
    "-a -t [fd00:1::fe]:8080 -r [fd00:2::10]:80 -m",
];
const UNROUTABLE: &[&str] = &[
    "-A -t 1.1.1.254:80 -s rr",
    "-a -t 1.1.1.254:80 -r 10.9.9.9 -m",
];
/// One-packet scheduling: each datagram scheduled on its own (rr over two servers), no
/// connection kept.
const ONE_PACKET: &[&str] = &[
    "-A -u 1.1.1.254:53 -s rr -o",
    "-a -u 1.1.1.254:53 -r 10.0.0.10 -g",
    "-a -u 1.1.1.254:53 -r 10.0.0.20 -g",
];

/// lblc, the last scheduler to join the datapath: no fallback to wlc is counted.
const LBLC: &[&str] = &[
    "-A -t 1.1.1.254:80 -s lblc",
    "-a -t 1.1.1.254:80 -r 10.0.0.10 -g",
];

const HTTP_GET: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
const ETHERNET_HEADER_LEN: usize = 14;

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

fn syn(sport: u16, dport: u16) -> Vec<u8> {
    tcp4(CLIENT, VIP, sport, dport, true, CLIENT_MAC)
}

fn ack(sport: u16, dport: u16) -> Vec<u8> {
    tcp4(CLIENT, VIP, sport, dport, false, CLIENT_MAC)
}

/// What a client's TCP segment to the VIP says, sent on to `dmac` unchanged.
fn client_segment(dmac: [u8; 6], sport: u16, dport: u16, payload: &[u8]) -> Seen {
    Seen {
        dmac,
        tunnel: None,
        src: v4(CLIENT),
        dst: v4(VIP),
        ttl: 64,
        options: vec![],
        sport,
        dport,
        checksum: Checksum::Right,
        payload: payload.to_vec(),
    }
}

/// A case with no frames before it, no counter named and no connection made.
fn case(name: &str, rules: &'static [&'static str], input: Vec<u8>, expect: Expect) -> Case {
    Case {
        name: name.to_string(),
        rules,
        before: vec![],
        input,
        expect,
        counted: vec![],
        new_connections: 0,
        same_ip_packet: false,
    }
}

impl Case {
    fn after(mut self, frames: Vec<Vec<u8>>) -> Case {
        self.before = frames;
        self
    }

    fn counts(mut self, counter: u32, by: u64) -> Case {
        self.counted.push((counter, by));
        self
    }

    fn connects(mut self, connections: usize) -> Case {
        self.new_connections = connections;
        self
    }

    fn same_ip_packet(mut self) -> Case {
        self.same_ip_packet = true;
        self
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        case(
            "DR: a SYN goes out with only the destination MAC changed",
            DR,
            syn(40000, 80),
            Expect::Sent(client_segment(RS1_MAC, 40000, 80, b"")),
        )
        .counts(counter::NEW_CONNECTIONS, 1)
        .connects(1)
        .same_ip_packet(),
        case(
            "DR: the established flow goes the same way, payload intact",
            DR,
            ack(40001, 80),
            Expect::Sent(client_segment(RS1_MAC, 40001, 80, HTTP_GET)),
        )
        .after(vec![syn(40001, 80)])
        .counts(counter::FORWARDED, 2)
        .connects(1)
        .same_ip_packet(),
        case(
            "NAT: the request is rewritten to the real server's address and port",
            NAT,
            syn(40000, 80),
            Expect::Sent(Seen {
                dst: v4(RS1),
                dport: 8080,
                ..client_segment(RS1_MAC, 40000, 80, b"")
            }),
        )
        .connects(1),
        case(
            "NAT: the reply leaves from the VIP, back where the request came from, TTL down",
            NAT,
            tcp4(RS1, CLIENT, 8080, 40001, false, RS1_MAC),
            Expect::Sent(Seen {
                dmac: CLIENT_MAC,
                tunnel: None,
                src: v4(VIP),
                dst: v4(CLIENT),
                ttl: 63,
                options: vec![],
                sport: 80,
                dport: 40001,
                checksum: Checksum::Right,
                payload: HTTP_GET.to_vec(),
            }),
        )
        .after(vec![syn(40001, 80)])
        .connects(1),
        case(
            "NAT: a UDP datagram's checksum is kept right",
            NAT,
            udp4(CLIENT, VIP, 5000, 53, b"query"),
            Expect::Sent(Seen {
                dst: v4(RS1),
                sport: 5000,
                dport: 5353,
                payload: b"query".to_vec(),
                ..client_segment(RS1_MAC, 0, 0, b"")
            }),
        )
        .connects(1),
        case(
            "NAT: a zero UDP checksum stays zero",
            NAT,
            {
                let mut frame = udp4(CLIENT, VIP, 5001, 53, b"query");
                let checksum = frame.len() - b"query".len() - 2;
                frame[checksum..checksum + 2].fill(0);
                frame
            },
            Expect::Sent(Seen {
                dst: v4(RS1),
                sport: 5001,
                dport: 5353,
                checksum: Checksum::UdpNone,
                payload: b"query".to_vec(),
                ..client_segment(RS1_MAC, 0, 0, b"")
            }),
        )
        .connects(1),
        case(
            "NAT: IPv4 options are carried and the ports found after them",
            NAT,
            with_ipv4_options(&syn(40002, 80), &[1, 1, 1, 0]),
            Expect::Sent(Seen {
                dst: v4(RS1),
                dport: 8080,
                options: vec![1, 1, 1, 0],
                ..client_segment(RS1_MAC, 40002, 80, b"")
            }),
        )
        .connects(1),
        case(
            "tunnel: wrapped in IPIP from the director's address, DF and TTL copied",
            TUNNEL,
            syn(40000, 80),
            Expect::Sent(Seen {
                tunnel: Some(Outer {
                    src: v4([10, 0, 0, 254]),
                    dst: v4(RS1),
                    ttl: 64,
                    dont_fragment: true,
                }),
                ..client_segment(RS1_MAC, 40000, 80, b"")
            }),
        )
        .connects(1),
        case(
            "IPv6 DR: only the destination MAC changes",
            IPV6,
            tcp6(CLIENT6, VIP6, 40000, 80),
            Expect::Sent(Seen {
                src: v6(CLIENT6),
                dst: v6(VIP6),
                ..client_segment(RS1_MAC, 40000, 80, b"")
            }),
        )
        .connects(1)
        .same_ip_packet(),
        case(
            "IPv6 NAT: the real server's address and port",
            IPV6,
            tcp6(CLIENT6, VIP6, 40001, 8080),
            Expect::Sent(Seen {
                src: v6(CLIENT6),
                dst: v6(RS6),
                dport: 80,
                ..client_segment(RS1_MAC, 40001, 8080, b"")
            }),
        )
        .connects(1),
        case(
            "no route to the real server: a counted drop",
            UNROUTABLE,
            syn(40000, 80),
            Expect::Dropped,
        )
        .counts(counter::NO_ROUTE, 1),
        case(
            "every scheduler runs in the datapath: lblc is not counted as a fallback",
            LBLC,
            syn(40000, 80),
            Expect::Sent(client_segment(RS1_MAC, 40000, 80, b"")),
        )
        .counts(counter::SCHED_FALLBACK, 0)
        .connects(1),
        case(
            "another port of the VIP passes",
            DR,
            syn(40010, 22),
            Expect::Untouched,
        ),
        case(
            "another address passes",
            DR,
            tcp4(CLIENT, [1, 1, 1, 2], 40011, 80, true, CLIENT_MAC),
            Expect::Untouched,
        ),
        case(
            "UDP to a TCP service passes",
            DR,
            udp4(CLIENT, VIP, 40012, 80, b"x"),
            Expect::Untouched,
        ),
        case(
            "a segment that cannot start a connection passes to the kernel, which answers",
            DR,
            ack(40013, 80),
            Expect::Untouched,
        )
        .counts(counter::NOT_SCHEDULED, 1),
        case(
            "a first fragment not for a service passes",
            DR,
            with_fragment_bits(&syn(40014, 22), 0x2000),
            Expect::Untouched,
        ),
        case(
            "a later fragment whose first did not come through passes, counted",
            DR,
            with_fragment_bits(&syn(40015, 80), 0x0010),
            Expect::Untouched,
        )
        .counts(counter::FRAGMENTS, 1),
        case(
            "a total length beyond the frame is malformed",
            DR,
            with_total_length(&syn(40016, 80), 1500),
            Expect::Untouched,
        )
        .counts(counter::MALFORMED, 1),
        case(
            "a header length below five words is malformed",
            DR,
            {
                let mut frame = syn(40017, 80);
                frame[14] = 0x44;
                frame
            },
            Expect::Untouched,
        )
        .counts(counter::MALFORMED, 1),
        case("ARP is not IP", DR, arp(), Expect::Untouched).counts(counter::NOT_IP, 1),
    ];
    // `-o`: three datagrams of one flow go to the servers in turn (the newest first, as
    // IPVS lists them), each counted as a new connection, none kept.
    for (turn, dmac) in [RS2_MAC, RS1_MAC, RS2_MAC].into_iter().enumerate() {
        cases.push(
            case(
                &format!(
                    "-o: datagram {} of one flow is scheduled on its own",
                    turn + 1
                ),
                ONE_PACKET,
                udp4(CLIENT, VIP, 5000, 53, b"query"),
                Expect::Sent(Seen {
                    sport: 5000,
                    dport: 53,
                    payload: b"query".to_vec(),
                    ..client_segment(dmac, 0, 0, b"")
                }),
            )
            .counts(counter::NEW_CONNECTIONS, 1)
            .same_ip_packet(),
        );
    }
    // Truncated at every length (the kernel's test runner needs an Ethernet header).
    let whole = syn(40020, 80);
    for len in 14..whole.len() {
        cases.push(case(
            &format!("a SYN truncated to {len} bytes passes"),
            DR,
            whole[..len].to_vec(),
            Expect::Untouched,
        ));
    }
    cases
}

fn with_fragment_bits(frame: &[u8], bits: u16) -> Vec<u8> {
    let mut frame = frame.to_vec();
    frame[20..22].copy_from_slice(&bits.to_be_bytes());
    frame
}

fn with_total_length(frame: &[u8], length: u16) -> Vec<u8> {
    let mut frame = frame.to_vec();
    frame[16..18].copy_from_slice(&length.to_be_bytes());
    frame
}

/// The frame with `options` (a multiple of 4 bytes) inserted into its IPv4 header, lengths
/// and header checksum made right.
fn with_ipv4_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    let mut out = frame[..34].to_vec();
    out.extend_from_slice(options);
    out.extend_from_slice(&frame[34..]);
    out[14] = 0x45 + (options.len() / 4) as u8;
    let total = u16::from_be_bytes([out[16], out[17]]) + options.len() as u16;
    out[16..18].copy_from_slice(&total.to_be_bytes());
    out[24..26].fill(0);
    let sum = !ones_sum(&[&out[14..34 + options.len()]]);
    out[24..26].copy_from_slice(&sum.to_be_bytes());
    out
}

fn arp() -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&CLIENT_MAC);
    frame.extend_from_slice(&[0x08, 0x06]);
    frame.extend_from_slice(&[0u8; 28]);
    frame
}

/// Reads a frame the director sent.
fn seen(frame: &[u8]) -> Result<Seen, String> {
    let dmac: [u8; 6] = frame[..6].try_into().map_err(|_| "no Ethernet header")?;
    let outer = SlicedPacket::from_ethernet(frame).map_err(|e| e.to_string())?;
    let (packet, tunnel) = match &outer.net {
        Some(NetSlice::Ipv4(ip)) if ip.header().protocol().0 == 4 => {
            let h = ip.header();
            let inner = SlicedPacket::from_ip(ip.payload().payload).map_err(|e| e.to_string())?;
            let outer = Outer {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                ttl: h.ttl(),
                dont_fragment: h.dont_fragment(),
            };
            (inner, Some(outer))
        }
        _ => (outer, None),
    };
    let (src, dst, ttl, options) = match &packet.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.ttl(),
                h.options().to_vec(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                h.hop_limit(),
                vec![],
            )
        }
        _ => return Err("no IP header".into()),
    };
    let (sport, dport, payload, udp_none) = match &packet.transport {
        Some(TransportSlice::Tcp(tcp)) => (
            tcp.source_port(),
            tcp.destination_port(),
            tcp.payload().to_vec(),
            false,
        ),
        Some(TransportSlice::Udp(udp)) => (
            udp.source_port(),
            udp.destination_port(),
            udp.payload().to_vec(),
            udp.checksum() == 0,
        ),
        _ => return Err("no TCP or UDP header".into()),
    };
    let ip = if tunnel.is_some() { 34 } else { 14 };
    let outer_right = tunnel.is_none() || ones_sum(&[&frame[14..34]]) == 0xffff;
    let checksum = match (outer_right && checksums_ok(frame, ip), udp_none) {
        (false, _) => Checksum::Wrong,
        (true, true) => Checksum::UdpNone,
        (true, false) => Checksum::Right,
    };
    Ok(Seen {
        dmac,
        tunnel,
        src,
        dst,
        ttl,
        options,
        sport,
        dport,
        checksum,
        payload,
    })
}

/// Runs one case on `director`; what is wrong with the outcome, if anything.
fn run(director: &Director, eth0: u32, case: &Case) -> Result<(), String> {
    let counters_before = director.counters().map_err(|e| e.to_string())?;
    let connections_before = director.connections().map_err(|e| e.to_string())?.len();
    for frame in &case.before {
        director.run_frame(eth0, frame).map_err(|e| e.to_string())?;
    }
    let (out, _) = director
        .run_frame(eth0, &case.input)
        .map_err(|e| e.to_string())?;
    match &case.expect {
        Expect::Untouched if out.verdict != XDP_PASS || out.frame != case.input => {
            return Err(format!(
                "verdict {}, frame changed or not passed",
                out.verdict
            ));
        }
        Expect::Dropped if out.verdict != XDP_DROP => {
            return Err(format!("verdict {}, not a drop", out.verdict));
        }
        Expect::Sent(wanted) => {
            if out.verdict != XDP_TX {
                return Err(format!("verdict {}, not sent", out.verdict));
            }
            let got = seen(&out.frame)?;
            if got != *wanted {
                return Err(format!("sent\n  {got:?}\nnot\n  {wanted:?}"));
            }
            let ip = ETHERNET_HEADER_LEN;
            if case.same_ip_packet && out.frame.get(ip..) != case.input.get(ip..) {
                return Err("the IP packet changed".into());
            }
        }
        _ => {}
    }
    let counters_after = director.counters().map_err(|e| e.to_string())?;
    for &(counter, by) in &case.counted {
        let moved = counters_after[counter as usize] - counters_before[counter as usize];
        if moved != by {
            return Err(format!("counter {counter} moved by {moved}, not {by}"));
        }
    }
    let connections = director.connections().map_err(|e| e.to_string())?.len();
    if connections - connections_before != case.new_connections {
        return Err(format!(
            "{} new connections, not {}",
            connections - connections_before,
            case.new_connections
        ));
    }
    Ok(())
}

#[test]
fn golden_frames() {
    let cases = cases();
    let rig = Rig::new();
    // Cases with the same rules share a director (each uses its own client port); the
    // director is made anew for each set of rules.
    let mut rule_sets: Vec<&'static [&'static str]> = Vec::new();
    for case in &cases {
        if !rule_sets.contains(&case.rules) {
            rule_sets.push(case.rules);
        }
    }
    let mut failures = Vec::new();
    for rules in rule_sets {
        let mut failed = rig
            .lab
            .within("director", || {
                Director::destroy().unwrap();
                let mut director = Director::find_or_create().unwrap();
                change(&mut director, rules);
                let eth0 = netlink::interfaces()
                    .unwrap()
                    .into_iter()
                    .find(|i| i.name == "eth0")
                    .unwrap()
                    .index;
                cases
                    .iter()
                    .filter(|case| case.rules == rules)
                    .filter_map(|case| {
                        run(&director, eth0, case)
                            .err()
                            .map(|e| format!("{}: {e}", case.name))
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap();
        failures.append(&mut failed);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
