//! The connection table: lookups, inserts and removals over its two arrays (the layout,
//! the hash and why: `xvs_common`'s `table` module).

use core::intrinsics::{AtomicOrdering, atomic_and, atomic_or, atomic_xor};
use xvs_common::{
    BUCKET_WORDS, Bucket, Conn, ConnKey, bucket_ctl, free, generation, key_hash, live_with_tag,
    meta, next_generation, places, same_key, slot_ctl, slot_index,
};

use crate::maps::{XVS_CONN_CTL, XVS_CONNS, meta_value};

/// No slot.
pub const NONE: u32 = u32::MAX;
/// What an insert answers when the key is there already (`EEXIST`)...
pub const EXISTS: i64 = -17;
/// ...when neither of its buckets has a free slot (`E2BIG`, as a full BPF hash map)...
pub const FULL: i64 = -7;
/// ...and when another insert into the same bucket holds its lock (`EBUSY`).
pub const LOCKED: i64 = -16;

/// The slot index of `key`, or [`NONE`]. A global BPF function: every lookup calls it,
/// and the verifier checks its bucket walks once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_find(key: *const ConnKey) -> u32 {
    if key.is_null() {
        return NONE;
    }
    let key = unsafe { &*key };
    let Some((first, second, tag)) = places_of(key) else {
        return NONE;
    };
    // The walks in line: lookups sit at the end of the deepest call chains, whose
    // stack frames add up to the verifier's 512 bytes.
    let slot = found(scan(first, key, tag));
    if slot != NONE {
        return slot;
    }
    found(scan(second, key, tag))
}

/// The entry of `key`, if it is in the table.
#[inline(always)]
pub fn get(key: &ConnKey) -> Option<*mut Conn> {
    entry_at(xvs_find(key))
}

/// The entry in slot `index` (live or not: the caller knows it is).
#[inline(always)]
pub fn entry_at(index: u32) -> Option<*mut Conn> {
    XVS_CONNS
        .get_ptr_mut(index)
        .map(|slot| unsafe { &raw mut (*slot).conn })
}

/// The key in slot `index`.
#[inline(always)]
pub fn key_at(index: u32) -> Option<*const ConnKey> {
    XVS_CONNS
        .get_ptr(index)
        .map(|slot| unsafe { &raw const (*slot).key })
}

/// Removes `key`'s entry; whether this call removed it (two CPUs may remove one entry at
/// once: only one is told so, and only that one uncounts it).
#[inline(always)]
pub fn remove(key: &ConnKey) -> bool {
    xvs_remove_at(xvs_find(key)) != 0
}

/// Removes the entry in slot `index` (1 if this call did, 0 if it was not live).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_remove_at(index: u32) -> u32 {
    let Some(word) = ctl_word(index) else {
        return 0;
    };
    let before = unsafe {
        atomic_and::<u64, u64, { AtomicOrdering::SeqCst }>(
            word,
            !(slot_ctl::LIVE | slot_ctl::TAG_MASK),
        )
    };
    (before & slot_ctl::LIVE != 0) as u32
}

/// Inserts `conn` under `key` if the key is absent: its slot index (≥ 0), or [`EXISTS`],
/// [`FULL`], [`LOCKED`]. A global BPF function, verified once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_insert(key: *const ConnKey, conn: *const Conn) -> i64 {
    if key.is_null() || conn.is_null() {
        return FULL;
    }
    let (key, conn) = unsafe { (&*key, &*conn) };
    let Some((first, second, tag)) = places_of(key) else {
        return FULL;
    };
    let Some(head) = XVS_CONN_CTL.get_ptr_mut(first) else {
        return FULL;
    };
    let lock = unsafe { &raw mut (*head).words[0] };
    if !take_lock(lock) {
        return LOCKED;
    }
    let made = insert_locked(first, second, tag, key, conn);
    unsafe { atomic_and::<u64, u64, { AtomicOrdering::SeqCst }>(lock, !bucket_ctl::LOCK) };
    made
}

/// Inserts `conn` under `key`, or, if the key is there, writes `conn` over its entry.
/// Whether the entry is now `conn`.
#[inline(always)]
pub fn put(key: &ConnKey, conn: &Conn) -> bool {
    match xvs_insert(key, conn) {
        EXISTS => match get(key) {
            Some(entry) => {
                unsafe { *entry = *conn };
                true
            }
            None => false,
        },
        made => made >= 0,
    }
}

