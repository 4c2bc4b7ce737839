//! Forwarding-aware TCP checks: the check travels the way the director forwards a
//! client's packet, so it proves the real server takes the VIP, not only that its own
//! address answers. A SYN from the director's address to VIP:port is sent in a frame to
//! the real server's MAC (DR), or inside a tunnel packet to the real server (IPIP, or GUE
//! or GRE as the real server's `tunnel_type` says, with its checksum),
//! through a packet socket; the real server's answer comes back from the VIP straight to
//! the director, where the packet socket sees it (the kernel then drops it: its source is
//! one of the director's own addresses). A SYN-ACK passes, and is answered with a RST so
//! that the real server keeps no half-open connection; a RST or silence fails.
//!
//! IPv4 or IPv6, as the VIP and the real server are (an IPv6 answer is heard without
//! extension headers). A filter attached to the socket lets only the answer through, so
//! a busy interface costs the check nothing.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use xvs_datapath::netlink;
use xvs_health::config::{TunnelChecksum, TunnelConfig, TunnelType};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_GRE: u8 = 47;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// How the check reaches the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// In a frame to its MAC (LVS/DR).
    Direct,
    /// In a tunnel to its address (LVS/TUN), wrapped as the director wraps its packets.
    Tunnel(TunnelConfig),
}

/// One check of `real_server` for `vip`:`port`, within `timeout`.
pub fn check(
    vip: IpAddr,
    port: u16,
    real_server: IpAddr,
    path: Path,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let rip = real_server;
    if vip.is_ipv4() != rip.is_ipv4() {
        return Err(format!("{vip} and {rip} are not of one family"));
    }
    let route = netlink::route_to(rip).map_err(|e| format!("route to {rip}: {e}"))?;
    let hop = route.next_hop(rip);
    let source = route
        .source
        .filter(|s| s.is_ipv4() == rip.is_ipv4())
        .ok_or_else(|| format!("no source address of its family toward {rip}"))?;
    let smac = netlink::interface_mac(route.oif)
        .ok()
        .flatten()
        .ok_or_else(|| format!("no MAC on the interface toward {rip}"))?;
    let dmac = resolve(route.oif, hop, deadline)?;
    let sport = 32_768 + (nonce() % 28_000) as u16;
    let isn = nonce();
    let socket = PacketSocket::open(route.oif, vip, port, sport)?;
    let syn = frame(path, smac, dmac, source, vip, rip, sport, port, isn, 0, SYN);
    socket.send(&syn)?;
    let target = std::net::SocketAddr::new(vip, port);
    let via = match path {
        Path::Direct => format!("through {rip}'s MAC"),
        Path::Tunnel(_) => format!("tunnelled to {rip}"),
    };
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer from {target} {via}"))?;
        let Some(flags_and_seq) = socket.receive(left)? else {
            continue;
        };
        let (flags, seq) = flags_and_seq;
        if flags & RST != 0 {
            return Err(format!("{target} {via} refused (RST)"));
        }
        if flags & (SYN | ACK) == SYN | ACK {
            let rst = frame(
                path,
                smac,
                dmac,
                source,
                vip,
                rip,
                sport,
                port,
                isn.wrapping_add(1),
                seq.wrapping_add(1),
                RST | ACK,
            );
            let _ = socket.send(&rst);
            return Ok(());
        }
    }
}

