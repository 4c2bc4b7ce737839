//! `cargo xtask package`: a Debian package of xvs, `target/debian/xvs_VERSION_ARCH.deb`:
//! the binaries, `xvsadm-save` and `xvsadm-restore` (links to xvsadm), ipvsadm's three names
//! linked to xvsadm in a folder of their own ([`IPVSADM_NAMES`]), the systemd units
//! (xvsadm.service, xvsd.service) with example xvsd configs,
//! a man page and a bash completion for every command. The man pages and completions are
//! made from each binary's own `--help` text, so they cannot drift from it.

use std::{
    fmt::Write as _,
    fs,
    io::Write as _,
    os::unix::{
        fs::{PermissionsExt, symlink},
        process::CommandExt,
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::{build_release, demo::release_binary, run};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every command the package installs in /usr/sbin: name, one line for the man page's
/// NAME section, and the binary it is (the wrapper names are links to xvsadm).
const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "xvsadm",
        "ipvsadm's command line for the xvs XDP load balancer",
        "xvsadm",
    ),
    (
        "xvsadm-save",
        "print the xvs table as rules xvsadm-restore reads",
        "xvsadm",
    ),
    (
        "xvsadm-restore",
        "replace the xvs table with rules read from standard input",
        "xvsadm",
    ),
    (
        "xvsd",
        "the xvs director daemon: attach, detach, status",
        "xvsd",
    ),
    (
        "xvs-decap",
        "decapsulate IP-in-IP for xvs tunnel mode on a real server",
        "xvs-decap",
    ),
    (
        "xvs-realserver",
        "prepare a real server for xvs direct routing or tunnel mode",
        "xvs-realserver",
    ),
];

/// Where ipvsadm's own names (`ipvsadm`, `ipvsadm-save`, `ipvsadm-restore`) are links to
/// xvsadm, for operators' scripts that call them: put first on such a script's `PATH`. Not
/// in /usr/sbin, where they would clash with Debian's ipvsadm package (and its kernel IPVS
/// would then be what the name runs).
pub const IPVSADM_NAMES: &str = "usr/lib/xvs/ipvsadm";

/// Builds the package; returns its path.
pub fn build() -> Result<PathBuf, String> {
    build_release()?;
    let target = release_binary("x")
        .parent()
        .and_then(Path::parent)
        .ok_or("no target folder")?
        .to_path_buf();
    let root = target.join("debian/xvs");
    if root.exists() {
        fs::remove_dir_all(&root).map_err(|e| format!("cannot clear {}: {e}", root.display()))?;
    }
    let sbin = root.join("usr/sbin");
    for (name, _, binary) in COMMANDS {
        let to = sbin.join(name);
        if name == binary {
            install(&release_binary(binary), &to, 0o755)?;
            run(Command::new("strip").arg("--strip-unneeded").arg(&to))?;
        } else {
            mkdir(&sbin)?;
            symlink(binary, &to).map_err(|e| format!("cannot link {}: {e}", to.display()))?;
        }
    }
    let names = root.join(IPVSADM_NAMES);
    mkdir(&names)?;
    for name in ["ipvsadm", "ipvsadm-save", "ipvsadm-restore"] {
        let to = names.join(name);
        symlink("../../../sbin/xvsadm", &to)
            .map_err(|e| format!("cannot link {}: {e}", to.display()))?;
    }
    let workspace = target.parent().ok_or("no workspace")?;
    for unit in ["xvsadm.service", "xvsd.service"] {
        install(
            &workspace.join("dist/systemd").join(unit),
            &root.join("lib/systemd/system").join(unit),
            0o644,
        )?;
    }
    for example in [
        "xvsd.toml",
        "xvsd-dr.toml",
        "xvsd-pair.toml",
        "xvsd-fleet.toml",
    ] {
        install(
            &workspace.join("dist").join(example),
            &root.join("usr/share/doc/xvs/examples").join(example),
            0o644,
        )?;
    }
    for (name, summary, binary) in COMMANDS {
        let help = help_text(&release_binary(binary), name)?;
        let page = root.join(format!("usr/share/man/man8/{name}.8.gz"));
        write_gzipped(&page, man_page(name, summary, &help).as_bytes())?;
        let completion = root.join(format!("usr/share/bash-completion/completions/{name}"));
        write(
            &completion,
            completion_script(name, &help).as_bytes(),
            0o644,
        )?;
    }
    let doc = root.join("usr/share/doc/xvs");
    write(&doc.join("copyright"), COPYRIGHT.as_bytes(), 0o644)?;
    write_gzipped(&doc.join("changelog.gz"), changelog().as_bytes())?;
    let control = control(&root)?;
    write(&root.join("DEBIAN/control"), control.as_bytes(), 0o644)?;
    let deb = target.join(format!("debian/xvs_{VERSION}_{}.deb", architecture()?));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb))?;
    println!("{}", deb.display());
    Ok(deb)
}

