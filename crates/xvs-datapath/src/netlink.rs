//! The few rtnetlink requests xvs needs: list the namespace's interfaces with the XDP
//! programs attached to them, and attach or detach an XDP program the legacy way.
//!
//! Why netlink and not a bpf_link: a link ends with the process that made it (unless pinned
//! in a bpffs, which `ip netns exec` does not give us). An XDP program set on an interface
//! through netlink stays attached with no file descriptor and no pin, and goes away with the
//! interface, that is with the network namespace: exactly the lifetime IPVS's tables have.

use std::{
    io,
    net::IpAddr,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

const NLMSG_HDR_LEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const IFLA_IFNAME: u16 = 3;
const IFLA_XDP: u16 = 43;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;

/// How an XDP program is attached to an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (veth and most NICs support it): the fast path.
    Driver,
    /// In the generic network stack: works on every interface, loopback included.
    Generic,
}

impl XdpMode {
    fn flag(self) -> u32 {
        match self {
            XdpMode::Generic => 1 << 1, // XDP_FLAGS_SKB_MODE
            XdpMode::Driver => 1 << 2,  // XDP_FLAGS_DRV_MODE
        }
    }
}

/// Refuse to replace a program that is already attached (XDP_FLAGS_UPDATE_IF_NOEXIST):
/// two processes racing to create a namespace's director cannot both win.
const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;

/// An interface of the current network namespace and the XDP programs on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub index: u32,
    pub name: String,
    /// Program attached in driver mode, if any.
    pub driver_program: Option<u32>,
    /// Program attached in generic mode, if any.
    pub generic_program: Option<u32>,
    /// The link kind (`veth`, `bridge`, …; empty for physical devices).
    pub kind: String,
}

impl Interface {
    /// The program id attached in `mode`.
    pub fn program(&self, mode: XdpMode) -> Option<u32> {
        match mode {
            XdpMode::Driver => self.driver_program,
            XdpMode::Generic => self.generic_program,
        }
    }
}

struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    fn open() -> io::Result<Socket> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // Extended acks give the kernel's reason (e.g. "XDP program already attached").
        // SAFETY: setsockopt with a valid int option; failure is harmless.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_EXT_ACK,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        Ok(Socket { fd, seq: 0 })
    }

    fn send(&mut self, msg_type: u16, flags: u16, body: &[u8]) -> io::Result<u32> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(NLMSG_HDR_LEN + body.len());
        msg.extend_from_slice(&((NLMSG_HDR_LEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&msg_type.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: msg is a valid buffer of msg.len() bytes; the kernel is the peer.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.seq)
    }

    /// Reads replies to `seq` and hands each message (type, payload) to `each` until the
    /// kernel says done (dump) or acknowledges (request with ACK).
    fn receive(&mut self, seq: u32, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
        self.receive_until(seq, &mut each, false)
    }

    /// As [`Socket::receive`]; with `single`, one data message ends the reply.
    fn receive_until(
        &mut self,
        seq: u32,
        each: &mut dyn FnMut(u16, &[u8]),
        single: bool,
    ) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: buf is writable for buf.len() bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDR_LEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
                let msg_type = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
                let msg_seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
                if len < NLMSG_HDR_LEN || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let payload = &rest[NLMSG_HDR_LEN..len];
                rest = &rest[align4(len).min(rest.len())..];
                if msg_seq != seq {
                    continue;
                }
                match msg_type {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(payload[0..4].try_into().unwrap());
                        if code == 0 {
                            return Ok(());
                        }
                        let err = io::Error::from_raw_os_error(-code);
                        return Err(match extended_ack_message(payload) {
                            Some(text) => io::Error::new(err.kind(), format!("{err}: {text}")),
                            None => err,
                        });
                    }
                    _ => {
                        each(msg_type, payload);
                        if single {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

impl Socket {
    /// Reads the single reply to a non-dump request (or its error).
    fn receive_one(&mut self, seq: u32, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
        self.receive_until(seq, &mut each, true)
    }
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Iterates over the attributes (type without flags, payload) in `data`.
fn attributes(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            return None;
        }
        let payload = &data[4..len];
        data = &data[align4(len).min(data.len())..];
        Some((kind, payload))
    })
}

fn push_attribute(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    buf.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align4(buf.len()), 0);
}

