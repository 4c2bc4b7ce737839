//! The datapath's connection counts mapped into this process (`XVS_DEST_COUNTS` is a
//! mappable array), so that user space changes a count by an atomic operation, as the
//! datapath does: connection sync uncounting a dead entry it replaces, a live upgrade
//! adding what the old program counted after the copy.

use std::os::fd::{AsRawFd, BorrowedFd};

use xvs_common::{DestCounts, SlotConns, conn_flags};

use crate::{Error, Result};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;

/// `union bpf_attr` as BPF_MAP_LOOKUP_ELEM and BPF_MAP_UPDATE_ELEM read it.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// One BPF command on the counts map's one value (key 0).
fn elem(command: libc::c_long, map: BorrowedFd<'_>, value: *mut DestCounts) -> std::io::Result<()> {
    let key = 0u32;
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: &key as *const u32 as u64,
        value: value as u64,
        flags: 0,
    };
    // SAFETY: attr points at a key and a value buffer of the map's sizes, both alive for
    // the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            &mut attr as *mut ElemAttr,
            std::mem::size_of::<ElemAttr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A copy of every real server's counts, from the counts map `map` (on the heap: 1.5 MiB
/// would not fit every thread's stack).
pub(crate) fn read(map: BorrowedFd<'_>) -> Result<Box<DestCounts>> {
    // SAFETY: DestCounts is plain integers, for which all zeros is a valid value.
    let mut counts: Box<DestCounts> = unsafe { Box::new_zeroed().assume_init() };
    elem(BPF_MAP_LOOKUP_ELEM, map, &mut *counts)
        .map_err(|e| Error::new("cannot read the connection counts", e))?;
    Ok(counts)
}

/// Writes `counts` whole into the counts map `map`.
pub(crate) fn write(map: BorrowedFd<'_>, counts: &mut DestCounts) -> Result<()> {
    elem(BPF_MAP_UPDATE_ELEM, map, counts)
        .map_err(|e| Error::new("cannot write the connection counts", e))
}

/// The datapath's connection counts (`XVS_DEST_COUNTS`, a mappable array), mapped into
/// this process, so that a count is changed by an atomic operation as the datapath
/// changes it.
pub(crate) struct MappedCounts {
    base: *mut DestCounts,
    len: usize,
}

impl MappedCounts {
    pub(crate) fn map(fd: BorrowedFd<'_>) -> Result<MappedCounts> {
        let len = std::mem::size_of::<DestCounts>().next_multiple_of(4096);
        // SAFETY: a shared mapping of the map's one value, of its (page-rounded) size.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::new(
                "cannot map the connection counts",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(MappedCounts {
            base: base.cast(),
            len,
        })
    }

    /// One connection (or template) fewer in the counts of counter slot `slot`, as the
    /// datapath's `forget` takes it off (never below zero).
    pub(crate) fn uncount(&self, slot: u32, flags: u8) {
        use std::sync::atomic::{AtomicU32, Ordering};
        // SAFETY: `base` maps a live DestCounts; `of_mut` masks the slot into it; the
        // datapath changes these words with atomic operations too.
        let counts = unsafe { (*self.base).of_mut(slot) };
        // A template is counted in the low bits of a word whose top bit is the overload
        // flag, which a count of none must not borrow from.
        let (field, count_bits) = if flags & conn_flags::TEMPLATE != 0 {
            (&mut counts.templates_and_overload, !SlotConns::OVERLOAD)
        } else if flags & conn_flags::ACTIVE != 0 {
            (&mut counts.active, u32::MAX)
        } else {
            (&mut counts.inactive, u32::MAX)
        };
        let atomic = unsafe { AtomicU32::from_ptr(field) };
        let _ = atomic.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n & count_bits != 0).then(|| n - 1)
        });
    }
}

// SAFETY: the mapping belongs to the process, not a thread, and its words are only
// changed by atomic operations.
unsafe impl Send for MappedCounts {}

impl MappedCounts {
    /// Adds `delta` (wrapping, as the datapath's adds are) to every count of every slot:
    /// what an old director counted after its counts were copied (live upgrade).
    pub(crate) fn add(&self, delta: &DestCounts) {
        use std::sync::atomic::{AtomicU32, Ordering};
        for (slot, d) in delta.slots.iter().enumerate() {
            if *d == SlotConns::default() {
                continue;
            }
            // SAFETY: as in `uncount`.
            let counts = unsafe { (*self.base).of_mut(slot as u32) };
            for (field, by) in [
                (&mut counts.active, d.active),
                (&mut counts.inactive, d.inactive),
                (&mut counts.templates_and_overload, d.templates_and_overload),
            ] {
                unsafe { AtomicU32::from_ptr(field) }.fetch_add(by, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for MappedCounts {
    fn drop(&mut self) {
        // SAFETY: unmapping what `map` mapped, once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
