//! The expiry sweep's queues: which queue a connection waits in, and for how long.

use crate::ConnKey;

/// A record of an expiry sweep queue: a connection and when to look at it again (see
/// [`sweep_queue`]). The sweep looks the entry up only once that time has come.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepRecord {
    pub key: ConnKey,
    pub due: u64,
}

/// The sweep queues, by index (their hints in `XVS_SWEEP_DUE` too): records due within
/// [`SWEEP_CHECK_NS`], at their entry's expiry; and records that wait 10 s, 60 s and 300 s.
pub mod sweep {
    pub const SOON: u32 = 0;
    pub const WAIT_10S: u32 = 1;
    pub const WAIT_60S: u32 = 2;
    pub const WAIT_300S: u32 = 3;
    pub const COUNT: u32 = 4;
    /// How long the records of each waiting queue wait.
    pub const WAITS_NS: [u64; 4] = [0, 10_000_000_000, 60_000_000_000, 300_000_000_000];
}

/// The shortest wait of a sweep record: an entry due in less is queued at its expiry (in
/// the short queue, where records wait less than this, so one may wait behind another by
/// at most this long).
pub const SWEEP_CHECK_NS: u64 = sweep::WAITS_NS[sweep::WAIT_10S as usize];

/// The sweep queue a record goes to for an entry that expires `remaining` ns from now,
/// and when it is due, from now: the short queue at the expiry if that is less than
/// [`SWEEP_CHECK_NS`] away; else the queue with the longest wait that does not pass the
/// expiry. Every record of a waiting queue waits the same, so each queue stays in due order
/// and only its head need be watched, and a connection is looked at a few times in its
/// life (one untouched for 900 s: three times) instead of every 10 s.
pub const fn sweep_queue(remaining: u64) -> (u32, u64) {
    let waits = sweep::WAITS_NS;
    if remaining >= waits[sweep::WAIT_300S as usize] {
        (sweep::WAIT_300S, waits[sweep::WAIT_300S as usize])
    } else if remaining >= waits[sweep::WAIT_60S as usize] {
        (sweep::WAIT_60S, waits[sweep::WAIT_60S as usize])
    } else if remaining >= waits[sweep::WAIT_10S as usize] {
        (sweep::WAIT_10S, waits[sweep::WAIT_10S as usize])
    } else {
        (sweep::SOON, remaining)
    }
}

/// The queue a record falls back to when `which` is full: one that waits less, and from
/// the 10 s queue the 300 s one (sized like the table: a record there waits longer than
/// its entry lives, so the entry's end is late by up to 300 s, but it is not lost).
pub const fn sweep_fallback(which: u32) -> u32 {
    match which {
        sweep::WAIT_300S => sweep::WAIT_60S,
        sweep::WAIT_10S => sweep::WAIT_300S,
        _ => sweep::WAIT_10S,
    }
}

/// Capacities of the short, 10 s and 60 s sweep queues as fractions of the connection
/// table's (the 300 s queue is sized like the table; a full queue sends its records to
/// one that waits less, where they are looked at more often). The 300 s queue holds the
/// records of long connections (ESTABLISHED, UDP's 300 s), which are most of a busy
/// table: sized like the table, none of them falls back to a shorter queue and comes due
/// again and again (at 10 million established connections, a quarter-table 300 s queue
/// made each new flow look at 2.4–2.6 of them: docs/BENCHMARKS.md). The 60 s queue holds
/// most records of short TCP connections (SYN_RECV, then two minutes of TIME_WAIT), the
/// 10 s one those due in 10 to 60 s and the 60 s queue's overflow.
pub const SWEEP_SOON_SHARE: u32 = 8;

pub const SWEEP_10_SHARE: u32 = 4;

pub const SWEEP_60_SHARE: u32 = 2;
