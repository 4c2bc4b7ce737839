//! What a real server needs for a forwarding method, decided without looking at the
//! machine: the list of settings, each with the value it must have. `main.rs` reads the
//! machine against it, changes what differs, and undoes it.

use std::{fmt, net::IpAddr};

/// How the director reaches this real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Direct routing (`-g`): frames for the VIP arrive with the real server's MAC.
    Route,
    /// IP tunnel (`-i`): IP-in-IP or GRE packets arrive on this interface, and GUE on
    /// `gue_port` if the director sends GUE (`--tun-type gue --tun-port N`).
    Tunnel {
        interface: String,
        gue_port: Option<u16>,
    },
}

/// One thing the real server must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// The VIP on `lo` (a /32 or /128): the real server accepts packets for it.
    VipOnLo(IpAddr),
    /// A sysctl, by its path under /proc/sys (an interface name may hold dots), and the
    /// value it must have.
    Sysctl { path: String, value: String },
    /// Tunnelled packets lose their outer header on this interface (xvs's XDP
    /// decapsulator: it works whether or not the kernel has an ipip, gre or fou driver),
    /// GUE's on `gue_port`.
    Decapsulation {
        interface: String,
        gue_port: Option<u16>,
    },
}

impl Setting {
    fn sysctl(path: &str, value: &str) -> Setting {
        Setting::Sysctl {
            path: path.to_string(),
            value: value.to_string(),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::VipOnLo(vip) => write!(f, "{vip}/{} on lo", prefix_of(vip)),
            Setting::Sysctl { path, value } => write!(f, "{} = {value}", path.replace('/', ".")),
            Setting::Decapsulation {
                interface,
                gue_port: None,
            } => write!(f, "tunnel decapsulation on {interface}"),
            Setting::Decapsulation {
                interface,
                gue_port: Some(port),
            } => write!(f, "tunnel decapsulation on {interface}, GUE on port {port}"),
        }
    }
}

/// The prefix length a VIP gets on `lo`: the address alone.
pub fn prefix_of(vip: &IpAddr) -> u8 {
    if vip.is_ipv4() { 32 } else { 128 }
}

/// Everything a real server needs to serve `vips` by `method`, in the order to set it:
/// the ARP settings before the VIP appears, so the real server never answers ARP for it.
///
/// - `arp_ignore=1`: answer ARP only for addresses of the interface asked on (not the
///   VIP on `lo`); `arp_announce=2`: never source ARP requests from the VIP. Both on
///   `all`, which the kernel combines with each interface's by taking the larger.
///   IPv6 needs nothing alike: neighbour discovery answers only for addresses of the
///   interface asked on.
/// - Tunnel mode also turns reverse-path filtering off (on `all` and on the interface: the
///   kernel uses the larger), since the inner packet's source (the client) is not routed
///   back through the interface it arrived on as a tunnel.
pub fn required(method: &Method, vips: &[IpAddr]) -> Vec<Setting> {
    let mut settings = Vec::new();
    if vips.iter().any(IpAddr::is_ipv4) {
        settings.push(Setting::sysctl("net/ipv4/conf/all/arp_ignore", "1"));
        settings.push(Setting::sysctl("net/ipv4/conf/all/arp_announce", "2"));
        if let Method::Tunnel { interface, .. } = method {
            settings.push(Setting::sysctl("net/ipv4/conf/all/rp_filter", "0"));
            settings.push(Setting::sysctl(
                &format!("net/ipv4/conf/{interface}/rp_filter"),
                "0",
            ));
        }
    }
    if let Method::Tunnel {
        interface,
        gue_port,
    } = method
    {
        settings.push(Setting::Decapsulation {
            interface: interface.clone(),
            gue_port: *gue_port,
        });
    }
    settings.extend(vips.iter().map(|vip| Setting::VipOnLo(*vip)));
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(settings: &[Setting]) -> Vec<String> {
        settings.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn direct_routing_of_an_ipv4_vip() {
        let vip: IpAddr = "1.1.1.254".parse().unwrap();
        assert_eq!(
            names(&required(&Method::Route, &[vip])),
            [
                "net.ipv4.conf.all.arp_ignore = 1",
                "net.ipv4.conf.all.arp_announce = 2",
                "1.1.1.254/32 on lo",
            ]
        );
    }

    #[test]
    fn an_ipv6_vip_needs_no_arp_settings() {
        let vip: IpAddr = "fd00:1::fe".parse().unwrap();
        assert_eq!(
            names(&required(&Method::Route, &[vip])),
            ["fd00:1::fe/128 on lo"]
        );
        let tunnel = Method::Tunnel {
            interface: "eth0".into(),
            gue_port: None,
        };
        assert_eq!(
            names(&required(&tunnel, &[vip])),
            ["tunnel decapsulation on eth0", "fd00:1::fe/128 on lo"]
        );
        let gue = Method::Tunnel {
            interface: "eth0".into(),
            gue_port: Some(6080),
        };
        assert_eq!(
            names(&required(&gue, &[vip])),
            [
                "tunnel decapsulation on eth0, GUE on port 6080",
                "fd00:1::fe/128 on lo"
            ]
        );
    }

    #[test]
    fn tunnel_mode_adds_rp_filter_and_decapsulation() {
        let vips: Vec<IpAddr> = vec!["1.1.1.254".parse().unwrap(), "1.1.1.253".parse().unwrap()];
        let tunnel = Method::Tunnel {
            interface: "eth1".into(),
            gue_port: None,
        };
        assert_eq!(
            names(&required(&tunnel, &vips)),
            [
                "net.ipv4.conf.all.arp_ignore = 1",
                "net.ipv4.conf.all.arp_announce = 2",
                "net.ipv4.conf.all.rp_filter = 0",
                "net.ipv4.conf.eth1.rp_filter = 0",
                "tunnel decapsulation on eth1",
                "1.1.1.254/32 on lo",
                "1.1.1.253/32 on lo",
            ]
        );
    }
}