fn mkdir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    // Debian wants 0755 folders whatever the umask.
    let mut dir = Some(path);
    while let Some(d) = dir {
        if d.ends_with("debian/xvs") {
            break;
        }
        let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o755));
        dir = d.parent();
    }
    Ok(())
}

fn write(to: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    mkdir(to.parent().ok_or("no folder")?)?;
    fs::write(to, bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", to.display()))
}

fn install(from: &Path, to: &Path, mode: u32) -> Result<(), String> {
    let bytes = fs::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    write(to, &bytes, mode)
}

/// gzip -9n: no name or time stamp, so the package is the same for the same input.
fn write_gzipped(to: &Path, bytes: &[u8]) -> Result<(), String> {
    mkdir(to.parent().ok_or("no folder")?)?;
    let mut gzip = Command::new("gzip")
        .args(["-9n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    gzip.stdin
        .take()
        .ok_or("no stdin")?
        .write_all(bytes)
        .map_err(|e| format!("gzip: {e}"))?;
    let out = gzip.wait_with_output().map_err(|e| format!("gzip: {e}"))?;
    write(to, &out.stdout, 0o644)
}

/// What `binary` prints for `--help` when called as `name` (a wrapper name prints its usage
/// on stderr).
fn help_text(binary: &Path, name: &str) -> Result<String, String> {
    let out = Command::new(binary)
        .arg0(name)
        .arg("--help")
        .output()
        .map_err(|e| format!("cannot run {name} --help: {e}"))?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    let text = String::from_utf8_lossy(&text).trim_end().to_string();
    if text.is_empty() {
        return Err(format!("{name} --help printed nothing"));
    }
    Ok(text)
}

/// A man page whose body is the `--help` text, as printed.
fn man_page(name: &str, summary: &str, help: &str) -> String {
    let mut page = String::new();
    let _ = writeln!(
        page,
        ".TH {} 8 \"\" \"xvs {VERSION}\" \"System Administration\"",
        name.to_uppercase()
    );
    let _ = writeln!(page, ".SH NAME\n{} \\- {summary}", name.replace('-', "\\-"));
    let _ = writeln!(
        page,
        ".SH DESCRIPTION\nWhat `{name} --help' prints:\n.PP\n.nf"
    );
    for line in help.lines() {
        let line = line.replace('\\', "\\e");
        // A line starting with a dot or quote would be read as a request.
        if line.starts_with('.') || line.starts_with('\'') {
            page.push_str("\\&");
        }
        page.push_str(&line);
        page.push('\n');
    }
    let _ = writeln!(page, ".fi\n.SH SEE ALSO");
    let others: Vec<String> = COMMANDS
        .iter()
        .filter(|(other, _, _)| *other != name)
        .map(|(other, _, _)| format!(".BR {other} (8)"))
        .collect();
    let _ = writeln!(page, "{}", others.join(",\n"));
    page
}

/// The options a `--help` text names (`-A`, `--tcp-service`, …), in order, once each.
fn options_in(help: &str) -> Vec<String> {
    let mut options: Vec<String> = Vec::new();
    for word in help.split(|c: char| c.is_whitespace() || "[]|,()".contains(c)) {
        // `--tcp-service=ADDR` names `--tcp-service`.
        let word = word.split('=').next().unwrap_or(word);
        let word = word.trim_end_matches(['.', ':']);
        let name = word.trim_start_matches('-');
        let dashes = word.len() - name.len();
        let well_formed = (dashes == 1 && name.len() == 1 || dashes == 2 && name.len() > 1)
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if well_formed && !options.iter().any(|o| o == word) {
            options.push(word.to_string());
        }
    }
    options
}

/// A bash completion offering the options of the `--help` text.
fn completion_script(name: &str, help: &str) -> String {
    let function = format!("_{}", name.replace('-', "_"));
    format!(
        "# bash completion for {name}: the options `{name} --help' names.\n\
         {function}() {{\n    \
         local cur=\"${{COMP_WORDS[COMP_CWORD]}}\"\n    \
         COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))\n}}\n\
         complete -F {function} {name}\n",
        options_in(help).join(" ")
    )
}

fn architecture() -> Result<String, String> {
    let out = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .map_err(|e| format!("cannot run dpkg: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn control(root: &Path) -> Result<String, String> {
    let out = Command::new("du")
        .args(["-sk", "--exclude=DEBIAN"])
        .arg(root)
        .output()
        .map_err(|e| format!("cannot run du: {e}"))?;
    let size = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .to_string();
    Ok(format!(
        "Package: xvs\n\
         Version: {VERSION}\n\
         Architecture: {}\n\
         Maintainer: xvs developers <xvs-developers@example.org>\n\
         Installed-Size: {size}\n\
         Depends: libc6 (>= 2.34)\n\
         Suggests: bird2\n\
         Section: net\n\
         Priority: optional\n\
         Description: Linux Virtual Server load balancer on XDP\n \
         xvs is a layer-4 load balancer in the tradition of LVS/IPVS: a director spreads\n \
         TCP and UDP connections for a virtual IP over real servers, by NAT, direct\n \
         routing or IP tunnel, with IPVS's schedulers. The forwarding runs as XDP\n \
         programs; xvsadm takes ipvsadm's command lines and prints ipvsadm's listings.\n \
         It needs no IPVS in the kernel.\n",
        architecture()?
    ))
}

fn changelog() -> String {
    format!(
        "xvs ({VERSION}) unstable; urgency=medium\n\n  \
         * Package built by `cargo xtask package`.\n\n \
         -- xvs developers <xvs-developers@example.org>  Sat, 05 Dec 2026 00:00:00 +0000\n"
    )
}

const COPYRIGHT: &str = "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: xvs

Files: *
Copyright: 2026 the xvs developers
License: MIT or Apache-2.0
 xvs may be used under the terms of the MIT license or of the Apache License,
 Version 2.0, at the user's choice. On Debian systems the Apache License 2.0 is
 in /usr/share/common-licenses/Apache-2.0.
 .
 Permission is hereby granted, free of charge, to any person obtaining a copy of
 this software and associated documentation files (the \"Software\"), to deal in
 the Software without restriction, including without limitation the rights to
 use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
 the Software, and to permit persons to whom the Software is furnished to do so,
 subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all
 copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
 FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
 COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
 IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
 CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_from_the_help_text() {
        let help = "Usage:\n  xvs-decap IFACE\n  xvs-decap --detach IFACE   stop\n  xvs-decap -h | --help\n  [-s scheduler] [-p [timeout]] --tcp-service=ADDR -Ln";
        assert_eq!(
            options_in(help),
            ["--detach", "-h", "--help", "-s", "-p", "--tcp-service"]
        );
    }

    #[test]
    fn a_man_page_keeps_the_help_text_verbatim() {
        let page = man_page("xvs-decap", "decapsulate", ".starts with a dot\na \\ b");
        assert!(page.contains(".SH NAME\nxvs\\-decap \\- decapsulate\n"));
        assert!(page.contains("\\&.starts with a dot\na \\e b\n"));
    }
}
