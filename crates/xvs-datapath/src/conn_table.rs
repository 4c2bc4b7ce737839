//! The connection table mapped into this process: read for listings and sync, written
//! for synced connections and upgrades with the datapath's own steps (layout, hash and
//! the steps: `xvs_common`'s `table` module; the datapath's side: `table.rs` of
//! xvs-ebpf).

use std::{
    os::fd::BorrowedFd,
    sync::atomic::{AtomicU64, Ordering},
};

use xvs_common::{
    BUCKET_WORDS, Bucket, Conn, ConnKey, Slot, bucket_ctl, free, generation, key_hash,
    live_with_tag, next_generation, places, same_key, slot_ctl, slot_index,
};

use crate::{Result, mapped::Mapped};

/// Why an insert made no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotInserted {
    /// The key is there already.
    Exists,
    /// Neither of the key's buckets has a free slot.
    Full,
    /// An insert into the same bucket held its lock all along (the datapath's hold it
    /// for a moment: this only happens if that CPU stopped in between).
    Locked,
}

/// How often an insert here tries a held bucket lock before it gives up.
const LOCK_TRIES: u32 = 100_000;

pub(crate) struct MappedConns {
    ctl: Mapped<Bucket>,
    slots: Mapped<Slot>,
    seed: u64,
}

impl MappedConns {
    /// Maps the table of the director whose control-word array is `ctl` (of `buckets`
    /// buckets) and slot array `slots`, hashed with `seed`.
    pub(crate) fn map(
        ctl: BorrowedFd<'_>,
        slots: BorrowedFd<'_>,
        buckets: u32,
        seed: u64,
    ) -> Result<MappedConns> {
        let ctl = Mapped::map(
            ctl,
            buckets as usize,
            "the connection table's control words",
        )?;
        let slots = Mapped::map(
            slots,
            buckets as usize * xvs_common::BUCKET_SLOTS as usize,
            "the connection table",
        )?;
        Ok(MappedConns { ctl, slots, seed })
    }

    /// Every live entry (entries that come or go meanwhile may be missed or seen).
    pub(crate) fn entries(&self) -> Vec<(ConnKey, Conn)> {
        let mut entries = Vec::new();
        for bucket in 0..self.ctl.count() {
            for slot in 0..xvs_common::BUCKET_SLOTS {
                if self.word(bucket as u32, slot + 1).load(Ordering::Acquire) & slot_ctl::LIVE != 0
                    && let Some(entry) = self.read(slot_index(bucket as u32, slot))
                {
                    entries.push(entry);
                }
            }
        }
        entries
    }

    /// Where `key`'s entry is: its slot and the slot's generation (what a sweep record
    /// names).
    pub(crate) fn place(&self, key: &ConnKey) -> Option<(u32, u32)> {
        let slot = self.find(key)?;
        let word = self
            .word(
                slot / xvs_common::BUCKET_SLOTS,
                slot % xvs_common::BUCKET_SLOTS + 1,
            )
            .load(Ordering::Acquire);
        Some((slot, generation(word)))
    }

    /// The entry of `key`.
    pub(crate) fn get(&self, key: &ConnKey) -> Option<Conn> {
        let index = self.find(key)?;
        self.read(index).map(|(_, conn)| conn)
    }

    /// Inserts `conn` under `key` if the key is absent.
    pub(crate) fn insert(
        &self,
        key: &ConnKey,
        conn: &Conn,
    ) -> std::result::Result<(), NotInserted> {
        let (first, second, tag) = self.places(key);
        let lock = self.word(first, 0);
        let mut tries = 0;
        while lock.fetch_or(bucket_ctl::LOCK, Ordering::SeqCst) & bucket_ctl::LOCK != 0 {
            tries += 1;
            if tries == LOCK_TRIES {
                return Err(NotInserted::Locked);
            }
            std::hint::spin_loop();
        }
        let made = self.insert_locked(first, second, tag, key, conn);
        lock.fetch_and(!bucket_ctl::LOCK, Ordering::SeqCst);
        made
    }

    /// Inserts `conn` under `key`, or writes it over the key's entry.
    pub(crate) fn put(&self, key: &ConnKey, conn: &Conn) -> std::result::Result<(), NotInserted> {
        match self.insert(key, conn) {
            Err(NotInserted::Exists) => {
                match self.find(key).and_then(|i| self.slots.at(i as usize)) {
                    Some(slot) => {
                        // SAFETY: a slot of the mapping.
                        unsafe { std::ptr::write_volatile(&raw mut (*slot).conn, *conn) };
                        Ok(())
                    }
                    None => Err(NotInserted::Exists),
                }
            }
            made => made,
        }
    }

