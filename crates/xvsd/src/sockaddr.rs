//! Socket addresses for the libc calls that raw sockets need (`connect`, `sendto`).

use std::net::IpAddr;

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
