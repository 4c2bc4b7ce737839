//! The seed's topologies, ready-made (shared/seed, TESTING.md). Each returns a builder so a
//! test can add to it before building.
//!
//! Every topology has hosts `client`, `director`, `web1`, `web2`, and `lan`: a switch host
//! holding the bridge `br0` of the segment the real servers sit on.

use crate::{LabBuilder, end};

/// The seed's client address.
pub const CLIENT: &str = "1.1.1.1";
/// The director's outside address, which is also the VIP in every seed experiment.
pub const VIP: &str = "1.1.1.254";

/// Experiment I, LVS/NAT. The client (1.1.1.1) is on a point-to-point link to the director
/// (1.1.1.254, eth0); the director's eth1 (192.168.1.254) shares the `lan` bridge with web1
/// (192.168.1.10) and web2 (192.168.1.20), whose gateway is the director. Forwarding is on.
pub fn nat() -> LabBuilder {
    LabBuilder::new()
        .host("client")
        .host("director")
        .host("web1")
        .host("web2")
        .host("lan")
        .link(
            end("client", "eth0", &["1.1.1.1/24"]),
            end("director", "eth0", &["1.1.1.254/24"]),
        )
        .bridge(
            "lan",
            "br0",
            vec![
                end("director", "eth1", &["192.168.1.254/24"]),
                end("web1", "eth0", &["192.168.1.10/24"]),
                end("web2", "eth0", &["192.168.1.20/24"]),
            ],
        )
        .route("client", &["default", "via", "1.1.1.254"])
        .route("web1", &["default", "via", "192.168.1.254"])
        .route("web2", &["default", "via", "192.168.1.254"])
        .sysctl("director", "net.ipv4.ip_forward", "1")
}

/// [`nat`] with IPv6 beside IPv4: client fd00:1::1, the director fd00:1::fe (the VIP's
/// side) and fd00:2::fe, web1 fd00:2::10, web2 fd00:2::20, each side routed through the
/// director, which forwards IPv6 too.
pub fn nat_dual_stack() -> LabBuilder {
    nat()
        .address("client", "eth0", "fd00:1::1/64")
        .address("director", "eth0", "fd00:1::fe/64")
        .address("director", "eth1", "fd00:2::fe/64")
        .address("web1", "eth0", "fd00:2::10/64")
        .address("web2", "eth0", "fd00:2::20/64")
        .route("client", &["::/0", "via", "fd00:1::fe"])
        .route("web1", &["::/0", "via", "fd00:2::fe"])
        .route("web2", &["::/0", "via", "fd00:2::fe"])
        .sysctl("director", "net.ipv6.conf.all.forwarding", "1")
}

/// Experiment II, LVS/DR. Client 1.1.1.1, director holding the VIP 1.1.1.254, web1
/// 1.1.1.10 and web2 1.1.1.20 on one segment (`lan`'s bridge). Each real server holds the
/// VIP on `lo` and neither answers nor announces ARP for it (`arp_ignore=1`,
/// `arp_announce=2`). The director also has 1.1.1.253 (its DIP), added first so that its
/// own ARP requests come from it: a real server does not answer an ARP request whose
/// sender is an address it holds itself (the VIP), so with the VIP alone the director
/// could never learn the real servers' MACs.
pub fn dr() -> LabBuilder {
    real_servers_hold_vip(dr_unprepared())
}

/// [`dr`] with the real servers as they come: no VIP on `lo`, ARP settings as the kernel
/// has them (for tests of real-server preparation).
pub fn dr_unprepared() -> LabBuilder {
    LabBuilder::new()
        .host("client")
        .host("director")
        .host("web1")
        .host("web2")
        .host("lan")
        .bridge(
            "lan",
            "br0",
            vec![
                end("client", "eth0", &["1.1.1.1/24"]),
                end("director", "eth0", &["1.1.1.253/24", "1.1.1.254/24"]),
                end("web1", "eth0", &["1.1.1.10/24"]),
                end("web2", "eth0", &["1.1.1.20/24"]),
            ],
        )
}

/// LVS/TUN. Client 1.1.1.1 and director 1.1.1.254 share the segment with web1 (10.0.0.10)
/// and web2 (10.0.0.20), which sit in another subnet: the director reaches them at
/// 10.0.0.254 and tunnels to them; they hold the VIP on `lo` and answer the client directly.
/// Links on the tunnel's path have an MTU of 1600, room for the 20-byte outer header of a
/// full-size client packet (the client keeps 1500).
pub fn tun() -> LabBuilder {
    real_servers_hold_vip(tun_unprepared())
}