/// The MAC of `hop`, asking the kernel to resolve it if it has not yet.
fn resolve(oif: u32, hop: IpAddr, deadline: Instant) -> Result<[u8; 6], String> {
    let mut asked = false;
    loop {
        if let Ok(Some(mac)) = netlink::neighbour_mac(oif, hop) {
            return Ok(mac);
        }
        if !asked {
            let _ = netlink::keep_neighbour_resolved(oif, hop);
            asked = true;
        }
        if Instant::now() >= deadline {
            return Err(format!("{hop} does not answer ARP"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A number nobody can guess easily enough for a port and a sequence number.
fn nonce() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mixed = now.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

/// The internet checksum of `data`, starting from `sum`.
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4_header(source: Ipv4Addr, destination: Ipv4Addr, protocol: u8, payload: usize) -> [u8; 20] {
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment (and so identification 0, RFC 6864)
    ip[8] = 64;
    ip[9] = protocol;
    ip[12..16].copy_from_slice(&source.octets());
    ip[16..20].copy_from_slice(&destination.octets());
    let sum = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip
}

fn ipv6_header(source: Ipv6Addr, destination: Ipv6Addr, next: u8, payload: usize) -> [u8; 40] {
    let mut ip = [0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    ip[6] = next;
    ip[7] = 64;
    ip[8..24].copy_from_slice(&source.octets());
    ip[24..40].copy_from_slice(&destination.octets());
    ip
}

/// An IP header of the addresses' family from `source` to `destination`, carrying
/// `payload` bytes of `protocol`.
fn ip_header(source: IpAddr, destination: IpAddr, protocol: u8, payload: usize) -> Vec<u8> {
    match (source, destination) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_header(s, d, protocol, payload).to_vec(),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_header(s, d, protocol, payload).to_vec(),
        _ => Vec::new(),
    }
}

/// The pseudo-header TCP's and UDP's checksums cover, of the addresses' family.
fn pseudo_header(source: IpAddr, destination: IpAddr, protocol: u8, length: usize) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(40);
    match (source, destination) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, protocol]);
            pseudo.extend_from_slice(&(length as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(length as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, protocol]);
        }
        _ => {}
    }
    pseudo
}

/// The ethertype of `address`'s family.
fn ethertype(address: IpAddr) -> u16 {
    if address.is_ipv4() {
        ETH_P_IP
    } else {
        ETH_P_IPV6
    }
}

/// A TCP segment with no data (a SYN carries an MSS option) from `source`:`sport` to
/// `vip`:`port`, in an Ethernet frame, inside a tunnel to `rip` for a tunnel real server.
#[allow(clippy::too_many_arguments)]
fn frame(
    path: Path,
    smac: [u8; 6],
    dmac: [u8; 6],
    source: IpAddr,
    vip: IpAddr,
    rip: IpAddr,
    sport: u16,
    port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
) -> Vec<u8> {
    let options: &[u8] = if flags & SYN != 0 {
        &[2, 4, 0x05, 0x78] // MSS 1400: fits a tunnel's overhead
    } else {
        &[]
    };
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&port.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = (((20 + options.len()) / 4) << 4) as u8;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    tcp.extend_from_slice(options);
    let pseudo = pseudo_header(source, vip, IPPROTO_TCP, tcp.len());
    let partial = u32::from(!checksum(&pseudo, 0));
    let sum = checksum(&tcp, partial);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());

    let mut packet = ip_header(source, vip, IPPROTO_TCP, tcp.len());
    packet.extend_from_slice(&tcp);
    let mut out = Vec::with_capacity(14 + 80 + tcp.len());
    out.extend_from_slice(&dmac);
    out.extend_from_slice(&smac);
    out.extend_from_slice(&ethertype(source).to_be_bytes());
    if let Path::Tunnel(tunnel) = path {
        let (protocol, header) = tunnel_header(&tunnel, source, rip, &packet);
        out.extend_from_slice(&ip_header(
            source,
            rip,
            protocol,
            header.len() + packet.len(),
        ));
        out.extend_from_slice(&header);
    }
    out.extend_from_slice(&packet);
    out
}

