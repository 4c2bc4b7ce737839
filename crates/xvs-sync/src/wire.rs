//! IPVS's sync protocol version 1 (`net/netfilter/ipvs/ip_vs_sync.c`), the messages a
//! kernel IPVS director also sends and reads, and xvs's additions.
//!
//! ```text
//! header (8 bytes): u8 reserved = 0 | u8 syncid | be16 size | u8 nr_conns | s8 version = 1 | u16 spare
//! each connection (32-bit aligned):
//!   u8 type (bit 0: IPv6) | u8 protocol | be16 version << 12 | size
//!   be32 flags | be16 state | be16 cport | be16 vport | be16 dport | be32 fwmark | be32 timeout
//!   caddr | vaddr | daddr (4 or 16 bytes each) | options: u8 type | u8 length | data
//! ```
//!
//! Additions, which a kernel receiver never sees as connections: a message without
//! connections whose `spare` is [`BULK_REQUEST`] asks a master for its whole table; a
//! sealed message ([`Seal`]) carries an HMAC-SHA256 of itself after its `size` bytes (a
//! kernel receiver drops it: its length is not `size`). And one a kernel receiver skips:
//! a FULLNAT connection's local side as option [`OPT_FULLNAT`], an optional parameter
//! (`IPVS_OPT_F_PARAM` set: IPVS skips optional parameters it does not know):
//! `laddr (the real server's family) | be16 lport | u8 proxy | u8 0 | be32 first_seq`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use ring::hmac;

use crate::{FullnatSide, IPPROTO_TCP, IPPROTO_UDP, SyncedConn, flags, state};

/// IPVS's default sync group and port (`IP_VS_SYNC_GROUP`, `IP_VS_SYNC_PORT`).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const DEFAULT_PORT: u16 = 8848;
/// IPVS's largest message by default: 1500 bytes less the IPv4 and UDP headers.
pub const DEFAULT_MAXLEN: usize = 1500 - 20 - 8;

const HEADER: usize = 8;
const VERSION: u8 = 1;
const CONN_V4: usize = 36;
const CONN_V6: usize = 72;
/// The type bit of an IPv6 connection.
const TYPE_INET6: u8 = 1;
const SIZE_MASK: u16 = 0x0fff;
/// `spare` of a message that asks a master for its whole table.
pub const BULK_REQUEST: u16 = 0x4258;
/// The length of a seal.
pub const SEAL_LEN: usize = 32;
/// IPVS's flag of an optional parameter (`IPVS_OPT_F_PARAM`, 1 << (7 - 1)): a receiver
/// that does not know the option skips it.
const OPT_F_PARAM: u8 = 0x40;
/// The option of a FULLNAT connection's local side (an optional parameter; 8 is past
/// IPVS's options, which end at 3).
pub const OPT_FULLNAT: u8 = OPT_F_PARAM | 8;
/// IPVS's options of a persistence engine's data and name (`IPVS_OPT_PE_DATA`,
/// `IPVS_OPT_PE_NAME`): a call's template carries its Call-ID and `sip`.
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
/// The SIP engine's name, and the longest data IPVS takes (`IP_VS_PEDATA_MAXLEN`).
const PE_SIP: &[u8] = b"sip";
const PE_DATA_MAX: usize = 255;
/// Its data after the local address: port, PROXY state, a zero, first sequence number.
const FULLNAT_REST: usize = 8;

/// A message as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub syncid: u8,
    pub conns: Vec<SyncedConn>,
    /// A backup asks for the whole table.
    pub bulk_request: bool,
}

/// Why a message was dropped (each is a counted drop, never a partial message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Shorter than its header, or its `size` is not its length.
    Length,
    /// Version 0 (IPv4 only, no timeouts): xvs reads version 1 only.
    Version,
    /// A connection's size, type, protocol or state is not one IPVS sends.
    Connection,
    /// A seal was expected and is missing or wrong.
    Seal,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Length => "its length is not the one it gives",
            Refused::Version => "it is not sync protocol version 1",
            Refused::Connection => "a connection in it is malformed",
            Refused::Seal => "its HMAC is missing or wrong",
        })
    }
}

