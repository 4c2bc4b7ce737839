//! How a sync daemon (`xvsd sync-daemon`, which `xvsadm --start-daemon` starts) is
//! reached: a control socket in the abstract namespace, so one per network namespace and
//! role, as IPVS keeps one master and one backup thread per namespace. One request line
//! (`status`, `stop`), one reply line.

use std::{
    io::{BufRead, BufReader, Write},
    os::{linux::net::SocketAddrExt, unix::net::UnixStream},
    time::Duration,
};

/// The two roles a sync daemon can run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonRole {
    Master,
    Backup,
}

impl DaemonRole {
    pub fn name(self) -> &'static str {
        match self {
            DaemonRole::Master => "master",
            DaemonRole::Backup => "backup",
        }
    }

    /// The control socket's abstract name.
    pub fn socket_name(self) -> String {
        format!("xvs-sync-{}", self.name())
    }
}

/// Asks the daemon of `role` in this network namespace; `None` if none runs.
pub fn ask(role: DaemonRole, request: &str) -> Option<String> {
    let name = std::os::unix::net::SocketAddr::from_abstract_name(role.socket_name()).ok()?;
    let mut stream = UnixStream::connect_addr(&name).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(format!("{request}\n").as_bytes()).ok()?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).ok()?;
    Some(reply.trim_end().to_string())
}
