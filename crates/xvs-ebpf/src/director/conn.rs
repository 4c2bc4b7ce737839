//! The connection table: entries, IPVS's TCP state machine and timeouts, connection
//! counts per real server, and expiry.
//!
//! Expiry without timers: a `bpf_timer` only runs while some process holds the map open,
//! and an xvs director's tables are held by nothing but the attached program. So an entry
//! past its expiry is treated as gone wherever it is met, and a sweep queue holds a record
//! of every entry (its key and when it is due): each new connection checks the two oldest
//! records. A record not yet due goes back to the queue without touching the table (old
//! entries are cold in the cache: looking them up was a quarter of a new flow's cost); a
//! due one is looked up, and the entry forgotten if it has expired (its counts with it) or
//! queued again with its new expiry if traffic pushed that on. An entry whose expiry is
//! brought forward (a state with a shorter timeout) is queued again at once, so no entry
//! outlives its expiry by more than the queue's turn. The queue moves faster than
//! connections arrive, so counts are right whenever a scheduler reads them.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_coarse_ns};
use core::intrinsics::{AtomicOrdering, atomic_xadd};
use xvs_common::{Conn, ConnKey, Neighbour, SweepRecord, conn_flags, counter, forward, meta, tcp};

use crate::maps::{XVS_CONN_COUNTS, XVS_CONNS, XVS_SWEEP, count, meta_value, scratch};

const NS_PER_SEC: u64 = 1_000_000_000;
/// Queued keys checked per new connection: more than one, so the queue never grows
/// longer than the table.
const SWEEP_BATCH: u32 = 2;

/// The timeout of `state` in nanoseconds (the three `--set` ones from the meta map).
#[inline(always)]
pub fn timeout_ns(state: u8) -> u64 {
    let seconds = match state {
        tcp::ESTABLISHED => meta_value(meta::TIMEOUT_TCP),
        tcp::FIN_WAIT => meta_value(meta::TIMEOUT_TCP_FIN),
        tcp::UDP => meta_value(meta::TIMEOUT_UDP),
        s => match tcp::TIMEOUTS.get(s as usize) {
            Some(t) => *t as u64,
            None => 2,
        },
    };
    seconds * NS_PER_SEC
}

/// Adds `delta` (±1) to a real server's active or inactive count.
#[inline(always)]
fn adjust(service_id: u32, slot: u16, active: bool, delta: i32) {
    let Some(counts) = XVS_CONN_COUNTS.get_ptr_mut(&service_id) else {
        return;
    };
    let Some(slot) = (unsafe { (*counts).slots.get_mut(slot as usize) }) else {
        return;
    };
    let field = if active {
        &mut slot.active as *mut u32
    } else {
        &mut slot.inactive as *mut u32
    };
    // Several CPUs count at once: an atomic add (the BPF target has no CAS, so no
    // AtomicU32; the add itself is one BPF_ATOMIC instruction).
    unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(field, delta as u32) };
}

/// Moves a connection between active and inactive as its state demands.
#[inline(always)]
pub fn recount(conn: *mut Conn) {
    unsafe {
        let was_active = (*conn).flags & conn_flags::ACTIVE != 0;
        let is_active = tcp::is_active((*conn).state);
        if was_active != is_active {
            adjust((*conn).service_id, (*conn).slot, was_active, -1);
            adjust((*conn).service_id, (*conn).slot, is_active, 1);
            if is_active {
                (*conn).flags |= conn_flags::ACTIVE;
            } else {
                (*conn).flags &= !conn_flags::ACTIVE;
            }
        }
    }
}

/// The key of a NAT connection's reply direction (real server → client).
#[inline(always)]
pub fn reply_key(key: &ConnKey, conn: &Conn) -> ConnKey {
    ConnKey {
        src: conn.peer,
        dst: key.src,
        sport: conn.peer_port,
        dport: key.sport,
        protocol: key.protocol,
        family: conn.peer_family,
        _pad: [0; 2],
    }
}

/// Drops an entry now: its counts, its NAT twin, itself.
#[inline(always)]
pub fn forget(key: &ConnKey, conn: *mut Conn) {
    unsafe {
        let active = (*conn).flags & conn_flags::ACTIVE != 0;
        adjust((*conn).service_id, (*conn).slot, active, -1);
        if (*conn).forward == forward::MASQ {
            let _ = XVS_CONNS.remove(reply_key(key, &*conn));
        }
    }
    let _ = XVS_CONNS.remove(key);
}