/// Messages of at most `maxlen` bytes (at most 255 connections each) carrying `conns`.
/// A connection whose three addresses are not of one family cannot be said in version 1
/// and is left out, as is one that would not fit a message of `maxlen` alone (a long
/// Call-ID under a small `maxlen`).
pub fn encode(syncid: u8, conns: &[SyncedConn], maxlen: usize) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut message = header(syncid);
    let mut count = 0u8;
    for conn in conns {
        let Some(size) = conn_size(conn).filter(|size| HEADER + size.next_multiple_of(4) <= maxlen)
        else {
            continue;
        };
        if count == u8::MAX || message.len() + size.next_multiple_of(4) > maxlen {
            if count > 0 {
                messages.push(finish(message, count, 0));
            }
            message = header(syncid);
            count = 0;
        }
        put_conn(&mut message, conn, size);
        // The next connection starts 32-bit aligned.
        message.resize(message.len().next_multiple_of(4), 0);
        count += 1;
    }
    if count > 0 {
        messages.push(finish(message, count, 0));
    }
    messages
}

/// The message by which a backup asks for the whole table.
pub fn bulk_request(syncid: u8) -> Vec<u8> {
    finish(header(syncid), 0, BULK_REQUEST)
}

fn header(syncid: u8) -> Vec<u8> {
    vec![0, syncid, 0, 0, 0, VERSION, 0, 0]
}

fn finish(mut message: Vec<u8>, count: u8, spare: u16) -> Vec<u8> {
    let size = message.len() as u16;
    message[2..4].copy_from_slice(&size.to_be_bytes());
    message[4] = count;
    message[6..8].copy_from_slice(&spare.to_be_bytes());
    message
}

/// A connection's size with its options (a FULLNAT local side of another family than
/// the real server's cannot be said).
fn conn_size(conn: &SyncedConn) -> Option<usize> {
    let base = match (conn.client, conn.vaddr, conn.daddr) {
        (IpAddr::V4(_), IpAddr::V4(_), IpAddr::V4(_)) => CONN_V4,
        (IpAddr::V6(_), IpAddr::V6(_), IpAddr::V6(_)) => CONN_V6,
        _ => return None,
    };
    let call = match conn.call.as_deref() {
        None => 0,
        Some(call) if !call.is_empty() && call.len() <= PE_DATA_MAX => {
            2 + call.len() + 2 + PE_SIP.len()
        }
        Some(_) => return None,
    };
    match (conn.fullnat.map(|side| side.laddr), conn.daddr) {
        (None, _) => Some(base + call),
        (Some(IpAddr::V4(_)), IpAddr::V4(_)) => Some(base + call + 2 + 4 + FULLNAT_REST),
        (Some(IpAddr::V6(_)), IpAddr::V6(_)) => Some(base + call + 2 + 16 + FULLNAT_REST),
        _ => None,
    }
}

