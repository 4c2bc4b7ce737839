//! The model (xvs-core) to map entries (xvs-common) and back: addresses, keys, services,
//! real servers, and every code the datapath dispatches on, each by an explicit `match`
//! both ways (a code is never a position in a list). A value the maps hold that no code
//! names decodes to what the datapath does with it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xvs_common::{
    DestValue, FAMILY_V4, FAMILY_V6, ServiceKey as MapKey, ServiceValue, forward,
    persistence_engine, scheduler, tunnel_checksum, tunnel_type,
};
use xvs_core::{
    model::{
        ConnCounts, Dest, Family, Forward, Protocol, Service, ServiceKey, Stats, Tunnel,
        TunnelChecksum, TunnelType,
    },
    sched::Scheduler,
};

pub fn scheduler_code(s: Scheduler) -> u8 {
    match s {
        Scheduler::Rr => scheduler::RR,
        Scheduler::Wrr => scheduler::WRR,
        Scheduler::Lc => scheduler::LC,
        Scheduler::Wlc => scheduler::WLC,
        Scheduler::Lblc => scheduler::LBLC,
        Scheduler::Lblcr => scheduler::LBLCR,
        Scheduler::Dh => scheduler::DH,
        Scheduler::Sh => scheduler::SH,
        Scheduler::Sed => scheduler::SED,
        Scheduler::Nq => scheduler::NQ,
        Scheduler::Fo => scheduler::FO,
        Scheduler::Ovf => scheduler::OVF,
        Scheduler::Mh => scheduler::MH,
        Scheduler::Twos => scheduler::TWOS,
    }
}

/// The scheduler of a code (an unknown one: wlc, as the datapath's dispatch runs it).
pub fn scheduler_of(code: u8) -> Scheduler {
    match code {
        scheduler::RR => Scheduler::Rr,
        scheduler::WRR => Scheduler::Wrr,
        scheduler::LC => Scheduler::Lc,
        scheduler::LBLC => Scheduler::Lblc,
        scheduler::LBLCR => Scheduler::Lblcr,
        scheduler::DH => Scheduler::Dh,
        scheduler::SH => Scheduler::Sh,
        scheduler::SED => Scheduler::Sed,
        scheduler::NQ => Scheduler::Nq,
        scheduler::FO => Scheduler::Fo,
        scheduler::OVF => Scheduler::Ovf,
        scheduler::MH => Scheduler::Mh,
        scheduler::TWOS => Scheduler::Twos,
        _ => Scheduler::Wlc,
    }
}

/// The datapath forwards what is not NAT or a tunnel by routing, so Local does too.
pub fn forward_code(f: Forward) -> u8 {
    match f {
        Forward::Masq => forward::MASQ,
        Forward::Local => forward::LOCAL,
        Forward::Tunnel => forward::TUNNEL,
        Forward::Route => forward::ROUTE,
        Forward::FullNat => forward::FULLNAT,
    }
}

pub fn forward_of(code: u8) -> Forward {
    match code {
        forward::MASQ => Forward::Masq,
        forward::LOCAL => Forward::Local,
        forward::TUNNEL => Forward::Tunnel,
        forward::FULLNAT => Forward::FullNat,
        _ => Forward::Route,
    }
}

pub fn tunnel_type_code(t: TunnelType) -> u8 {
    match t {
        TunnelType::Ipip => tunnel_type::IPIP,
        TunnelType::Gue => tunnel_type::GUE,
        TunnelType::Gre => tunnel_type::GRE,
    }
}

pub fn tunnel_type_of(code: u8) -> TunnelType {
    match code {
        tunnel_type::GUE => TunnelType::Gue,
        tunnel_type::GRE => TunnelType::Gre,
        _ => TunnelType::Ipip,
    }
}

pub fn tunnel_checksum_code(c: TunnelChecksum) -> u8 {
    match c {
        TunnelChecksum::None => tunnel_checksum::NONE,
        TunnelChecksum::Checksum => tunnel_checksum::CHECKSUM,
        TunnelChecksum::Remote => tunnel_checksum::REMOTE,
    }
}

pub fn tunnel_checksum_of(code: u8) -> TunnelChecksum {
    match code {
        tunnel_checksum::CHECKSUM => TunnelChecksum::Checksum,
        tunnel_checksum::REMOTE => TunnelChecksum::Remote,
        _ => TunnelChecksum::None,
    }
}

pub(crate) fn encode_addr(addr: &IpAddr) -> ([u8; 16], u8) {
    let mut bytes = [0u8; 16];
    match addr {
        IpAddr::V4(v4) => {
            bytes[..4].copy_from_slice(&v4.octets());
            (bytes, FAMILY_V4)
        }
        IpAddr::V6(v6) => (v6.octets(), FAMILY_V6),
    }
}

