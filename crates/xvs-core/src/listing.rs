//! ipvsadm's listings, byte for byte (shared/reference/ipvsadm.md §2): the plain, stats,
//! rate, thresholds, persistent-conn and tun-info views, `-S` rules, timeouts, and the
//! connection table; in ipvsadm's order, quirks included.

use std::{fmt::Write as _, net::IpAddr};

use crate::{
    cli::{Format, ListWhat},
    model::{Dest, Family, Forward, Protocol, Service, ServiceKey, TunnelType, flags},
    sched::Scheduler,
    table::{Errno, IpvsError, Operation, Table},
    text::{Resolver, addr_port, dotted},
};

/// IPVS's version in the listing header.
pub const IPVS_VERSION: &str = "1.2.1";
/// The connection hash table size ipvsadm prints in the header. IPVS's default; xvs's
/// connection table is a BPF hash map whose capacity is another matter (docs), and scripts
/// that parse this line expect IPVS's number.
pub const CONN_TABLE_SIZE: u32 = 4096;

/// A listing, or why there is none (with ipvsadm's exit code 1).
pub fn list(
    table: &Table,
    what: ListWhat,
    format: Format,
    resolver: &dyn Resolver,
) -> Result<String, IpvsError> {
    let mut out = String::new();
    match what {
        ListWhat::All => {
            let _ = writeln!(
                out,
                "IP Virtual Server version {IPVS_VERSION} (size={CONN_TABLE_SIZE})"
            );
            title(&mut out, format);
            for service in ordered_services(table, format.nosort) {
                service_entry(&mut out, service, format, resolver);
            }
        }
        ListWhat::Service(key) => {
            let service = table.service(&key).ok_or(IpvsError {
                operation: Operation::GetService,
                errno: Errno::NoService,
            })?;
            title(&mut out, format);
            service_entry(&mut out, service, format, resolver);
        }
        ListWhat::Timeout => {
            let t = table.timeouts;
            let _ = writeln!(
                out,
                "Timeout (tcp tcpfin udp): {} {} {}",
                t.tcp, t.tcp_fin, t.udp
            );
        }
        // No sync daemon runs: ipvsadm prints nothing then.
        ListWhat::Daemon => {}
        ListWhat::Connections => {
            list_connections(&mut out, &[], format, resolver);
        }
    }
    Ok(out)
}

/// `-S`: the table as ipvsadm command lines.
pub fn save(table: &Table, numeric: bool, resolver: &dyn Resolver) -> String {
    let mut out = String::new();
    let format = Format {
        numeric,
        ..Format::default()
    };
    for service in ordered_services(table, false) {
        rule_entry(&mut out, service, format, resolver);
    }
    out
}

fn ordered_services(table: &Table, nosort: bool) -> Vec<&Service> {
    let mut services: Vec<&Service> = table.services.iter().collect();
    if !nosort {
        c_merge_sort(&mut services, |a, b| compare_services(a, b));
    }
    services
}