fn put_conn(out: &mut Vec<u8>, conn: &SyncedConn, size: usize) {
    out.push(if conn.client.is_ipv6() { TYPE_INET6 } else { 0 });
    out.push(conn.protocol);
    out.extend_from_slice(&(size as u16).to_be_bytes());
    out.extend_from_slice(&conn.flags.to_be_bytes());
    out.extend_from_slice(&conn.state.to_be_bytes());
    out.extend_from_slice(&conn.cport.to_be_bytes());
    out.extend_from_slice(&conn.vport.to_be_bytes());
    out.extend_from_slice(&conn.dport.to_be_bytes());
    out.extend_from_slice(&conn.fwmark.to_be_bytes());
    out.extend_from_slice(&conn.timeout.to_be_bytes());
    for addr in [conn.client, conn.vaddr, conn.daddr] {
        put_addr(out, addr);
    }
    // As IPVS puts them: the engine's data, then its name.
    if let Some(call) = conn.call.as_deref() {
        for (kind, data) in [(OPT_PE_DATA, call), (OPT_PE_NAME, PE_SIP)] {
            out.push(kind);
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
    }
    if let Some(side) = conn.fullnat {
        let addr_len = if side.laddr.is_ipv4() { 4 } else { 16 };
        out.push(OPT_FULLNAT);
        out.push((addr_len + FULLNAT_REST) as u8);
        put_addr(out, side.laddr);
        out.extend_from_slice(&side.lport.to_be_bytes());
        out.push(side.proxy);
        out.push(0);
        out.extend_from_slice(&side.first_seq.to_be_bytes());
    }
}

fn put_addr(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// What a connection's options say (`options`: the bytes after its addresses, up to its
/// size): the FULLNAT local side, and a call's Call-ID (the persistence engine's data
/// when its name is `sip`). Malformed options refuse the message, as IPVS refuses it;
/// options xvs does not know are skipped (IPVS's sequence data), as is another engine's
/// data.
fn read_options(options: &[u8], v6: bool) -> Result<Options, Refused> {
    let mut side = None;
    let (mut pe_data, mut pe_name) = (None, None);
    let mut at = 0;
    while at < options.len() {
        let (Some(&kind), Some(&len)) = (options.get(at), options.get(at + 1)) else {
            return Err(Refused::Connection);
        };
        let data = options
            .get(at + 2..at + 2 + len as usize)
            .filter(|_| len > 0)
            .ok_or(Refused::Connection)?;
        if kind == OPT_FULLNAT {
            let addr_len = if v6 { 16 } else { 4 };
            if data.len() != addr_len + FULLNAT_REST {
                return Err(Refused::Connection);
            }
            let laddr = if v6 {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&data[..16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            } else {
                IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))
            };
            let rest = &data[addr_len..];
            side = Some(FullnatSide {
                laddr,
                lport: u16::from_be_bytes([rest[0], rest[1]]),
                proxy: rest[2],
                first_seq: u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
            });
        } else if kind == OPT_PE_DATA {
            pe_data = Some(data);
        } else if kind == OPT_PE_NAME {
            pe_name = Some(data);
        }
        at += 2 + len as usize;
    }
    let call = match (pe_name, pe_data) {
        (Some(PE_SIP), Some(call)) if call.len() <= PE_DATA_MAX => Some(Arc::from(call)),
        _ => None,
    };
    Ok(Options {
        fullnat: side,
        call,
    })
}

/// A connection's options, as [`read_options`] reads them.
struct Options {
    fullnat: Option<FullnatSide>,
    call: Option<Arc<[u8]>>,
}

/// Reads a message (unsealed: see [`Seal::open`]). All or nothing: one malformed
/// connection refuses the message, as IPVS's receiver does.
pub fn decode(bytes: &[u8]) -> Result<Message, Refused> {
    if bytes.len() < HEADER {
        return Err(Refused::Length);
    }
    if bytes[0] != 0 || bytes[5] != VERSION {
        return Err(Refused::Version);
    }
    let size = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
    if size != bytes.len() {
        return Err(Refused::Length);
    }
    let count = bytes[4] as usize;
    let spare = u16::from_be_bytes([bytes[6], bytes[7]]);
    let mut conns = Vec::with_capacity(count);
    let mut at = HEADER;
    for _ in 0..count {
        let rest = &bytes[at..];
        if rest.len() < 4 {
            return Err(Refused::Connection);
        }
        let ver_size = u16::from_be_bytes([rest[2], rest[3]]);
        let size = (ver_size & SIZE_MASK) as usize;
        let base = if rest[0] & TYPE_INET6 != 0 {
            CONN_V6
        } else {
            CONN_V4
        };
        if ver_size >> 12 != 0 || rest[0] & !TYPE_INET6 != 0 || size < base || size > rest.len() {
            return Err(Refused::Connection);
        }
        let mut conn = read_conn(&rest[..base])?;
        let options = read_options(&rest[base..size], base == CONN_V6)?;
        conn.fullnat = options.fullnat;
        conn.call = options.call;
        conns.push(conn);
        // The next connection starts 32-bit aligned.
        at += size.next_multiple_of(4).min(rest.len());
    }
    Ok(Message {
        syncid: bytes[1],
        conns,
        bulk_request: count == 0 && spare == BULK_REQUEST,
    })
}

fn read_conn(b: &[u8]) -> Result<SyncedConn, Refused> {
    let be16 = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let addr = |index: usize| -> IpAddr {
        if b.len() == CONN_V6 {
            let at = 24 + 16 * index;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(octets))
        } else {
            let at = 24 + 4 * index;
            IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
        }
    };
    let conn = SyncedConn {
        protocol: b[1],
        flags: be32(4),
        state: be16(8),
        cport: be16(10),
        vport: be16(12),
        dport: be16(14),
        fwmark: be32(16),
        timeout: be32(20),
        client: addr(0),
        vaddr: addr(1),
        daddr: addr(2),
        fullnat: None,
        call: None,
    };
    let valid = match conn.protocol {
        IPPROTO_TCP => conn.state < state::TCP_COUNT,
        IPPROTO_UDP => conn.state == 0,
        // The template of a fwmark service.
        0 => conn.flags & flags::TEMPLATE != 0,
        _ => false,
    };
    if valid {
        Ok(conn)
    } else {
        Err(Refused::Connection)
    }
}

