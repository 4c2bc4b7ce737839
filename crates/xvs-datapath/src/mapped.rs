//! A mappable BPF array (`BPF_F_MMAPABLE`) mapped into this process: user space then
//! changes its words with the same atomic operations as the datapath.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::{Error, Result};

/// `count` elements of `T` of a mappable array, mapped shared.
pub(crate) struct Mapped<T> {
    base: *mut T,
    len: usize,
    count: usize,
}

// SAFETY: the mapping belongs to the process, not a thread; its users change what two
// sides share by atomic operations only.
unsafe impl<T> Send for Mapped<T> {}

impl<T> Mapped<T> {
    /// Maps the array `fd` of `count` elements (`what` names it in errors).
    pub(crate) fn map(fd: BorrowedFd<'_>, count: usize, what: &str) -> Result<Mapped<T>> {
        if count == 0 {
            return Err(Error::plain(format!("{what} is empty")));
        }
        let len = (count * std::mem::size_of::<T>()).next_multiple_of(4096);
        // SAFETY: a shared mapping of the array's values, of their (page-rounded) size.
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
                format!("cannot map {what}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Mapped {
            base: base.cast(),
            len,
            count,
        })
    }

    /// Element `index` (None past the end). The datapath may change it meanwhile: read
    /// and write it through the pointer, never through a reference kept.
    pub(crate) fn at(&self, index: usize) -> Option<*mut T> {
        // SAFETY: within the mapping.
        (index < self.count).then(|| unsafe { self.base.add(index) })
    }

    /// Element `index` modulo the count (for indexes known to be in range).
    pub(crate) fn wrapped(&self, index: usize) -> *mut T {
        // SAFETY: within the mapping, which holds at least one element.
        unsafe { self.base.add(index % self.count) }
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

impl<T> Drop for Mapped<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping what `map` mapped, once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
