//! The C library's text conversions that ipvsadm's behaviour depends on, reproduced exactly
//! (`strtol`, `inet_aton`, `inet_ntoa`), and the name lookups it makes, behind [`Resolver`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Protocol;

/// Name lookups ipvsadm makes through the C library. The core does no I/O: xvsadm passes a
/// resolver that asks the system; tests pass [`NoNames`] or their own.
pub trait Resolver {
    /// `gethostbyname`: the first IPv4 address of a host name.
    fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr>;
    /// `getservbyname`: the port of a service name for a protocol.
    fn service_to_port(&self, name: &str, protocol: Protocol) -> Option<u16>;
    /// `gethostbyaddr`: the host name of an address.
    fn addr_to_host(&self, addr: &IpAddr) -> Option<String>;
    /// `getservbyport`: the service name of a port for a protocol.
    fn port_to_service(&self, port: u16, protocol: Protocol) -> Option<String>;
}

/// A resolver that knows no names: everything stays numeric.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNames;

impl Resolver for NoNames {
    fn host_to_v4(&self, _: &str) -> Option<Ipv4Addr> {
        None
    }
    fn service_to_port(&self, _: &str, _: Protocol) -> Option<u16> {
        None
    }
    fn addr_to_host(&self, _: &IpAddr) -> Option<String> {
        None
    }
    fn port_to_service(&self, _: u16, _: Protocol) -> Option<String> {
        None
    }
}

/// C `isspace` in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// ipvsadm's `string_to_number`: `strtol(s, 10)` that must consume the whole string, within
/// `min..=max`. Leading white space and a sign are accepted, as strtol does.
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_c_space(bytes[i]) {
        i += 1;
    }
    let negative = match bytes.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &bytes[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        // strtol reports ERANGE on overflow: ipvsadm then rejects the value.
        value = value.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    let value = if negative { -value } else { value };
    (min..=max).contains(&value).then_some(value)
}

/// True if every character is a decimal digit (ipvsadm's `str_is_digit`; true for "").
pub fn is_all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// glibc's `inet_aton`: dotted forms with 1 to 4 parts, each decimal, octal (leading 0) or
/// hexadecimal (0x), the last part filling the remaining bytes (`10.1` = 10.0.0.1).
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let bytes = s.as_bytes();
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    let mut i = 0;
    loop {
        if !bytes.get(i)?.is_ascii_digit() {
            return None;
        }
        let (value, used) = strtoul_base0(&bytes[i..])?;
        i += used;
        parts.push(value);
        match bytes.get(i) {
            Some(b'.') => {
                if parts.len() == 4 {
                    return None;
                }
                i += 1;
            }
            None => break,
            // glibc accepts trailing white space (and ignores what follows it).
            Some(&c) if is_c_space(c) => break,
            Some(_) => return None,
        }
    }
    let last = *parts.last()?;
    let max_last = match parts.len() {
        1 => 0xffff_ffff,
        2 => 0x00ff_ffff,
        3 => 0x0000_ffff,
        _ => 0x0000_00ff,
    };
    if last > max_last {
        return None;
    }
    let mut value = last as u32;
    for (index, part) in parts[..parts.len() - 1].iter().enumerate() {
        if *part > 0xff {
            return None;
        }
        value |= (*part as u32) << (24 - 8 * index as u32);
    }
    Some(Ipv4Addr::from(value))
}

/// `strtoul(s, 0)` on a string that starts with a digit: value and bytes consumed.
fn strtoul_base0(bytes: &[u8]) -> Option<(u64, usize)> {
    let (base, start) = if bytes.len() > 2
        && bytes[0] == b'0'
        && (bytes[1] | 0x20) == b'x'
        && bytes[2].is_ascii_hexdigit()
    {
        (16, 2)
    } else if bytes[0] == b'0' {
        (8, 0)
    } else {
        (10, 0)
    };
    let mut value: u64 = 0;
    let mut i = start;
    while let Some(digit) = bytes.get(i).and_then(|&c| (c as char).to_digit(base)) {
        value = value
            .checked_mul(u64::from(base))?
            .checked_add(u64::from(digit))?;
        if value > u64::from(u32::MAX) {
            return None;
        }
        i += 1;
    }
    Some((value, i))
}

/// `inet_pton(AF_INET6, ...)`.
pub fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    s.parse().ok()
}

/// What [`parse_service`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrPort {
    pub addr: IpAddr,
    /// `None` when the text had no port part.
    pub port: Option<u16>,
}

