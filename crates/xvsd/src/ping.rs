//! keepalived's PING_CHECK: an ICMP (ICMPv6) echo request to the real server, passed by
//! the echo reply with its identifier and sequence number.
//!
//! On a raw socket (xvsd runs as root): keepalived's unprivileged ping socket needs the
//! namespace's `ping_group_range` to include xvsd's group, which keepalived widens and
//! xvs would rather not touch. The socket is connected to the real server, so only its
//! packets arrive; every check sends its own sequence number, so two checks of one server
//! never take each other's replies.

use std::{
    io,
    net::IpAddr,
    os::fd::{AsRawFd, OwnedFd},
    sync::atomic::{AtomicU16, Ordering},
    time::Instant,
};

use crate::sockaddr::Origin;

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// What the request carries after its header.
const PAYLOAD: &[u8; 16] = b"xvsd ping check.";

/// Sequence numbers of this process's echo requests.
static SEQUENCE: AtomicU16 = AtomicU16::new(1);

/// One echo request to `address`, answered before `deadline`.
pub fn echo(address: IpAddr, origin: &Origin, deadline: Instant) -> Result<(), String> {
    let failed = |why: String| format!("ping {address}: {why}");
    let socket = connected(address, origin).map_err(|e| failed(e.to_string()))?;
    let id = std::process::id() as u16;
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let request = request(address.is_ipv4(), id, sequence);
    // SAFETY: send(2) of a buffer of the given length on an open socket.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
        )
    };
    if sent < 0 {
        return Err(failed(io::Error::last_os_error().to_string()));
    }
    let mut buffer = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed("no echo reply within the timeout".to_string()));
        }
        let mut poll = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: poll(2) on one pollfd, then recv(2) into a buffer of the given length.
        let n = unsafe {
            if libc::poll(&mut poll, 1, ms) <= 0 {
                continue;
            }
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                // An ICMP error about the request (host unreachable) fails at once.
                _ => return Err(failed(e.to_string())),
            }
        }
        if is_reply(&buffer[..n as usize], address.is_ipv4(), id, sequence) {
            return Ok(());
        }
    }
}

/// A raw ICMP (ICMPv6) socket connected to `address`, leaving from `origin`.
fn connected(address: IpAddr, origin: &Origin) -> io::Result<OwnedFd> {
    let protocol = match address {
        IpAddr::V4(_) => libc::IPPROTO_ICMP,
        IpAddr::V6(_) => libc::IPPROTO_ICMPV6,
    };
    let socket = crate::sockaddr::socket(address, libc::SOCK_RAW, protocol)?;
    origin.apply(&socket, address)?;
    let (peer, len) = crate::sockaddr::of(address, 0);
    // SAFETY: connect(2) with an address of the length given, on an open socket.
    if unsafe { libc::connect(socket.as_raw_fd(), (&raw const peer).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// An echo request: the kernel sums ICMPv6 itself (it covers a pseudo-header), ICMP is
/// summed here.
fn request(ipv4: bool, id: u16, sequence: u16) -> Vec<u8> {
    let kind = if ipv4 {
        ICMP_ECHO_REQUEST
    } else {
        ICMPV6_ECHO_REQUEST
    };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(PAYLOAD);
    if ipv4 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `packet` (an IPv4 raw socket's includes the IP header) is the echo reply to
/// request `id`/`sequence`.
fn is_reply(packet: &[u8], ipv4: bool, id: u16, sequence: u16) -> bool {
    let (icmp, reply) = if ipv4 {
        let header = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        (packet.get(header..), ICMP_ECHO_REPLY)
    } else {
        (Some(packet), ICMPV6_ECHO_REPLY)
    };
    icmp.filter(|icmp| icmp.len() >= 8).is_some_and(|icmp| {
        icmp[0] == reply && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == sequence.to_be_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_requests_checksum_sums_to_zero_and_a_reply_is_told_by_id_and_sequence() {
        let request = request(true, 0x1234, 7);
        assert_eq!(checksum(&request), 0);
        let mut reply = vec![0x45; 20];
        reply.extend_from_slice(&request);
        reply[20] = ICMP_ECHO_REPLY;
        assert!(is_reply(&reply, true, 0x1234, 7));
        assert!(!is_reply(&reply, true, 0x1234, 8), "another check's reply");
        reply[20] = ICMP_ECHO_REQUEST;
        assert!(
            !is_reply(&reply, true, 0x1234, 7),
            "the request itself, on lo"
        );
        assert!(!is_reply(&reply[..24], true, 0x1234, 7), "truncated");
    }

    /// Needs root (a raw socket), as xvsd does; the loopback answers both families.
    #[test]
    fn the_loopback_answers_an_echo_in_both_families() {
        for address in ["127.0.0.1", "::1"] {
            let deadline = Instant::now() + Duration::from_secs(2);
            assert_eq!(
                echo(address.parse().unwrap(), &Origin::default(), deadline),
                Ok(()),
                "{address}"
            );
        }
        // Out of `lo` with a mark: answered; out of an interface that is not there: a
        // clear failure, not a ping by another way.
        let deadline = Instant::now() + Duration::from_secs(2);
        let by = |interface| Origin {
            interface: Some(interface),
            mark: Some(7),
            ..Origin::default()
        };
        assert_eq!(
            echo("127.0.0.1".parse().unwrap(), &by("lo"), deadline),
            Ok(())
        );
        let missing = echo("127.0.0.1".parse().unwrap(), &by("nosuch0"), deadline).unwrap_err();
        assert!(
            missing.starts_with("ping 127.0.0.1: interface nosuch0: No such device"),
            "{missing}"
        );
    }
}
