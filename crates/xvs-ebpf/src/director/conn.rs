//! The connection table: entries, IPVS's TCP state machine and timeouts, connection
//! counts per real server, and expiry.
//!
//! Expiry without timers: a `bpf_timer` only runs while some process holds the map open,
//! and an xvs director's tables are held by nothing but the attached program. So an entry
//! past its expiry is treated as gone wherever it is met, and every entry has a record
//! (its key and when to look at it) in one of four sweep queues. Three hold records that
//! wait 10 s, 60 s and 300 s: every record of a queue waits the same, so each queue is in
//! due order and only its head need be watched; a record goes to the longest wait that
//! does not pass its entry's expiry ([`xvs_common::sweep_queue`]), so a connection is
//! looked at a few times in its life (one idle for 900 s: three times; a short HTTP
//! connection lingering 2 minutes in TIME_WAIT: three or four). Records due sooner than
//! [`xvs_common::SWEEP_CHECK_NS`] go to the short queue at the expiry itself. A lock-free hint per
//! queue says when its head is due: a new connection reads the hints, and only if a head
//! is due (rare next to new connections) takes due records, forgets an expired entry (its
//! counts with it) or queues a live one again for its new expiry. An entry thus leaves the
//! table and the counts by [`xvs_common::SWEEP_CHECK_NS`] after its expiry at the latest, as long as
//! its record found room in the queue it was meant for (one that falls back to the 300 s
//! queue, the others full, is up to 300 s late), new connections come and the sweep keeps
//! up: each new connection takes up to
//! [`SWEEP_BATCH`] due records, [`SWEEP_CATCH_UP`] when a head is more than a second
//! overdue. (With one 10 s queue for everything, a connection was looked at every 10 s of
//! its life, a dozen times for a short one: more than two records per new connection, so
//! under a steady load the queue fell behind until it overflowed.)

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_ktime_get_coarse_ns, generated::bpf_jiffies64},
    maps::Queue,
};
use core::intrinsics::{AtomicOrdering, atomic_and, atomic_or, atomic_xadd};
use xvs_common::{
    Conn, ConnKey, DestCounts, SweepRecord, conn_flags, counter, forward, meta, sweep as queue,
    sweep_fallback, sweep_queue, tcp,
};

use crate::maps::{
    XVS_CONNS, XVS_SWEEP, XVS_SWEEP_60, XVS_SWEEP_300, XVS_SWEEP_DUE, XVS_SWEEP_SOON, count,
    dest_counts, meta_value, scratch,
};
use crate::{fullnat, sched};

const NS_PER_SEC: u64 = 1_000_000_000;
/// Due records checked per new connection, at most: more than a connection's records in
/// its life (three or four), so the sweep keeps up with connections that end as fast as
/// new ones come.
const SWEEP_BATCH: u32 = 4;
/// Due records checked per new connection when a queue's head is more than
/// [`SWEEP_BEHIND_NS`] overdue: the sweep catches up after a burst.
const SWEEP_CATCH_UP: u32 = 16;
const SWEEP_BEHIND_NS: u64 = 1_000_000_000;
/// New connections on a CPU between two readings of the sweep hints from the queues.
const HINT_REFRESH: u32 = 64;

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

/// Adds `delta` (±1) to the active or inactive count of the real server with counter slot
/// `dest_stats`. (Several CPUs count at once: an atomic add. The BPF target has no CAS,
/// so no AtomicU32; the add itself is one BPF_ATOMIC instruction.) The caller then tells
/// the scheduler ([`sched::count_changed`]).
#[inline(always)]
pub fn add_count(counts: *mut DestCounts, dest_stats: u32, active: bool, delta: i32) {
    let counts = unsafe { (*counts).of_mut(dest_stats) };
    let field = if active {
        &mut counts.active as *mut u32
    } else {
        &mut counts.inactive as *mut u32
    };
    unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(field, delta as u32) };
}

/// The fields of a connection its counting needs (copied where the entry goes: the
/// whole entry would not fit the call chain's stack).
#[derive(Clone, Copy)]
struct Counted {
    flags: u8,
    service_id: u32,
    slot: u16,
    dest_stats: u32,
}