fn title(out: &mut String, format: Format) {
    let prot = "Prot LocalAddress:Port";
    if format.stats {
        let _ = writeln!(
            out,
            "{prot:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
    } else if format.rate {
        let _ = writeln!(
            out,
            "{prot:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
    } else if format.thresholds {
        let _ = writeln!(
            out,
            "{prot:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
    } else if format.persistent_conn {
        let _ = writeln!(
            out,
            "{prot:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else if format.tun_info {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        );
    } else {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
    }
}

/// At most `max` bytes of `text` (ipvsadm cuts its C strings there).
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The service's name in listings (`TCP  1.2.3.4:80`, `FWM  7`) or rules (`-t 1.2.3.4:80`).
fn service_name(service: &Service, rule: bool, format: Format, resolver: &dyn Resolver) -> String {
    match service.key {
        ServiceKey::Fwmark { mark, family } => match (rule, family) {
            (true, Family::V6) => format!("-f {mark} -6"),
            (true, Family::V4) => format!("-f {mark}"),
            (false, Family::V6) => format!("FWM  {mark} IPv6"),
            (false, Family::V4) => format!("FWM  {mark}"),
        },
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            let vname = addr_port(&addr, port, Some(protocol), format.numeric, resolver);
            if rule {
                let switch = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                format!("{switch} {vname}")
            } else {
                let name = format!("{:<4} {vname}", protocol.name());
                if addr.is_ipv4() { cut(name, 33) } else { name }
            }
        }
    }
}

fn dest_name(
    service: &Service,
    dest: &Dest,
    rule: bool,
    format: Format,
    resolver: &dyn Resolver,
) -> String {
    let name = addr_port(
        &dest.addr,
        dest.port,
        service.key.protocol(),
        format.numeric,
        resolver,
    );
    if !rule && dest.addr.is_ipv4() {
        cut(name, 28)
    } else {
        name
    }
}

fn sched_flag_names(service: &Service) -> String {
    let names: &[(u32, &str)] = match service.scheduler {
        Scheduler::Sh => &[(flags::FALLBACK, "sh-fallback"), (flags::PORT, "sh-port")],
        Scheduler::Mh => &[(flags::FALLBACK, "mh-fallback"), (flags::PORT, "mh-port")],
        _ => &[
            (flags::SCHED1, "flag-1"),
            (flags::SCHED2, "flag-2"),
            (flags::SCHED3, "flag-3"),
        ],
    };
    names
        .iter()
        .filter(|(bit, _)| service.flags & bit != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

fn persistence_mask(service: &Service, word: &str) -> String {
    match service.key.family() {
        Family::V4 if service.netmask != u32::MAX => {
            format!(" {word} {}", dotted(service.netmask))
        }
        Family::V6 if service.netmask != 128 => format!(" {word} {}", service.netmask),
        _ => String::new(),
    }
}

/// ipvsadm's `print_largenum`.
pub fn large_number(value: u64, exact: bool) -> String {
    if exact {
        let digits = value.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        return format!("{digits:>width$}");
    }
    match value {
        v if v < 100_000_000 => format!("{v:>9}"),
        v if v < 1_000_000_000 => format!("{:>8}K", v / 1_000),
        v if v < 100_000_000_000 => format!("{:>8}M", v / 1_000_000),
        v if v < 100_000_000_000_000 => format!("{:>8}G", v / 1_000_000_000),
        v => format!("{:>8}T", v / 1_000_000_000_000),
    }
}

fn service_entry(out: &mut String, service: &Service, format: Format, resolver: &dyn Resolver) {
    let name = service_name(service, false, format, resolver);
    let stats = &service.stats;
    if format.stats {
        let _ = write!(out, "{name:<33}");
        for v in [
            stats.conns,
            stats.inpkts,
            stats.outpkts,
            stats.inbytes,
            stats.outbytes,
        ] {
            out.push_str(&large_number(v, format.exact));
        }
    } else if format.rate {
        let _ = write!(out, "{name:<33}");
        for v in [
            stats.cps,
            stats.inpps,
            stats.outpps,
            stats.inbps,
            stats.outbps,
        ] {
            out.push_str(&large_number(v, format.exact));
        }
    } else {
        let _ = write!(out, "{name} {}", service.scheduler);
        if service.flags & flags::SCHED_MASK != 0 {
            let _ = write!(out, " ({})", sched_flag_names(service));
        }
        if service.is_persistent() {
            let _ = write!(out, " persistent {}", service.timeout);
            out.push_str(&persistence_mask(service, "mask"));
            if let Some(pe) = service.pe {
                let _ = write!(out, " pe {}", pe.name());
            }
        }
        if service.flags & flags::ONEPACKET != 0 {
            out.push_str(" ops");
        }
        if service.flags & flags::PROXY_V2 != 0 {
            out.push_str(" proxy-protocol v2");
        }
    }
    out.push('\n');

    for dest in ordered_dests(service, format.nosort) {
        let dname = dest_name(service, dest, false, format, resolver);
        let s = &dest.stats;
        let c = &dest.conns;
        if format.stats {
            let _ = write!(out, "  -> {dname:<28}");
            for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                out.push_str(&large_number(v, format.exact));
            }
            out.push('\n');
        } else if format.rate {
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                s.cps, s.inpps, s.outpps
            );
            for v in [s.inbps, s.outbps] {
                out.push_str(&large_number(v, format.exact));
            }
            out.push('\n');
        } else if format.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                dest.u_threshold, dest.l_threshold, c.active, c.inactive
            );
        } else if format.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                dest.weight, c.persistent, c.active, c.inactive
            );
        } else if format.tun_info {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                dest.forward.name(),
                tunnel_info(dest),
                dest.weight,
                c.active,
                c.inactive
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                dest.forward.name(),
                dest.weight,
                c.active,
                c.inactive
            );
        }
    }
}

