//! Name lookups through the C library, as ipvsadm makes them (hosts and services files,
//! then whatever the system's name service switch says).

use std::{
    ffi::{CStr, CString},
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use xvs_core::{model::Protocol, text::Resolver};

pub struct SystemResolver;

fn c_string(text: &str) -> Option<CString> {
    CString::new(text).ok()
}

impl Resolver for SystemResolver {
    fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr> {
        let name = c_string(name)?;
        // SAFETY: addrinfo is plain data; zeroed hints ask for nothing special.
        let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
        hints.ai_family = libc::AF_INET;
        let mut result: *mut libc::addrinfo = std::ptr::null_mut();
        // SAFETY: valid C strings and out-pointer; the result is freed below.
        let status =
            unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut result) };
        if status != 0 || result.is_null() {
            return None;
        }
        // SAFETY: result is a valid list from getaddrinfo; AF_INET entries hold sockaddr_in.
        unsafe {
            let info = &*result;
            let found = (info.ai_family == libc::AF_INET && !info.ai_addr.is_null()).then(|| {
                let sin = &*(info.ai_addr as *const libc::sockaddr_in);
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))
            });
            libc::freeaddrinfo(result);
            found
        }
    }

    fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        let name = c_string(name)?;
        let proto = c_string(protocol.service_db_name())?;
        // SAFETY: valid C strings; the returned entry is read at once.
        unsafe {
            let entry = libc::getservbyname(name.as_ptr(), proto.as_ptr());
            (!entry.is_null()).then(|| u16::from_be((*entry).s_port as u16))
        }
    }

    fn addr_to_host(&self, addr: &IpAddr) -> Option<String> {
        let socket_addr = SocketAddr::new(*addr, 0);
        let (storage, len) = sockaddr(&socket_addr);
        let mut host = [0 as libc::c_char; 1025];
        // SAFETY: storage holds a valid sockaddr of `len` bytes; host is writable.
        let status = unsafe {
            libc::getnameinfo(
                (&storage as *const libc::sockaddr_storage).cast(),
                len,
                host.as_mut_ptr(),
                host.len() as libc::socklen_t,
                std::ptr::null_mut(),
                0,
                libc::NI_NAMEREQD,
            )
        };
        if status != 0 {
            return None;
        }
        // SAFETY: getnameinfo wrote a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(host.as_ptr()) };
        Some(name.to_string_lossy().into_owned())
    }

    fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String> {
        let proto = c_string(protocol.service_db_name())?;
        // SAFETY: valid C string; the returned entry is read at once.
        unsafe {
            let entry = libc::getservbyport(i32::from(port.to_be()), proto.as_ptr());
            (!entry.is_null()).then(|| {
                CStr::from_ptr((*entry).s_name)
                    .to_string_lossy()
                    .into_owned()
            })
        }
    }
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}