impl Counted {
    #[inline(always)]
    fn of(conn: *const Conn) -> Counted {
        unsafe {
            Counted {
                flags: (*conn).flags,
                service_id: (*conn).service_id,
                slot: (*conn).slot,
                dest_stats: (*conn).dest_stats,
            }
        }
    }
}

/// Moves `delta` connections of a real server into (or out of) its active or inactive
/// count, and, if `moved`, one from the other count; then tells its service's tree (by
/// the server's tree slot), if the service is still there.
#[inline(always)]
fn adjust(conn: Counted, active: bool, delta: i32, moved: bool) {
    // A synced connection not yet adopted is in no count: only its flags move (it is
    // counted by them when it is adopted).
    let Some(counts) = dest_counts() else {
        return;
    };
    add_count(counts, conn.dest_stats, active, delta);
    if moved {
        add_count(counts, conn.dest_stats, !active, -delta);
    }
    sched::service_count_changed(&conn.service_id, counts, conn.slot);
    if !moved {
        settle_overload(conn.dest_stats, conn.flags);
    }
}

/// After a real server's total of connections changed by one of its connections (with
/// `flags`): its OVERLOAD flag follows ([`sched::xvs_overload_settle`]).
#[inline(always)]
pub fn settle_overload(dest_stats: u32, flags: u8) {
    let half = (flags & conn_flags::DEST_HALF != 0) as u32;
    sched::xvs_overload_settle(dest_stats, half);
}

/// The aligned 64-bit word of `conn` that holds its flags, and where `flag` sits in it.
/// Flags that two CPUs may change at once are changed by atomic and/or on this word (the
/// BPF target has them, with fetch, for 64-bit words only); the other bits of the word
/// are left as they are.
#[inline(always)]
fn flag_word(conn: *mut Conn, flag: u8) -> (*mut u64, u64) {
    const FLAGS: usize = core::mem::offset_of!(Conn, flags);
    const WORD: usize = FLAGS & !7;
    const _: () = assert!(core::mem::align_of::<Conn>() >= 8);
    let word = unsafe { (conn as *mut u8).add(WORD) } as *mut u64;
    (word, (flag as u64) << ((FLAGS - WORD) * 8))
}

/// Whether a SYN that meets `conn` starts a new connection (the old one ended, the SYN
/// scheduled anew) rather than going on it: IPVS's `is_new_conn_expected` under
/// `conn_reuse_mode` (meta map, stored XOR 1: IPVS's default 1 reads 0). A connection
/// controlled by a persistence template never is (its client goes to the same server
/// anyway); otherwise one in TIME_WAIT or CLOSE with any mode but 0, and one in FIN_WAIT
/// of a DR, tunnel or local real server (whose replies the director never sees) with
/// bit 2. Read only
/// when a SYN meets a connection, so the setting costs the common path nothing.
#[inline(always)]
pub fn new_connection_expected(conn: *const Conn) -> bool {
    let (state, flags, forward) = unsafe { ((*conn).state, (*conn).flags, (*conn).forward) };
    let closed = state == tcp::TIME_WAIT || state == tcp::CLOSE;
    let closing_one_way = state == tcp::FIN_WAIT && !forward::has_reply_entry(forward);
    if flags & conn_flags::CONTROLLED != 0 || !(closed || closing_one_way) {
        return false;
    }
    let mode = crate::maps::meta_value(meta::CONN_REUSE_MODE) ^ 1;
    if closed { mode != 0 } else { mode & 2 != 0 }
}

/// Sets `flag` on `conn`; whether this call set it (it was clear).
#[inline(always)]
fn set_flag(conn: *mut Conn, flag: u8) -> bool {
    let (word, bit) = flag_word(conn, flag);
    unsafe { atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(word, bit) & bit == 0 }
}

/// Clears `flag` on `conn`; whether this call cleared it (it was set).
#[inline(always)]
fn clear_flag(conn: *mut Conn, flag: u8) -> bool {
    let (word, bit) = flag_word(conn, flag);
    unsafe { atomic_and::<u64, u64, { AtomicOrdering::Relaxed }>(word, !bit) & bit != 0 }
}