fn tunnel_info(dest: &Dest) -> String {
    if dest.forward != Forward::Tunnel {
        return "n/a".into();
    }
    let t = dest.tunnel;
    match t.kind {
        TunnelType::Ipip => "ipip".into(),
        TunnelType::Gue => format!("gue:{}:{}", t.port, t.checksum.mark()),
        TunnelType::Gre => format!("gre:{}", t.checksum.mark()),
    }
}

fn rule_entry(out: &mut String, service: &Service, format: Format, resolver: &dyn Resolver) {
    let name = service_name(service, true, format, resolver);
    let _ = write!(out, "-A {name} -s {}", service.scheduler);
    if service.is_persistent() {
        let _ = write!(out, " -p {}", service.timeout);
        out.push_str(&persistence_mask(service, "-M"));
    }
    if let Some(pe) = service.pe {
        let _ = write!(out, " --pe {}", pe.name());
    }
    if service.flags & flags::ONEPACKET != 0 {
        out.push_str(" -o");
    }
    if service.flags & flags::SCHED_MASK != 0 {
        let _ = write!(out, " -b {}", sched_flag_names(service));
    }
    if service.flags & flags::PROXY_V2 != 0 {
        out.push_str(" --proxy-protocol v2");
    }
    out.push('\n');
    for dest in ordered_dests(service, false) {
        let dname = dest_name(service, dest, true, format, resolver);
        let _ = write!(
            out,
            "-a {name} -r {dname} {} -w {}",
            dest.forward.switch(),
            dest.weight
        );
        if dest.forward == Forward::Tunnel {
            let t = dest.tunnel;
            match t.kind {
                TunnelType::Ipip => out.push_str(" --tun-type ipip"),
                TunnelType::Gue => {
                    let _ = write!(
                        out,
                        " --tun-type gue --tun-port {} {}",
                        t.port,
                        t.checksum.option()
                    );
                }
                TunnelType::Gre => {
                    let _ = write!(out, " --tun-type gre {}", t.checksum.option());
                }
            }
        }
        out.push('\n');
    }
    // DPVS's local addresses, as the command that adds them (its own -S leaves them out,
    // so a restore loses them; ours keeps them).
    for laddr in &service.laddrs {
        let _ = write!(out, "-P {name} -z {}", laddr.addr);
        if let Some(ifname) = &laddr.ifname {
            let _ = write!(out, " -F {ifname}");
        }
        out.push('\n');
    }
}

/// DPVS's `--get-laddr`: each service (of `services`) with its number of local addresses,
/// then one line per address with the ports it found taken and its connections. Numeric,
/// as DPVS prints it.
pub fn list_local_addresses(out: &mut String, services: &[&Service]) {
    let _ = writeln!(
        out,
        "{:<20} {:<8} {:<20} {:<10} {:<10}",
        "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS"
    );
    for service in services {
        let vip = match service.key {
            ServiceKey::Inet { addr, port, .. } => addr_port(
                &addr,
                port,
                service.key.protocol(),
                true,
                &crate::text::NoNames,
            ),
            ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
        };
        let _ = writeln!(out, "{vip:<20} {:<8} ", service.laddrs.len());
        for laddr in &service.laddrs {
            let _ = writeln!(
                out,
                "{:<20} {:<8} {:<20} {:<10} {:<10}",
                "",
                "",
                laddr.addr.to_string(),
                laddr.conflicts,
                laddr.conns
            );
        }
    }
}

fn ordered_dests(service: &Service, nosort: bool) -> Vec<&Dest> {
    let mut dests: Vec<&Dest> = service.dests.iter().collect();
    if !nosort {
        c_merge_sort(&mut dests, |a, b| compare_dests(a, b));
    }
    dests
}

