//! The set-up step must build where the BPF toolchain is not installed yet: `cargo xtask
//! setup` is what installs bpf-linker, so if xtask ever depends on a crate that compiles
//! the XDP programs, a fresh machine cannot start xvs at all. This builds xtask in a
//! target folder of its own with a PATH on which no bpf-linker can be found, and runs it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The current PATH without any folder that holds a bpf-linker; the rustup proxies that
/// lived in such a folder are linked from `shims` instead.
fn path_without_bpf_linker(shims: &Path) -> String {
    std::fs::create_dir_all(shims).expect("shim folder");
    let mut folders = vec![shims.to_path_buf()];
    for folder in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if !folder.join("bpf-linker").exists() {
            folders.push(folder);
            continue;
        }
        for tool in ["cargo", "rustc", "rustup"] {
            let (from, to) = (folder.join(tool), shims.join(tool));
            if from.exists() && !to.exists() {
                std::os::unix::fs::symlink(&from, &to).expect("link a rustup proxy");
            }
        }
    }
    std::env::join_paths(folders)
        .expect("PATH")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn xtask_builds_and_runs_without_the_bpf_toolchain() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf();
    let scratch = workspace.join("target/fresh-machine");
    let path = path_without_bpf_linker(&scratch.join("shims"));

    let found = Command::new("sh")
        .args(["-c", "command -v bpf-linker"])
        .env("PATH", &path)
        .output()
        .expect("sh");
    assert!(
        !found.status.success(),
        "the test's PATH still finds bpf-linker at {}",
        String::from_utf8_lossy(&found.stdout)
    );

    let built = Command::new("cargo")
        .args(["build", "--quiet", "--package", "xtask"])
        .current_dir(&workspace)
        .env("PATH", &path)
        .env("CARGO_TARGET_DIR", scratch.join("target"))
        .output()
        .expect("cargo");
    assert!(
        built.status.success(),
        "xtask does not build without bpf-linker, so `cargo xtask setup` cannot run on a fresh machine:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let help = Command::new(scratch.join("target/debug/xtask"))
        .arg("help")
        .env("PATH", &path)
        .output()
        .expect("xtask");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("setup"));
}