/// Takes the bucket lock at `lock`, if it is free. Tried once: a held lock is another
/// CPU's insert into the same bucket at the same moment (one bucket of tens of thousands),
/// or user space writing a synced entry; a loop of tries, unrolled, would be verified
/// once per try.
#[inline(always)]
fn take_lock(lock: *mut u64) -> bool {
    let before =
        unsafe { atomic_or::<u64, u64, { AtomicOrdering::SeqCst }>(lock, bucket_ctl::LOCK) };
    before & bucket_ctl::LOCK == 0
}

/// The insert under the first bucket's lock: the key looked for in both buckets, then a
/// slot claimed in the emptier one (or the other if the emptier's free slot was claimed
/// by a concurrent insert whose first bucket is another).
#[inline(always)]
fn insert_locked(first: u32, second: u32, tag: u64, key: &ConnKey, conn: &Conn) -> i64 {
    let a = xvs_scan(first, key, tag);
    if found(a) != NONE {
        return EXISTS;
    }
    let b = xvs_scan(second, key, tag);
    if found(b) != NONE {
        return EXISTS;
    }
    // The emptier bucket first; never one where another key has the tag.
    let (a_room, b_room) = (
        if tag_taken(a) { 0 } else { free_slots(a) },
        if tag_taken(b) { 0 } else { free_slots(b) },
    );
    if a_room == 0 && b_room == 0 {
        return FULL;
    }
    let (emptier, other, other_room) = if b_room > a_room {
        (second, first, a_room)
    } else {
        (first, second, b_room)
    };
    let claimed = xvs_claim(emptier, tag, key, conn);
    if claimed != NONE {
        return claimed as i64;
    }
    // (Its free slot taken meanwhile by an insert that locked another bucket.)
    if other_room > 0 {
        let claimed = xvs_claim(other, tag, key, conn);
        if claimed != NONE {
            return claimed as i64;
        }
    }
    FULL
}

/// The slot [`scan`] found (or [`NONE`])...
#[inline(always)]
fn found(scanned: u64) -> u32 {
    scanned as u32
}

/// ...the free slots it counted...
#[inline(always)]
fn free_slots(scanned: u64) -> u32 {
    (scanned >> 32) as u32 & 0xffff
}

/// ...and whether another key holds the tag there.
#[inline(always)]
fn tag_taken(scanned: u64) -> bool {
    scanned & TAG_TAKEN != 0
}

const TAG_TAKEN: u64 = 1 << 48;

/// Walks bucket `bucket` for `key` (tag `tag`), counting free slots on the way: the
/// key's slot or [`NONE`] in the low half, the free slots in bits 32–47, [`TAG_TAKEN`]
/// if a live entry of another key has the tag. A global BPF function: its walk is
/// verified once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_scan(bucket: u32, key: *const ConnKey, tag: u64) -> u64 {
    if key.is_null() {
        return NONE as u64;
    }
    scan(bucket, unsafe { &*key }, tag)
}

/// [`xvs_scan`]'s walk: the control words alone (no call in the loop, so nothing is
/// spilled to the stack, which the deepest call chains cannot spare; a bucket holds a
/// tag once), then the one key whose tag matches.
#[inline(always)]
fn scan(bucket: u32, key: &ConnKey, tag: u64) -> u64 {
    let Some(ctl) = XVS_CONN_CTL.get_ptr(bucket) else {
        return NONE as u64;
    };
    let mut free_count: u64 = 0;
    let mut matched = 0;
    let mut i = 1;
    while i < BUCKET_WORDS {
        let word = unsafe { core::ptr::read_volatile(&raw const (*ctl).words[i]) };
        // Counted without a branch (a branch is a path more for the verifier), and at
        // once: left to itself, the compiler loads every word first and counts them at
        // the end, keeping fifteen words on the stack meanwhile.
        free_count += free(word) as u64;
        unsafe { core::arch::asm!("{0} = {0}", inout(reg) free_count, options(nomem, nostack)) };
        if live_with_tag(word, tag) {
            matched = i;
        }
        i += 1;
    }
    if matched == 0 {
        return NONE as u64 | free_count << 32;
    }
    let index = slot_index(bucket, matched as u32 - 1);
    // The key read again here: seen as the one hashed, the compiler would keep its five
    // words on the small stack from the hashing to this comparison.
    let mut key = key as *const ConnKey;
    unsafe { core::arch::asm!("{0} = {0}", inout(reg) key, options(nomem, nostack)) };
    match XVS_CONNS.get_ptr(index) {
        Some(slot) if same_key(unsafe { &(*slot).key }, unsafe { &*key }) => {
            index as u64 | free_count << 32
        }
        _ => NONE as u64 | free_count << 32 | TAG_TAKEN,
    }
}

