//! PROXY protocol v2 on FULLNAT connections, frame by frame (BPF_PROG_TEST_RUN): the
//! header put before the client's first byte (again while the real server has not
//! acknowledged it), sequence numbers, acknowledgements and SACK blocks moved by its length
//! for the rest of the connection, the SYN-ACK's MSS made smaller, checksums right.

mod common;

use common::*;
use etherparse::{PacketBuilder, TcpOptionElement};
use xvs_common::{PROXY_V2_SIGNATURE, counter};

const LADDR: [u8; 4] = [10, 0, 0, 254];
const CLIENT_ISN: u32 = 1000;
const SERVER_ISN: u32 = 5000;
const HEADER: u32 = 28;
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

const RULES: &[&str] = &[
    "-A -t 1.1.1.254:80 -s rr --proxy-protocol v2",
    "-a -t 1.1.1.254:80 -r 10.0.0.10:8080 -b",
    "-P -t 1.1.1.254:80 -z 10.0.0.254",
];

/// A TCP segment over IPv4 as the wire has it.
struct Segment {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    options: Vec<TcpOptionElement>,
    payload: Vec<u8>,
}

impl Segment {
    fn frame(&self, mac: [u8; 6]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(mac, [0x02, 0, 0, 0, 0, 0xfe])
            .ipv4(self.src, self.dst, 64)
            .tcp(self.sport, self.dport, self.seq, 64240);
        let b = if self.syn { b.syn() } else { b };
        let b = match self.ack {
            Some(ack) => b.ack(ack),
            None => b,
        };
        let b = b.options(&self.options).unwrap();
        let mut frame = Vec::new();
        b.write(&mut frame, &self.payload).unwrap();
        frame
    }
}

/// What a frame that left the director says: addresses, ports, sequence and
/// acknowledgement numbers, options and payload.
struct Seen {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    options: Vec<u8>,
    payload: Vec<u8>,
}

fn seen(frame: &[u8]) -> Seen {
    assert!(checksums_ok(frame, 14), "checksums");
    let ip = &frame[14..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_eq!(total, ip.len(), "IP length is the frame's");
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let l4 = &ip[ihl..total];
    let offset = usize::from(l4[12] >> 4) * 4;
    Seen {
        src: ip[12..16].try_into().unwrap(),
        dst: ip[16..20].try_into().unwrap(),
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        seq: u32::from_be_bytes(l4[4..8].try_into().unwrap()),
        ack: u32::from_be_bytes(l4[8..12].try_into().unwrap()),
        options: l4[20..offset].to_vec(),
        payload: l4[offset..].to_vec(),
    }
}

/// The v2 header xvs must send for a TCP client over IPv4.
fn expected_header(client: [u8; 4], cport: u16, vip: [u8; 4], vport: u16) -> Vec<u8> {
    let mut h = PROXY_V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&client);
    h.extend_from_slice(&vip);
    h.extend_from_slice(&cport.to_be_bytes());
    h.extend_from_slice(&vport.to_be_bytes());
    h
}

fn client(seq: u32, ack: Option<u32>, syn: bool, payload: &[u8]) -> Segment {
    Segment {
        src: CLIENT,
        dst: VIP,
        sport: 41000,
        dport: 80,
        seq,
        ack,
        syn,
        options: Vec::new(),
        payload: payload.to_vec(),
    }
}

fn server(lport: u16, seq: u32, ack: u32, syn: bool, options: Vec<TcpOptionElement>) -> Segment {
    Segment {
        src: RS1,
        dst: LADDR,
        sport: 8080,
        dport: lport,
        seq,
        ack: Some(ack),
        syn,
        options,
        payload: Vec::new(),
    }
}

