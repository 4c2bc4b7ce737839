//! The connection table's layout: an open-addressed hash table in two arrays, shared by
//! the datapath and user space (which reads it, and writes it for connection sync and
//! upgrades, through the same arrays mapped into its memory).
//!
//! Why not a BPF hash map: a preallocated hash map charges 48 bytes of element header
//! and 16 of bucket per entry on top of key and value, and a NAT connection's two entries
//! and their expiry records came to 426 bytes (docs/BENCHMARKS.md). Here an entry is its
//! key and value in a slot of [`XVS_CONNS`](crate::map_names::CONNS), found through
//! control words in [`XVS_CONN_CTL`](crate::map_names::CONN_CTL): a bucket of
//! [`BUCKET_WORDS`] words (two cache lines) per [`BUCKET_SLOTS`] slots, one word each
//! saying whether the slot is live, its generation and a 32-bit tag of its key's hash, so
//! that a lookup compares keys only where tags match. A key may live in either of two
//! buckets (two hashes of it; an insert takes the emptier): with two choices, buckets of
//! 15 fill evenly, and an insert finds no room in either only past about 85 % of the
//! slots ([`LOAD_PERCENT`]; simulated: none refused up to 85 %, 0.02 % at 90 %).
//!
//! A bucket never holds two live entries of the same tag: an insert whose tag is taken in
//! a bucket (by another key, one chance in 2^32 per entry there) goes to its other
//! bucket. A lookup therefore walks the control words alone, in registers, and reads at
//! most one key per bucket.
//!
//! Concurrency without a lock on the common path: lookups read control words and keys;
//! an insert claims a free slot by an atomic or of [`slot_ctl::BUSY`] (only one CPU sees
//! it clear), writes key and value, then publishes the word with [`slot_ctl::LIVE`]; a
//! removal clears `LIVE` atomically (only one CPU sees it set: that one uncounts the
//! connection). Two CPUs inserting the same key at once would both find it absent: an
//! insert therefore holds its first bucket's [`bucket_ctl::LOCK`] (an atomic bit of the
//! bucket's header word) from its search to its publication, so the second finds the
//! first's entry. The lock is only ever tried, never waited for long: an insert that
//! cannot take it is refused (a SYN the client sends again).

use crate::{Conn, ConnKey};

/// Control words per bucket: a header, then one per slot (two 64-byte cache lines).
pub const BUCKET_WORDS: usize = 16;
/// Slots per bucket.
pub const BUCKET_SLOTS: u32 = BUCKET_WORDS as u32 - 1;

/// How full the slots may get: the table is sized so that its capacity (the connections
/// `XVS_CONNECTIONS` asks for) fills this share of them.
pub const LOAD_PERCENT: u64 = 85;

/// Bits of a slot's control word.
pub mod slot_ctl {
    /// The slot holds an entry.
    pub const LIVE: u64 = 1 << 63;
    /// The slot is taken by an insert that has not published it yet.
    pub const BUSY: u64 = 1 << 62;
    /// Where the tag (32 bits of the key's hash) sits.
    pub const TAG_MASK: u64 = 0xffff_ffff;
    /// Where the slot's generation sits: one more each time the slot is taken (it stays
    /// when the slot is emptied), so that a sweep record made for one entry is not taken
    /// for the next in the same slot.
    pub const GENERATION_SHIFT: u32 = 32;
    pub const GENERATION_MASK: u64 = 0xff << GENERATION_SHIFT;
}

/// Bits of a bucket's header word.
pub mod bucket_ctl {
    /// An insert whose first bucket this is is under way.
    pub const LOCK: u64 = 1 << 63;
}

/// A bucket's control words (an element of `XVS_CONN_CTL`).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub words: [u64; BUCKET_WORDS],
}

/// A slot of the table (an element of `XVS_CONNS`): the key and its entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    pub key: ConnKey,
    pub conn: Conn,
}

/// Buckets for a table of `capacity` connections.
pub const fn table_buckets(capacity: u32) -> u32 {
    let slots = (capacity as u64 * 100).div_ceil(LOAD_PERCENT);
    let buckets = slots.div_ceil(BUCKET_SLOTS as u64);
    if buckets < 2 {
        2
    } else if buckets > (u32::MAX / BUCKET_SLOTS) as u64 {
        u32::MAX / BUCKET_SLOTS
    } else {
        buckets as u32
    }
}

/// The 64-bit hash of `key` under the director's `seed` (random, chosen when the
/// director is made, so that no one outside can aim many keys at one bucket). A
/// multiply-xorshift over the key's five words: a few instructions each in BPF.
#[inline(always)]
pub fn key_hash(key: &ConnKey, seed: u64) -> u64 {
    const _: () = assert!(core::mem::size_of::<ConnKey>() == 40);
    // SAFETY: ConnKey is 40 bytes of plain integers, 8-byte aligned.
    let words = unsafe { &*(key as *const ConnKey as *const [u64; 5]) };
    let mut h = seed ^ 0x243f_6a88_85a3_08d3;
    let mut i = 0;
    while i < 5 {
        h = (h ^ words[i]).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
        i += 1;
    }
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// The two buckets of a key of hash `hash` in a table of `buckets` buckets (never the same
/// one twice), and its tag as it sits in a control word (32 bits mixed from all 64, so
/// that keys of one bucket differ in it).
#[inline(always)]
pub fn places(hash: u64, buckets: u32) -> (u32, u32, u64) {
    let n = buckets as u64;
    let first = (((hash & 0xffff_ffff) * n) >> 32) as u32;
    let mut second = (((hash >> 32) * n) >> 32) as u32;
    if second == first {
        second = if first + 1 < buckets { first + 1 } else { 0 };
    }
    let tag =
        ((hash ^ (hash >> 31)).wrapping_mul(0x94d0_49bb_1331_11eb) >> 32) & slot_ctl::TAG_MASK;
    (first, second, tag)
}

/// The index in `XVS_CONNS` of slot `slot` (0-based) of bucket `bucket`.
#[inline(always)]
pub const fn slot_index(bucket: u32, slot: u32) -> u32 {
    bucket * BUCKET_SLOTS + slot
}

/// Whether the control word `word` holds a live entry with tag `tag`.
#[inline(always)]
pub const fn live_with_tag(word: u64, tag: u64) -> bool {
    word & (slot_ctl::LIVE | slot_ctl::TAG_MASK) == slot_ctl::LIVE | tag
}

/// The generation of the control word `word`.
#[inline(always)]
pub const fn generation(word: u64) -> u32 {
    ((word & slot_ctl::GENERATION_MASK) >> slot_ctl::GENERATION_SHIFT) as u32
}

/// What turns the generation of the free word `word` into the next, by exclusive or.
#[inline(always)]
pub const fn next_generation(word: u64) -> u64 {
    let now = generation(word) as u64;
    ((now ^ (now + 1)) << slot_ctl::GENERATION_SHIFT) & slot_ctl::GENERATION_MASK
}

/// Whether the control word `word` is free to claim.
#[inline(always)]
pub const fn free(word: u64) -> bool {
    word & (slot_ctl::LIVE | slot_ctl::BUSY) == 0
}

/// Two keys equal, compared as words (a few instructions in BPF, no byte loop).
#[inline(always)]
pub fn same_key(a: &ConnKey, b: &ConnKey) -> bool {
    // SAFETY: as in `key_hash`.
    let (a, b) = unsafe {
        (
            &*(a as *const ConnKey as *const [u64; 5]),
            &*(b as *const ConnKey as *const [u64; 5]),
        )
    };
    // One comparison, no branch per word: each branch is a path the verifier walks.
    (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) == 0
}
