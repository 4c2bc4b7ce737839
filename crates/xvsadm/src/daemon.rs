//! `--start-daemon`, `--stop-daemon` and `-L --daemon`. IPVS runs its connection sync as
//! kernel threads, at most one master and one backup per network namespace; xvs runs each
//! as an `xvsd sync-daemon` process of this namespace, found by its control socket
//! (`xvs_sync::daemon`). `--start-daemon` starts one (xvsd is looked for beside xvsadm,
//! then on PATH) and returns once it runs, or with its error.

use std::{
    io::Read,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Command, Stdio},
};

use xvs_core::cli::{Daemon, DaemonState};
use xvs_sync::daemon::{self as sync, DaemonRole};

use crate::{EXIT_KERNEL_REFUSED, Failure};

/// ipvsadm's default `--mcast-interface` (`DEF_MCAST_IFN`).
const DEFAULT_INTERFACE: &str = "eth0";

fn role(daemon: &Daemon) -> DaemonRole {
    match daemon.state {
        DaemonState::Master => DaemonRole::Master,
        DaemonState::Backup => DaemonRole::Backup,
    }
}

pub fn start(daemon: &Daemon) -> Result<String, Failure> {
    let role = role(daemon);
    let refused = |message: &str| Failure::new(message, EXIT_KERNEL_REFUSED);
    if sync::ask(role, "status").is_some() {
        return Err(refused("Daemon has already run"));
    }
    let interface = if daemon.mcast_interface.is_empty() {
        DEFAULT_INTERFACE
    } else {
        daemon.mcast_interface.as_str()
    };
    if !std::path::Path::new("/sys/class/net")
        .join(interface)
        .exists()
    {
        return Err(refused("No such device"));
    }
    let mut args: Vec<String> = vec![
        "sync-daemon".into(),
        role.name().into(),
        "--mcast-interface".into(),
        interface.into(),
        "--syncid".into(),
        daemon.syncid.to_string(),
        "--detach".into(),
    ];
    match daemon.mcast_group {
        Some(group) if group.is_multicast() => {
            args.extend(["--mcast-group".into(), group.to_string()]);
        }
        Some(group) => {
            return Err(refused(&format!("xvs: {group} is not a multicast group")));
        }
        None => {}
    }
    for (option, value) in [
        ("--sync-maxlen", u32::from(daemon.sync_maxlen)),
        ("--mcast-port", u32::from(daemon.mcast_port)),
        ("--mcast-ttl", u32::from(daemon.mcast_ttl)),
    ] {
        // 0: not given, the default.
        if value != 0 {
            args.extend([option.to_string(), value.to_string()]);
        }
    }
    let mut command = Command::new(xvsd());
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid(2) only, between fork and exec: the daemon leaves xvsadm's session
    // and outlives it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| refused(&format!("xvs: cannot start xvsd: {e}")))?;
    // The daemon closes its stderr once it runs; if it stops first, that is why.
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut said);
    }
    match child.try_wait() {
        Ok(None) => Ok(String::new()),
        _ => {
            let _ = child.wait();
            let said = said.trim();
            Err(refused(if said.is_empty() {
                "xvs: the sync daemon did not start"
            } else {
                said
            }))
        }
    }
}

pub fn stop(daemon: &Daemon) -> Result<String, Failure> {
    match sync::ask(role(daemon), "stop") {
        Some(_) => Ok(String::new()),
        None => Err(Failure::new("No daemon is running", EXIT_KERNEL_REFUSED)),
    }
}

/// `-L --daemon`: each running daemon's line, the master first; nothing if none runs.
pub fn list() -> String {
    let mut out = String::new();
    for role in [DaemonRole::Master, DaemonRole::Backup] {
        if let Some(line) = sync::ask(role, "status") {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// xvsd beside this xvsadm (as installed, and as cargo builds them), else on PATH.
fn xvsd() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("xvsd")))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("xvsd"))
}