    /// Removes `key`'s entry; whether this call removed it (the datapath may have first).
    pub(crate) fn remove(&self, key: &ConnKey) -> bool {
        let Some(index) = self.find(key) else {
            return false;
        };
        let bucket = index / xvs_common::BUCKET_SLOTS;
        let word = index % xvs_common::BUCKET_SLOTS + 1;
        self.word(bucket, word)
            .fetch_and(!(slot_ctl::LIVE | slot_ctl::TAG_MASK), Ordering::SeqCst)
            & slot_ctl::LIVE
            != 0
    }

    fn insert_locked(
        &self,
        first: u32,
        second: u32,
        tag: u64,
        key: &ConnKey,
        conn: &Conn,
    ) -> std::result::Result<(), NotInserted> {
        let (a, b) = (self.scan(first, key, tag), self.scan(second, key, tag));
        if a.found.is_some() || b.found.is_some() {
            return Err(NotInserted::Exists);
        }
        let order = if b.free > a.free {
            [second, first]
        } else {
            [first, second]
        };
        for bucket in order {
            for slot in 0..xvs_common::BUCKET_SLOTS {
                let word = self.word(bucket, slot + 1);
                if !free(word.load(Ordering::Acquire)) {
                    continue;
                }
                let before = word.fetch_or(slot_ctl::BUSY, Ordering::SeqCst);
                if !free(before) {
                    continue;
                }
                let Some(place) = self.slots.at(slot_index(bucket, slot) as usize) else {
                    word.fetch_and(!slot_ctl::BUSY, Ordering::SeqCst);
                    return Err(NotInserted::Full);
                };
                // SAFETY: a slot of the mapping, claimed by this call.
                unsafe {
                    std::ptr::write_volatile(
                        place,
                        Slot {
                            key: *key,
                            conn: *conn,
                        },
                    )
                };
                word.fetch_xor(
                    slot_ctl::BUSY | slot_ctl::LIVE | tag | next_generation(before),
                    Ordering::SeqCst,
                );
                return Ok(());
            }
        }
        Err(NotInserted::Full)
    }

    /// The slot index of `key`.
    fn find(&self, key: &ConnKey) -> Option<u32> {
        let (first, second, tag) = self.places(key);
        self.scan(first, key, tag)
            .found
            .or_else(|| self.scan(second, key, tag).found)
    }

    fn scan(&self, bucket: u32, key: &ConnKey, tag: u64) -> Scanned {
        let mut scanned = Scanned {
            found: None,
            free: 0,
        };
        for slot in 0..xvs_common::BUCKET_SLOTS {
            let word = self.word(bucket, slot + 1).load(Ordering::Acquire);
            if free(word) {
                scanned.free += 1;
            } else if live_with_tag(word, tag)
                && let Some((found, _)) = self.read(slot_index(bucket, slot))
                && same_key(&found, key)
            {
                scanned.found = Some(slot_index(bucket, slot));
                break;
            }
        }
        scanned
    }

    /// Slot `index`'s key and entry, as they are now.
    fn read(&self, index: u32) -> Option<(ConnKey, Conn)> {
        let slot = self.slots.at(index as usize)?;
        // SAFETY: a slot of the mapping; plain data, any bytes valid.
        let slot = unsafe { std::ptr::read_volatile(slot) };
        Some((slot.key, slot.conn))
    }

    /// Control word `word` of bucket `bucket` (0: its header).
    fn word(&self, bucket: u32, word: u32) -> &AtomicU64 {
        debug_assert!((word as usize) < BUCKET_WORDS);
        let bucket = self.ctl.wrapped(bucket as usize);
        // SAFETY: a word of the mapping, which lives as long as `self`; the datapath
        // changes these words with atomic operations too.
        unsafe { AtomicU64::from_ptr(&raw mut (*bucket).words[word as usize % BUCKET_WORDS]) }
    }

    fn places(&self, key: &ConnKey) -> (u32, u32, u64) {
        places(key_hash(key, self.seed), self.ctl.count() as u32)
    }
}

struct Scanned {
    found: Option<u32>,
    free: u32,
}

#[cfg(test)]
mod tests {
    //! The table's steps on memory of this process (memfd-backed, as the director's arrays
    //! are mapped), beside a model.

    use std::{
        collections::HashMap,
        os::fd::{AsFd, FromRawFd, OwnedFd},
    };

