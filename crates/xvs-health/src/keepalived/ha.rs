//! keepalived's VRRP instance and LVS sync daemon as xvsd's `[vrrp]` and `[sync]`.
//!
//! Each `vrrp_instance` becomes a VRRP section of xvsd's; what it cannot carry is named.
//! keepalived's VRRP version defaults to 2, xvsd's to 3: an IPv4 instance without a
//! version is imported as version 2, so that the imported director and the keepalived
//! directors beside it speak alike (IPv6 is version 3 in both).

use super::{Item, quoted};

/// What `global_defs` says about VRRP and connection sync.
#[derive(Default)]
pub(super) struct Globals<'a> {
    vrrp_version: Option<&'a str>,
    sync: Option<&'a Item>,
    /// `script_user NAME [GROUP]`: who scripts run as unless they say (`NAME[:GROUP]`).
    pub(super) script_user: Option<String>,
}

pub(super) fn globals(item: &Item) -> Globals<'_> {
    let mut globals = Globals::default();
    for setting in item.block.iter().flatten() {
        match setting.keyword.as_str() {
            "vrrp_version" => globals.vrrp_version = setting.args.first().map(String::as_str),
            "lvs_sync_daemon" => globals.sync = Some(setting),
            "script_user" => globals.script_user = super::user_of(&setting.args),
            _ => {}
        }
    }
    globals
}

/// The VRRP sections of `instances`: `[vrrp]` for one, `[[vrrp]]` for each of several;
/// `groups` are keepalived's `vrrp_sync_group` blocks (`group { VI_1 VI_2 }`).
pub(super) fn vrrp(
    instances: &[&Item],
    groups: &[&Item],
    scripts: &[&Item],
    globals: &Globals,
    notes: &mut Vec<String>,
) -> String {
    let header = if instances.len() == 1 {
        "[vrrp]"
    } else {
        "[[vrrp]]"
    };
    let extras = group_extras(groups, instances, notes);
    instances
        .iter()
        .map(|instance| {
            let group = group_of(instance, groups);
            let extra = instance.args.first().and_then(|name| extras.get(name));
            one_instance(instance, header, group, extra, scripts, globals, notes)
        })
        .collect()
}

/// What a `vrrp_sync_group` block says besides its members, carried onto them.
#[derive(Default)]
struct GroupExtras {
    /// Settings lines (notify commands).
    lines: Vec<String>,
    /// Interfaces to track.
    track: Vec<String>,
}

/// Each group member's share of its `vrrp_sync_group`'s own settings, by instance name:
/// the group's notify commands go to its first member (the group moves as one, so the
/// first member's changes are the group's), unless that member has its own of the kind;
/// its `track_interface` goes to every member (a fault of one takes the group out
/// anyway). Anything else of the group's is named as not translated.
fn group_extras(
    groups: &[&Item],
    instances: &[&Item],
    notes: &mut Vec<String>,
) -> std::collections::HashMap<String, GroupExtras> {
    let mut extras: std::collections::HashMap<String, GroupExtras> = Default::default();
    for group in groups {
        let name = group.args.first().map(String::as_str).unwrap_or("");
        let members: Vec<String> = group
            .block
            .iter()
            .flatten()
            .filter(|item| item.keyword == "group")
            .flat_map(|item| item.block.iter().flatten().map(|m| m.keyword.clone()))
            .collect();
        for setting in group.block.iter().flatten() {
            let command = setting.args.first();
            match (setting.keyword.as_str(), command) {
                ("group", _) => {}
                (
                    keyword @ ("notify_master" | "notify_backup" | "notify_fault" | "notify_stop"
                    | "notify"),
                    Some(command),
                ) => {
                    let Some(first) = members.first() else {
                        continue;
                    };
                    let has_own = instances.iter().any(|instance| {
                        instance.args.first() == Some(first)
                            && instance
                                .block
                                .iter()
                                .flatten()
                                .any(|item| item.keyword == keyword)
                    });
                    if has_own {
                        notes.push(format!(
                            "line {}: vrrp_sync_group {name} {keyword}: not translated: its \
                             first instance, {first}, has its own (xvsd runs one per instance)",
                            setting.line
                        ));
                    } else {
                        notes.push(format!(
                            "line {}: vrrp_sync_group {name} {keyword}: run by its first \
                             instance, {first} (the group changes state as one)",
                            setting.line
                        ));
                        extras
                            .entry(first.clone())
                            .or_default()
                            .lines
                            .push(format!("{keyword} = {}", quoted(command)));
                    }
                }
                ("track_interface", _) => {
                    let names: Vec<String> = setting
                        .block
                        .iter()
                        .flatten()
                        .map(|i| i.keyword.clone())
                        .collect();
                    for member in &members {
                        extras
                            .entry(member.clone())
                            .or_default()
                            .track
                            .extend(names.iter().cloned());
                    }
                }
                (other, _) => notes.push(format!(
                    "line {}: vrrp_sync_group {name} {other}: not translated",
                    setting.line
                )),
            }
        }
    }
    extras
}