#[test]
fn the_header_goes_first_and_both_counts_are_kept_apart_by_it() {
    Rig::new().with(RULES, |director, eth0| {
        let send = |segment: &Segment, mac: [u8; 6]| {
            let (out, _) = director.run_frame(eth0, &segment.frame(mac)).unwrap();
            assert_eq!(out.verdict, XDP_TX);
            seen(&out.frame)
        };
        let first = CLIENT_ISN + 1;
        // The SYN passes as it is: nothing is before the stream.
        let mut syn = client(CLIENT_ISN, None, true, b"");
        syn.options = vec![TcpOptionElement::MaximumSegmentSize(1460)];
        let out = send(&syn, CLIENT_MAC);
        assert_eq!((out.src, out.dst, out.seq), (LADDR, RS1, CLIENT_ISN));
        assert!(out.payload.is_empty());
        let lport = out.sport;

        // The SYN-ACK announces a segment smaller by the header; its ack is untouched.
        let syn_ack = server(
            lport,
            SERVER_ISN,
            first,
            true,
            vec![TcpOptionElement::MaximumSegmentSize(1460)],
        );
        let out = send(&syn_ack, RS1_MAC);
        assert_eq!((out.src, out.dst, out.dport), (VIP, CLIENT, 41000));
        assert_eq!(out.ack, first);
        assert_eq!(out.options[..4], [2, 4, 0x05, 0x98], "MSS 1460 - 28 = 1432");

        // The handshake's last ACK carries the header: the server may speak first.
        let header = expected_header(CLIENT, 41000, VIP, 80);
        let out = send(&client(first, Some(SERVER_ISN + 1), false, b""), CLIENT_MAC);
        assert_eq!(out.seq, first);
        assert_eq!(out.payload, header);
        // The first data, before the server acknowledged the header: header again.
        let out = send(
            &client(first, Some(SERVER_ISN + 1), false, REQUEST),
            CLIENT_MAC,
        );
        assert_eq!(out.seq, first);
        assert_eq!(out.payload, [header.as_slice(), REQUEST].concat());
        assert_eq!(counters(director)[counter::PROXY_HEADERS as usize], 2);

        // The server acknowledges header and request: the client hears of its request only.
        let len = REQUEST.len() as u32;
        let out = send(
            &server(lport, SERVER_ISN + 1, first + HEADER + len, false, vec![]),
            RS1_MAC,
        );
        assert_eq!(out.ack, first + len);
        // A retransmission of the first data now goes without the header, after it.
        let out = send(
            &client(first, Some(SERVER_ISN + 1), false, REQUEST),
            CLIENT_MAC,
        );
        assert_eq!(out.seq, first + HEADER);
        assert_eq!(out.payload, REQUEST);
        assert_eq!(counters(director)[counter::PROXY_HEADERS as usize], 2);
        // Later segments are moved along by the header.
        let out = send(
            &client(first + len, Some(SERVER_ISN + 1), false, b"more"),
            CLIENT_MAC,
        );
        assert_eq!(out.seq, first + HEADER + len);
        assert_eq!(out.payload, b"more");

        // SACK blocks are in the client's count too: one block at an even offset, two at
        // an odd one, four (the most an option holds) straight after the header.
        let (left, right) = (first + HEADER + len + 100, first + HEADER + len + 200);
        let blocks: Vec<(u32, u32)> = (0..4).map(|i| (left + 300 * i, right + 300 * i)).collect();
        for (options, at, count) in [
            (
                vec![
                    TcpOptionElement::Noop,
                    TcpOptionElement::Noop,
                    TcpOptionElement::SelectiveAcknowledgement(blocks[0], [None; 3]),
                ],
                4,
                1,
            ),
            (
                vec![
                    TcpOptionElement::Noop,
                    TcpOptionElement::SelectiveAcknowledgement(
                        blocks[0],
                        [Some(blocks[1]), None, None],
                    ),
                ],
                3,
                2,
            ),
            (
                vec![TcpOptionElement::SelectiveAcknowledgement(
                    blocks[0],
                    [Some(blocks[1]), Some(blocks[2]), Some(blocks[3])],
                )],
                2,
                4,
            ),
        ] {
            let out = send(
                &server(lport, SERVER_ISN + 1, first + HEADER + len, false, options),
                RS1_MAC,
            );
            assert_eq!(out.ack, first + len);
            let edge = |i: usize| {
                u32::from_be_bytes(out.options[at + 4 * i..at + 4 * i + 4].try_into().unwrap())
            };
            for (i, (l, r)) in blocks.iter().take(count).enumerate() {
                assert_eq!(
                    (edge(2 * i), edge(2 * i + 1)),
                    (l - HEADER, r - HEADER),
                    "block {i} of {count}"
                );
            }
        }

        // A retransmitted SYN is still before the stream.
        let out = send(&client(CLIENT_ISN, None, true, b""), CLIENT_MAC);
        assert_eq!(out.seq, CLIENT_ISN);
        assert!(out.payload.is_empty());
    });
}

