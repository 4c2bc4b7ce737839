//! What sh, dh and mh share: IPVS's folding of an address into 32 bits, its `hash_32`, the
//! set's table (built in user space by xvs-core's reference scheduler) and the walk that
//! finds an available server when the home slot's is not (`sh-fallback`, `mh-fallback`).

use xvs_common::{FAMILY_V4, LOOKUP_NONE, LOOKUP_SLOTS, LookupTable};

use super::{CONTINUE, STOP, View, ViewRef, mh, sh, walk};
use crate::maps::XVS_LOOKUP;

/// An address as IPVS folds it (IPv6: the XOR of its four words), host order.
#[inline(always)]
pub fn fold(addr: &[u8; 16], family: u8) -> u32 {
    let word = |i: usize| u32::from_be_bytes([addr[i], addr[i + 1], addr[i + 2], addr[i + 3]]);
    if family == FAMILY_V4 {
        word(0)
    } else {
        word(0) ^ word(4) ^ word(8) ^ word(12)
    }
}

/// The kernel's `hash_32`.
#[inline(always)]
pub fn hash_32(value: u32, bits: u32) -> u32 {
    value.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// The table of set `set_id`, if user space wrote one.
#[inline(always)]
pub fn table(set_id: u32) -> Option<&'static LookupTable> {
    unsafe { XVS_LOOKUP.get(&set_id) }
}

/// The set index in `slot` of `table` (`None`: an empty slot).
#[inline(always)]
pub fn at(table: &LookupTable, slot: u32) -> Option<u32> {
    let index = *table.slots.get(within_table(slot as u64) as usize)?;
    (index != LOOKUP_NONE).then_some(index as u32)
}

/// `slot` masked into the table, by an instruction LLVM cannot drop: it proves mh's
/// `% 4093` below 4096 and removes the mask, but the verifier cannot follow the modulo's
/// multiply-and-shift and would refuse the access as unbounded.
#[inline(always)]
fn within_table(mut slot: u64) -> u64 {
    const _: () = assert!(LOOKUP_SLOTS == 4096);
    unsafe { core::arch::asm!("{0} &= 4095", inout(reg) slot, options(pure, nomem, nostack)) };
    slot
}

/// The server in `home` if it is available; otherwise, with `fallback`, the first
/// available one met rehashing with offsets `home, home + 1, …` (mod `size`) through
/// the probe's hash, an empty slot ending the search (xvs-core's `table_choice`).
#[inline(always)]
pub fn choose<const N: usize>(
    view: &View<N>,
    table: &'static LookupTable,
    home: u32,
    size: u32,
    fallback: bool,
    probe: Probe,
) -> Option<u32> {
    let first = at(table, home)?;
    if view.entry(first).is_some_and(|e| view.available(e)) {
        return Some(first);
    }
    if !fallback {
        return None;
    }
    let mut search = Search {
        view: ViewRef::of(view),
        table,
        home,
        size,
        probe,
        found: None,
    };
    walk(size, &mut search, step::<N>);
    search.found
}

/// What a table's hash function needs besides the offset. (BPF has no indirect calls:
/// the function is named by `maglev`, not passed.)
#[derive(Clone, Copy)]
pub struct Probe {
    pub addr: u32,
    pub port: u16,
    /// mh's slots (else sh's buckets).
    pub maglev: bool,
}

impl Probe {
    /// The slot of this flow for `offset`.
    #[inline(always)]
    pub fn slot(&self, offset: u32) -> u32 {
        if self.maglev {
            mh::slot(offset, self)
        } else {
            sh::bucket(offset, self)
        }
    }
}

struct Search<const N: usize> {
    view: ViewRef<N>,
    table: &'static LookupTable,
    home: u32,
    size: u32,
    probe: Probe,
    found: Option<u32>,
}

extern "C" fn step<const N: usize>(k: u32, s: *mut Search<N>) -> i64 {
    let s = unsafe { &mut *s };
    // (A division by a size that may be zero would make the compiler add a panic the
    // verifier refuses; checked_rem ends the walk instead.)
    let Some(offset) = k.wrapping_add(s.home).checked_rem(s.size) else {
        return STOP;
    };
    let Some(index) = at(s.table, s.probe.slot(offset)) else {
        return STOP;
    };
    if s.view.entry(index).is_some_and(|e| s.view.available(e)) {
        s.found = Some(index);
        return STOP;
    }
    CONTINUE
}