/// Moves a connection between active and inactive as its state demands. The client's
/// and the server's packets of one connection can be handled on two CPUs at once, both
/// seeing the same change (both ends closing, say): only the one whose atomic flip of
/// `ACTIVE` takes effect moves the counts, so a connection moves exactly once (IPVS
/// holds the connection's lock for this).
#[inline(always)]
pub fn recount(conn: *mut Conn) {
    unsafe {
        let was_active = (*conn).flags & conn_flags::ACTIVE != 0;
        let is_active = tcp::is_active((*conn).state);
        if was_active == is_active {
            return;
        }
        let flipped = if is_active {
            set_flag(conn, conn_flags::ACTIVE)
        } else {
            clear_flag(conn, conn_flags::ACTIVE)
        };
        if flipped {
            adjust(Counted::of(conn), is_active, 1, true);
        }
    }
}

/// Drops an entry now: its counts, its NAT twin, itself. Two CPUs may forget one entry
/// at once (both met it expired): only the one whose removal takes effect uncounts it.
#[inline(always)]
pub fn forget(key: &ConnKey, conn: *mut Conn) {
    // A FULLNAT port hold (see `forget_holding_port`), swept at its expiry.
    if unsafe { (*conn).flags } & conn_flags::REPLY != 0 {
        forget_reply(key, unsafe { (*conn).forward } == forward::FULLNAT);
        return;
    }
    let gone = Counted::of(conn);
    unsafe {
        match (*conn).forward {
            forward::MASQ => {
                let _ = XVS_CONNS.remove(&key.reply(&*conn));
            }
            forward::FULLNAT if (*conn).flags & conn_flags::TEMPLATE == 0 => {
                forget_fullnat(key, conn)
            }
            _ => {}
        }
    }
    if XVS_CONNS.remove(key).is_err() {
        return;
    }
    // A call's template (synced or not): its Call-ID goes with it.
    if gone.flags & conn_flags::TEMPLATE != 0 && xvs_common::is_call_key(key) {
        crate::sip::forget_call_id(key);
    }
    if gone.flags & conn_flags::SYNCED != 0 {
        return;
    }
    if gone.flags & conn_flags::TEMPLATE != 0 {
        crate::persist::count_template(gone.dest_stats, -1);
    } else {
        if gone.flags & conn_flags::CONTROLLED != 0 {
            crate::persist::xvs_persist_release(key, gone.service_id);
        }
        adjust(gone, gone.flags & conn_flags::ACTIVE != 0, -1, false);
    }
}

/// Forgets a reply entry whose request entry is gone (and, for FULLNAT, its other side).
#[inline(always)]
pub fn forget_reply(key: &ConnKey, fullnat: bool) {
    let _ = XVS_CONNS.remove(key);
    if fullnat {
        fullnat::forget_peer(key);
    }
}

/// A closed FULLNAT connection whose client starts a new one from the same port (IPVS's
/// conn_reuse_mode): the connection goes, but its reply entry stays until it expires, as
/// a hold on the local port. The real server may still keep the old connection in
/// TIME_WAIT under that tuple; handed out again at once, the port would meet it, and the
/// server would answer the new SYN for the old connection (seen in the lab benchmark:
/// SYNs sent again a second later, a third of the rate). The hold routes nothing (its other
/// side is forgotten: a packet that meets it goes to the stack) and has a sweep record of
/// its own, which forgets it at its expiry. Out of line: the caller's frame is tight.
#[inline(never)]
pub fn forget_holding_port(key: &ConnKey, conn: *mut Conn, now: u64) {
    if let Some(scratch) = scratch()
        && fullnat::reply_key(key, unsafe { &*conn })
    {
        let reply_key = unsafe { &(*scratch).reply_key };
        fullnat::forget_peers(key, reply_key);
        // Held for as long as the connection had left in its state (TIME_WAIT: IPVS's
        // 2 minutes, longer than a server's; CLOSE, after a reset: 10 s).
        if let Some(reply) = XVS_CONNS.get_ptr_mut(reply_key) {
            let until = unsafe { (*conn).expires };
            unsafe { (*reply).expires = until };
            xvs_queue_sweep(reply_key, until, now);
        }
    }
    // Its other side forgotten, the connection goes alone.
    forget(key, conn);
}

/// A FULLNAT connection's reply entry and both other sides (out of line: the sweep's
/// and the new-flow path's frames are tight).
#[inline(never)]
fn forget_fullnat(key: &ConnKey, conn: *const Conn) {
    let Some(scratch) = scratch() else {
        return;
    };
    if fullnat::reply_key(key, unsafe { &*conn }) {
        unsafe {
            let _ = XVS_CONNS.remove(&(*scratch).reply_key);
            fullnat::forget_peers(key, &(*scratch).reply_key);
        }
    }
}

