//! The VRRP advertisement (shared/reference/vrrp.md §2).
//!
//! ```text
//!  0                   1                   2                   3
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! v3: |(rsvd) |     Max Adver Int (centiseconds)     |   Checksum   |
//! v2: | Auth Type     | Adver Int (s) |          Checksum             |
//! |            IPvX Address(es) (4 or 16 bytes each)              |
//! v2 only: 8 bytes of authentication data
//! ```
//!
//! The VRRPv3 checksum over IPv4 includes a pseudo-header by default (keepalived's
//! choice); some routers leave it out (keepalived's `v3_checksum_as_v2`). `parse` accepts
//! either; `emit` writes the one asked for. IPv6 always has the pseudo-header; v2 never.

use std::net::IpAddr;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
const TYPE_ADVERTISEMENT: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// 2 or 3.
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// The advertisement interval in centiseconds (v2 carries whole seconds).
    pub interval_cs: u16,
    /// The virtual addresses, all of one family.
    pub addresses: Vec<IpAddr>,
}

/// Why a packet was refused (RFC 5798 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Short,
    Version(u8),
    Type(u8),
    Count,
    Checksum,
    Family,
}

/// The ones'-complement sum of `data` folded into 16 bits, starting from `sum`.
fn sum(data: &[u8], mut sum: u32) -> u32 {
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// The pseudo-header's sum (source, destination, protocol, length).
fn pseudo(source: IpAddr, destination: IpAddr, length: usize) -> u32 {
    let mut bytes = Vec::with_capacity(40);
    match (source, destination) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&[0, PROTOCOL]);
            bytes.extend_from_slice(&(length as u16).to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            bytes.extend_from_slice(&v6(s));
            bytes.extend_from_slice(&v6(d));
            bytes.extend_from_slice(&(length as u32).to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, PROTOCOL]);
        }
    }
    sum(&bytes, 0)
}

/// How the checksum of a VRRPv3 advertisement over IPv4 is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V4Checksum {
    /// With the IPv4 pseudo-header (keepalived's default).
    PseudoHeader,
    /// Over the message alone (keepalived's `v3_checksum_as_v2`).
    MessageOnly,
}