/// HMAC-SHA256 over whole messages, with a key the directors share.
pub struct Seal {
    key: hmac::Key,
}

impl Seal {
    pub fn new(secret: &[u8]) -> Seal {
        Seal {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Appends the message's HMAC.
    pub fn seal(&self, message: &mut Vec<u8>) {
        let tag = hmac::sign(&self.key, message);
        message.extend_from_slice(tag.as_ref());
    }

    /// The message of a sealed datagram, if its HMAC is right.
    pub fn open<'a>(&self, datagram: &'a [u8]) -> Result<&'a [u8], Refused> {
        let Some(split) = datagram.len().checked_sub(SEAL_LEN) else {
            return Err(Refused::Seal);
        };
        let (message, tag) = datagram.split_at(split);
        hmac::verify(&self.key, message, tag).map_err(|_| Refused::Seal)?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn conn(client: &str, cport: u16) -> SyncedConn {
        SyncedConn {
            protocol: IPPROTO_TCP,
            client: client.parse().unwrap(),
            cport,
            vaddr: "192.168.10.100".parse().unwrap(),
            vport: 80,
            daddr: "192.168.10.2".parse().unwrap(),
            dport: 80,
            fwmark: 0,
            flags: flags::DROUTE,
            state: state::ESTABLISHED,
            timeout: 900,
            fullnat: None,
            call: None,
        }
    }

    /// The FULLNAT local side: an optional parameter after the addresses, the size
    /// counting it, the next connection 32-bit aligned after it.
    #[test]
    fn a_fullnat_local_side_is_an_optional_parameter() {
        let mut fullnat = conn("10.0.0.1", 40000);
        fullnat.fullnat = Some(FullnatSide {
            laddr: "192.168.10.254".parse().unwrap(),
            lport: 5000,
            proxy: 2,
            first_seq: 0x01020304,
        });
        let messages = encode(
            7,
            &[fullnat.clone(), conn("10.0.0.2", 40001)],
            DEFAULT_MAXLEN,
        );
        let m = &messages[0];
        assert_eq!(&m[10..12], &[0, 50], "size: 36 and the option's 14");
        assert_eq!(
            &m[44..58],
            &[0x48, 12, 192, 168, 10, 254, 0x13, 0x88, 2, 0, 1, 2, 3, 4]
        );
        assert_eq!(&m[58..60], &[0, 0], "padding");
        assert_eq!(m.len(), 8 + 52 + 36);
        let read = decode(m).unwrap();
        assert_eq!(read.conns, vec![fullnat, conn("10.0.0.2", 40001)]);
        // IPVS's own options are skipped; an option that runs past the connection, or
        // of length 0, refuses the message.
        let mut with_seq = m.clone();
        with_seq[44] = 1;
        assert_eq!(decode(&with_seq).unwrap().conns[0].fullnat, None);
        let mut overrun = m.clone();
        overrun[45] = 40;
        assert_eq!(decode(&overrun), Err(Refused::Connection));
        let mut empty = m.clone();
        empty[45] = 0;
        assert_eq!(decode(&empty), Err(Refused::Connection));
    }

    /// A call's template carries its Call-ID as IPVS's persistence-engine data, then the
    /// engine's name, as `ip_vs_sync_conn_v1` lays them out; another engine's data is
    /// not a call.
    #[test]
    fn a_call_id_travels_as_ipvs_persistence_engine_data() {
        let mut call = conn("10.0.0.0", 0);
        call.flags |= flags::TEMPLATE;
        call.call = Some(Arc::from(&b"a84b4c76e66710@pc33"[..]));
        let messages = encode(7, &[call.clone()], DEFAULT_MAXLEN);
        let m = &messages[0];
        assert_eq!(&m[10..12], &[0, 36 + 2 + 19 + 2 + 3], "size");
        assert_eq!(&m[44..46], &[2, 19], "IPVS_OPT_PE_DATA");
        assert_eq!(&m[46..65], b"a84b4c76e66710@pc33");
        assert_eq!(&m[65..70], &[3, 3, b's', b'i', b'p'], "IPVS_OPT_PE_NAME");
        assert_eq!(m.len(), 8 + 64, "padded to 32 bits");
        assert_eq!(decode(m).unwrap().conns, vec![call]);
        let mut other = m.clone();
        other[68] = b'x';
        assert_eq!(decode(&other).unwrap().conns[0].call, None);
    }

    #[test]
    fn an_ipv4_connection_is_laid_out_as_ip_vs_sync_v4() {
        let messages = encode(7, &[conn("10.0.0.1", 40000)], DEFAULT_MAXLEN);
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.len(), 8 + 36);
        // reserved, syncid, size, nr_conns, version, spare
        assert_eq!(&m[..8], &[0, 7, 0, 44, 1, 1, 0, 0]);
        // type, protocol, ver_size, flags, state, cport, vport, dport
        assert_eq!(
            &m[8..24],
            &[0, 6, 0, 36, 0, 0, 0, 3, 0, 1, 0x9c, 0x40, 0, 80, 0, 80]
        );
        // fwmark, timeout, caddr, vaddr, daddr
        assert_eq!(&m[24..32], &[0, 0, 0, 0, 0, 0, 3, 0x84]);
        assert_eq!(
            &m[32..44],
            &[10, 0, 0, 1, 192, 168, 10, 100, 192, 168, 10, 2]
        );
    }

