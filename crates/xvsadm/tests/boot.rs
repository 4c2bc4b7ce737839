//! Rules that survive a reboot, as the seed's "save the configuration and start the
//! service": `xvsadm-save` and `xvsadm-restore` (xvsadm under those names, as the package
//! links it) and the systemd unit that restores the saved table at boot
//! (dist/systemd/xvsadm.service). A boot is played as a fresh network namespace: the
//! unit's own ExecStart line runs there, and the table it makes must be the one saved.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use xvs_lab::{Lab, LabBuilder};

const XVSADM: &str = env!("CARGO_BIN_EXE_xvsadm");

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist")
}

/// A folder with `xvsadm-save` and `xvsadm-restore` linked to the built xvsadm, as the
/// package installs them; removed on drop.
struct Links(PathBuf);

impl Links {
    fn new() -> Links {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("xvsadm-boot-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "xvsadm-save",
            "xvsadm-restore",
            "ipvsadm",
            "ipvsadm-save",
            "ipvsadm-restore",
        ] {
            std::os::unix::fs::symlink(XVSADM, dir.join(name)).unwrap();
        }
        Links(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const RULES: &str = "\
-A -t 1.1.1.254:80 -s wrr -p 300
-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 2
-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m -w 1
-A -u 1.1.1.254:53 -s rr
-a -u 1.1.1.254:53 -r 192.168.1.10:53 -g -w 1
";

fn lab() -> Lab {
    LabBuilder::new()
        .host("before")
        .host("after")
        .build()
        .unwrap()
}

/// Runs `sh -c script` in `host`, `input` on stdin.
fn sh(lab: &Lab, host: &str, script: &str, input: &str) -> Output {
    let mut cmd = lab.command(host, &["sh", "-c", script]);
    cmd.env("XVS_AUTO_ATTACH", "0");
    lab.feed(cmd, input).unwrap()
}

#[track_caller]
fn saved(lab: &Lab, host: &str) -> String {
    let out = lab.run(host, &[XVSADM, "-S", "-n"]).unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The unit's lines of one key (`ExecStart`, `ExecStop`, …).
fn unit_lines(key: &str) -> Vec<String> {
    let unit = std::fs::read_to_string(dist().join("systemd/xvsadm.service")).unwrap();
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_saved_table_comes_back_at_boot_through_the_unit() {
    let lab = lab();
    let links = Links::new();
    let (save, restore) = (links.path("xvsadm-save"), links.path("xvsadm-restore"));
    let out = sh(&lab, "before", &format!("{} -R", XVSADM), RULES);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = saved(&lab, "before");

    let rules_file = std::env::temp_dir().join(format!("xvsadm-rules-{}", std::process::id()));
    let out = sh(
        &lab,
        "before",
        &format!("{save} -n > {}", rules_file.display()),
        "",
    );
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&rules_file).unwrap(), before);

    // The boot: a namespace that never had a director runs what the unit runs.
    let exec_start = unit_lines("ExecStart");
    assert_eq!(exec_start.len(), 1);
    let command = exec_start[0]
        .replace("/usr/sbin/xvsadm-restore", &restore)
        .replace("/etc/xvsadm.rules", rules_file.to_str().unwrap());
    let argv: Vec<String> = shell_words(&command);
    let mut boot = lab.command(
        "after",
        &argv.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let out = boot.env("XVS_AUTO_ATTACH", "0").output().unwrap();
    std::fs::remove_file(&rules_file).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(saved(&lab, "after"), before);
}

#[test]
fn stopping_the_unit_leaves_the_table_alone() {
    assert!(
        unit_lines("ExecStop").is_empty(),
        "the unit must not clear or change the table when stopped"
    );
    assert_eq!(unit_lines("RemainAfterExit"), ["yes"]);
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dist().join("systemd/xvsadm.service"))
        .output()
        .expect("systemd-analyze (Debian package systemd, installed by cargo xtask setup)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn restore_replaces_the_table_whole_and_a_bad_file_changes_nothing() {
    let lab = lab();
    let links = Links::new();
    let restore = links.path("xvsadm-restore");
    let out = sh(&lab, "before", &format!("{} -R", XVSADM), RULES);
    assert!(out.status.success());
    let before = saved(&lab, "before");

    // Comments are skipped, and what was there before is replaced, not added to.
    let other = "# the new rules\n-A -t 10.0.0.1:443 -s rr\n  # indented comment\n";
    let out = sh(&lab, "before", &restore, other);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(saved(&lab, "before"), "-A -t 10.0.0.1:443 -s rr\n");

    let out = sh(&lab, "before", &restore, RULES);
    assert!(out.status.success());
    assert_eq!(saved(&lab, "before"), before);
    // A bad line: refused with its line number in the file, and the table stays as it
    // was (ipvsadm-restore would have cleared it first).
    let bad = "-A -t 10.0.0.2:80 -s rr\n-a -t 10.0.0.2:80 -r 10.0.0.3 -w 70000\n";
    let out = sh(&lab, "before", &restore, bad);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "line 2: illegal weight specified\n"
    );
    assert_eq!(saved(&lab, "before"), before);
}

#[test]
fn the_scripts_take_ipvsadms_options_only() {
    let lab = lab();
    let links = Links::new();
    for (script, args) in [("xvsadm-save", "-x"), ("xvsadm-restore", "-n")] {
        let out = sh(
            &lab,
            "before",
            &format!("{} {args}", links.path(script)),
            "",
        );
        assert_eq!(out.status.code(), Some(1), "{script} {args}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("Usage:"));
    }
}

/// An operator's script written for ipvsadm runs unchanged with the package's folder of
/// ipvsadm's names first on its PATH: the seed's "save the configuration", a reboot's
/// restore, and Experiment III's taking a dead server out.
#[test]
fn a_script_that_calls_ipvsadm_by_name_runs_on_xvs() {
    let lab = lab();
    let links = Links::new();
    let folder = links.0.display();
    let script = format!(
        "export PATH={folder}:$PATH
ipvsadm -A -t 1.1.1.254:80 -s rr
ipvsadm -a -t 1.1.1.254:80 -r 192.168.1.10:80 -m
ipvsadm -a -t 1.1.1.254:80 -r 192.168.1.20:80 -m
ipvsadm-save -n > {folder}/rules
ipvsadm -C
ipvsadm-restore < {folder}/rules
ipvsadm -d -t 1.1.1.254:80 -r 192.168.1.20:80
ipvsadm -L -n"
    );
    let out = sh(&lab, "before", &script, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  1.1.1.254:80 rr
  -> 192.168.1.10:80              Masq    1      0          0         
"
    );
}

/// Splits a unit's command line as systemd does for the simple quoting used here.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}