/// The current time in the connection table's clock: the coarse monotonic clock (one tick
/// of resolution is plenty for timeouts in seconds, and it is read without touching the
/// clock source; measured 2.32× → 2.2× the floor for an established flow).
#[inline(always)]
pub fn now() -> u64 {
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// True when the entry has expired.
#[inline(always)]
pub fn expired(conn: *const Conn, now: u64) -> bool {
    unsafe { (*conn).expires <= now }
}

/// Checks the oldest queued records: requeues those not due, forgets expired entries,
/// requeues live ones with their new expiry.
#[inline(never)]
pub fn sweep(now: u64) {
    let mut i = 0;
    while i < SWEEP_BATCH {
        i += 1;
        let Ok(Some(mut record)) = XVS_SWEEP.pop() else {
            return;
        };
        if record.due > now {
            let _ = XVS_SWEEP.push(&record, 0);
            continue;
        }
        let Some(entry) = XVS_CONNS.get_ptr_mut(&record.key) else {
            continue;
        };
        if expired(entry, now) {
            count(counter::EXPIRED, 1);
            forget(&record.key, entry);
        } else {
            record.due = unsafe { (*entry).expires };
            let _ = XVS_SWEEP.push(&record, 0);
        }
    }
}

/// Queues a sweep record for `key`, due at `due`. A full queue only delays the entry's
/// end until it is met again.
#[inline(never)]
fn queue_sweep(key: &ConnKey, due: u64) {
    // Built in scratch memory: callers' frames leave little stack.
    let Some(scratch) = scratch() else {
        return;
    };
    unsafe {
        (*scratch).record = SweepRecord { key: *key, due };
        let _ = XVS_SWEEP.push(&(*scratch).record, 0);
    }
}

/// Inserts a new request-direction entry (and, for NAT, its reply twin, built in `twin`,
/// which leaves by `reply_l2`) and queues it for the expiry sweep. False if the table is
/// full (or another CPU won the race).
#[inline(never)]
pub fn create(key: &ConnKey, conn: &Conn, twin: *mut Conn, reply_l2: &Neighbour) -> bool {
    if XVS_CONNS.insert(key, conn, BPF_NOEXIST as u64).is_err() {
        return false;
    }
    queue_sweep(key, conn.expires);
    adjust(
        conn.service_id,
        conn.slot,
        conn.flags & conn_flags::ACTIVE != 0,
        1,
    );
    if conn.forward == forward::MASQ {
        let reply = reply_key(key, conn);
        unsafe {
            // The twin's life is its request entry's: its own expiry is never read.
            (*twin).expires = u64::MAX;
            (*twin).peer = key.dst;
            (*twin).dest_id = conn.dest_id;
            (*twin).service_id = conn.service_id;
            (*twin).peer_port = key.dport;
            (*twin).slot = conn.slot;
            (*twin).service_stats = conn.service_stats;
            (*twin).dest_stats = conn.dest_stats;
            (*twin).state = conn.state;
            (*twin).forward = conn.forward;
            (*twin).flags = conn_flags::REPLY;
            (*twin).peer_family = key.family;
            (*twin).l2 = *reply_l2;
            let _ = XVS_CONNS.insert(&reply, &*twin, 0);
        }
    }
    true
}

/// Runs a packet through the state machine and pushes the expiry on; an expiry brought
/// forward (a state with a shorter timeout) is queued for the sweep. `key` is the
/// request-direction key of `conn`.
#[inline(always)]
pub fn touch(
    key: &ConnKey,
    conn: *mut Conn,
    protocol: u8,
    tcp_flags: u8,
    from_server: bool,
    now: u64,
) {
    unsafe {
        if protocol == crate::packet::IPPROTO_TCP {
            let event = tcp::event(
                tcp_flags & 0x02 != 0,
                tcp_flags & 0x01 != 0,
                tcp_flags & 0x10 != 0,
                tcp_flags & 0x04 != 0,
            );
            let table = if from_server {
                (*conn).flags &= !conn_flags::NO_OUTPUT;
                &tcp::OUTPUT
            } else if (*conn).flags & conn_flags::NO_OUTPUT != 0 {
                &tcp::INPUT_ONLY
            } else {
                &tcp::INPUT
            };
            (*conn).state = tcp::next(table, event, (*conn).state);
            recount(conn);
        }
        let expires = now + timeout_ns((*conn).state);
        if expires < (*conn).expires {
            queue_sweep(key, expires);
        }
        (*conn).expires = expires;
    }
}