    #[test]
    fn messages_stay_within_maxlen_and_255_connections() {
        let conns: Vec<_> = (0..600).map(|p| conn("10.0.0.1", p)).collect();
        let messages = encode(0, &conns, DEFAULT_MAXLEN);
        let mut back = Vec::new();
        for m in &messages {
            assert!(m.len() <= DEFAULT_MAXLEN);
            back.extend(decode(m).unwrap().conns);
        }
        assert_eq!(back, conns);
        let big = encode(0, &conns, 65_000);
        assert!(big.iter().all(|m| m[4] as usize <= 255));
        assert_eq!(big.len(), 3);
    }

    #[test]
    fn mixed_families_are_left_out() {
        let mut mixed = conn("10.0.0.1", 1);
        mixed.daddr = "2001:db8::2".parse().unwrap();
        assert!(encode(0, &[mixed], DEFAULT_MAXLEN).is_empty());
    }

    #[test]
    fn malformed_messages_are_refused_whole() {
        let mut m = encode(0, &[conn("10.0.0.1", 1), conn("10.0.0.2", 2)], 1472).remove(0);
        assert_eq!(decode(&m[..m.len() - 1]), Err(Refused::Length));
        let mut v0 = m.clone();
        v0[5] = 0;
        assert_eq!(decode(&v0), Err(Refused::Version));
        // The second connection's state is not a TCP state.
        let second = 8 + 36;
        m[second + 8..second + 10].copy_from_slice(&99u16.to_be_bytes());
        assert_eq!(decode(&m), Err(Refused::Connection));
        assert_eq!(decode(&[0, 0, 0]), Err(Refused::Length));
    }

