//! Failures of the datapath, with a kind a caller can act on: xvsadm turns each into
//! ipvsadm's words and exit code, xvsd tells a transient failure from one that needs an
//! operator.

use std::{fmt, io};

/// What kind of failure it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller may not use BPF or change the namespace's network (not root).
    Permission,
    /// The namespace's director was built for another map layout, or `lo` carries a
    /// program that is not the director.
    Layout,
    /// The namespace has no director where one was needed.
    NoDirector,
    /// Another process holds the namespace's table lock.
    Busy,
    /// A map would overflow (ipvsadm's "Memory allocation problem").
    Full,
    /// The change asks for what the datapath cannot do (too many real servers in one
    /// service, no free connection-count slot).
    Refused,
    /// Anything else.
    Other,
}

/// A failure of the datapath, with what was being done.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// `context: cause`, of the kind the cause's OS error says (EPERM: permission; else
    /// other. Not EACCES: the verifier answers a program it refuses with it).
    pub(crate) fn new(
        context: impl fmt::Display,
        cause: impl std::error::Error + 'static,
    ) -> Error {
        let kind = kind_of_cause(&cause);
        Error {
            kind,
            message: format!("{context}: {cause}"),
        }
    }

    pub(crate) fn plain(message: impl Into<String>) -> Error {
        Error::of(ErrorKind::Other, message)
    }

    pub(crate) fn of(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Permission if an OS error in the cause's chain is EPERM (what bpf(2) and rtnetlink
/// answer a process without the capabilities).
fn kind_of_cause(cause: &(dyn std::error::Error + 'static)) -> ErrorKind {
    let mut next = Some(cause);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return kind_of_io(io);
        }
        next = error.source();
    }
    ErrorKind::Other
}

fn kind_of_io(error: &io::Error) -> ErrorKind {
    match error.raw_os_error() {
        Some(libc::EPERM) => ErrorKind::Permission,
        _ if error.kind() == io::ErrorKind::WouldBlock => ErrorKind::Busy,
        _ => ErrorKind::Other,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::of(kind_of_io(&e), e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "bpf() failed")
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn kinds_come_from_the_os_error_inside() {
        let denied = Wrapper(io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(Error::new("x", denied).kind(), ErrorKind::Permission);
        // The verifier refuses a program with EACCES: that is no lack of privilege.
        let refused = Wrapper(io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(Error::new("x", refused).kind(), ErrorKind::Other);
        let other = Wrapper(io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(Error::new("x", other).kind(), ErrorKind::Other);
        let busy = io::Error::new(io::ErrorKind::WouldBlock, "locked");
        assert_eq!(Error::from(busy).kind(), ErrorKind::Busy);
    }
}