/// Takes a synced connection (or template) into this director's counts: clears
/// `SYNCED`; whether this call cleared it (and so counted it: two CPUs may adopt one
/// entry at once, only one counts it). Its next hop the caller has set first.
#[inline(always)]
pub fn adopt(conn: *mut Conn) -> bool {
    if !clear_flag(conn, conn_flags::SYNCED) {
        return false;
    }
    let adopted = Counted::of(conn);
    adjust(adopted, adopted.flags & conn_flags::ACTIVE != 0, 1, false);
    count(counter::ADOPTED, 1);
    true
}

/// [`adopt`] for a persistence template, which is counted in its server's persistent
/// count (and touches no scheduler tree: this is on the deep new-connection path).
#[inline(always)]
pub fn adopt_template(template: *mut Conn) {
    if clear_flag(template, conn_flags::SYNCED) {
        crate::persist::count_template(unsafe { (*template).dest_stats }, 1);
        count(counter::ADOPTED, 1);
    }
}

/// Marks a synced reply entry as used (its next hop set by the caller); it is never
/// counted, its request entry is.
#[inline(always)]
pub fn adopt_reply(twin: *mut Conn) {
    clear_flag(twin, conn_flags::SYNCED);
}

/// The current time in the connection table's clock: the coarse monotonic clock (one tick
/// of resolution is plenty for timeouts in seconds). It changes only at a tick, as jiffies
/// do, and reading it is a helper call (about 11 ns of an established packet's 85) while
/// the verifier inlines reading jiffies: so each CPU keeps the last reading with the
/// jiffies it was read at, and reads the clock again only once jiffies have moved.
#[inline(always)]
pub fn now() -> u64 {
    let jiffies = unsafe { bpf_jiffies64() };
    let Some(scratch) = scratch() else {
        return unsafe { bpf_ktime_get_coarse_ns() };
    };
    unsafe {
        if (*scratch).clock_jiffies != jiffies || (*scratch).clock_ns == 0 {
            (*scratch).clock_jiffies = jiffies;
            (*scratch).clock_ns = bpf_ktime_get_coarse_ns();
        }
        (*scratch).clock_ns
    }
}

/// True when the entry has expired.
#[inline(always)]
pub fn expired(conn: *const Conn, now: u64) -> bool {
    unsafe { (*conn).expires <= now }
}

/// True when the connection of request entry `conn` (key `key`) has expired: for NAT, only
/// if its reply entry has too; a reply entry that lived on (replies alone kept the
/// connection up) lends the request entry its expiry.
#[inline(always)]
pub fn gone(key: &ConnKey, conn: *mut Conn, now: u64) -> bool {
    if !expired(conn, now) {
        return false;
    }
    if !forward::has_reply_entry(unsafe { (*conn).forward }) {
        return true;
    }
    lent_expiry(key, conn, now)
}

/// The slow part of [`gone`], out of line.
#[inline(never)]
fn lent_expiry(key: &ConnKey, conn: *mut Conn, now: u64) -> bool {
    match twin_of(key, conn) {
        Some(twin) if unsafe { (*twin).expires } > now => {
            unsafe { (*conn).expires = (*twin).expires };
            false
        }
        _ => true,
    }
}

/// The reply entry of NAT request entry `conn` (key `key`), if it is in the table.
#[inline(always)]
pub fn twin_of(key: &ConnKey, conn: *const Conn) -> Option<*mut Conn> {
    // The key in scratch memory: callers' frames leave little stack.
    let scratch = scratch()?;
    unsafe {
        if (*conn).forward == forward::FULLNAT {
            if !fullnat::reply_key(key, &*conn) {
                return None;
            }
        } else {
            (*scratch).reply_key = key.reply(&*conn);
        }
        XVS_CONNS.get_ptr_mut(&(*scratch).reply_key)
    }
}

