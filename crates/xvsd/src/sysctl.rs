//! `xvsd sysctl`: IPVS's sysctls as sysctl(8) shows and sets them
//! (`net.ipv4.vs.expire_nodest_conn = 1`), and the config's `[sysctl]` section.

use xvs_datapath::{
    Director,
    sysctl::{PREFIX, SYSCTLS, Sysctl},
};
use xvs_health::config::SysctlConfig;

/// `xvsd sysctl [-w] [NAME[=VALUE]]...`: no name lists every setting; `NAME` shows one,
/// `NAME=VALUE` sets it. Every word is checked before anything is set.
pub fn run(words: &[&str]) -> Result<(), String> {
    let words: Vec<&str> = words.iter().copied().filter(|w| *w != "-w").collect();
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
