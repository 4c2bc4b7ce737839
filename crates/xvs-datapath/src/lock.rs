//! One writer at a time per network namespace.
//!
//! The lock is an abstract unix socket name: abstract names belong to a network namespace
//! (like the tables they guard), only one socket can hold a name, and the kernel frees it
//! when its holder exits, however it exits. No file, no pin, nothing to clean up.

use std::{
    io,
    os::fd::{FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

/// The abstract socket name (without the leading NUL).
const NAME: &[u8] = b"xvs/table-lock";

/// Held while the namespace's tables are read for a change and written back.
#[derive(Debug)]
pub struct TableLock {
    _socket: OwnedFd,
}

impl TableLock {
    /// Waits up to `patience` for the lock.
    pub fn acquire(patience: Duration) -> io::Result<TableLock> {
        let deadline = Instant::now() + patience;
        let mut pause = Duration::from_millis(1);
        loop {
            match try_bind() {
                Ok(socket) => return Ok(TableLock { _socket: socket }),
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            "another process is changing this namespace's tables",
                        ));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn try_bind() -> io::Result<OwnedFd> {
    // SAFETY: socket(2); checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and ours.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // sun_path[0] stays 0: an abstract name.
    for (slot, byte) in addr.sun_path[1..].iter_mut().zip(NAME) {
        *slot = *byte as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + NAME.len();
    // SAFETY: addr is a valid sockaddr_un and len covers the name.
    let bound = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    if bound != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_freed_on_drop() {
        let first = TableLock::acquire(Duration::from_secs(1)).unwrap();
        let second = TableLock::acquire(Duration::from_millis(20));
        assert_eq!(second.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(first);
        TableLock::acquire(Duration::from_secs(1)).unwrap();
    }
}
