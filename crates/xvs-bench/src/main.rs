//! `xvs-bench [restore|datapath|churn|scale|sync|health|lab]`: the measurements of docs/BENCHMARKS.md.
//!
//! `cargo xtask bench` builds this in release (with xvsadm beside it) and runs it: the
//! per-packet figures are timed between user-side calls, so a debug-built harness would
//! show up inside them (shared/docs/TOOLCHAIN.md). It lives apart from xtask because it
//! links the XDP programs, which xtask's set-up step must be able to build without.

mod churn;
mod datapath;
mod health;
mod lab;
mod parallel;
mod restore;
mod scale;
mod sync;

use std::process::ExitCode;

const USAGE: &str = "\
Usage: xvs-bench [TASK]   (run by `cargo xtask bench`, as root)
  (none)    restore, datapath, then lab
  restore   xvsadm -R and -S -n of 10,000 services, time and peak memory
  datapath  per-packet cost of the director through BPF_PROG_TEST_RUN
  churn     the expiry sweep under a steady load (a few minutes)
  scale     the connection table holding 100,000, 1,000,000 and 10,000,000 connections
            (XVS_SCALE_SIZES): fill, memory, established, new flow and churn costs
  sync      connection sync: a master's round and a backup's intake at 100,000 and
            1,000,000 connections
  lab       real connections through a lab: direct, xvs NAT and DR, nftables DNAT,
            HAProxy, alternating (`lab --quick`: one short round)
  health    xvsd: 1,000 real servers checked every second (CPU, memory), and the time
            from a real server's death to its removal (a distribution over rounds)";

/// The release-built binary `name` beside this one (`cargo xtask bench` builds them).
pub fn beside(name: &str) -> Result<std::path::PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let binary = me.with_file_name(name);
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "no {} (run the benchmark with `cargo xtask bench`, which builds it)",
            binary.display()
        ))
    }
}

/// User plus system CPU time of process `pid`, in clock ticks (USER_HZ).
pub fn process_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // After the command's ')' (the command may hold spaces): state, ppid, pgrp, session,
    // tty, tpgid, flags, four fault counts, then utime and stime.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(field(11) + field(12))
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    let rest: Vec<String> = std::env::args().skip(2).collect();
    let result = match task.as_deref() {
        None | Some("all") => restore::run()
            .and_then(|()| datapath::run())
            .and_then(|()| lab::run(&rest)),
        Some("lab") => lab::run(&rest),
        Some("restore") => restore::run(),
        Some("datapath") => datapath::run(),
        Some("churn") => churn::run(),
        Some("scale") => scale::run(),
        // One size of `scale`, in a process of its own (run by `scale`).
        Some("scale-one") => match rest.first() {
            Some(size) => scale::one(size),
            None => Err("scale-one needs a size".to_string()),
        },
        Some("sync") => sync::run(),
        Some("health") => health::run(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("xvs-bench: unknown task {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xvs-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