/// The text of NLMSGERR_ATTR_MSG, if the kernel sent one.
fn extended_ack_message(payload: &[u8]) -> Option<String> {
    // payload = error code (4) + the original request's header (16) + TLVs (cap ack).
    const NLMSGERR_ATTR_MSG: u16 = 1;
    let tlvs = payload.get(4 + NLMSG_HDR_LEN..)?;
    attributes(tlvs)
        .find(|(kind, _)| *kind == NLMSGERR_ATTR_MSG)
        .map(|(_, text)| {
            String::from_utf8_lossy(text)
                .trim_end_matches('\0')
                .to_string()
        })
}

fn ifinfomsg(index: u32) -> Vec<u8> {
    let mut body = vec![0u8; IFINFOMSG_LEN];
    body[0] = libc::AF_UNSPEC as u8;
    body[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    body
}

fn u32_attribute(payload: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(payload.get(0..4)?.try_into().ok()?))
}

/// Every interface of the current network namespace, in index order.
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut socket = Socket::open()?;
    let seq = socket.send(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifinfomsg(0))?;
    let mut found = Vec::new();
    socket.receive(seq, |msg_type, payload| {
        if msg_type != RTM_NEWLINK || payload.len() < IFINFOMSG_LEN {
            return;
        }
        let index = i32::from_ne_bytes(payload[4..8].try_into().unwrap()) as u32;
        let mut interface = Interface {
            index,
            name: String::new(),
            driver_program: None,
            generic_program: None,
            kind: String::new(),
        };
        for (kind, value) in attributes(&payload[IFINFOMSG_LEN..]) {
            match kind {
                IFLA_IFNAME => {
                    interface.name = String::from_utf8_lossy(value)
                        .trim_end_matches('\0')
                        .to_string()
                }
                IFLA_LINKINFO => {
                    for (info_kind, info_value) in attributes(value) {
                        if info_kind == IFLA_INFO_KIND {
                            interface.kind = String::from_utf8_lossy(info_value)
                                .trim_end_matches('\0')
                                .to_string();
                        }
                    }
                }
                IFLA_XDP => {
                    // The kernel reports each mode's program under its own attribute.
                    for (xdp_kind, xdp_value) in attributes(value) {
                        match xdp_kind {
                            IFLA_XDP_DRV_PROG_ID => {
                                interface.driver_program = u32_attribute(xdp_value)
                            }
                            IFLA_XDP_SKB_PROG_ID => {
                                interface.generic_program = u32_attribute(xdp_value)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        found.push(interface);
    })?;
    found.sort_by_key(|interface| interface.index);
    Ok(found)
}

/// Attaches `program` to interface `index` in `mode`. With `only_if_free`, fails with
/// `EBUSY` when a program is already attached in that mode instead of replacing it.
pub fn attach_xdp(
    index: u32,
    program: BorrowedFd<'_>,
    mode: XdpMode,
    only_if_free: bool,
) -> io::Result<()> {
    let mut flags = mode.flag();
    if only_if_free {
        flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
    }
    set_xdp(index, program.as_raw_fd(), flags)
}

/// Removes the XDP program attached to interface `index` in `mode` (no error if none).
pub fn detach_xdp(index: u32, mode: XdpMode) -> io::Result<()> {
    set_xdp(index, -1, mode.flag())
}

fn set_xdp(index: u32, fd: i32, flags: u32) -> io::Result<()> {
    let mut xdp = Vec::new();
    push_attribute(&mut xdp, IFLA_XDP_FD, &fd.to_ne_bytes());
    push_attribute(&mut xdp, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    let mut body = ifinfomsg(index);
    push_attribute(&mut body, IFLA_XDP | NLA_F_NESTED, &xdp);
    let mut socket = Socket::open()?;
    let seq = socket.send(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, &body)?;
    socket.receive(seq, |_, _| {})
}

const RTM_GETROUTE: u16 = 26;
const RTM_NEWROUTE: u16 = 24;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_REPLACE: u16 = 0x100;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const IFLA_ADDRESS: u16 = 1;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NDA_FLAGS_EXT: u16 = 15;
const NTF_EXT_MANAGED: u32 = 1;
/// NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY
const NUD_VALID: u16 = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08;

fn family_of(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn parse_addr(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// The kernel's route to an address: the interface, the gateway if any, and the source
/// address it would use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub oif: u32,
    pub gateway: Option<IpAddr>,
    pub source: Option<IpAddr>,
}

impl Route {
    /// The neighbour frames to `dst` go to: the gateway, or `dst` itself on a link.
    pub fn next_hop(&self, dst: IpAddr) -> IpAddr {
        self.gateway.unwrap_or(dst)
    }
}

/// `ip route get ADDR`.
pub fn route_to(dst: IpAddr) -> io::Result<Route> {
    let mut body = vec![0u8; 12];
    body[0] = family_of(&dst);
    body[1] = if dst.is_ipv4() { 32 } else { 128 };
    push_attribute(&mut body, RTA_DST, &addr_bytes(&dst));
    let mut socket = Socket::open()?;
    let seq = socket.send(RTM_GETROUTE, NLM_F_REQUEST, &body)?;
    let mut route = None;
    socket.receive_one(seq, |msg_type, payload| {
        if msg_type != RTM_NEWROUTE || payload.len() < 12 {
            return;
        }
        let mut found = Route {
            oif: 0,
            gateway: None,
            source: None,
        };
        for (kind, value) in attributes(&payload[12..]) {
            match kind {
                RTA_OIF => found.oif = u32_attribute(value).unwrap_or(0),
                RTA_GATEWAY => found.gateway = parse_addr(value),
                RTA_PREFSRC => found.source = parse_addr(value),
                _ => {}
            }
        }
        route = Some(found);
    })?;
    route.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no route to {dst}")))
}

/// The hardware address of interface `index`.
pub fn interface_mac(index: u32) -> io::Result<Option<[u8; 6]>> {
    let mut socket = Socket::open()?;
    let seq = socket.send(RTM_GETLINK, NLM_F_REQUEST, &ifinfomsg(index))?;
    let mut mac = None;
    socket.receive_one(seq, |msg_type, payload| {
        if msg_type != RTM_NEWLINK || payload.len() < IFINFOMSG_LEN {
            return;
        }
        for (kind, value) in attributes(&payload[IFINFOMSG_LEN..]) {
            if kind == IFLA_ADDRESS && value.len() == 6 {
                mac = <[u8; 6]>::try_from(value).ok();
            }
        }
    })?;
    Ok(mac)
}

fn ndmsg(family: u8, ifindex: u32, state: u16) -> Vec<u8> {
    let mut body = vec![0u8; 12];
    body[0] = family;
    body[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    body[8..10].copy_from_slice(&state.to_ne_bytes());
    body
}

/// Asks the kernel to keep the neighbour `addr` on interface `ifindex` resolved (a
/// "managed" neighbour entry: the kernel re-resolves it by itself).
pub fn keep_neighbour_resolved(ifindex: u32, addr: IpAddr) -> io::Result<()> {
    let mut body = ndmsg(family_of(&addr), ifindex, 0);
    push_attribute(&mut body, NDA_DST, &addr_bytes(&addr));
    push_attribute(&mut body, NDA_FLAGS_EXT, &NTF_EXT_MANAGED.to_ne_bytes());
    let mut socket = Socket::open()?;
    let seq = socket.send(
        RTM_NEWNEIGH,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        &body,
    )?;
    socket.receive(seq, |_, _| {})
}

/// An entry of the kernel's neighbour table (`ip neigh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourEntry {
    pub ifindex: u32,
    pub addr: IpAddr,
    /// `NUD_*` bits.
    pub state: u16,
    pub mac: Option<[u8; 6]>,
}

impl NeighbourEntry {
    /// The hardware address, if the kernel holds the entry resolved.
    pub fn resolved_mac(&self) -> Option<[u8; 6]> {
        if self.state & NUD_VALID != 0 {
            self.mac
        } else {
            None
        }
    }

    /// True if the entry was set by hand (permanent, or on a link without ARP): xvs leaves
    /// such entries alone.
    pub fn is_static(&self) -> bool {
        const NUD_PERMANENT: u16 = 0x80;
        const NUD_NOARP: u16 = 0x40;
        self.state & (NUD_PERMANENT | NUD_NOARP) != 0
    }
}

/// The hardware address of neighbour `addr` on `ifindex`, if the kernel has resolved it.
pub fn neighbour_mac(ifindex: u32, addr: IpAddr) -> io::Result<Option<[u8; 6]>> {
    Ok(neighbour(ifindex, addr)?.and_then(|n| n.resolved_mac()))
}

/// Every entry of the kernel's neighbour tables, IPv4 and IPv6: `ip neigh show`.
pub fn neighbours() -> io::Result<Vec<NeighbourEntry>> {
    // AF_UNSPEC: both families in one dump.
    let body = ndmsg(0, 0, 0);
    let mut socket = Socket::open()?;
    let seq = socket.send(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, &body)?;
    let mut found = Vec::new();
    socket.receive(seq, |msg_type, payload| {
        if msg_type != RTM_NEWNEIGH || payload.len() < 12 {
            return;
        }
        let ifindex = i32::from_ne_bytes(payload[4..8].try_into().unwrap()) as u32;
        let state = u16::from_ne_bytes(payload[8..10].try_into().unwrap());
        let mut dst = None;
        let mut mac = None;
        for (kind, value) in attributes(&payload[12..]) {
            match kind {
                NDA_DST => dst = parse_addr(value),
                NDA_LLADDR if value.len() == 6 => mac = <[u8; 6]>::try_from(value).ok(),
                _ => {}
            }
        }
        if let Some(addr) = dst {
            found.push(NeighbourEntry {
                ifindex,
                addr,
                state,
                mac,
            });
        }
    })?;
    Ok(found)
}

/// The kernel's neighbour entry of `addr` on `ifindex`, if it has one.
pub fn neighbour(ifindex: u32, addr: IpAddr) -> io::Result<Option<NeighbourEntry>> {
    Ok(neighbours()?
        .into_iter()
        .find(|n| n.ifindex == ifindex && n.addr == addr))
}

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFADDRMSG_LEN: usize = 8;
const NLM_F_EXCL: u16 = 0x200;

/// `struct ifaddrmsg`: family, prefix length, flags, scope (universe), interface.
fn ifaddrmsg(family: u8, prefix: u8, index: u32) -> Vec<u8> {
    let mut body = vec![family, prefix, 0, 0];
    body.extend_from_slice(&index.to_ne_bytes());
    body
}

/// The addresses (with prefix lengths) of interface `index`: `ip addr show dev IFACE`.
pub fn addresses(index: u32) -> io::Result<Vec<(IpAddr, u8)>> {
    Ok(all_addresses()?
        .into_iter()
        .filter(|&(on, _, _)| on == index)
        .map(|(_, addr, prefix)| (addr, prefix))
        .collect())
}

/// Every address of the namespace, with its interface's index and its prefix length:
/// `ip addr show`, in one dump.
pub fn all_addresses() -> io::Result<Vec<(u32, IpAddr, u8)>> {
    let mut socket = Socket::open()?;
    let seq = socket.send(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifaddrmsg(0, 0, 0))?;
    let mut found = Vec::new();
    socket.receive(seq, |msg_type, payload| {
        if msg_type != RTM_NEWADDR || payload.len() < IFADDRMSG_LEN {
            return;
        }
        let prefix = payload[1];
        let on = u32::from_ne_bytes(payload[4..8].try_into().unwrap_or_default());
        // IFA_LOCAL is the address itself; IFA_ADDRESS the peer's on point-to-point links.
        let (mut local, mut address) = (None, None);
        for (kind, value) in attributes(&payload[IFADDRMSG_LEN..]) {
            match kind {
                IFA_LOCAL => local = parse_addr(value),
                IFA_ADDRESS => address = parse_addr(value),
                _ => {}
            }
        }
        if let Some(addr) = local.or(address) {
            found.push((on, addr, prefix));
        }
    })?;
    Ok(found)
}

/// `ip addr add ADDR/PREFIX dev IFACE`.
/// A subscription to the namespace's address changes (netlink's IPv4 and IPv6 address
/// groups): [`AddressChanges::wait`] returns when an address is added or removed.
pub struct AddressChanges {
    fd: OwnedFd,
}

/// `RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR`.
const ADDRESS_GROUPS: u32 = 0x10 | 0x100;

impl AddressChanges {
    pub fn subscribe() -> io::Result<AddressChanges> {
        let socket = Socket::open()?;
        // SAFETY: sockaddr_nl is plain data; bind(2) with its size on an open socket.
        unsafe {
            let mut local: libc::sockaddr_nl = std::mem::zeroed();
            local.nl_family = libc::AF_NETLINK as u16;
            local.nl_groups = ADDRESS_GROUPS;
            if libc::bind(
                socket.fd.as_raw_fd(),
                (&raw const local).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(AddressChanges { fd: socket.fd })
    }

    /// Blocks until the kernel reports address changes (one read drains a burst of them;
    /// messages lost to a full buffer count as a change too).
    pub fn wait(&self) -> io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // SAFETY: buf is writable for buf.len() bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) => return Ok(()),
                _ => return Err(err),
            }
        }
    }
}

pub fn add_address(index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
    change_address(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, addr, prefix)
}

/// `ip addr del ADDR/PREFIX dev IFACE`.
pub fn delete_address(index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
    change_address(RTM_DELADDR, 0, index, addr, prefix)
}

fn change_address(
    msg_type: u16,
    flags: u16,
    index: u32,
    addr: IpAddr,
    prefix: u8,
) -> io::Result<()> {
    let mut body = ifaddrmsg(family_of(&addr), prefix, index);
    push_attribute(&mut body, IFA_LOCAL, &addr_bytes(&addr));
    push_attribute(&mut body, IFA_ADDRESS, &addr_bytes(&addr));
    if addr.is_ipv6() && msg_type == RTM_NEWADDR {
        // Usable at once, not tentative for duplicate address detection: a VIP a
        // director takes over is answered for from the first packet.
        push_attribute(&mut body, IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
    }
    let mut socket = Socket::open()?;
    let seq = socket.send(msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, &body)?;
    socket.receive(seq, |_, _| {})
}

const RTM_DELLINK: u16 = 17;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const RTM_GETRULE: u16 = 34;
const IFLA_MTU: u16 = 4;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_SUPPRESS_IFGROUP: u16 = 13;
const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
const FRA_PROTOCOL: u16 = 21;
const FR_ACT_TO_TBL: u8 = 1;
const RTA_TABLE: u16 = 15;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
/// The kernel's `local` routing table.
pub const TABLE_LOCAL: u32 = 255;

/// One request that wants nothing back but the kernel's acknowledgement.
fn request(msg_type: u16, flags: u16, body: &[u8]) -> io::Result<()> {
    let mut socket = Socket::open()?;
    let seq = socket.send(msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, body)?;
    socket.receive(seq, |_, _| {})
}

/// `ip link add NAME mtu MTU type veth peer name PEER mtu MTU`.
pub fn add_veth(name: &str, peer: &str, mtu: u32) -> io::Result<()> {
    let name_attribute = |buf: &mut Vec<u8>, name: &str| {
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        push_attribute(buf, IFLA_IFNAME, &bytes);
    };
    // VETH_INFO_PEER holds an ifinfomsg followed by the peer's own attributes.
    let mut peer_info = ifinfomsg(0);
    name_attribute(&mut peer_info, peer);
    push_attribute(&mut peer_info, IFLA_MTU, &mtu.to_ne_bytes());
    let mut data = Vec::new();
    push_attribute(&mut data, VETH_INFO_PEER, &peer_info);
    let mut link_info = Vec::new();
    push_attribute(&mut link_info, IFLA_INFO_KIND, b"veth\0");
    push_attribute(&mut link_info, IFLA_INFO_DATA, &data);
    let mut body = ifinfomsg(0);
    name_attribute(&mut body, name);
    push_attribute(&mut body, IFLA_MTU, &mtu.to_ne_bytes());
    push_attribute(&mut body, IFLA_LINKINFO, &link_info);
    request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &body)
}

/// `ip link set dev INDEX up` (and `arp off` with `no_arp`).
pub fn set_link_up(index: u32, no_arp: bool) -> io::Result<()> {
    let flags = libc::IFF_UP as u32 | if no_arp { libc::IFF_NOARP as u32 } else { 0 };
    let mut body = ifinfomsg(index);
    body[8..12].copy_from_slice(&flags.to_ne_bytes());
    body[12..16].copy_from_slice(&flags.to_ne_bytes());
    request(RTM_NEWLINK, 0, &body)
}

/// `ip link del dev INDEX` (a veth's peer goes with it).
pub fn delete_link(index: u32) -> io::Result<()> {
    request(RTM_DELLINK, 0, &ifinfomsg(index))
}

/// A routing policy rule that looks a table up, as `ip rule` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub priority: u32,
    pub table: u32,
    /// The firewall mark it matches (with mask all ones), if any.
    pub fwmark: Option<u32>,
    /// Whether it has any other selector (addresses, interfaces, ...): such rules are not
    /// xvs's to touch.
    pub other_selectors: bool,
}

/// The rules of `family` (`libc::AF_INET` or `AF_INET6`) that look a table up.
pub fn rules(family: u8) -> io::Result<Vec<Rule>> {
    let mut socket = Socket::open()?;
    let seq = socket.send(
        RTM_GETRULE,
        NLM_F_REQUEST | NLM_F_DUMP,
        &rule_header(family),
    )?;
    let mut found = Vec::new();
    socket.receive(seq, |msg_type, payload| {
        if msg_type != RTM_NEWRULE || payload.len() < 12 || payload[7] != FR_ACT_TO_TBL {
            return;
        }
        let mut rule = Rule {
            priority: 0,
            table: payload[4] as u32,
            fwmark: None,
            other_selectors: payload[1] != 0 || payload[2] != 0 || payload[3] != 0,
        };
        let mut mask = u32::MAX;
        for (kind, value) in attributes(&payload[12..]) {
            match kind {
                FRA_PRIORITY => rule.priority = u32_attribute(value).unwrap_or(0),
                FRA_TABLE => rule.table = u32_attribute(value).unwrap_or(rule.table),
                FRA_FWMARK => rule.fwmark = u32_attribute(value),
                FRA_FWMASK => mask = u32_attribute(value).unwrap_or(u32::MAX),
                // FRA_PROTOCOL says who made it: not a selector.
                FRA_PROTOCOL => {}
                // The suppressors are always there; all ones means none.
                FRA_SUPPRESS_IFGROUP | FRA_SUPPRESS_PREFIXLEN
                    if u32_attribute(value) == Some(u32::MAX) => {}
                _ => rule.other_selectors = true,
            }
        }
        if mask != u32::MAX && rule.fwmark.is_some() {
            rule.other_selectors = true;
        }
        found.push(rule);
    })?;
    Ok(found)
}

/// `ip rule add|del priority P [fwmark M] lookup T` for `family`.
pub fn change_rule(add: bool, family: u8, rule: &Rule) -> io::Result<()> {
    let mut body = rule_header(family);
    body[7] = FR_ACT_TO_TBL;
    push_attribute(&mut body, FRA_PRIORITY, &rule.priority.to_ne_bytes());
    push_attribute(&mut body, FRA_TABLE, &rule.table.to_ne_bytes());
    if let Some(mark) = rule.fwmark {
        push_attribute(&mut body, FRA_FWMARK, &mark.to_ne_bytes());
        push_attribute(&mut body, FRA_FWMASK, &u32::MAX.to_ne_bytes());
    }
    if add {
        request(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, &body)
    } else {
        request(RTM_DELRULE, 0, &body)
    }
}

/// `struct fib_rule_hdr`: family, lengths, tos, table, reserved, action; flags.
fn rule_header(family: u8) -> Vec<u8> {
    let mut body = vec![0u8; 12];
    body[0] = family;
    body
}

/// `ip route replace default dev INDEX table TABLE` for `family`.
pub fn replace_default_route(family: u8, index: u32, table: u32) -> io::Result<()> {
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type; flags.
    let mut body = vec![0u8; 12];
    body[0] = family;
    body[5] = RTPROT_STATIC;
    body[6] = RT_SCOPE_LINK;
    body[7] = RTN_UNICAST;
    push_attribute(&mut body, RTA_TABLE, &table.to_ne_bytes());
    push_attribute(&mut body, RTA_OIF, &index.to_ne_bytes());
    request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut buf = Vec::new();
        push_attribute(&mut buf, IFLA_IFNAME, b"eth0\0");
        push_attribute(&mut buf, IFLA_XDP_FLAGS, &7u32.to_ne_bytes());
        assert_eq!(buf.len(), 12 + 8, "5-byte name padded to 8");
        let parsed: Vec<_> = attributes(&buf).collect();
        assert_eq!(parsed[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(parsed[1].0, IFLA_XDP_FLAGS);
        assert_eq!(u32_attribute(parsed[1].1), Some(7));
    }

    #[test]
    fn attributes_stop_at_a_lying_length() {
        let buf = [200u8, 0, 3, 0, b'x', 0, 0, 0];
        assert_eq!(attributes(&buf).count(), 0);
    }
}