/// ipvsadm's `parse_service`: `host[:port]`, `[v6]:port`, or a bare IPv6 address. The port
/// is a number or a service name of `protocol`. `None` where ipvsadm fails.
pub fn parse_service(
    text: &str,
    protocol: Option<Protocol>,
    resolver: &dyn Resolver,
) -> Option<AddrPort> {
    if is_all_digits(text) {
        return None;
    }
    let mut host = text;
    let mut port_text: Option<&str> = None;
    if let Some(rest) = text.strip_prefix('[') {
        let close = rest.find(']')?;
        let after = &rest[close + 1..];
        port_text = Some(after.strip_prefix(':')?);
        host = &rest[..close];
    }
    let addr = if let Some(v6) = parse_ipv6(host) {
        IpAddr::V6(v6)
    } else {
        // Not IPv6: split at the last ':'; a bracketed non-IPv6 host has its port dropped,
        // as ipvsadm's pointer juggling does.
        let (name, port) = match host.rfind(':') {
            Some(colon) => (&host[..colon], Some(&host[colon + 1..])),
            None => (host, None),
        };
        port_text = port;
        IpAddr::V4(inet_aton(name).or_else(|| resolver.host_to_v4(name))?)
    };
    let port = match port_text {
        None => None,
        Some(p) => Some(match string_to_number(p, 0, 65535) {
            Some(n) => n as u16,
            None => resolver.service_to_port(p, protocol?)?,
        }),
    };
    Some(AddrPort { addr, port })
}

/// `inet_ntoa` of a mask kept in host order.
pub fn dotted(mask: u32) -> String {
    Ipv4Addr::from(mask).to_string()
}

/// `addr:port` as ipvsadm prints it: numeric, or through the resolver (names where known).
/// IPv6 addresses are bracketed.
pub fn addr_port(
    addr: &IpAddr,
    port: u16,
    protocol: Option<Protocol>,
    numeric: bool,
    resolver: &dyn Resolver,
) -> String {
    let (host, service) = if numeric {
        (addr.to_string(), port.to_string())
    } else {
        (
            resolver
                .addr_to_host(addr)
                .unwrap_or_else(|| addr.to_string()),
            protocol
                .and_then(|p| resolver.port_to_service(port, p))
                .unwrap_or_else(|| port.to_string()),
        )
    };
    match addr {
        IpAddr::V4(_) => format!("{host}:{service}"),
        IpAddr::V6(_) => format!("[{host}]:{service}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_rules() {
        assert_eq!(string_to_number("42", 0, 100), Some(42));
        assert_eq!(string_to_number(" +7", 0, 100), Some(7));
        assert_eq!(string_to_number("-1", 0, 100), None);
        assert_eq!(string_to_number("-1", -5, 100), Some(-1));
        assert_eq!(string_to_number("", 0, 100), None);
        assert_eq!(string_to_number("4x", 0, 100), None);
        assert_eq!(string_to_number("101", 0, 100), None);
        assert_eq!(
            string_to_number("99999999999999999999999", 0, i64::MAX),
            None
        );
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton("1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("10.1.2"), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(inet_aton("0x0a000001"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("167772161"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("256.1.1.1"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("1..2"), None);
        assert_eq!(inet_aton("a.b.c.d"), None);
        assert_eq!(inet_aton("09.1.1.1"), None, "9 is not an octal digit");
        assert_eq!(inet_aton(""), None);
    }

    #[test]
    fn service_address_forms() {
        let r = &NoNames;
        let tcp = Some(Protocol::Tcp);
        let p = |t| parse_service(t, tcp, r);
        assert_eq!(
            p("1.1.1.254:80"),
            Some(AddrPort {
                addr: "1.1.1.254".parse().unwrap(),
                port: Some(80)
            })
        );
        assert_eq!(p("1.1.1.254").unwrap().port, None);
        assert_eq!(p("[2001:db8::1]:443").unwrap().port, Some(443));
        assert_eq!(p("2001:db8::1").unwrap().port, None);
        assert_eq!(p("[2001:db8::1]"), None, "brackets need a port");
        assert_eq!(p("80"), None, "all digits");
        assert_eq!(p("1.1.1.1:http"), None, "no names known");
        assert_eq!(p("1.1.1.1:65536"), None);
        assert_eq!(
            p("[1.2.3.4]:80").unwrap(),
            AddrPort {
                addr: "1.2.3.4".parse().unwrap(),
                port: None
            }
        );
    }
}