pub(crate) fn decode_addr(bytes: &[u8; 16], family: u8) -> IpAddr {
    if family == FAMILY_V6 {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

fn family_code(family: Family) -> u8 {
    match family {
        Family::V4 => FAMILY_V4,
        Family::V6 => FAMILY_V6,
    }
}

/// The map key of a service.
pub fn encode_key(key: &ServiceKey) -> MapKey {
    match *key {
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            let (addr, family) = encode_addr(&addr);
            MapKey {
                addr,
                fwmark: 0,
                port: port.to_be(),
                family,
                protocol: protocol.number(),
            }
        }
        ServiceKey::Fwmark { mark, family } => MapKey {
            fwmark: mark,
            family: family_code(family),
            ..MapKey::default()
        },
    }
}

pub(crate) fn decode_key(key: &MapKey) -> Option<ServiceKey> {
    if key.fwmark != 0 {
        return Some(ServiceKey::Fwmark {
            mark: key.fwmark,
            family: if key.family == FAMILY_V6 {
                Family::V6
            } else {
                Family::V4
            },
        });
    }
    Some(ServiceKey::Inet {
        protocol: Protocol::from_number(key.protocol)?,
        addr: decode_addr(&key.addr, key.family),
        port: u16::from_be(key.port),
    })
}

pub(crate) fn encode_service(service: &Service) -> ServiceValue {
    ServiceValue {
        flags: service.flags,
        timeout: service.timeout,
        netmask: service.netmask,
        scheduler: scheduler_code(service.scheduler),
        pe: service
            .pe
            .map_or(persistence_engine::NONE, |_| persistence_engine::SIP),
        ..ServiceValue::default()
    }
}

pub(crate) fn encode_dest(dest: &Dest) -> DestValue {
    let (addr, family) = encode_addr(&dest.addr);
    DestValue {
        addr,
        id: 0,
        weight: dest.weight,
        last_weight: dest.last_weight,
        u_threshold: dest.u_threshold,
        l_threshold: dest.l_threshold,
        port: dest.port.to_be(),
        tun_port: dest.tunnel.port,
        family,
        forward: forward_code(dest.forward),
        tun_type: tunnel_type_code(dest.tunnel.kind),
        tun_csum: tunnel_checksum_code(dest.tunnel.checksum),
        slot: 0,
        half: 0,
        stats: 0,
    }
}

/// The address and family code of an encoded real server.
pub(crate) trait Address {
    fn addr_and_family(&self) -> (IpAddr, u8);
}

impl Address for DestValue {
    fn addr_and_family(&self) -> (IpAddr, u8) {
        (decode_addr(&self.addr, self.family), self.family)
    }
}

pub(crate) fn decode_dest(value: &DestValue, stats: Stats) -> Dest {
    Dest {
        addr: decode_addr(&value.addr, value.family),
        port: u16::from_be(value.port),
        forward: forward_of(value.forward),
        weight: value.weight,
        last_weight: value.last_weight,
        u_threshold: value.u_threshold,
        l_threshold: value.l_threshold,
        tunnel: Tunnel {
            kind: tunnel_type_of(value.tun_type),
            port: value.tun_port,
            checksum: tunnel_checksum_of(value.tun_csum),
        },
        conns: ConnCounts::default(),
        stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_decodes_to_what_encoded_it() {
        for s in Scheduler::ALL {
            assert_eq!(scheduler_of(scheduler_code(s)), s);
        }
        for f in [
            Forward::Masq,
            Forward::Local,
            Forward::Tunnel,
            Forward::Route,
        ] {
            assert_eq!(forward_of(forward_code(f)), f);
        }
        for t in [TunnelType::Ipip, TunnelType::Gue, TunnelType::Gre] {
            assert_eq!(tunnel_type_of(tunnel_type_code(t)), t);
        }
        for c in [
            TunnelChecksum::None,
            TunnelChecksum::Checksum,
            TunnelChecksum::Remote,
        ] {
            assert_eq!(tunnel_checksum_of(tunnel_checksum_code(c)), c);
        }
    }

    /// Service flags go into the maps as the model holds them (both are IPVS's numbers):
    /// the bits the datapath reads must be the model's.
    #[test]
    fn service_flags_are_the_models() {
        use xvs_common::service_flags;
        use xvs_core::model::flags;
        assert_eq!(service_flags::PERSISTENT, flags::PERSISTENT);
        assert_eq!(service_flags::ONE_PACKET, flags::ONEPACKET);
        assert_eq!(service_flags::PROXY_V2, flags::PROXY_V2);
    }

    #[test]
    fn schedulers_have_distinct_codes() {
        let mut codes: Vec<u8> = Scheduler::ALL.iter().map(|s| scheduler_code(*s)).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Scheduler::ALL.len());
    }
}