/// The name of the `vrrp_sync_group` whose `group` block names `instance`.
fn group_of<'a>(instance: &Item, groups: &[&'a Item]) -> Option<&'a str> {
    let name = instance.args.first()?;
    groups.iter().find_map(|group| {
        let members = group
            .block
            .iter()
            .flatten()
            .find(|item| item.keyword == "group")?;
        members
            .block
            .iter()
            .flatten()
            .any(|member| &member.keyword == name)
            .then(|| group.args.first().map(String::as_str))?
    })
}

fn one_instance(
    instance: &Item,
    header: &str,
    group: Option<&str>,
    extra: Option<&GroupExtras>,
    scripts: &[&Item],
    globals: &Globals,
    notes: &mut Vec<String>,
) -> String {
    let mut lines = Vec::new();
    let mut tracked = Vec::new();
    let mut track_interfaces: Vec<String> = Vec::new();
    if let Some(name) = instance.args.first() {
        lines.push(format!("name = {}", quoted(name)));
    }
    if let Some(group) = group {
        lines.push(format!("group = {}", quoted(group)));
    }
    let mut version = globals.vrrp_version;
    let mut addresses = Vec::new();
    for setting in instance.block.iter().flatten() {
        let first = setting.args.first().map(String::as_str);
        match (setting.keyword.as_str(), first) {
            ("interface", Some(name)) => lines.push(format!("interface = {}", quoted(name))),
            ("virtual_router_id", Some(id)) => lines.push(format!("vrid = {id}")),
            ("priority", Some(p)) => lines.push(format!("priority = {p}")),
            ("advert_int", Some(s)) => lines.push(format!("interval = {}", number(s))),
            ("preempt_delay", Some(s)) => lines.push(format!("preempt_delay = {}", number(s))),
            ("nopreempt", _) => lines.push("preempt = false".to_string()),
            ("version", Some(v)) => version = Some(v),
            (
                keyword @ ("notify_master" | "notify_backup" | "notify_fault" | "notify_stop"
                | "notify"),
                Some(c),
            ) => lines.push(format!("{keyword} = {}", quoted(c))),
            ("virtual_ipaddress", _) => {
                addresses.extend(virtual_addresses(setting, notes));
            }
            ("unicast_peer", _) => {
                let peers: Vec<String> = setting
                    .block
                    .iter()
                    .flatten()
                    .map(|i| quoted(&i.keyword))
                    .collect();
                lines.push(format!("unicast_peers = [{}]", peers.join(", ")));
            }
            // xvsd sends from the interface's own address.
            ("unicast_src_ip", _) => {}
            ("track_interface", _) => {
                let names = setting
                    .block
                    .iter()
                    .flatten()
                    .map(|i| {
                        if !i.args.is_empty() {
                            notes.push(format!(
                                "line {}: track_interface {} {}: not translated: xvsd takes the director out of the election while {} is down",
                                i.line,
                                i.keyword,
                                i.args.join(" "),
                                i.keyword
                            ));
                        }
                        i.keyword.clone()
                    });
                track_interfaces.extend(names);
            }
            ("track_script", _) => {
                for entry in setting.block.iter().flatten() {
                    match track_script(entry, scripts, globals, notes) {
                        Ok(table) => tracked.push(table),
                        Err(why) => notes.push(format!(
                            "line {}: track_script {}: {why} (left out)",
                            entry.line, entry.keyword
                        )),
                    }
                }
            }
            // The initial state: in xvsd (as in keepalived, after the first election) the
            // priority decides.
            ("state", _) => {}
            (other, _) => notes.push(format!(
                "line {}: vrrp_instance {other}: not translated",
                setting.line
            )),
        }
    }
    if addresses.is_empty() {
        notes.push(format!(
            "line {}: vrrp_instance: no virtual_ipaddress (xvsd's [vrrp] needs one; left out)",
            instance.line
        ));
        return String::new();
    }
    if let Some(extra) = extra {
        lines.extend(extra.lines.iter().cloned());
        for name in &extra.track {
            if !track_interfaces.contains(name) {
                track_interfaces.push(name.clone());
            }
        }
    }
    if !track_interfaces.is_empty() {
        let names: Vec<String> = track_interfaces.iter().map(|n| quoted(n)).collect();
        lines.push(format!("track_interfaces = [{}]", names.join(", ")));
    }
    lines.push(format!("addresses = [{}]", addresses.join(", ")));
    // keepalived speaks VRRPv3 for IPv6 whatever its default.
    let v6 = addresses.first().is_some_and(|a| a.contains(':'));
    lines.push(match (version, v6) {
        (_, true) => "version = 3".to_string(),
        (Some(v), false) => format!("version = {v}"),
        (None, false) => "version = 2  # keepalived's default".to_string(),
    });
    format!(
        "\n# keepalived's vrrp_instance {} (line {})\n{header}\n{}\n{}",
        instance.args.join(" "),
        instance.line,
        lines.join("\n"),
        tracked.concat()
    )
}

