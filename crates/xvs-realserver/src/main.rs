//! xvs-realserver — prepares a real server for an xvs (or IPVS) director: what the seed's
//! Experiment II asks the operator to do by hand on every real server, for direct routing
//! and for tunnel mode, IPv4 and IPv6. Idempotent; `--check` lists what is missing (exit 1
//! if anything is) and changes nothing; `--undo` takes back what it set.

mod settings;

use std::{
    collections::BTreeMap, net::IpAddr, os::unix::fs::MetadataExt, path::PathBuf, process::ExitCode,
};

use settings::{Method, Setting, prefix_of, required};
use xvs_datapath::{decap, netlink};

const USAGE: &str = "\
Usage:
  xvs-realserver [--check | --undo] dr VIP...          direct routing (-g)
  xvs-realserver [--check | --undo] tun IFACE [--gue-port N] VIP...
                                                IP tunnel (-i), packets arriving on IFACE:
                                                IPIP and GRE, and GUE on UDP port N

Prepares this host to serve VIP... for an xvs director: the VIPs on lo, ARP answered and
announced only for the host's own addresses (arp_ignore=1, arp_announce=2), and in tunnel
mode reverse-path filtering off and tunnel decapsulation on IFACE. Running it again
changes nothing.
  --check   list what is missing (exit 1 if anything is); change nothing
  --undo    remove the VIPs and the decapsulation, and put back the sysctl values it
            changed (kept in /run/xvs until then)";

/// Where the original sysctl values are kept (default /run/xvs).
const STATE_DIR_ENV: &str = "XVS_STATE_DIR";

enum Action {
    Apply,
    Check,
    Undo,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (action, method, vips) = match parse(&args) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("xvs-realserver: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let settings = required(&method, &vips);
    let result = match action {
        Action::Check => check(&settings),
        Action::Apply => apply(&settings).map(|()| true),
        Action::Undo => undo(&settings).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("xvs-realserver: {message}");
            ExitCode::from(2)
        }
    }
}

type Parsed = (Action, Method, Vec<IpAddr>);

/// The command line; `None` for `--help`.
fn parse(args: &[String]) -> Result<Option<Parsed>, String> {
    let mut words: Vec<&str> = args.iter().map(String::as_str).collect();
    if matches!(words.first(), Some(&("-h" | "--help"))) {
        return Ok(None);
    }
    let action = match words.first() {
        Some(&"--check") => Action::Check,
        Some(&"--undo") => Action::Undo,
        _ => Action::Apply,
    };
    if !matches!(action, Action::Apply) {
        words.remove(0);
    }
    let (method, vips) =
        match words.as_slice() {
            ["dr", vips @ ..] => (Method::Route, vips),
            ["tun", interface, rest @ ..] => {
                let (gue_port, vips) =
                    match rest {
                        ["--gue-port", port, vips @ ..] => (
                            Some(port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(
                                || format!("--gue-port {port}: not a port (1-65535)"),
                            )?),
                            vips,
                        ),
                        vips => (None, vips),
                    };
                (
                    Method::Tunnel {
                        interface: interface.to_string(),
                        gue_port,
                    },
                    vips,
                )
            }
            _ => return Err("say dr or tun IFACE, then the VIPs".into()),
        };
    if vips.is_empty() {
        return Err("no VIP given".into());
    }
    let vips = vips
        .iter()
        .map(|v| v.parse().map_err(|_| format!("{v}: not an IP address")))
        .collect::<Result<Vec<IpAddr>, String>>()?;
    Ok(Some((action, method, vips)))
}

fn sysctl_file(path: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(path)
}