/// [`tun`] with every link at 1500 bytes, the client's too: a full-size client packet does
/// not fit the tunnel, and the director must say so (path MTU discovery).
pub fn tun_1500() -> LabBuilder {
    real_servers_hold_vip(tun_links(1500))
}

/// [`tun`] with the real servers as they come: no VIP on `lo`, no ARP settings, no
/// decapsulation.
pub fn tun_unprepared() -> LabBuilder {
    tun_links(1600)
}

/// The tunnel topology, the tunnel's path at `mtu`.
fn tun_links(mtu: u32) -> LabBuilder {
    let lab = LabBuilder::new()
        .host("client")
        .host("director")
        .host("web1")
        .host("web2")
        .host("lan")
        .bridge(
            "lan",
            "br0",
            vec![
                end("client", "eth0", &["1.1.1.1/24"]),
                end(
                    "director",
                    "eth0",
                    &["1.1.1.253/24", "1.1.1.254/24", "10.0.0.254/24"],
                ),
                end("web1", "eth0", &["10.0.0.10/24"]),
                end("web2", "eth0", &["10.0.0.20/24"]),
            ],
        )
        .route("web1", &["1.1.1.0/24", "dev", "eth0"])
        .route("web2", &["1.1.1.0/24", "dev", "eth0"]);
    ["director", "web1", "web2"]
        .into_iter()
        .fold(lab, |lab, host| {
            lab.mtu(host, "eth0", mtu).mtu("lan", host, mtu)
        })
        .mtu("lan", "br0", mtu)
}

/// IPv6 direct routing behind a router whose link toward the client is smaller than the
/// rest (1400 bytes, the client's own link 1500): the client fd00:3::1 reaches the VIP
/// fd00:9::1 through `router` (fd00:3::fe, fd00:1::1), which routes the VIP to the
/// director (fd00:1::fd, holding the VIP too); web1 (fd00:1::10) holds the VIP on `lo`
/// (IPv6 answers neighbour solicitations only for addresses of the interface asked). The
/// VIP is outside the LAN's prefix so that the director's own solicitations come from its
/// LAN address, which web1 answers (one from the VIP web1 would take for its own). web1's
/// full-size answers do not fit the router's way to the client: the router's "packet too
/// big" goes to the VIP, that is to the director.
pub fn dr6_behind_router() -> LabBuilder {
    LabBuilder::new()
        .host("client")
        .host("router")
        .host("director")
        .host("web1")
        .host("lan")
        .link(
            end("client", "eth0", &["fd00:3::1/64"]),
            end("router", "eth0", &["fd00:3::fe/64"]),
        )
        .bridge(
            "lan",
            "br0",
            vec![
                end("router", "eth1", &["fd00:1::1/64"]),
                end("director", "eth0", &["fd00:1::fd/64", "fd00:9::1/128"]),
                end("web1", "eth0", &["fd00:1::10/64"]),
            ],
        )
        .mtu("router", "eth0", 1400)
        .address("web1", "lo", "fd00:9::1/128")
        .route("client", &["::/0", "via", "fd00:3::fe"])
        .route("router", &["fd00:9::1/128", "via", "fd00:1::fd"])
        .route("web1", &["fd00:3::/64", "via", "fd00:1::1"])
        .route("director", &["fd00:3::/64", "via", "fd00:1::1"])
        .sysctl("router", "net.ipv6.conf.all.forwarding", "1")
}

/// web1 and web2 of `lab` hold the VIP on `lo` and neither answer nor announce ARP for
/// it (`arp_ignore=1`, `arp_announce=2`), as DR and tunnel real servers do.
pub fn real_servers_hold_vip(mut lab: LabBuilder) -> LabBuilder {
    for web in ["web1", "web2"] {
        lab = lab
            .address(web, "lo", &format!("{VIP}/32"))
            .sysctl(web, "net.ipv4.conf.all.arp_ignore", "1")
            .sysctl(web, "net.ipv4.conf.all.arp_announce", "2")
            .sysctl(web, "net.ipv4.conf.eth0.arp_ignore", "1")
            .sysctl(web, "net.ipv4.conf.eth0.arp_announce", "2");
    }
    lab
}

