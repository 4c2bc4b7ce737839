//! `xvsd sysctl`: IPVS's sysctls as sysctl(8) shows and sets them
//! (`net.ipv4.vs.expire_nodest_conn = 1`), and the config's `[sysctl]` section.

use xvs_datapath::{
    Director,
    sysctl::{PREFIX, SYSCTLS, Sysctl},
};
use xvs_health::config::SysctlConfig;

/// `xvsd sysctl [-w] [NAME[=VALUE]]...`: no name lists every setting; `NAME` shows one,
/// `NAME=VALUE` sets it. `-p [FILE]` (as sysctl(8), `/etc/sysctl.conf` by default) sets
/// what a sysctl.conf file says of IPVS's settings (`net.ipv4.vs.*`), leaving its other
/// lines to sysctl(8). Every word is checked before anything is set.
pub fn run(words: &[&str]) -> Result<(), String> {
    let loaded = match words {
        ["-p"] => Some(settings_in("/etc/sysctl.conf")?),
        ["-p", file] => Some(settings_in(file)?),
        _ => None,
    };
    let words: Vec<&str> = match &loaded {
        Some(lines) => lines.iter().map(String::as_str).collect(),
        None => words.iter().copied().filter(|w| *w != "-w").collect(),
    };
    if loaded.as_ref().is_some_and(Vec::is_empty) {
        return Ok(());
    }
    let mut asked: Vec<(&'static Sysctl, Option<u64>)> = Vec::new();
    for word in &words {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value)),
            None => (*word, None),
        };
        let sysctl = Sysctl::named(name).map_err(|e| e.to_string())?;
        let value = value
            .map(|v| sysctl.parse(v))
            .transpose()
            .map_err(|e| e.to_string())?;
        asked.push((sysctl, value));
    }
    if asked.is_empty() {
        asked = SYSCTLS.iter().map(|s| (s, None)).collect();
    }
    let writes = asked.iter().any(|(_, value)| value.is_some());
    let mut director = if writes {
        Some(Director::find_or_create().map_err(|e| e.to_string())?)
    } else {
        Director::find().map_err(|e| e.to_string())?
    };
    for (sysctl, value) in asked {
        let shown = match (&mut director, value) {
            (Some(director), Some(value)) => {
                director
                    .set_sysctl(sysctl, value)
                    .map_err(|e| e.to_string())?;
                value
            }
            (Some(director), None) => director.sysctl(sysctl).map_err(|e| e.to_string())?,
            // No director yet: the value one will start with.
            (None, _) => sysctl.default_value(),
        };
        println!("{PREFIX}{} = {shown}", sysctl.name);
    }
    Ok(())
}

/// The `NAME=VALUE` words of a sysctl.conf file's IPVS settings (`net.ipv4.vs.NAME = VALUE`
/// or `net/ipv4/vs/NAME = VALUE`, in order; the leading `-` with which sysctl(8) ignores
/// a failure is dropped: here every line must be right).
fn settings_in(file: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let mut words = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim().trim_start_matches('-');
        if name.starts_with(PREFIX) || name.starts_with("net/ipv4/vs/") {
            words.push(format!("{name}={}", value.trim()));
        }
    }
    Ok(words)
}

/// Sets what the config's `[sysctl]` section names (at start and at each reload).
pub fn apply(config: &SysctlConfig) -> Result<(), String> {
    let settings = config.settings();
    if settings.is_empty() {
        return Ok(());
    }
    let mut director = Director::find_or_create().map_err(|e| e.to_string())?;
    for (name, value) in settings {
        let sysctl = Sysctl::named(name).map_err(|e| e.to_string())?;
        director
            .set_sysctl(sysctl, value)
            .map_err(|e| format!("cannot set {PREFIX}{name}: {e}"))?;
    }
    Ok(())
}