    use proptest::prelude::*;
    use xvs_common::{BUCKET_SLOTS, Bucket, Conn, ConnKey, Slot};

    use super::{MappedConns, NotInserted};

    /// A shared memory file of `bytes` bytes.
    fn memory(bytes: usize) -> OwnedFd {
        // SAFETY: a plain memfd_create; the descriptor is owned from here on.
        let fd = unsafe { libc::memfd_create(c"xvs-table-test".as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create");
        // SAFETY: as above.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let sized = unsafe { libc::ftruncate(std::os::fd::AsRawFd::as_raw_fd(&fd), bytes as i64) };
        assert_eq!(sized, 0, "ftruncate");
        fd
    }

    fn table(buckets: u32, seed: u64) -> MappedConns {
        let ctl = memory(buckets as usize * size_of::<Bucket>());
        let slots = memory((buckets * BUCKET_SLOTS) as usize * size_of::<Slot>());
        MappedConns::map(ctl.as_fd(), slots.as_fd(), buckets, seed).unwrap()
    }

    fn key(n: u32) -> ConnKey {
        let mut key = ConnKey {
            protocol: 6,
            family: 4,
            ..ConnKey::default()
        };
        key.src[..4].copy_from_slice(&n.to_be_bytes());
        key.dst[..4].copy_from_slice(&[1, 1, 1, 254]);
        key.sport = (n as u16).to_be();
        key.dport = 80u16.to_be();
        key
    }

    fn conn(n: u32) -> Conn {
        Conn {
            expires: u64::from(n) + 1,
            dest_id: n,
            ..Conn::default()
        }
    }

    #[test]
    fn every_slot_fills_each_key_is_found_and_a_full_table_refuses() {
        // Two buckets: every key's two places are those two, 30 slots in all.
        let table = table(2, 7);
        let mut stored = Vec::new();
        let mut n = 0;
        // Keys whose tag another stored key of the same buckets has are refused: none in
        // practice (one chance in 2^32 per pair).
        while stored.len() < 2 * BUCKET_SLOTS as usize {
            assert_eq!(table.insert(&key(n), &conn(n)), Ok(()), "key {n}");
            stored.push(n);
            n += 1;
        }
        assert_eq!(table.insert(&key(n), &conn(n)), Err(NotInserted::Full));
        assert_eq!(table.insert(&key(3), &conn(99)), Err(NotInserted::Exists));
        for &n in &stored {
            assert_eq!(table.get(&key(n)), Some(conn(n)), "key {n}");
        }
        assert_eq!(table.entries().len(), stored.len());
        assert!(table.remove(&key(3)));
        assert!(!table.remove(&key(3)), "removed once only");
        assert_eq!(table.get(&key(3)), None);
        assert_eq!(
            table.insert(&key(n), &conn(n)),
            Ok(()),
            "the freed slot is taken"
        );
        assert_eq!(table.put(&key(n), &conn(5)), Ok(()));
        assert_eq!(table.get(&key(n)), Some(conn(5)), "written over");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Put(u32, u32),
        Remove(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..64u32).prop_map(Op::Insert),
            (0..64u32, 0..1000u32).prop_map(|(k, v)| Op::Put(k, v)),
            (0..64u32).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Whatever the order of inserts, writes and removals, on tables small enough to
        /// fill: what the table holds is what was stored and not removed (an insert
        /// refused as full stores nothing), no more and no less.
        #[test]
        fn the_table_holds_what_was_stored(
            buckets in 2u32..6,
            seed in any::<u64>(),
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let table = table(buckets, seed);
            let mut model: HashMap<u32, Conn> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k) => match table.insert(&key(k), &conn(k)) {
                        Ok(()) => {
                            prop_assert!(!model.contains_key(&k));
                            model.insert(k, conn(k));
                        }
                        Err(NotInserted::Exists) => prop_assert!(model.contains_key(&k)),
                        Err(NotInserted::Full) => prop_assert!(!model.contains_key(&k)),
                        Err(NotInserted::Locked) => prop_assert!(false, "no lock held"),
                    },
                    Op::Put(k, v) => {
                        if table.put(&key(k), &conn(v)).is_ok() {
                            model.insert(k, conn(v));
                        }
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(table.remove(&key(k)), model.remove(&k).is_some());
                    }
                }
            }
            for k in 0..64 {
                prop_assert_eq!(table.get(&key(k)), model.get(&k).copied(), "key {}", k);
            }
            prop_assert_eq!(table.entries().len(), model.len());
        }
    }
}