impl Advertisement {
    /// The message sent from `source` to `destination` (the addresses of its IP header).
    pub fn emit(&self, source: IpAddr, destination: IpAddr, v4: V4Checksum) -> Vec<u8> {
        let mut out = vec![
            (self.version << 4) | TYPE_ADVERTISEMENT,
            self.vrid,
            self.priority,
            self.addresses.len() as u8,
        ];
        if self.version == 2 {
            out.extend_from_slice(&[0, (self.interval_cs / 100).max(1) as u8, 0, 0]);
        } else {
            out.extend_from_slice(&(self.interval_cs & 0x0fff).to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        for address in &self.addresses {
            match address {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        if self.version == 2 {
            out.extend_from_slice(&[0; 8]);
        }
        let start = match (self.version, source, v4) {
            (3, IpAddr::V6(_), _) | (3, IpAddr::V4(_), V4Checksum::PseudoHeader) => {
                pseudo(source, destination, out.len())
            }
            _ => 0,
        };
        let checksum = !(sum(&out, start) as u16);
        out[6..8].copy_from_slice(&checksum.to_be_bytes());
        out
    }

    /// The advertisement in `bytes`, received from `source` for `destination` (whose
    /// family is its addresses').
    pub fn parse(
        bytes: &[u8],
        source: IpAddr,
        destination: IpAddr,
    ) -> Result<Advertisement, Refusal> {
        if bytes.len() < 8 {
            return Err(Refusal::Short);
        }
        let version = bytes[0] >> 4;
        if version != 2 && version != 3 {
            return Err(Refusal::Version(version));
        }
        if bytes[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(Refusal::Type(bytes[0] & 0x0f));
        }
        let count = usize::from(bytes[3]);
        let width = if source.is_ipv4() { 4 } else { 16 };
        let length = 8 + count * width + if version == 2 { 8 } else { 0 };
        if (version == 3 && count == 0) || bytes.len() < length {
            return Err(if bytes.len() < length {
                Refusal::Short
            } else {
                Refusal::Count
            });
        }
        if version == 2 && !source.is_ipv4() {
            return Err(Refusal::Family);
        }
        let message = &bytes[..length];
        let valid = match (version, source) {
            (2, _) => sum(message, 0) == 0xffff,
            (_, IpAddr::V6(_)) => sum(message, pseudo(source, destination, length)) == 0xffff,
            _ => {
                sum(message, pseudo(source, destination, length)) == 0xffff
                    || sum(message, 0) == 0xffff
            }
        };
        if !valid {
            return Err(Refusal::Checksum);
        }
        let interval_cs = if version == 2 {
            u16::from(bytes[5]) * 100
        } else {
            u16::from_be_bytes([bytes[4], bytes[5]]) & 0x0fff
        };
        let addresses = bytes[8..8 + count * width]
            .chunks(width)
            .map(|chunk| match width {
                4 => IpAddr::from(<[u8; 4]>::try_from(chunk).unwrap_or_default()),
                _ => IpAddr::from(<[u8; 16]>::try_from(chunk).unwrap_or_default()),
            })
            .collect();
        Ok(Advertisement {
            version,
            vrid: bytes[1],
            priority: bytes[2],
            interval_cs,
            addresses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_v3_ipv4_advertisement_as_keepalived_sends_it() {
        // VRID 51, priority 100, 1 s, VIP 1.1.1.254, from 10.0.0.1 to 224.0.0.18, with the
        // pseudo-header: the bytes and the checksum worked out by hand.
        let advert = Advertisement {
            version: 3,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            addresses: vec![addr("1.1.1.254")],
        };
        let (src, dst) = (addr("10.0.0.1"), addr("224.0.0.18"));
        let bytes = advert.emit(src, dst, V4Checksum::PseudoHeader);
        // Message: 0x3133 + 0x6401 + 0x0064 + 0x0101 + 0x01fe = 0x9897; pseudo-header:
        // 0x0a00 + 0x0001 + 0xe000 + 0x0012 + 0x0070 + 0x000c = 0xea8f; together 0x1_8326,
        // folded 0x8327; the checksum is its complement, 0x7cd8.
        assert_eq!(
            bytes,
            [0x31, 51, 100, 1, 0x00, 0x64, 0x7c, 0xd8, 1, 1, 1, 254]
        );
        assert_eq!(Advertisement::parse(&bytes, src, dst), Ok(advert.clone()));
        // The message-only form parses too, and a flipped bit does not.
        let plain = advert.emit(src, dst, V4Checksum::MessageOnly);
        assert_eq!(Advertisement::parse(&plain, src, dst), Ok(advert));
        let mut bad = bytes.clone();
        bad[2] ^= 1;
        assert_eq!(Advertisement::parse(&bad, src, dst), Err(Refusal::Checksum));
    }

    #[test]
    fn v2_and_ipv6_round_trip_and_bad_packets_are_named() {
        let v2 = Advertisement {
            version: 2,
            vrid: 7,
            priority: 200,
            interval_cs: 300,
            addresses: vec![addr("1.1.1.254"), addr("1.1.1.253")],
        };
        let (src, dst) = (addr("10.0.0.2"), addr("224.0.0.18"));
        let bytes = v2.emit(src, dst, V4Checksum::PseudoHeader);
        assert_eq!(bytes.len(), 8 + 8 + 8);
        assert_eq!(bytes[5], 3, "whole seconds");
        assert_eq!(Advertisement::parse(&bytes, src, dst), Ok(v2));

        let v6 = Advertisement {
            version: 3,
            vrid: 9,
            priority: 150,
            interval_cs: 50,
            addresses: vec![addr("fe80::1"), addr("2001:db8::1")],
        };
        let (src, dst) = (addr("fe80::2"), addr("ff02::12"));
        let bytes = v6.emit(src, dst, V4Checksum::MessageOnly);
        assert_eq!(Advertisement::parse(&bytes, src, dst), Ok(v6));

        assert_eq!(
            Advertisement::parse(&[0x31, 1], src, dst),
            Err(Refusal::Short)
        );
        let mut wrong_type = bytes.clone();
        wrong_type[0] = 0x32;
        assert_eq!(
            Advertisement::parse(&wrong_type, src, dst),
            Err(Refusal::Type(2))
        );
        let mut no_addresses = bytes;
        no_addresses[3] = 0;
        assert_eq!(
            Advertisement::parse(&no_addresses, src, dst),
            Err(Refusal::Count)
        );
    }
}