/// Two directors for failover labs: `client` (1.1.1.1), `d1` (1.1.1.251), `d2`
/// (1.1.1.252), and DR real servers `web1` (1.1.1.10) and `web2` (1.1.1.20) holding the
/// VIP on `lo`, all on the `lan` bridge. Neither director holds the VIP: VRRP, or the
/// test, gives it to one. (This topology has no `director` host.)
pub fn two_directors() -> LabBuilder {
    let builder = LabBuilder::new()
        .host("client")
        .host("d1")
        .host("d2")
        .host("web1")
        .host("web2")
        .host("lan")
        .bridge(
            "lan",
            "br0",
            vec![
                end("client", "eth0", &["1.1.1.1/24"]),
                end("d1", "eth0", &["1.1.1.251/24"]),
                end("d2", "eth0", &["1.1.1.252/24"]),
                end("web1", "eth0", &["1.1.1.10/24"]),
                end("web2", "eth0", &["1.1.1.20/24"]),
            ],
        );
    real_servers_hold_vip(builder)
}

/// A director with one interface (eth0: 10.0.0.254/24, 1.1.1.254/24, fd00:2::fe/64,
/// fd00:1::fe/64) toward a `peer` host, forwarding on: a rig for running frames through
/// the director's program, with neighbours set by [`crate::Lab::static_neighbours`].
pub fn one_armed() -> LabBuilder {
    LabBuilder::new()
        .host("director")
        .host("peer")
        .link(
            end(
                "director",
                "eth0",
                &[
                    "10.0.0.254/24",
                    "1.1.1.254/24",
                    "fd00:2::fe/64",
                    "fd00:1::fe/64",
                ],
            ),
            end("peer", "eth0", &[]),
        )
        .sysctl("director", "net.ipv4.ip_forward", "1")
        .sysctl("director", "net.ipv6.conf.all.forwarding", "1")
}

/// FULLNAT: the real servers in another subnet, behind a router that routes only its own
/// networks (no way back to the client but through the director). Client 1.1.1.1 and
/// fd00:1::1 on a link to the director (1.1.1.254 / fd00:1::fe, eth0, the VIPs); the
/// director's eth1 (10.0.0.254, fd00:5::fe, and the local addresses 10.0.0.253,
/// 10.0.0.252, fd00:5::fd) on a link to `router` (10.0.0.1, fd00:5::1); the router's eth1
/// (192.168.5.1, fd00:6::1) on the `lan` bridge with web1 (192.168.5.10, fd00:6::10) and
/// web2 (192.168.5.20, fd00:6::20), whose gateway is the router. NAT cannot work here:
/// the real servers' answers to the client go to the router, which has no route to it.
pub fn fullnat() -> LabBuilder {
    LabBuilder::new()
        .host("client")
        .host("director")
        .host("router")
        .host("web1")
        .host("web2")
        .host("lan")
        .link(
            end("client", "eth0", &["1.1.1.1/24", "fd00:1::1/64"]),
            end("director", "eth0", &["1.1.1.254/24", "fd00:1::fe/64"]),
        )
        .link(
            end(
                "director",
                "eth1",
                &[
                    "10.0.0.254/24",
                    "10.0.0.253/24",
                    "10.0.0.252/24",
                    "fd00:5::fe/64",
                    "fd00:5::fd/64",
                ],
            ),
            end("router", "eth0", &["10.0.0.1/24", "fd00:5::1/64"]),
        )
        .bridge(
            "lan",
            "br0",
            vec![
                end("router", "eth1", &["192.168.5.1/24", "fd00:6::1/64"]),
                end("web1", "eth0", &["192.168.5.10/24", "fd00:6::10/64"]),
                end("web2", "eth0", &["192.168.5.20/24", "fd00:6::20/64"]),
            ],
        )
        .route("client", &["default", "via", "1.1.1.254"])
        .route("client", &["::/0", "via", "fd00:1::fe"])
        .route("director", &["192.168.5.0/24", "via", "10.0.0.1"])
        .route("director", &["fd00:6::/64", "via", "fd00:5::1"])
        .route("web1", &["default", "via", "192.168.5.1"])
        .route("web1", &["::/0", "via", "fd00:6::1"])
        .route("web2", &["default", "via", "192.168.5.1"])
        .route("web2", &["::/0", "via", "fd00:6::1"])
        .sysctl("director", "net.ipv4.ip_forward", "1")
        .sysctl("director", "net.ipv6.conf.all.forwarding", "1")
        .sysctl("router", "net.ipv4.ip_forward", "1")
        .sysctl("router", "net.ipv6.conf.all.forwarding", "1")
}
