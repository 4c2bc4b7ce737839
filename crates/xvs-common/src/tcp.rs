//! IPVS's TCP connection states, state machine and default timeouts (ip_vs_proto_tcp.c),
//! shared by the datapath and the tools that list connections.

pub const NONE: u8 = 0;
pub const ESTABLISHED: u8 = 1;
pub const SYN_SENT: u8 = 2;
pub const SYN_RECV: u8 = 3;
pub const FIN_WAIT: u8 = 4;
pub const TIME_WAIT: u8 = 5;
pub const CLOSE: u8 = 6;
pub const CLOSE_WAIT: u8 = 7;
pub const LAST_ACK: u8 = 8;
pub const LISTEN: u8 = 9;
pub const SYNACK: u8 = 10;
/// The single state of UDP connections (listed as `UDP`).
pub const UDP: u8 = 11;

/// State names as `ipvsadm -L -c` prints them.
pub const NAMES: [&str; 12] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
    "UDP",
];

/// Default timeout of each state in seconds (ESTABLISHED, FIN_WAIT and UDP are the
/// ones `--set` changes).
pub const TIMEOUTS: [u32; 12] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 300];

/// True for the states IPVS counts as active connections.
pub const fn is_active(state: u8) -> bool {
    matches!(state, ESTABLISHED | SYN_SENT | SYN_RECV | SYNACK)
}

/// Events, by the first flag found in this order: RST, SYN, FIN, ACK.
pub const EVENT_SYN: usize = 0;
pub const EVENT_FIN: usize = 1;
pub const EVENT_ACK: usize = 2;
pub const EVENT_RST: usize = 3;

#[allow(dead_code)]
const S_NO: u8 = NONE;
const S_ES: u8 = ESTABLISHED;
const S_SS: u8 = SYN_SENT;
const S_SR: u8 = SYN_RECV;
const S_FW: u8 = FIN_WAIT;
const S_TW: u8 = TIME_WAIT;
const S_CL: u8 = CLOSE;
const S_CW: u8 = CLOSE_WAIT;
const S_LA: u8 = LAST_ACK;
const S_LI: u8 = LISTEN;
#[allow(dead_code)]
const S_SA: u8 = SYNACK;

/// Rows: event; columns: current state (NONE ES SS SR FW TW CL CW LA LI SA).
type Table = [[u8; 11]; 4];

/// Client to real server, when the director sees both directions (NAT).
pub const INPUT: Table = [
    [
        S_SR, S_ES, S_ES, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR,
    ],
    [
        S_CL, S_CW, S_SS, S_TW, S_TW, S_TW, S_CL, S_CW, S_LA, S_LI, S_TW,
    ],
    [
        S_ES, S_ES, S_SS, S_ES, S_FW, S_TW, S_CL, S_CW, S_CL, S_LI, S_ES,
    ],
    [
        S_CL, S_CL, S_CL, S_SR, S_CL, S_CL, S_CL, S_CL, S_LA, S_LI, S_SR,
    ],
];
/// Real server to client (NAT replies).
pub const OUTPUT: Table = [
    [
        S_SS, S_ES, S_SS, S_SR, S_SS, S_SS, S_SS, S_SS, S_SS, S_LI, S_SR,
    ],
    [
        S_TW, S_FW, S_SS, S_TW, S_FW, S_TW, S_CL, S_TW, S_LA, S_LI, S_TW,
    ],
    [
        S_ES, S_ES, S_SS, S_ES, S_FW, S_TW, S_CL, S_CW, S_LA, S_ES, S_ES,
    ],
    [
        S_CL, S_CL, S_SS, S_CL, S_CL, S_TW, S_CL, S_CL, S_CL, S_CL, S_CL,
    ],
];
/// Client to real server while no reply was seen (DR, tunnel, NAT before its reply).
pub const INPUT_ONLY: Table = [
    [
        S_SR, S_ES, S_ES, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR,
    ],
    [
        S_CL, S_FW, S_SS, S_TW, S_FW, S_TW, S_CL, S_CW, S_LA, S_LI, S_TW,
    ],
    [
        S_ES, S_ES, S_SS, S_ES, S_FW, S_TW, S_CL, S_CW, S_CL, S_LI, S_ES,
    ],
    [
        S_CL, S_CL, S_CL, S_SR, S_CL, S_CL, S_CL, S_CL, S_LA, S_LI, S_CL,
    ],
];

/// The event of a TCP segment with these flags (RST > SYN > FIN > ACK), or `None` when
/// it has none of them (IPVS then moves the connection to CLOSE).
pub const fn event(syn: bool, fin: bool, ack: bool, rst: bool) -> Option<usize> {
    if rst {
        Some(EVENT_RST)
    } else if syn {
        Some(EVENT_SYN)
    } else if fin {
        Some(EVENT_FIN)
    } else if ack {
        Some(EVENT_ACK)
    } else {
        None
    }
}

/// The next state by `table`.
pub const fn next(table: &Table, event: Option<usize>, state: u8) -> u8 {
    match event {
        Some(e) if (state as usize) < 11 && e < 4 => table[e][state as usize],
        Some(_) => state,
        None => CLOSE,
    }
}
