//! xvsadm's `-R` of a large table and the `-S -n` that lists it again: wall time and peak
//! memory of the release-built xvsadm beside this binary, in a namespace of their own.

use std::{
    io::Write,
    os::unix::process::ExitStatusExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use xvs_lab::{Lab, LabBuilder};

const SERVICES: usize = 10_000;
const DESTS_PER_SERVICE: usize = 10;
const ROUNDS: usize = 5;

/// Wall time and peak resident memory of one process.
struct Run {
    wall: Duration,
    max_rss_kib: i64,
}

/// Runs `cmd` (stdin from `input`), waits with wait4 to read its peak memory.
fn measure(mut cmd: Command, input: &[u8]) -> Result<Run, String> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the benchmark: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin
        .write_all(input)
        .map_err(|e| format!("cannot feed the benchmark: {e}"))?;
    drop(stdin);
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by wait4 for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child's pid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if pid < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !std::process::ExitStatus::from_raw(status).success() {
        return Err("the measured command failed".into());
    }
    Ok(Run {
        wall,
        max_rss_kib: usage.ru_maxrss,
    })
}

/// The restore input: SERVICES services with DESTS_PER_SERVICE NAT real servers each.
fn rules() -> String {
    let mut out = String::new();
    for s in 0..SERVICES {
        let vip = format!("10.{}.{}.1:80", s / 250, s % 250);
        out.push_str(&format!("-A -t {vip} -s wlc\n"));
        for d in 0..DESTS_PER_SERVICE {
            out.push_str(&format!(
                "-a -t {vip} -r 192.168.{d}.{}:80 -m -w {}\n",
                s % 250 + 1,
                d + 1
            ));
        }
    }
    out
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// The xvsadm built with this binary (`cargo xtask bench` builds both in release).
fn xvsadm_binary() -> Result<std::path::PathBuf, String> {
    crate::beside("xvsadm")
}

fn xvsadm(lab: &Lab, binary: &std::path::Path, args: &[&str]) -> Command {
    let mut argv = vec![binary.to_str().unwrap_or("xvsadm")];
    argv.extend(args);
    lab.command("director", &argv)
}

pub fn run() -> Result<(), String> {
    let binary = xvsadm_binary()?;
    let input = rules();
    println!(
        "\n== xvsadm -R of {SERVICES} services x {DESTS_PER_SERVICE} real servers, then -S -n ({ROUNDS} rounds, fresh namespace each)"
    );
    let (mut restores, mut saves, mut restore_rss, mut save_rss) = (vec![], vec![], 0, 0);
    for _ in 0..ROUNDS {
        let lab = LabBuilder::new()
            .host("director")
            .build()
            .map_err(|e| e.to_string())?;
        let restore = measure(xvsadm(&lab, &binary, &["-R"]), input.as_bytes())?;
        let save = measure(xvsadm(&lab, &binary, &["-S", "-n"]), b"")?;
        restores.push(restore.wall);
        saves.push(save.wall);
        restore_rss = restore_rss.max(restore.max_rss_kib);
        save_rss = save_rss.max(save.max_rss_kib);
    }
    println!(
        "restore: median {:.3} s (min {:.3} s), peak RSS {} KiB",
        median(restores.clone()).as_secs_f64(),
        restores
            .iter()
            .min()
            .unwrap_or(&Duration::ZERO)
            .as_secs_f64(),
        restore_rss
    );
    println!(
        "save:    median {:.3} s (min {:.3} s), peak RSS {} KiB",
        median(saves.clone()).as_secs_f64(),
        saves.iter().min().unwrap_or(&Duration::ZERO).as_secs_f64(),
        save_rss
    );
    Ok(())
}