/// Looks at the sweep queues whose heads are due, by the hints (read without a lock): a
/// new connection with nothing due pays four loads, here, without a BPF call. Every
/// [`HINT_REFRESH`] new connections on a CPU the hints are read again from the queues (a
/// hint can miss a record pushed while another CPU found its queue empty).
#[inline(always)]
pub fn sweep(now: u64) {
    let refresh = match scratch() {
        Some(scratch) => unsafe {
            (*scratch).new_flows = (*scratch).new_flows.wrapping_add(1);
            (*scratch).new_flows % HINT_REFRESH == 0
        },
        None => false,
    };
    let mut due = 0;
    let mut oldest = u64::MAX;
    let mut which = 0;
    while which < queue::COUNT {
        let head = hint(which);
        if refresh || head <= now {
            due |= 1 << which;
        }
        oldest = oldest.min(head);
        which += 1;
    }
    if due != 0 {
        let behind = oldest.saturating_add(SWEEP_BEHIND_NS) <= now;
        xvs_sweep_due(now, due, behind as u32);
    }
}

/// Takes due records off the queues whose bits are set in `due`. A global BPF function:
/// the verifier checks the sweep once, not from each place a new connection comes.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_sweep_due(now: u64, due: u32, behind: u32) -> u32 {
    let mut sweep = Sweep { now, due };
    // One step per record, so the verifier checks forgetting an entry (and the scheduler
    // tree refresh in it) once, not once per queue and record.
    let batch = if behind != 0 {
        SWEEP_CATCH_UP
    } else {
        SWEEP_BATCH
    };
    // A queue found with nothing due has its hint set then (see `take_due`); one still due
    // when the batch ends keeps a hint that says so.
    sched::walk(batch, &mut sweep, sweep_step);
    0
}

/// A sweep in progress: the queues that may still have due records (a bit each).
struct Sweep {
    now: u64,
    due: u32,
}

/// Takes one due record (from the first queue that has one) and checks its entry: an
/// expired one is forgotten (its counts with it), a live one queued again for its new
/// expiry.
extern "C" fn sweep_step(_: u32, s: *mut Sweep) -> i64 {
    let s = unsafe { &mut *s };
    let mut record = None;
    let mut which = 0;
    while record.is_none() && which < queue::COUNT {
        if s.due & (1 << which) != 0 {
            record = take_due(which, s.now);
            if record.is_none() {
                s.due &= !(1 << which);
            }
        }
        which += 1;
    }
    let Some(record) = record else {
        return sched::STOP;
    };
    count(counter::SWEEP_LOOKS, 1);
    let Some(entry) = XVS_CONNS.get_ptr_mut(&record.key) else {
        return sched::CONTINUE;
    };
    if gone(&record.key, entry, s.now) {
        // A template still counting open connections is kept (rarely met: checked here
        // first, the call only then).
        if crate::persist::controls_any(entry)
            && crate::persist::xvs_persist_keep(&record.key, entry, s.now) != 0
        {
            return sched::CONTINUE;
        }
        count(counter::EXPIRED, 1);
        forget(&record.key, entry);
    } else {
        xvs_queue_sweep(&record.key, unsafe { (*entry).expires }, s.now);
    }
    sched::CONTINUE
}

/// [`queue_sweep`] as a global BPF function: the verifier checks its choice among four
/// queues once, not at every place an expiry is brought forward or a record queued again.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_queue_sweep(key: *const ConnKey, expires: u64, now: u64) -> u32 {
    if !key.is_null() {
        queue_sweep(unsafe { &*key }, expires, now);
    }
    0
}

/// Sweep queue `which` (a [`xvs_common::sweep`] index).
#[inline(always)]
fn queue_of(which: u32) -> &'static Queue<SweepRecord> {
    match which {
        queue::SOON => &XVS_SWEEP_SOON,
        queue::WAIT_60S => &XVS_SWEEP_60,
        queue::WAIT_300S => &XVS_SWEEP_300,
        _ => &XVS_SWEEP,
    }
}

/// The head of queue `which` if it is due; if not (or the queue is empty), the queue's
/// hint is set to what was seen.
#[inline(always)]
fn take_due(which: u32, now: u64) -> Option<SweepRecord> {
    let queue = queue_of(which);
    match queue.peek() {
        Ok(Some(head)) if head.due <= now => {}
        Ok(Some(head)) => {
            set_hint(which, head.due);
            return None;
        }
        Ok(None) => {
            set_hint(which, u64::MAX);
            return None;
        }
        Err(_) => return None,
    }
    // Normally the record just seen; another CPU may have taken that one first.
    let record = queue.pop().ok()??;
    if record.due > now {
        let _ = queue.push(&record, 0);
        return None;
    }
    Some(record)
}