#[test]
fn a_service_without_the_option_sends_no_header() {
    Rig::new().with(
        &[
            "-A -t 1.1.1.254:80 -s rr",
            "-a -t 1.1.1.254:80 -r 10.0.0.10:8080 -b",
            "-P -t 1.1.1.254:80 -z 10.0.0.254",
        ],
        |director, eth0| {
            let syn = client(CLIENT_ISN, None, true, b"").frame(CLIENT_MAC);
            director.run_frame(eth0, &syn).unwrap();
            let data = client(CLIENT_ISN + 1, Some(1), false, REQUEST).frame(CLIENT_MAC);
            let (out, _) = director.run_frame(eth0, &data).unwrap();
            let out = seen(&out.frame);
            assert_eq!((out.seq, out.payload.as_slice()), (CLIENT_ISN + 1, REQUEST));
            assert_eq!(counters(director)[counter::PROXY_HEADERS as usize], 0);
        },
    );
}

#[test]
fn over_ipv6_the_header_carries_both_addresses() {
    const LADDR6: [u8; 16] = [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe];
    Rig::new().with(
        &[
            "-A -t [fd00:1::fe]:80 -s rr --proxy-protocol v2",
            "-a -t [fd00:1::fe]:80 -r [fd00:2::10]:8080 -b",
            "-P -t [fd00:1::fe]:80 -z fd00:2::fe",
        ],
        |director, eth0| {
            let frame = |seq: u32, syn: bool, payload: &[u8]| {
                let b = PacketBuilder::ethernet2(CLIENT_MAC, [0x02, 0, 0, 0, 0, 0xfe])
                    .ipv6(CLIENT6, VIP6, 64)
                    .tcp(41000, 80, seq, 64240);
                let b = if syn { b.syn() } else { b.ack(1) };
                let mut frame = Vec::new();
                b.write(&mut frame, payload).unwrap();
                frame
            };
            let (out, _) = director
                .run_frame(eth0, &frame(CLIENT_ISN, true, b""))
                .unwrap();
            assert_eq!(out.verdict, XDP_TX);
            let (out, _) = director
                .run_frame(eth0, &frame(CLIENT_ISN + 1, false, REQUEST))
                .unwrap();
            assert_eq!(out.verdict, XDP_TX);
            let f = &out.frame;
            assert!(checksums_ok(f, 14));
            let payload_len = usize::from(u16::from_be_bytes([f[18], f[19]]));
            assert_eq!(payload_len, f.len() - 14 - 40);
            assert_eq!(&f[22..38], &LADDR6, "from the local address");
            let payload = &f[14 + 40 + 20..];
            let mut header = PROXY_V2_SIGNATURE.to_vec();
            header.extend_from_slice(&[0x21, 0x21, 0, 36]);
            header.extend_from_slice(&CLIENT6);
            header.extend_from_slice(&VIP6);
            header.extend_from_slice(&41000u16.to_be_bytes());
            header.extend_from_slice(&80u16.to_be_bytes());
            assert_eq!(payload, [header.as_slice(), REQUEST].concat());
        },
    );
}