/// The outer protocol and the header between the outer IP header and `packet` for a
/// tunnel from `source` to `rip`, as the director's datapath writes them: none (IPIP, or
/// IPv6 in IPv6), UDP and GUE to the tunnel's port, or GRE; with a checksum if the tunnel
/// asks for one.
fn tunnel_header(
    tunnel: &TunnelConfig,
    source: IpAddr,
    rip: IpAddr,
    packet: &[u8],
) -> (u8, Vec<u8>) {
    let inner = if source.is_ipv4() {
        IPPROTO_IPIP
    } else {
        IPPROTO_IPV6
    };
    let summed = matches!(
        tunnel.tunnel_checksum,
        Some(TunnelChecksum::Csum | TunnelChecksum::Remcsum)
    );
    match tunnel.tunnel_type {
        Some(TunnelType::Gue) => {
            let length = (8 + 4 + packet.len()) as u16;
            let mut header = Vec::with_capacity(12);
            header.extend_from_slice(&(49_152 + (nonce() % 16_384) as u16).to_be_bytes());
            header.extend_from_slice(&tunnel.tunnel_port.unwrap_or(0).to_be_bytes());
            header.extend_from_slice(&length.to_be_bytes());
            header.extend_from_slice(&[0, 0, 0, inner, 0, 0]);
            if summed {
                let mut pseudo = pseudo_header(source, rip, IPPROTO_UDP, length.into());
                pseudo.extend_from_slice(&header);
                pseudo.extend_from_slice(packet);
                let sum = match checksum(&pseudo, 0) {
                    0 => 0xffff,
                    sum => sum,
                };
                header[6..8].copy_from_slice(&sum.to_be_bytes());
            }
            (IPPROTO_UDP, header)
        }
        Some(TunnelType::Gre) => {
            let mut header = vec![if summed { 0x80 } else { 0 }, 0];
            header.extend_from_slice(&ethertype(source).to_be_bytes());
            if summed {
                header.extend_from_slice(&[0; 4]);
                let mut covered = header.clone();
                covered.extend_from_slice(packet);
                let sum = checksum(&covered, 0);
                header[4..6].copy_from_slice(&sum.to_be_bytes());
            }
            (IPPROTO_GRE, header)
        }
        _ => (inner, Vec::new()),
    }
}

/// A packet socket on one interface that receives only TCP segments from `vip`:`port` to
/// port `sport`.
struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
    /// The ethertype it sends and hears (the check's family).
    protocol: u16,
}

impl PacketSocket {
    fn open(ifindex: u32, vip: IpAddr, port: u16, sport: u16) -> Result<PacketSocket, String> {
        let fail = |what: &str| format!("{what}: {}", io::Error::last_os_error());
        // SAFETY: socket(2), setsockopt(2) and bind(2) with structures sized as given.
        unsafe {
            // Protocol 0 receives nothing until bound: the filter is in place first.
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(fail("packet socket (needs CAP_NET_RAW)"));
            }
            let socket = PacketSocket {
                fd: OwnedFd::from_raw_fd(fd),
                ifindex,
                protocol: ethertype(vip),
            };
            let mut program = answer_filter(vip, port, sport);
            let fprog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_mut_ptr(),
            };
            if libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&raw const fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as u32,
            ) != 0
            {
                return Err(fail("socket filter"));
            }
            let address = socket.link_address();
            if libc::bind(
                fd,
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ) != 0
            {
                return Err(fail("bind packet socket"));
            }
            Ok(socket)
        }
    }

    fn link_address(&self) -> libc::sockaddr_ll {
        // SAFETY: sockaddr_ll is plain data.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = self.protocol.to_be();
        address.sll_ifindex = self.ifindex as i32;
        address
    }

    fn send(&self, frame: &[u8]) -> Result<(), String> {
        let mut address = self.link_address();
        address.sll_halen = 6;
        address.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: sends `frame` to the address given with its size.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if sent < 0 {
            return Err(format!("send: {}", io::Error::last_os_error()));
        }
        Ok(())
    }

    /// The flags and sequence number of the next answer, waiting at most `wait`.
    fn receive(&self, wait: Duration) -> Result<Option<(u8, u32)>, String> {
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one pollfd.
        if unsafe { libc::poll(&mut poll, 1, millis) } <= 0 {
            return Ok(None);
        }
        let mut buffer = [0u8; 256];
        // SAFETY: receives into `buffer`, no more than its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Ok(None);
        }
        Ok(tcp_answer(&buffer[..n as usize]))
    }
}

/// The flags and sequence number of the TCP segment in an Ethernet frame.
fn tcp_answer(frame: &[u8]) -> Option<(u8, u32)> {
    let ip = frame.get(14..)?;
    let header = match ip.first()? >> 4 {
        4 => usize::from(ip.first()? & 0x0f) * 4,
        _ => 40,
    };
    let tcp = ip.get(header..header + 20)?;
    Some((tcp[13], u32::from_be_bytes(tcp[4..8].try_into().ok()?)))
}