fn read_sysctl(path: &str) -> Result<String, String> {
    std::fs::read_to_string(sysctl_file(path))
        .map(|v| v.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", sysctl_file(path).display()))
}

fn write_sysctl(path: &str, value: &str) -> Result<(), String> {
    std::fs::write(sysctl_file(path), value)
        .map_err(|e| format!("cannot write {}: {e}", sysctl_file(path).display()))
}

fn lo_index() -> Result<u32, String> {
    netlink::interfaces()
        .map_err(|e| format!("cannot list interfaces: {e}"))?
        .into_iter()
        .find(|i| i.name == "lo")
        .map(|lo| lo.index)
        .ok_or_else(|| "this network namespace has no lo".to_string())
}

fn vip_on_lo(vip: &IpAddr) -> Result<bool, String> {
    let index = lo_index()?;
    let addresses =
        netlink::addresses(index).map_err(|e| format!("cannot read lo's addresses: {e}"))?;
    Ok(addresses.iter().any(|(addr, _)| addr == vip))
}

/// What the setting is now, if it is not what it must be (`None`: in place).
fn missing(setting: &Setting) -> Result<Option<String>, String> {
    Ok(match setting {
        Setting::VipOnLo(vip) => (!vip_on_lo(vip)?).then(|| "absent".to_string()),
        Setting::Sysctl { path, value } => {
            let now = read_sysctl(path)?;
            (now != *value).then_some(now)
        }
        Setting::Decapsulation {
            interface,
            gue_port,
        } => {
            let on = decap::is_attached(interface).map_err(|e| e.to_string())?;
            let port = decap::gue_port(interface).map_err(|e| e.to_string())?;
            match (on, port) {
                (false, _) => Some("off".to_string()),
                (true, port) if port == *gue_port => None,
                (true, None) => Some("on, no GUE".to_string()),
                (true, Some(port)) => Some(format!("on, GUE on port {port}")),
            }
        }
    })
}

/// `--check`: true if nothing is missing.
fn check(settings: &[Setting]) -> Result<bool, String> {
    let mut ready = true;
    for setting in settings {
        if let Some(now) = missing(setting)? {
            println!("missing: {setting} (now {now})");
            ready = false;
        }
    }
    if ready {
        println!("prepared: {}", describe(settings));
    }
    Ok(ready)
}

fn describe(settings: &[Setting]) -> String {
    settings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn apply(settings: &[Setting]) -> Result<(), String> {
    let mut originals = Originals::load()?;
    let mut changed = false;
    for setting in settings {
        let Some(now) = missing(setting)? else {
            continue;
        };
        match setting {
            Setting::VipOnLo(vip) => netlink::add_address(lo_index()?, *vip, prefix_of(vip))
                .map_err(|e| format!("cannot add {setting}: {e}"))?,
            Setting::Sysctl { path, value } => {
                originals.remember(path, &read_sysctl(path)?)?;
                write_sysctl(path, value)?;
            }
            Setting::Decapsulation {
                interface,
                gue_port,
            } => decap::attach(interface, *gue_port).map_err(|e| e.to_string())?,
        }
        println!("set: {setting} (was {now})");
        changed = true;
    }
    if !changed {
        println!("already prepared: {}", describe(settings));
    }
    Ok(())
}

fn undo(settings: &[Setting]) -> Result<(), String> {
    let mut originals = Originals::load()?;
    for setting in settings.iter().rev() {
        match setting {
            Setting::VipOnLo(vip) => {
                if vip_on_lo(vip)? {
                    netlink::delete_address(lo_index()?, *vip, prefix_of(vip))
                        .map_err(|e| format!("cannot remove {setting}: {e}"))?;
                    println!("removed: {setting}");
                }
            }
            Setting::Sysctl { path, .. } => {
                if let Some(original) = originals.take(path)? {
                    write_sysctl(path, &original)?;
                    println!("restored: {} = {original}", path.replace('/', "."));
                }
            }
            Setting::Decapsulation { interface, .. } => {
                if decap::is_attached(interface).map_err(|e| e.to_string())? {
                    decap::detach(interface).map_err(|e| e.to_string())?;
                    println!("removed: {setting}");
                }
            }
        }
    }
    Ok(())
}

/// The sysctl values this command changed, as they were before, kept in /run (cleared at
/// boot, as the settings themselves are) per network namespace, so `--undo` can put them
/// back. A value already remembered is kept: running the command twice does not forget
/// the original.
struct Originals {
    file: PathBuf,
    values: BTreeMap<String, String>,
}

impl Originals {
    fn load() -> Result<Originals, String> {
        // Sysctls belong to the network namespace: its inode names the file.
        let namespace = std::fs::metadata("/proc/self/ns/net")
            .map_err(|e| format!("cannot identify the network namespace: {e}"))?
            .ino();
        let folder = std::env::var_os(STATE_DIR_ENV).unwrap_or_else(|| "/run/xvs".into());
        let file = PathBuf::from(folder).join(format!("realserver-net{namespace}.sysctl"));
        let values = match std::fs::read_to_string(&file) {
            Ok(text) => text
                .lines()
                .filter_map(|line| line.split_once(' '))
                .map(|(path, value)| (path.to_string(), value.to_string()))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        Ok(Originals { file, values })
    }

    fn remember(&mut self, path: &str, value: &str) -> Result<(), String> {
        if !self.values.contains_key(path) {
            self.values.insert(path.to_string(), value.to_string());
            self.save()?;
        }
        Ok(())
    }

    fn take(&mut self, path: &str) -> Result<Option<String>, String> {
        let value = self.values.remove(path);
        if value.is_some() {
            self.save()?;
        }
        Ok(value)
    }

    fn save(&self) -> Result<(), String> {
        if self.values.is_empty() {
            return match std::fs::remove_file(&self.file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot remove {}: {e}", self.file.display()))
                }
                _ => Ok(()),
            };
        }
        if let Some(folder) = self.file.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        }
        let text: String = self
            .values
            .iter()
            .map(|(path, value)| format!("{path} {value}\n"))
            .collect();
        std::fs::write(&self.file, text)
            .map_err(|e| format!("cannot write {}: {e}", self.file.display()))
    }
}