/// A `track_script` entry (`NAME [weight N]`) as a `[[vrrp.track_script]]` table, from the
/// `vrrp_script NAME { script ...; interval; timeout; fall; rise; weight }` it names.
fn track_script(
    entry: &Item,
    scripts: &[&Item],
    globals: &Globals,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let script = scripts
        .iter()
        .find(|s| s.args.first() == Some(&entry.keyword))
        .ok_or("no vrrp_script of that name")?;
    let mut lines = Vec::new();
    let mut weight = None;
    let mut user = None;
    for setting in script.block.iter().flatten() {
        let arg = setting.args.first().cloned().unwrap_or_default();
        let seconds = arg.parse::<f64>().is_ok();
        match setting.keyword.as_str() {
            "script" => lines.push(format!("command = {}", quoted(&setting.args.join(" ")))),
            "interval" | "timeout" if seconds => {
                lines.push(format!("{} = {}", setting.keyword, number(&arg)))
            }
            "fall" | "rise" if arg.parse::<u32>().is_ok() => {
                lines.push(format!("{} = {arg}", setting.keyword))
            }
            "weight" if arg.parse::<i32>().is_ok() && setting.args.len() == 1 => weight = Some(arg),
            "user" => match super::user_of(&setting.args) {
                Some(name) => user = Some(name),
                None => notes.push(format!("line {}: user: no user named", setting.line)),
            },
            other => notes.push(format!(
                "line {}: vrrp_script {} {other}: not translated",
                setting.line, entry.keyword
            )),
        }
    }
    if !lines.iter().any(|l| l.starts_with("command = ")) {
        return Err("its vrrp_script has no script".to_string());
    }
    // root is xvsd's own: said only when it is not.
    if let Some(user) = user
        .or_else(|| globals.script_user.clone())
        .filter(|u| u != "root")
    {
        lines.push(format!("user = {}", quoted(&user)));
    }
    // The instance's own weight for it comes first.
    match entry.args.as_slice() {
        [] => {}
        [word, value] if word == "weight" && value.parse::<i32>().is_ok() => {
            weight = Some(value.clone())
        }
        other => notes.push(format!(
            "line {}: track_script {} {}: not translated",
            entry.line,
            entry.keyword,
            other.join(" ")
        )),
    }
    if let Some(weight) = weight {
        lines.push(format!("weight = {weight}"));
    }
    Ok(format!("[[vrrp.track_script]]\n{}\n", lines.join("\n")))
}

/// `virtual_ipaddress { ADDRESS[/PREFIX] [dev IFACE] ... }`: the addresses of the first
/// one's family (an instance is IPv4 or IPv6), quoted.
fn virtual_addresses(setting: &Item, notes: &mut Vec<String>) -> Vec<String> {
    let mut addresses = Vec::new();
    let mut family = None;
    for entry in setting.block.iter().flatten() {
        let (ip, _) = entry
            .keyword
            .split_once('/')
            .unwrap_or((&entry.keyword, ""));
        let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
            notes.push(format!(
                "line {}: virtual_ipaddress {}: not an address (left out)",
                entry.line, entry.keyword
            ));
            continue;
        };
        if *family.get_or_insert(ip.is_ipv4()) != ip.is_ipv4() {
            notes.push(format!(
                "line {}: virtual_ipaddress {}: an instance's addresses are of one family (left out)",
                entry.line, entry.keyword
            ));
            continue;
        }
        if !entry.args.is_empty() {
            notes.push(format!(
                "line {}: virtual_ipaddress {} {}: only the address is taken (on the instance's interface)",
                entry.line,
                entry.keyword,
                entry.args.join(" ")
            ));
        }
        addresses.push(quoted(&entry.keyword));
    }
    addresses
}

/// `lvs_sync_daemon IFACE [INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group ADDR]` as
/// `[sync]` (its syncid defaults to the VRRP instance's vrid in both).
pub(super) fn sync(globals: &Globals, notes: &mut Vec<String>) -> String {
    let Some(daemon) = globals.sync else {
        return String::new();
    };
    let mut args = daemon.args.iter().map(String::as_str);
    let Some(interface) = args.next() else {
        notes.push(format!(
            "line {}: lvs_sync_daemon without an interface (left out)",
            daemon.line
        ));
        return String::new();
    };
    let mut lines = vec![format!("interface = {}", quoted(interface))];
    while let Some(word) = args.next() {
        let key = match word {
            "id" => "syncid",
            "maxlen" => "maxlen",
            "port" => "port",
            "ttl" => "ttl",
            "group" => "group",
            // The VRRP instance it follows: xvsd's sync follows its one instance.
            _ => continue,
        };
        let Some(value) = args.next() else {
            notes.push(format!(
                "line {}: lvs_sync_daemon {word} without a value",
                daemon.line
            ));
            continue;
        };
        lines.push(if key == "group" {
            format!("{key} = {}", quoted(value))
        } else {
            format!("{key} = {value}")
        });
    }
    format!(
        "\n# keepalived's lvs_sync_daemon (line {})\n[sync]\n{}\n",
        daemon.line,
        lines.join("\n")
    )
}

/// A number as TOML reads it ("1" stays an integer where a float is wanted: 1.0).
fn number(text: &str) -> String {
    if text.contains('.') {
        text.to_string()
    } else {
        format!("{text}.0")
    }
}
