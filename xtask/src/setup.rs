//! `cargo xtask setup`: makes a fresh machine of this project's kind (Debian 12, rustup
//! with stable and nightly) ready to build, test and demo xvs. Every step checks first and
//! does nothing when its work is already done (see shared/docs/TOOLCHAIN.md for the facts).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::run;

/// Debian packages the tests, labs, demo and package use, with a command each provides.
const PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "ip"),
    ("ethtool", "ethtool"),
    ("curl", "curl"),
    ("socat", "socat"),
    ("procps", "sysctl"),
    ("iputils-ping", "ping"),
    ("tcpdump", "tcpdump"),
    ("systemd", "systemd-analyze"),
    ("lintian", "lintian"),
    ("binutils", "strip"),
    ("chromium", "chromium"),
    ("openssl", "openssl"),
    ("keepalived", "keepalived"),
    // xvsd announces VIPs over BGP through BIRD (the scale-out labs run it as routers too).
    ("bird2", "bird"),
    ("ca-certificates", "update-ca-certificates"),
    // The fwmark labs mark packets as operators do, with both; the PROXY protocol lab
    // drops packets at random with nftables (the kernel has no netem).
    ("iptables", "iptables"),
    ("nftables", "nft"),
    // The PROXY protocol lab's real server reads the header as operators' servers do.
    ("nginx", "nginx"),
];

/// What only `cargo xtask bench lab` uses: the contenders and the load generators.
const BENCH_PACKAGES: &[(&str, &str)] =
    &[("iperf3", "iperf3"), ("wrk", "wrk"), ("haproxy", "haproxy")];

const BPF_LINKER_VERSION: &str = "0.13.0";

/// Makes sure everything is in place; quick when it is.
pub fn ensure() -> Result<(), String> {
    debian_packages()?;
    nightly_rust_src()?;
    bpf_linker()?;
    println!("setup: ready");
    Ok(())
}

fn has_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The benchmark's own packages (after [`ensure`]).
pub fn ensure_bench() -> Result<(), String> {
    install_packages(BENCH_PACKAGES)
}

fn debian_packages() -> Result<(), String> {
    install_packages(PACKAGES)
}

fn install_packages(packages: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, command)| !has_command(command))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        println!("setup: Debian packages present");
        return Ok(());
    }
    if !has_command("apt-get") {
        return Err(format!(
            "missing {}: install them with your package manager",
            missing.join(" ")
        ));
    }
    println!("setup: installing {}", missing.join(" "));
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        // A fresh machine may have no package lists yet.
        run(Command::new("apt-get").arg("update"))
            .and_then(|()| install())
            .map_err(|e| {
                format!(
                    "{e}: install {} (as root: apt-get install {})",
                    missing.join(" "),
                    missing.join(" ")
                )
            })?;
    }
    Ok(())
}

fn nightly_sysroot() -> Result<PathBuf, String> {
    let sysroot = || {
        Command::new("rustc")
            .args(["+nightly", "--print", "sysroot"])
            .output()
            .map_err(|e| format!("cannot run rustc: {e} (install rustup: https://rustup.rs)"))
    };
    let mut output = sysroot()?;
    if !output.status.success() {
        println!("setup: installing the nightly toolchain (the XDP programs need it)");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))
        .map_err(|e| format!("{e}: run `rustup toolchain install nightly`"))?;
        output = sysroot()?;
    }
    if !output.status.success() {
        return Err("no nightly toolchain: run `rustup toolchain install nightly`".into());
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
    ))
}

fn nightly_rust_src() -> Result<(), String> {
    let sysroot = nightly_sysroot()?;
    if sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        println!("setup: nightly rust-src present");
        return Ok(());
    }
    println!("setup: adding rust-src to nightly (needed for -Z build-std=core)");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
        .map_err(|e| format!("{e}: run `rustup component add rust-src --toolchain nightly`"))
}

/// The libLLVM shared library that ships with the nightly toolchain.
fn nightly_libllvm(sysroot: &Path) -> Result<PathBuf, String> {
    let lib = sysroot.join("lib");
    let entries = std::fs::read_dir(&lib).map_err(|e| format!("cannot read {lib:?}: {e}"))?;
    entries
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so.") && n.contains("rust"))
        })
        .ok_or_else(|| format!("no libLLVM.so.* in {lib:?}: the nightly toolchain looks broken"))
}

fn home() -> Result<PathBuf, String> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| "HOME is not set".to_string())
}

fn bpf_linker_works() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)
        })
}

/// bpf-linker built against the nightly's own LLVM: Debian 12 has no LLVM new enough.
/// The LLVM prefix lives in the user's cache folder (the binary's RUNPATH points there);
/// the binary goes to cargo's own bin folder, which PATH already has.
fn bpf_linker() -> Result<(), String> {
    if bpf_linker_works() {
        println!("setup: bpf-linker {BPF_LINKER_VERSION} present");
        return Ok(());
    }
    let sysroot = nightly_sysroot()?;
    let libllvm = nightly_libllvm(&sysroot)?;
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or(home()?.join(".cache"));
    let prefix = cache.join("xvs/llvm");
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib).map_err(|e| format!("cannot create {lib:?}: {e}"))?;
    let soname = libllvm.file_name().unwrap_or_default().to_owned();
    // bpf-linker's feature names the LLVM major version: libLLVM.so.22.1-rust-… → llvm-22.
    let major: String = soname
        .to_string_lossy()
        .trim_start_matches("libLLVM.so.")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let llvm_feature = format!("llvm-{major}");
    for link in [lib.join("libLLVM.so"), lib.join(&soname)] {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&libllvm, &link)
            .map_err(|e| format!("cannot link {link:?}: {e}"))?;
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or(home()?.join(".cargo"));
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against {} (about a minute)",
        libllvm.display()
    );
    run(Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            &llvm_feature,
            "--root",
        ])
        .arg(&cargo_home)
        .env("LLVM_PREFIX", &prefix))
    .map_err(|e| format!("{e}: bpf-linker could not be built (see the output above)"))?;
    if !bpf_linker_works() {
        return Err(format!(
            "bpf-linker was installed in {} but does not run: is that folder on PATH?",
            cargo_home.join("bin").display()
        ));
    }
    Ok(())
}
