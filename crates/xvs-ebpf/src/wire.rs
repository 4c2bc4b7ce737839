//! The header fields the XDP programs read and write, by name (as smoltcp's `field`
//! modules): L2 and L3 fields as offsets from the start of the frame (the IP header
//! follows a plain Ethernet header), L4 fields as offsets from the start of the L4 header.
//! With the protocol numbers they dispatch on. Shared by the director and the decapsulator.

// Each program compiles its own copy and uses only the fields it needs.
#![allow(dead_code)]

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_IPV6: u8 = 41;
pub const IPPROTO_GRE: u8 = 47;

pub mod eth {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const TYPE: usize = 12;
    pub const LEN: usize = 14;
}

pub mod ipv4 {
    use super::eth;

    /// Version (high nibble) and header length in 4-byte words (low nibble).
    pub const VERSION_IHL: usize = eth::LEN;
    pub const TOS: usize = eth::LEN + 1;
    pub const TOTAL_LEN: usize = eth::LEN + 2;
    /// Identification: a datagram's fragments share it.
    pub const ID: usize = eth::LEN + 4;
    /// Flags (DF 0x4000, MF 0x2000) and fragment offset.
    pub const FRAG: usize = eth::LEN + 6;
    pub const TTL: usize = eth::LEN + 8;
    pub const PROTOCOL: usize = eth::LEN + 9;
    pub const CHECKSUM: usize = eth::LEN + 10;
    pub const SRC: usize = eth::LEN + 12;
    pub const DST: usize = eth::LEN + 16;
    /// A header without options.
    pub const MIN_LEN: usize = 20;
    /// The DF bit in the high byte of [`FRAG`].
    pub const DF_HIGH_BYTE: u8 = 0x40;
    /// MF and the fragment offset: any of them set makes a fragment.
    pub const FRAGMENT_MASK: u16 = 0x3fff;
    /// The fragment offset: zero in a datagram's first fragment.
    pub const OFFSET_MASK: u16 = 0x1fff;
}

pub mod ipv6 {
    use super::eth;

    /// Version (high nibble of the first byte).
    pub const VERSION: usize = eth::LEN;
    pub const PAYLOAD_LEN: usize = eth::LEN + 4;
    pub const NEXT_HEADER: usize = eth::LEN + 6;
    pub const HOP_LIMIT: usize = eth::LEN + 7;
    pub const SRC: usize = eth::LEN + 8;
    pub const DST: usize = eth::LEN + 24;
    /// The fixed header.
    pub const LEN: usize = 40;
    /// Extension headers the director walks past to TCP or UDP, as IPVS's
    /// `ipv6_find_hdr` does: hop-by-hop options, routing (only with no segments left:
    /// else the destination is not the final one), destination options, and one fragment
    /// header. Each but the fragment header starts with the next header and its length in
    /// 8-byte units, not counting the first 8.
    pub const NEXT_HOP_BY_HOP: u8 = 0;
    pub const NEXT_ROUTING: u8 = 43;
    pub const NEXT_FRAGMENT: u8 = 44;
    pub const NEXT_DEST_OPTIONS: u8 = 60;
    /// A routing header's segments left (byte 3).
    pub const ROUTING_SEGMENTS_LEFT: usize = 3;
    /// The fragment header's fields, from its start: offset (13 bits, in 8-byte units)
    /// and, in the low bit, "more fragments"; the datagram's identification.
    pub const FRAGMENT_OFFSET: usize = 2;
    pub const FRAGMENT_ID: usize = 4;
    pub const FRAGMENT_OFFSET_MASK: u16 = 0xfff8;
    pub const FRAGMENT_LEN: usize = 8;
    /// At most this many extension headers are walked...
    pub const MAX_EXTENSIONS: usize = 4;
    /// ...and TCP or UDP must start before this offset in the frame (72 bytes of
    /// extension headers: the datapath keeps L4 offsets below 128, which its bounds
    /// checks rely on). Longer chains go to the kernel, counted.
    pub const L4_LIMIT: usize = 128;
}

pub mod tcp {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: usize = 16;
    pub const MIN_LEN: usize = 20;
}

pub mod udp {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const CHECKSUM: usize = 6;
    pub const LEN: usize = 8;
}

/// Generic UDP Encapsulation (draft-ietf-intarea-gue), after a UDP header: version 0 as
/// IPVS's `--tun-type gue` sends it (4 bytes, no options), or version 1, where the inner IP
/// header itself follows the UDP header.
pub mod gue {
    pub const LEN: usize = 4;
    /// Byte 0: version (2 bits), C (control message), header length in words (5 bits).
    pub const VERSION_SHIFT: u8 = 6;
    pub const CONTROL: u8 = 0x20;
    pub const HLEN_MASK: u8 = 0x1f;
    /// Byte 1: the protocol number of what follows (4 IPv4, 41 IPv6).
    pub const PROTOCOL: usize = 1;
}

/// GRE (RFC 2784/2890) as IPVS's `--tun-type gre` sends it: flags and version, the inner
/// packet's ethertype, and with the checksum flag a checksum and 2 reserved bytes.
pub mod gre {
    pub const LEN: usize = 4;
    pub const CHECKSUM_LEN: usize = 4;
    /// Flags, in the first byte: checksum present, routing, key, sequence number.
    pub const FLAG_CHECKSUM: u8 = 0x80;
    pub const FLAG_ROUTING: u8 = 0x40;
    pub const FLAG_KEY: u8 = 0x20;
    pub const FLAG_SEQUENCE: u8 = 0x10;
    /// The version, in the low 3 bits of the second byte: 0.
    pub const VERSION_MASK: u8 = 0x07;
    /// Where the ethertype is.
    pub const PROTOCOL: usize = 2;
}