/// Claims a free slot of `bucket` (an atomic or of BUSY: the CPU that sees it clear has
/// it), writes the entry there and publishes it; the slot's index, or [`NONE`] if the
/// bucket has no free slot left. A global BPF function, verified once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_claim(bucket: u32, tag: u64, key: *const ConnKey, conn: *const Conn) -> u32 {
    let Some(ctl) = XVS_CONN_CTL.get_ptr_mut(bucket) else {
        return NONE;
    };
    if key.is_null() || conn.is_null() {
        return NONE;
    }
    let (key, conn) = unsafe { (&*key, &*conn) };
    let mut i = 1;
    while i < BUCKET_WORDS {
        let word = unsafe { &raw mut (*ctl).words[i] };
        if free(unsafe { core::ptr::read_volatile(word) }) {
            let before =
                unsafe { atomic_or::<u64, u64, { AtomicOrdering::SeqCst }>(word, slot_ctl::BUSY) };
            if free(before) {
                let index = slot_index(bucket, i as u32 - 1);
                let Some(slot) = XVS_CONNS.get_ptr_mut(index) else {
                    unsafe {
                        atomic_and::<u64, u64, { AtomicOrdering::SeqCst }>(word, !slot_ctl::BUSY)
                    };
                    return NONE;
                };
                unsafe {
                    copy_words(&raw mut (*slot).key, key);
                    copy_words(&raw mut (*slot).conn, conn);
                    // BUSY off, LIVE, the tag and the next generation on, in one atomic step
                    // after the writes.
                    atomic_xor::<u64, u64, { AtomicOrdering::SeqCst }>(
                        word,
                        slot_ctl::BUSY | slot_ctl::LIVE | tag | next_generation(before),
                    );
                }
                return index;
            }
        }
        i += 1;
    }
    NONE
}

/// The generation of slot `index` if it holds an entry.
#[inline(always)]
pub fn live_generation(index: u32) -> Option<u32> {
    let word = unsafe { core::ptr::read_volatile(ctl_word(index)?) };
    (word & slot_ctl::LIVE != 0).then(|| generation(word))
}

/// The control word of slot `index`.
#[inline(always)]
fn ctl_word(index: u32) -> Option<*mut u64> {
    let slots = xvs_common::BUCKET_SLOTS;
    let bucket = index / slots;
    let mut word = (index % slots + 1) as u64;
    // The compiler knows the word is below 16 and would drop the check; the verifier
    // does not, and needs it: the value is hidden from the compiler.
    unsafe { core::arch::asm!("{0} = {0}", inout(reg) word, options(nomem, nostack)) };
    if word >= BUCKET_WORDS as u64 {
        return None;
    }
    let ctl: *mut Bucket = XVS_CONN_CTL.get_ptr_mut(bucket)?;
    Some(unsafe { &raw mut (*ctl).words[word as usize] })
}

/// `key`'s two buckets and tag in this director's table.
#[inline(always)]
fn places_of(key: &ConnKey) -> Option<(u32, u32, u64)> {
    let buckets = meta_value(meta::TABLE_BUCKETS) as u32;
    if buckets < 2 {
        return None;
    }
    Some(places(key_hash(key, meta_value(meta::TABLE_SEED)), buckets))
}

/// The slots of bucket `bucket` that hold an entry, as a bit mask (bit `j`: slot `j`).
#[inline(always)]
pub fn live_slots(bucket: u32) -> u32 {
    let Some(ctl) = XVS_CONN_CTL.get_ptr(bucket) else {
        return 0;
    };
    let mut mask = 0;
    let mut i = 1;
    while i < BUCKET_WORDS {
        let word = unsafe { core::ptr::read_volatile(&raw const (*ctl).words[i]) };
        if word & slot_ctl::LIVE != 0 {
            mask |= 1 << (i - 1);
        }
        i += 1;
    }
    mask
}

/// The first bucket of `key` (eviction looks there and in the second).
#[inline(always)]
pub fn buckets_of(key: &ConnKey) -> Option<(u32, u32)> {
    places_of(key).map(|(first, second, _)| (first, second))
}

/// Copies `*from` to `to` word by word, in line: a plain assignment of a struct this
/// size becomes a call to `memmove`, one stack frame more at the end of the deepest call
/// chain (new FULLNAT connection, insert, claim), past the verifier's 512 bytes.
#[inline(always)]
fn copy_words<T>(to: *mut T, from: *const T) {
    const { assert!(core::mem::size_of::<T>() % 8 == 0 && core::mem::align_of::<T>() >= 8) };
    let (to, from) = (to as *mut u64, from as *const u64);
    let mut i = 0;
    while i < core::mem::size_of::<T>() / 8 {
        unsafe { *to.add(i) = *from.add(i) };
        i += 1;
    }
}
