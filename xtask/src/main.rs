//! `cargo xtask <task>`: the project's own set-up, test, demo and bench commands.

mod demo;
mod package;
mod setup;

use std::process::{Command, ExitCode};

const USAGE: &str = "\
Usage: cargo xtask <task>
  setup    make this machine ready: Debian packages, nightly rust-src, bpf-linker (idempotent)
  test     the whole suite (runs setup first; needs root for namespaces and BPF)
  demo     the seed's lab, built, configured with the xvs tools, shown and cleaned up
  bench    the measurements of docs/BENCHMARKS.md, from a release build (`bench restore`:
           xvsadm's -R and -S; `bench datapath`: the per-packet part; `bench churn`: the
           expiry sweep under a steady load, a few minutes; `bench scale`: the connection
           table holding 100 k, 1 M and 10 M connections (XVS_SCALE_SIZES), a few
           minutes and 4 GB of memory; `bench health`: xvsd with
           1,000 real servers, and a real server's death to its removal; `bench lab
           [--quick]`: xvs beside the direct path, nftables NAT and HAProxy, real
           connections through a lab; no argument: datapath and lab)
  build    release binaries with the XDP programs embedded (target/release/)
  package  a Debian package of them, with the systemd unit, man pages and bash completion
           (target/debian/xvs_VERSION_ARCH.deb; prints its path last)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::ensure(),
        Some("test") => test(&args[1..]),
        Some("demo") => demo::run(),
        Some("bench") => bench(
            args.get(1).map(String::as_str),
            args.get(2..).unwrap_or(&[]),
        ),
        Some("build") => setup::ensure().and_then(|()| build_release()),
        Some("package") => setup::ensure().and_then(|()| package::build().map(drop)),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command, echoing it first; an error names it if it fails.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    println!("+ {}", describe(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", describe(cmd)))
    }
}

pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|word| word.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub fn require_root(task: &str) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!(
            "`cargo xtask {task}` needs root: it creates network namespaces and loads XDP programs"
        ));
    }
    Ok(())
}

fn test(extra: &[String]) -> Result<(), String> {
    require_root("test")?;
    setup::ensure()?;
    // Each test director gets a 65,536-entry connection table (11 MiB) instead of the
    // production million (168 MiB): dozens of them exist at once while tests run.
    run(cargo()
        .args(["test", "--workspace", "--all-targets"])
        .args(extra)
        .env("XVS_CONNECTIONS", "65536"))?;
    // Doc tests are not in --all-targets.
    run(cargo().args(["test", "--workspace", "--doc"]))
}

pub fn build_release() -> Result<(), String> {
    run(cargo().args(RELEASE_BUILD).args(BINARIES))
}

const RELEASE_BUILD: [&str; 2] = ["build", "--release"];
const BINARIES: [&str; 8] = [
    "-p",
    "xvsadm",
    "-p",
    "xvsd",
    "-p",
    "xvs-decap",
    "-p",
    "xvs-realserver",
];

/// The benchmarks run from a release build of their own crate, built after set-up: it
/// links the XDP programs (which this crate must not, see setup.rs), and a debug-built
/// harness would show up inside the per-packet timings.
fn bench(task: Option<&str>, extra: &[String]) -> Result<(), String> {
    require_root("bench")?;
    setup::ensure()?;
    if matches!(task, None | Some("lab" | "all")) {
        setup::ensure_bench()?;
    }
    run(cargo()
        .args(RELEASE_BUILD)
        .args(BINARIES)
        .args(["-p", "xvs-bench"]))?;
    let mut bench = std::process::Command::new(demo::release_binary("xvs-bench"));
    bench.args(task).args(extra);
    run(&mut bench)
}
