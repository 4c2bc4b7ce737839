//! The Debian package: `cargo xtask package` builds it, lintian finds no error in it, and
//! it installs into a scratch root (its own dpkg database) and is purged from it again,
//! leaving nothing behind.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn build_package() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--package", "xtask", "--", "package"])
        .current_dir(workspace())
        .output()
        .expect("cargo");
    assert!(
        out.status.success(),
        "cargo xtask package failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(stdout.lines().last().expect("the package's path").trim())
}

/// Everything under `root` (files, links, folders) but dpkg's own database and the
/// folders that hold it.
fn everything_under(root: &Path) -> Vec<PathBuf> {
    let database = root.join("var/lib/dpkg");
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.starts_with(&database) {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                folders.push(path.clone());
            }
            if !database.starts_with(&path) {
                found.push(path);
            }
        }
    }
    found
}

fn dpkg(root: &Path, args: &[&str]) {
    let out = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(args)
        .output()
        .expect("dpkg");
    assert!(
        out.status.success(),
        "dpkg {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_package_installs_runs_and_purges_cleanly() {
    let deb = build_package();

    let lint = Command::new("lintian")
        .args(["--fail-on", "error"])
        .arg(&deb)
        .output()
        .expect("lintian (installed by cargo xtask setup)");
    assert!(
        lint.status.success(),
        "lintian:\n{}",
        String::from_utf8_lossy(&lint.stdout)
    );

    let root = std::env::temp_dir().join(format!("xvs-package-root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for folder in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    // The scratch root has no libc package: only the dependency check is skipped.
    dpkg(
        &root,
        &["--force-depends", "--install", deb.to_str().unwrap()],
    );

    let sbin = root.join("usr/sbin");
    for command in [
        "xvsadm",
        "xvsadm-save",
        "xvsadm-restore",
        "xvsd",
        "xvs-decap",
        "xvs-realserver",
    ] {
        assert!(sbin.join(command).exists(), "{command} installed");
        assert!(
            root.join(format!("usr/share/man/man8/{command}.8.gz"))
                .exists(),
            "{command}'s man page"
        );
        assert!(
            root.join(format!("usr/share/bash-completion/completions/{command}"))
                .exists(),
            "{command}'s completion"
        );
    }
    assert!(root.join("lib/systemd/system/xvsadm.service").exists());
    assert!(root.join("lib/systemd/system/xvsd.service").exists());
    assert!(root.join("usr/share/doc/xvs/examples/xvsd.toml").exists());
    // ipvsadm's own names, for scripts that call them, run xvsadm as those commands.
    let names = root.join("usr/lib/xvs/ipvsadm");
    for xvsadm in [sbin.join("xvsadm"), names.join("ipvsadm")] {
        let version = Command::new(&xvsadm).arg("-v").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&version.stdout),
            "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n",
            "{}",
            xvsadm.display()
        );
    }
    for (script, usage) in [
        ("ipvsadm-save", "Usage: ipvsadm-save [-n]"),
        ("ipvsadm-restore", "Usage: ipvsadm-restore < RULES"),
    ] {
        let wrong = Command::new(names.join(script)).arg("-x").output().unwrap();
        assert_eq!(wrong.status.code(), Some(1), "{script} -x");
        assert!(
            String::from_utf8_lossy(&wrong.stderr).starts_with(usage),
            "{script}: {}",
            String::from_utf8_lossy(&wrong.stderr)
        );
    }
    // The man page is the help text.
    let page = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zcat {}",
            root.join("usr/share/man/man8/xvs-realserver.8.gz")
                .display()
        ))
        .output()
        .unwrap();
    let help = Command::new(sbin.join("xvs-realserver"))
        .arg("--help")
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    for line in String::from_utf8_lossy(&help.stdout).lines() {
        assert!(page.contains(line), "man page lacks {line:?}");
    }

    dpkg(&root, &["--purge", "xvs"]);
    let left = everything_under(&root);
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_dir_all(&root).unwrap();
}
