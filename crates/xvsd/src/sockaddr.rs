//! Socket addresses for the libc calls that raw sockets need (`connect`, `sendto`), and
//! sockets bound to a source address (checks' `source`).

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

/// A TCP connection to `target` from `source` (keepalived's `bindto`), made within
/// `timeout`: std's `connect_timeout` cannot bind first.
pub fn connect_from(
    source: IpAddr,
    target: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let family = if target.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2), connect(2) with an address of the length given, poll(2) on one
    // descriptor, getsockopt(2) of an int, fcntl(2) on the open socket.
    unsafe {
        let fd = libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        bind(&socket, SocketAddr::new(source, 0))?;
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
        Ok(TcpStream::from(socket))
    }
}