/// The hint of sweep queue `which`: when its head is due, as last seen.
#[inline(always)]
fn hint(which: u32) -> u64 {
    XVS_SWEEP_DUE.get(which).copied().unwrap_or(0)
}

#[inline(always)]
fn set_hint(which: u32, due: u64) {
    if let Some(hint) = XVS_SWEEP_DUE.get_ptr_mut(which) {
        unsafe { *hint = due };
    }
}

/// Queues a sweep record for `key`, which expires at `expires`, in the queue
/// [`sweep_queue`] picks (a full one sends it to one that waits less, and a full 10 s
/// queue to the 300 s one; with all three full the record is dropped, which only delays
/// the entry's end until a packet or the eviction of a full table meets it).
/// In line where a connection is created (the new-flow path is verified once, as a
/// global function); elsewhere through [`xvs_queue_sweep`].
#[inline(always)]
fn queue_sweep(key: &ConnKey, expires: u64, now: u64) {
    // Built in scratch memory: callers' frames leave little stack.
    let Some(scratch) = scratch() else {
        return;
    };
    let record = unsafe { &mut (*scratch).record };
    record.key = *key;
    let (mut which, wait) = sweep_queue(expires.saturating_sub(now));
    record.due = now + wait;
    if queue_of(which).push(&*record, 0).is_err() {
        which = sweep_fallback(which);
        record.due = now + queue::WAITS_NS[which as usize & 3];
        if queue_of(which).push(&*record, 0).is_err() {
            which = sweep_fallback(which);
            record.due = now + queue::WAITS_NS[which as usize & 3];
            if queue_of(which).push(&*record, 0).is_err() {
                return;
            }
        }
    }
    if hint(which) > record.due {
        set_hint(which, record.due);
    }
}

/// Inserts a new request-direction entry (and, for NAT and FULLNAT, its reply twin, built
/// in `twin`, whose next hop the caller has set) and queues it for the expiry sweep (the
/// caller counts it). [`fullnat::CREATED`]; [`fullnat::NOT_INSERTED`] if the table is full
/// (or another CPU won the race); [`fullnat::NO_LOCAL_PORT`] if a FULLNAT connection found
/// no local port (counted). In line: the new
/// connection's path has a BPF call fewer (about 8 ns here).
#[inline(always)]
pub fn create(key: &ConnKey, conn: &Conn, twin: *mut Conn, now: u64) -> u32 {
    let mut inserted = XVS_CONNS.insert(key, conn, BPF_NOEXIST as u64);
    // A full table makes room by forgetting a half-open connection, then tries once more.
    if inserted == Err(-(E2BIG as i32)) && xvs_evict_half_open(now) != 0 {
        inserted = XVS_CONNS.insert(key, conn, BPF_NOEXIST as u64);
    }
    if inserted.is_err() {
        return fullnat::NOT_INSERTED;
    }
    if conn.forward == forward::FULLNAT {
        let made = fullnat::xvs_fullnat_create(key, conn, twin);
        if made != fullnat::CREATED {
            return made;
        }
    }
    queue_sweep(key, conn.expires, now);
    if conn.forward == forward::MASQ {
        create_twin(key, conn, twin);
    }
    fullnat::CREATED
}

/// What a full hash map answers an insert.
const E2BIG: u32 = 7;
/// Sweep records looked at, at most, to find a half-open connection to forget.
const EVICT_TRIES: u32 = 8;

/// The connection table is full: forgets the oldest half-open TCP connection (SYN_RECV)
/// it finds at the heads of the 60 s and 10 s sweep queues, where such connections' records
/// wait (IPVS's `drop_entry` drops them at random). Records of other entries go back in
/// for their expiry; a SYN flood thus pushes out its own older entries, not established
/// connections. True if one was forgotten. A global BPF function: verified once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_evict_half_open(now: u64) -> u32 {
    let mut evict = Evict { now, done: false };
    sched::walk(EVICT_TRIES, &mut evict, evict_step);
    evict.done as u32
}