    #[test]
    fn a_bulk_request_has_no_connections() {
        let request = bulk_request(3);
        let read = decode(&request).unwrap();
        assert!(read.bulk_request);
        assert!(read.conns.is_empty());
        assert_eq!(read.syncid, 3);
    }

    #[test]
    fn a_seal_lets_only_the_key_holders_message_through() {
        let seal = Seal::new(b"secret");
        let mut m = encode(0, &[conn("10.0.0.1", 1)], 1472).remove(0);
        let plain = m.clone();
        seal.seal(&mut m);
        assert_eq!(seal.open(&m).unwrap(), &plain[..]);
        assert_eq!(Seal::new(b"other").open(&m), Err(Refused::Seal));
        let mut tampered = m.clone();
        tampered[20] ^= 1;
        assert_eq!(seal.open(&tampered), Err(Refused::Seal));
        // Unsealed, a kernel receiver would drop it too: its length is not its size.
        assert_eq!(decode(&m), Err(Refused::Length));
    }

    fn any_conn() -> impl Strategy<Value = SyncedConn> {
        (
            any::<bool>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<(u16, u16, u16, u32, u32)>(),
            prop_oneof![Just(IPPROTO_TCP), Just(IPPROTO_UDP)],
            0..state::TCP_COUNT,
            proptest::option::of((any::<[u8; 16]>(), any::<(u16, u8, u32)>())),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=PE_DATA_MAX)),
        )
            .prop_map(
                |(
                    v6,
                    c,
                    v,
                    d,
                    (cport, vport, dport, fwmark, timeout),
                    protocol,
                    s,
                    fullnat,
                    call,
                )| {
                    let addr = |b: [u8; 16]| -> IpAddr {
                        if v6 {
                            IpAddr::V6(Ipv6Addr::from(b))
                        } else {
                            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                        }
                    };
                    SyncedConn {
                        protocol,
                        client: addr(c),
                        cport,
                        vaddr: addr(v),
                        vport,
                        daddr: addr(d),
                        dport,
                        fwmark,
                        flags: flags::DROUTE,
                        state: if protocol == IPPROTO_UDP { 0 } else { s },
                        timeout,
                        fullnat: fullnat.map(|(l, (lport, proxy, first_seq))| FullnatSide {
                            laddr: addr(l),
                            lport,
                            proxy,
                            first_seq,
                        }),
                        call: call.map(Arc::from),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn what_is_encoded_decodes_to_itself(
            conns in proptest::collection::vec(any_conn(), 0..300),
            maxlen in 120usize..9000,
        ) {
            let mut back = Vec::new();
            for m in encode(9, &conns, maxlen) {
                prop_assert!(m.len() <= maxlen);
                let read = decode(&m).unwrap();
                prop_assert_eq!(read.syncid, 9);
                prop_assert!(!read.bulk_request);
                back.extend(read.conns);
            }
            let fit: Vec<SyncedConn> = conns
                .into_iter()
                .filter(|c| conn_size(c).is_some_and(|size| HEADER + size.next_multiple_of(4) <= maxlen))
                .collect();
            prop_assert_eq!(back, fit);
        }

        #[test]
        fn no_datagram_makes_the_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&bytes);
        }
    }
}