/// An address as four host-order 32-bit words (IPv4 in the first).
fn words(addr: &IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(v4) => [u32::from(*v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            std::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// libipvs compares addresses as `int r = ntohl(a) - ntohl(b)`: the unsigned difference
/// read as signed, so addresses more than 2^31 apart compare backwards. Reproduced so the
/// listings come out in ipvsadm's order.
fn c_difference(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn compare_addresses(first_family: Family, a: &IpAddr, b: &IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    let count = if first_family == Family::V6 { 4 } else { 1 };
    (0..count)
        .map(|i| c_difference(wa[i], wb[i]))
        .find(|r| *r != 0)
        .unwrap_or(0)
}

/// libipvs's `ipvs_cmp_services`: fwmark, family, protocol, address, port.
fn compare_services(a: &Service, b: &Service) -> i32 {
    let r = c_difference(a.key.fwmark(), b.key.fwmark());
    if r != 0 {
        return r;
    }
    let r = i32::from(a.key.family().af()) - i32::from(b.key.family().af());
    if r != 0 {
        return r;
    }
    let proto = |s: &Service| i32::from(s.key.protocol().map_or(0, Protocol::number));
    let r = proto(a) - proto(b);
    if r != 0 {
        return r;
    }
    if let (ServiceKey::Inet { addr: addr_a, .. }, ServiceKey::Inet { addr: addr_b, .. }) =
        (a.key, b.key)
    {
        let r = compare_addresses(a.key.family(), &addr_a, &addr_b);
        if r != 0 {
            return r;
        }
    }
    i32::from(a.key.port()) - i32::from(b.key.port())
}

/// libipvs's `ipvs_cmp_dests`: address (in the first one's family), then port.
fn compare_dests(a: &Dest, b: &Dest) -> i32 {
    let r = compare_addresses(a.family(), &a.addr, &b.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

/// glibc's `qsort` (a top-down merge sort taking from the left run on ties), step for
/// step: with libipvs's comparison, which is not a total order, only the same algorithm
/// gives the same order.
pub fn c_merge_sort<T: Copy>(items: &mut [T], compare: impl Fn(&T, &T) -> i32 + Copy) {
    let n = items.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    c_merge_sort(&mut items[..n1], compare);
    c_merge_sort(&mut items[n1..], compare);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if compare(&items[i], &items[j]) <= 0 {
            merged.push(items[i]);
            i += 1;
        } else {
            merged.push(items[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&items[i..n1]);
    merged.extend_from_slice(&items[j..n]);
    items.copy_from_slice(&merged);
}

/// One entry of the connection table, as `-L -c` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEntry {
    /// `TCP`, `UDP`, `SCTP`, or `IP` for fwmark templates.
    pub protocol: &'static str,
    pub client: (IpAddr, u16),
    pub virtual_: (IpAddr, u16),
    pub dest: (IpAddr, u16),
    /// FULLNAT: the local address and port the connection leaves from toward `dest`.
    pub local: Option<(IpAddr, u16)>,
    /// IPVS's state name (`ESTABLISHED`, `FIN_WAIT`, `UDP`, `NONE`, …).
    pub state: &'static str,
    pub expires_seconds: u32,
    /// Persistence engine name and data, if any.
    pub pe: Option<(String, String)>,
}

/// `-L -c`: header and one line per entry.
pub fn list_connections(
    out: &mut String,
    entries: &[ConnectionEntry],
    format: Format,
    resolver: &dyn Resolver,
) {
    out.push_str("IPVS connection entries\n");
    // With FULLNAT connections in the table a column for their local address and port
    // comes in (DPVS's order: source, virtual, local, destination); without, the listing
    // is ipvsadm's to the byte.
    let fullnat = !format.persistent_conn && entries.iter().any(|e| e.local.is_some());
    if format.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else if fullnat {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} destination",
            "state", "source", "virtual", "local"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for entry in entries {
        let protocol = Protocol::from_number(match entry.protocol {
            "TCP" => 6,
            "UDP" => 17,
            "SCTP" => 132,
            _ => 0,
        });
        let name = |(addr, port): (IpAddr, u16)| {
            addr_port(&addr, port, protocol, format.numeric, resolver)
        };
        let expire = format!(
            "{:02}:{:02}",
            entry.expires_seconds / 60,
            entry.expires_seconds % 60
        );
        let (c, v, d) = (name(entry.client), name(entry.virtual_), name(entry.dest));
        match (&entry.pe, format.persistent_conn) {
            (Some((pe_name, pe_data)), true) => {
                let _ = writeln!(
                    out,
                    "{:<3} {expire:<6} {:<11} {c:<18} {v:<18} {d:<16} {pe_name:<18} {pe_data}",
                    entry.protocol, entry.state
                );
            }
            _ if fullnat => {
                let l = entry.local.map_or_else(|| "-".to_string(), name);
                let _ = writeln!(
                    out,
                    "{:<3} {expire:<6} {:<11} {c:<18} {v:<18} {l:<18} {d}",
                    entry.protocol, entry.state
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{:<3} {expire:<6} {:<11} {c:<18} {v:<18} {d}",
                    entry.protocol, entry.state
                );
            }
        }
    }
}