struct Evict {
    now: u64,
    done: bool,
}

extern "C" fn evict_step(_: u32, e: *mut Evict) -> i64 {
    let e = unsafe { &mut *e };
    let record = match XVS_SWEEP_60.pop() {
        Ok(Some(record)) => record,
        _ => match XVS_SWEEP.pop() {
            Ok(Some(record)) => record,
            _ => return sched::STOP,
        },
    };
    // A record whose entry is gone was stale: taking it off costs nothing.
    let Some(entry) = XVS_CONNS.get_ptr_mut(&record.key) else {
        return sched::CONTINUE;
    };
    let (state, flags) = unsafe { ((*entry).state, (*entry).flags) };
    if record.key.protocol == crate::wire::IPPROTO_TCP
        && state == tcp::SYN_RECV
        && flags & (conn_flags::REPLY | conn_flags::TEMPLATE) == 0
    {
        forget(&record.key, entry);
        count(counter::EVICTED, 1);
        e.done = true;
        return sched::STOP;
    }
    xvs_queue_sweep(&record.key, unsafe { (*entry).expires }, e.now);
    sched::CONTINUE
}

/// Inserts the reply twin of NAT connection `conn` (key `key`), built in `twin`.
#[inline(never)]
fn create_twin(key: &ConnKey, conn: &Conn, twin: *mut Conn) {
    // The key in scratch memory: callers' frames leave little stack.
    let Some(scratch) = scratch() else {
        return;
    };
    unsafe {
        (*scratch).reply_key = key.reply(conn);
        // Replies push the twin's expiry (see `Conn::expires`).
        (*twin).expires = conn.expires;
        (*twin).peer = key.dst;
        (*twin).dest_id = conn.dest_id;
        (*twin).service_id = conn.service_id;
        (*twin).peer_port = key.dport;
        (*twin).slot = conn.slot;
        (*twin).service_stats = conn.service_stats;
        (*twin).dest_stats = conn.dest_stats;
        (*twin).state = conn.state;
        (*twin).forward = conn.forward;
        (*twin).flags = conn_flags::REPLY | (conn.flags & conn_flags::DEST_HALF);
        (*twin).peer_family = key.family;
        let _ = XVS_CONNS.insert(&(*scratch).reply_key, &*twin, 0);
    }
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
        let before = (*conn).state;
        if protocol == crate::wire::IPPROTO_TCP {
            let event = event_of(tcp_flags);
            let table = if from_server {
                // Atomically: a plain write of the flags byte could undo another CPU's
                // flip of ACTIVE in the same word.
                if (*conn).flags & conn_flags::NO_OUTPUT != 0 {
                    clear_flag(conn, conn_flags::NO_OUTPUT);
                }
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
            xvs_queue_sweep(key, expires, now);
        }
        (*conn).expires = expires;
        // A NAT connection's two entries share its state and, at a change, its expiry.
        if (*conn).state != before && forward::has_reply_entry((*conn).forward) {
            sync_twin(key, conn);
        }
    }
}

/// True if a reply (server to client) of a NAT connection whose reply entry is `twin` only
/// pushes the expiry: the reply entry is live and the packet does not change the state
/// (IPVS's output table).
#[inline(always)]
pub fn reply_only_refreshes(twin: &Conn, protocol: u8, tcp_flags: u8, now: u64) -> bool {
    if twin.expires <= now {
        return false;
    }
    if protocol != crate::wire::IPPROTO_TCP {
        return true;
    }
    tcp::next(&tcp::OUTPUT, event_of(tcp_flags), twin.state) == twin.state
}

/// IPVS's TCP event of a segment with `tcp_flags`.
#[inline(always)]
fn event_of(tcp_flags: u8) -> Option<usize> {
    tcp::event(
        tcp_flags & 0x02 != 0,
        tcp_flags & 0x01 != 0,
        tcp_flags & 0x10 != 0,
        tcp_flags & 0x04 != 0,
    )
}

/// Gives the reply entry of NAT request entry `conn` its state and expiry.
#[inline(never)]
fn sync_twin(key: &ConnKey, conn: *const Conn) {
    if let Some(twin) = twin_of(key, conn) {
        unsafe {
            (*twin).state = (*conn).state;
            (*twin).expires = (*conn).expires;
        }
    }
}
