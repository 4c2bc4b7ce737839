//! `cargo xtask <task>`: the project's own set-up, test, demo and bench commands.

mod bench;
mod bench_churn;
mod bench_datapath;
mod demo;
mod setup;

use std::process::{Command, ExitCode};

const USAGE: &str = "\
Usage: cargo xtask <task>
  setup    make this machine ready: Debian packages, nightly rust-src, bpf-linker (idempotent)
  test     the whole suite (runs setup first; needs root for namespaces and BPF)
  demo     the seed's lab, built, configured with the xvs tools, shown and cleaned up
  bench    the measurements of docs/BENCHMARKS.md (`bench datapath`: its per-packet part;
           `bench churn`: the expiry sweep under a steady load, a few minutes)
  build    release binaries with the XDP programs embedded (target/release/)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::ensure(),
        Some("test") => test(&args[1..]),
        Some("demo") => demo::run(),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("datapath") => require_root("bench")
                .and_then(|()| setup::ensure())
                .and_then(|()| bench_datapath::run()),
            Some("churn") => require_root("bench")
                .and_then(|()| setup::ensure())
                .and_then(|()| bench_churn::run()),
            _ => bench::run(),
        },
        Some("build") => setup::ensure().and_then(|()| build_release()),
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
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "xvsadm",
        "-p",
        "xvsd",
        "-p",
        "xvs-decap",
    ]))
}
