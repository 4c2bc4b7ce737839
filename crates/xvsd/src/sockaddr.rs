//! Socket addresses for the libc calls that raw sockets need (`connect`, `sendto`), and
//! sockets that leave from where a check says (its `source`, `source_port`, `interface`
//! and `mark`).

use std::{
    io,
    net::{IpAddr, SocketAddr, TcpStream},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

/// `ip` (port 0; IPv6 in interface `scope_id`) as the kernel takes a socket address: the
/// storage and the length of what it holds.
pub fn of(ip: IpAddr, scope_id: u32) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data, large and aligned enough for either
    // family's address, which is written into it.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let len = match ip {
            IpAddr::V4(v4) => {
                let address = (&raw mut storage).cast::<libc::sockaddr_in>();
                (*address).sin_family = libc::AF_INET as u16;
                (*address).sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
                std::mem::size_of::<libc::sockaddr_in>()
            }
            IpAddr::V6(v6) => {
                let address = (&raw mut storage).cast::<libc::sockaddr_in6>();
                (*address).sin6_family = libc::AF_INET6 as u16;
                (*address).sin6_addr.s6_addr = v6.octets();
                (*address).sin6_scope_id = scope_id;
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }
}

/// `address` as the kernel takes a socket address, its port set.
pub fn of_socket(address: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let (mut storage, len) = of(address.ip(), 0);
    let port = address.port().to_be();
    // SAFETY: `of` wrote a sockaddr_in or sockaddr_in6 of the address's family.
    unsafe {
        match address {
            SocketAddr::V4(_) => (*(&raw mut storage).cast::<libc::sockaddr_in>()).sin_port = port,
            SocketAddr::V6(_) => {
                (*(&raw mut storage).cast::<libc::sockaddr_in6>()).sin6_port = port
            }
        }
    }
    (storage, len)
}

/// Binds `socket` to `address` (one of this host's; port 0: any).
pub fn bind(socket: &OwnedFd, address: SocketAddr) -> io::Result<()> {
    let (local, len) = of_socket(address);
    // SAFETY: bind(2) with an address of the length given, on an open socket.
    if unsafe { libc::bind(socket.as_raw_fd(), (&raw const local).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Where a check's packets leave from: keepalived's `bindto`, `bind_port`, `bind_if` and
/// `fwmark` (the check's `source`, `source_port`, `interface` and `mark`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    pub source: Option<IpAddr>,
    pub port: Option<u16>,
    pub interface: Option<&'a str>,
    pub mark: Option<u32>,
}

impl<'a> Origin<'a> {
    pub fn of(check: &'a xvs_health::config::CheckConfig) -> Self {
        Origin {
            source: check.source,
            port: check.source_port,
            interface: check.interface.as_deref(),
            mark: check.mark,
        }
    }

    /// Whether the system picks everything (no socket option, no bind).
    pub fn is_any(&self) -> bool {
        self.source.is_none()
            && self.port.is_none()
            && self.interface.is_none()
            && self.mark.is_none()
    }

    /// Sets the interface and mark on `socket` and binds it to the source address and port
    /// (of `target`'s family), whichever are given: before it connects or sends, so that
    /// its first packet already leaves that way.
    pub fn apply(&self, socket: &OwnedFd, target: IpAddr) -> io::Result<()> {
        if let Some(name) = self.interface {
            set_option(socket, libc::SO_BINDTODEVICE, name.as_bytes())
                .map_err(|e| io::Error::new(e.kind(), format!("interface {name}: {e}")))?;
        }
        if let Some(mark) = self.mark {
            set_option(socket, libc::SO_MARK, &mark.to_ne_bytes())
                .map_err(|e| io::Error::new(e.kind(), format!("mark {mark}: {e}")))?;
        }
        if self.port.is_some() {
            // The port of the last check may still be held by a connection closing.
            set_option(socket, libc::SO_REUSEADDR, &1i32.to_ne_bytes())?;
        }
        if self.source.is_some() || self.port.is_some() {
            let any = match target {
                IpAddr::V4(_) => IpAddr::from([0u8; 4]),
                IpAddr::V6(_) => IpAddr::from([0u8; 16]),
            };
            let local = SocketAddr::new(self.source.unwrap_or(any), self.port.unwrap_or(0));
            bind(socket, local)
                .map_err(|e| io::Error::new(e.kind(), format!("bind {local}: {e}")))?;
        }
        Ok(())
    }
}

/// setsockopt(2) at `SOL_SOCKET` with `value`'s bytes.
fn set_option(socket: &OwnedFd, option: libc::c_int, value: &[u8]) -> io::Result<()> {
    // SAFETY: setsockopt(2) reads `value.len()` bytes from a live slice.
    let done = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A socket of `target`'s family and `kind` (`SOCK_STREAM`, `SOCK_DGRAM`, `SOCK_RAW`).
pub fn socket(target: IpAddr, kind: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    let family = if target.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2); the descriptor it returns is owned from here on.
    unsafe {
        let fd = libc::socket(family, kind | libc::SOCK_CLOEXEC, protocol);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// A TCP connection to `target` from `origin`, made within `timeout`: std's
/// `connect_timeout` cannot bind or set options first. With a fixed source port the
/// connection ends with a reset when dropped (`SO_LINGER` 0), so that the port is free for
/// the next check at once rather than held in TIME_WAIT.
pub fn connect_from(
    origin: &Origin,
    target: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let socket = socket(target.ip(), libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)?;
    origin.apply(&socket, target.ip())?;
    if origin.port.is_some() {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `linger` is plain data; the bytes of a live value.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw const linger).cast::<u8>(),
                std::mem::size_of::<libc::linger>(),
            )
        };
        set_option(&socket, libc::SO_LINGER, bytes)?;
    }
    let fd = socket.as_raw_fd();
    // SAFETY: connect(2) with an address of the length given, poll(2) on one descriptor,
    // getsockopt(2) of an int, fcntl(2) on the open socket.
    unsafe {
        let (peer, len) = of_socket(target);
        if libc::connect(fd, (&raw const peer).cast(), len) != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(error);
            }
            let mut ready = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let millis = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
            match libc::poll(&mut ready, 1, millis) {
                0 => return Err(io::Error::from(io::ErrorKind::TimedOut)),
                n if n < 0 => return Err(io::Error::last_os_error()),
                _ => {}
            }
            let mut failure: libc::c_int = 0;
            let mut size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut failure).cast(),
                &mut size,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if failure != 0 {
                return Err(io::Error::from_raw_os_error(failure));
            }
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(TcpStream::from(socket))
}
