//! What the golden-packet tests share: a one-armed director rig, frame builders, and an
//! independent checksum.
// Each test file uses the part it needs.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use xvs_core::{restore, table::Table, text::NoNames};
use xvs_datapath::{Director, netlink};
use xvs_lab::{Lab, topology};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const RS1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
pub const RS2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
pub const CLIENT: [u8; 4] = [1, 1, 1, 1];
pub const VIP: [u8; 4] = [1, 1, 1, 254];
pub const RS1: [u8; 4] = [10, 0, 0, 10];
pub const CLIENT6: [u8; 16] = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const VIP6: [u8; 16] = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe];
pub const RS6: [u8; 16] = [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];

/// A director namespace with one interface (eth0) on which clients and real servers are
/// neighbours with known MACs (static entries), forwarding on.
pub struct Rig {
    pub lab: Lab,
}

impl Rig {
    pub fn new() -> Rig {
        let lab = topology::one_armed().build().unwrap();
        let neighbours: Vec<(String, [u8; 6])> = [
            ("1.1.1.1", CLIENT_MAC),
            ("10.0.0.10", RS1_MAC),
            ("10.0.0.20", RS2_MAC),
            ("10.0.0.30", RS2_MAC),
            ("fd00:1::1", CLIENT_MAC),
            ("fd00:2::10", RS1_MAC),
            ("fd00:2::20", RS2_MAC),
        ]
        .map(|(addr, mac)| (addr.to_string(), mac))
        .to_vec();
        lab.static_neighbours("director", "eth0", &neighbours)
            .unwrap();
        Rig { lab }
    }

    /// Runs `work` in the director's namespace with its director configured by `lines`.
    pub fn with<T: Send>(
        &self,
        lines: &[&str],
        work: impl FnOnce(&mut Director, u32) -> T + Send,
    ) -> T {
        self.lab
            .within("director", || {
                let mut director = Director::find_or_create().unwrap();
                change(&mut director, lines);
                let eth0 = netlink::interfaces()
                    .unwrap()
                    .into_iter()
                    .find(|i| i.name == "eth0")
                    .unwrap();
                work(&mut director, eth0.index)
            })
            .unwrap()
    }
}

/// Keeps the calling thread on CPU 0.
pub fn pin_to_first_cpu() {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// The service on a port of the VIP.
pub fn service_on(table: &Table, wanted: u16) -> &xvs_core::model::Service {
    table
        .services
        .iter()
        .find(|s| matches!(s.key, xvs_core::model::ServiceKey::Inet { port, .. } if port == wanted))
        .unwrap()
}

/// Applies ipvsadm command lines (in `-R` form) to the director's table.
pub fn change(director: &mut Director, lines: &[&str]) {
    let before = director.load().unwrap();
    let mut table = before.table.clone();
    restore::restore(&lines.join("\n"), &mut table, &NoNames, "xvsadm").unwrap();
    director.store(&before, &table).unwrap();
}

pub fn director_mac(frame_out: &[u8]) -> [u8; 6] {
    frame_out[6..12].try_into().unwrap()
}

pub fn tcp4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    syn: bool,
    src_mac: [u8; 6],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, [0x02, 0, 0, 0, 0, 0xfe])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let payload: &[u8] = if syn { &[] } else { b"GET / HTTP/1.1\r\n\r\n" };
    let mut frame = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut frame, payload).unwrap();
    frame
}

pub enum Flags {
    Rst,
    Fin,
}

/// A TCP segment without payload: a reset, or a FIN (with ACK).
pub fn tcp4_flags(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: Flags) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, [0x02, 0, 0, 0, 0, 0xfe])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 64240);
    let b = match flags {
        Flags::Rst => b.rst(),
        Flags::Fin => b.ack(1).fin(),
    };
    let mut frame = Vec::with_capacity(b.size(0));
    b.write(&mut frame, &[]).unwrap();
    frame
}

pub fn tcp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, [0x02, 0, 0, 0, 0, 0xfe])
        .ipv6(src, dst, 64)
        .tcp(sport, dport, 1000, 64240)
        .syn();
    let mut frame = Vec::with_capacity(b.size(0));
    b.write(&mut frame, &[]).unwrap();
    frame
}

pub fn udp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, [0x02, 0, 0, 0, 0, 0xfe])
        .ipv6(src, dst, 64)
        .udp(sport, dport);
    let mut frame = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut frame, payload).unwrap();
    frame
}

pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, [0x02, 0, 0, 0, 0, 0xfe])
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut frame = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut frame, payload).unwrap();
    frame
}

// An independent checksum check: the ones'-complement sum over a header (or pseudo
// header plus segment) including its checksum field is 0xffff when the checksum is right.

pub fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let bytes: Vec<u8> = chunks.concat();
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Checks the IPv4 header checksum (if IPv4) and the TCP/UDP checksum of an IP packet
/// starting at `ip` in `frame`.
pub fn checksums_ok(frame: &[u8], ip: usize) -> bool {
    let version = frame[ip] >> 4;
    let (l4, proto, pseudo) = if version == 4 {
        let ihl = usize::from(frame[ip] & 0x0f) * 4;
        if ones_sum(&[&frame[ip..ip + ihl]]) != 0xffff {
            return false;
        }
        let total = usize::from(u16::from_be_bytes([frame[ip + 2], frame[ip + 3]]));
        let len = (total - ihl) as u16;
        let mut pseudo = frame[ip + 12..ip + 20].to_vec();
        pseudo.extend_from_slice(&[0, frame[ip + 9]]);
        pseudo.extend_from_slice(&len.to_be_bytes());
        (&frame[ip + ihl..ip + total], frame[ip + 9], pseudo)
    } else {
        let payload = usize::from(u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]));
        let mut pseudo = frame[ip + 8..ip + 40].to_vec();
        pseudo.extend_from_slice(&(payload as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, frame[ip + 6]]);
        (&frame[ip + 40..ip + 40 + payload], frame[ip + 6], pseudo)
    };
    if proto == 17 && version == 4 && l4[6] == 0 && l4[7] == 0 {
        return true; // no UDP checksum over IPv4
    }
    ones_sum(&[&pseudo, l4]) == 0xffff
}

pub fn counters(director: &Director) -> Vec<u64> {
    director.counters().unwrap()
}