/// Classic BPF: loads of a half word, word and byte at a fixed offset, of the IPv4
/// header's length, and of a half word past it; a test for equality; a return.
const LD_H_ABS: u16 = 0x28;
const LD_W_ABS: u16 = 0x20;
const LD_B_ABS: u16 = 0x30;
const LDX_MSH: u16 = 0xb1;
const LD_H_IND: u16 = 0x48;
const JEQ: u16 = 0x15;
const RET: u16 = 0x06;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// A classic BPF program letting through only TCP from `vip`:`port` to `sport`.
fn answer_filter(vip: IpAddr, port: u16, sport: u16) -> Vec<libc::sock_filter> {
    match vip {
        IpAddr::V4(vip) => vec![
            op(LD_H_ABS, 0, 0, 12),
            op(JEQ, 0, 9, u32::from(ETH_P_IP)),
            op(LD_W_ABS, 0, 0, 26),
            op(JEQ, 0, 7, u32::from(vip)),
            op(LD_B_ABS, 0, 0, 23),
            op(JEQ, 0, 5, u32::from(IPPROTO_TCP)),
            // The IPv4 header's length, whatever its options.
            op(LDX_MSH, 0, 0, 14),
            op(LD_H_IND, 0, 0, 14),
            op(JEQ, 0, 2, u32::from(port)),
            op(LD_H_IND, 0, 0, 16),
            op(JEQ, 1, 0, u32::from(sport)),
            op(RET, 0, 0, 0),
            op(RET, 0, 0, 256),
        ],
        IpAddr::V6(vip) => {
            // Fixed offsets: TCP right after the 40-byte header.
            let mut tests = vec![
                (LD_H_ABS, 12, u32::from(ETH_P_IPV6)),
                (LD_B_ABS, 20, u32::from(IPPROTO_TCP)),
            ];
            for (i, word) in vip.octets().chunks_exact(4).enumerate() {
                let word = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
                tests.push((LD_W_ABS, 22 + 4 * i as u32, word));
            }
            tests.push((LD_H_ABS, 54, u32::from(port)));
            tests.push((LD_H_ABS, 56, u32::from(sport)));
            let count = tests.len();
            let mut program = Vec::with_capacity(2 * count + 2);
            for (i, (load, offset, value)) in tests.into_iter().enumerate() {
                // A mismatch jumps over the tests left to the refusal; the last match
                // jumps over the refusal.
                let left = (count - 1 - i) as u8;
                program.push(op(load, 0, 0, offset));
                program.push(op(JEQ, u8::from(left == 0), 2 * left, value));
            }
            program.push(op(RET, 0, 0, 0));
            program.push(op(RET, 0, 0, 256));
            program
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syn_frame_has_right_checksums_and_the_tunnel_wraps_it() {
        let (s, v, r) = (
            Ipv4Addr::new(1, 1, 1, 253),
            Ipv4Addr::new(1, 1, 1, 254),
            Ipv4Addr::new(1, 1, 1, 20),
        );
        let (si, vi, ri) = (IpAddr::V4(s), IpAddr::V4(v), IpAddr::V4(r));
        let direct = frame(
            Path::Direct,
            [2; 6],
            [4; 6],
            si,
            vi,
            ri,
            40_000,
            80,
            7,
            0,
            SYN,
        );
        assert_eq!(&direct[0..6], &[4; 6]);
        let ip = &direct[14..34];
        assert_eq!(checksum(ip, 0), 0, "IP header sums to zero");
        assert_eq!(&ip[16..20], &v.octets());
        let tcp = &direct[34..];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&s.octets());
        pseudo.extend_from_slice(&v.octets());
        pseudo.extend_from_slice(&[0, 6, 0, tcp.len() as u8]);
        pseudo.extend_from_slice(tcp);
        assert_eq!(checksum(&pseudo, 0), 0, "TCP sums to zero");
        assert_eq!(tcp_answer(&direct), Some((SYN, 7)));

        let ipip = Path::Tunnel(TunnelConfig::default());
        let tunnel = frame(ipip, [2; 6], [4; 6], si, vi, ri, 40_000, 80, 7, 0, SYN);
        assert_eq!(tunnel.len(), direct.len() + 20);
        assert_eq!(tunnel[14 + 9], IPPROTO_IPIP);
        assert_eq!(&tunnel[14 + 16..14 + 20], &r.octets());
        assert_eq!(&tunnel[34..], &direct[14..]);
        assert_eq!(checksum(&tunnel[14..34], 0), 0, "outer header sums to zero");

        // GUE to the real server's port, its UDP checksum over the whole packet.
        let gue = Path::Tunnel(TunnelConfig {
            tunnel_type: Some(TunnelType::Gue),
            tunnel_port: Some(6080),
            tunnel_checksum: Some(TunnelChecksum::Csum),
        });
        let tunnel = frame(gue, [2; 6], [4; 6], si, vi, ri, 40_000, 80, 7, 0, SYN);
        assert_eq!(tunnel.len(), direct.len() + 32);
        assert_eq!(tunnel[14 + 9], IPPROTO_UDP);
        let udp = &tunnel[34..];
        assert_eq!(&udp[2..4], &6080u16.to_be_bytes());
        assert_eq!(&udp[8..12], &[0, IPPROTO_IPIP, 0, 0]);
        assert_eq!(&udp[12..], &direct[14..]);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&tunnel[26..34]);
        pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
        pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(udp);
        assert_eq!(checksum(&pseudo, 0), 0, "UDP sums to zero");

        // GRE with its checksum.
        let gre = Path::Tunnel(TunnelConfig {
            tunnel_type: Some(TunnelType::Gre),
            tunnel_port: None,
            tunnel_checksum: Some(TunnelChecksum::Csum),
        });
        let tunnel = frame(gre, [2; 6], [4; 6], si, vi, ri, 40_000, 80, 7, 0, SYN);
        assert_eq!(tunnel.len(), direct.len() + 28);
        assert_eq!(tunnel[14 + 9], IPPROTO_GRE);
        assert_eq!(&tunnel[34..38], &[0x80, 0, 0x08, 0x00]);
        assert_eq!(checksum(&tunnel[34..], 0), 0, "GRE sums to zero");
        assert_eq!(&tunnel[42..], &direct[14..]);
    }

    #[test]
    fn an_ipv6_syn_frame_has_right_checksums_and_tunnels_wrap_it_in_ipv6() {
        let s: IpAddr = "fd00:1::fd".parse().unwrap();
        let v: IpAddr = "fd00:9::1".parse().unwrap();
        let r: IpAddr = "fd00:1::10".parse().unwrap();
        let direct = frame(Path::Direct, [2; 6], [4; 6], s, v, r, 40_000, 80, 7, 0, SYN);
        assert_eq!(&direct[12..14], &ETH_P_IPV6.to_be_bytes());
        assert_eq!(direct[14 + 6], IPPROTO_TCP);
        let tcp = &direct[54..];
        let mut pseudo = pseudo_header(s, v, IPPROTO_TCP, tcp.len());
        pseudo.extend_from_slice(tcp);
        assert_eq!(checksum(&pseudo, 0), 0, "TCP sums to zero");
        assert_eq!(tcp_answer(&direct), Some((SYN, 7)));

        let ipip = frame(
            Path::Tunnel(TunnelConfig::default()),
            [2; 6],
            [4; 6],
            s,
            v,
            r,
            40_000,
            80,
            7,
            0,
            SYN,
        );
        assert_eq!(ipip[14 + 6], IPPROTO_IPV6, "IPv6 in IPv6");
        assert_eq!(&ipip[54..], &direct[14..]);
        let gre = Path::Tunnel(TunnelConfig {
            tunnel_type: Some(TunnelType::Gre),
            tunnel_port: None,
            tunnel_checksum: Some(TunnelChecksum::Csum),
        });
        let gre = frame(gre, [2; 6], [4; 6], s, v, r, 40_000, 80, 7, 0, SYN);
        assert_eq!(gre[14 + 6], IPPROTO_GRE);
        assert_eq!(&gre[54..58], &[0x80, 0, 0x86, 0xdd]);
        assert_eq!(checksum(&gre[54..], 0), 0, "GRE sums to zero");
        assert_eq!(answer_filter(v, 80, 40_000).len(), 2 * 8 + 2);
    }
}
