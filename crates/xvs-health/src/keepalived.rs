//! `xvsd import-keepalived`: keepalived's `virtual_server` blocks turned into xvsd's
//! config (shared/reference/keepalived-lvs.md has the keywords). What has no counterpart
//! is named, with its line, instead of being dropped in silence. Pure: text in, text and
//! notes out; the result parses as a [`crate::config::Config`].

use std::{collections::HashMap, fmt::Write, net::IpAddr};

/// One word of the file, with its line.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

/// Words, braces and quoted strings; `#` and `!` start comments.
mod ha;

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c == '#' || c == '!' {
                break;
            } else if c == '{' || c == '}' {
                chars.next();
                out.push(Token {
                    text: c.to_string(),
                    line: i + 1,
                });
            } else if c == '"' {
                chars.next();
                let word: String = chars.by_ref().take_while(|&c| c != '"').collect();
                out.push(Token {
                    text: word,
                    line: i + 1,
                });
            } else {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '{' || c == '}' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token {
                    text: word,
                    line: i + 1,
                });
            }
        }
    }
    out
}

/// A keyword with its arguments and, if it opens one, its block.
#[derive(Debug, Clone, PartialEq)]
struct Item {
    line: usize,
    keyword: String,
    args: Vec<String>,
    block: Option<Vec<Item>>,
}

/// Items until the end or a closing brace. An item's arguments run to the end of its line
/// or to a brace.
fn items(tokens: &[Token], at: &mut usize) -> Vec<Item> {
    let mut out = Vec::new();
    while *at < tokens.len() {
        let token = &tokens[*at];
        if token.text == "}" {
            *at += 1;
            return out;
        }
        *at += 1;
        let mut item = Item {
            line: token.line,
            keyword: token.text.clone(),
            args: Vec::new(),
            block: None,
        };
        while *at < tokens.len() {
            let next = &tokens[*at];
            if next.text == "{" {
                *at += 1;
                item.block = Some(items(tokens, at));
                break;
            }
            if next.text == "}" || next.line != token.line {
                break;
            }
            item.args.push(next.text.clone());
            *at += 1;
        }
        out.push(item);
    }
    out
}

/// What the import made: the config's text, and what it could not translate.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub config: String,
    pub notes: Vec<String>,
}

/// Translates keepalived's configuration `text` (from `source`, named in the header).
pub fn import(text: &str, source: &str) -> Import {
    let tokens = tokens(text);
    let mut at = 0;
    let top = items(&tokens, &mut at);
    let mut out = format!(
        "# Imported from {source} by `xvsd import-keepalived`; check it with\n# `xvsd check-config`.\n\n# As keepalived, xvsd removes its services when it stops (\"keep\" leaves them\n# forwarding, as keepalived's --dont-release-ipvs).\non_stop = \"remove\"\n"
    );
    let mut notes = Vec::new();
    // The director's own sections first, then the services.
    let globals = top
        .iter()
        .find(|item| item.keyword == "global_defs")
        .map(ha::globals)
        .unwrap_or_default();
    let instances: Vec<&Item> = top
        .iter()
        .filter(|item| item.keyword == "vrrp_instance")
        .collect();
    if let Some(item) = top.iter().find(|item| item.keyword == "global_defs") {
        out.push_str(&timeouts(item, &mut notes));
        global_notes(item, &mut notes);
    }
    out.push_str(&ha::sync(&globals, &mut notes));
    let groups: Vec<&Item> = top
        .iter()
        .filter(|item| item.keyword == "vrrp_sync_group")
        .collect();
    let scripts: Vec<&Item> = top
        .iter()
        .filter(|item| item.keyword == "vrrp_script")
        .collect();
    out.push_str(&ha::vrrp(
        &instances, &groups, &scripts, &globals, &mut notes,
    ));
    let laddr_groups = local_address_groups(&top, &mut notes);
    let track_files = track_files(&top, &mut notes);
    let service_groups = virtual_server_groups(&top, &mut notes);
    let log_all_failures = top
        .iter()
        .filter(|item| item.keyword == "global_defs")
        .flat_map(|item| item.block.iter().flatten())
        .filter(|entry| entry.keyword == "checker_log_all_failures")
        .fold(false, |_, entry| switch(&entry.args).unwrap_or(false));
    let context = Context {
        log_all_failures,
        script_user: globals.script_user.clone(),
        laddr_groups: &laddr_groups,
        track_files: &track_files,
        service_groups: &service_groups,
    };
    for item in &top {
        match item.keyword.as_str() {
            "virtual_server" => virtual_server(item, &context, &mut out, &mut notes),
            "global_defs"
            | "vrrp_instance"
            | "vrrp_sync_group"
            | "virtual_server_group"
            | "local_address_group"
            | "track_file"
            | "vrrp_script" => {}
            "static_ipaddress" | "static_routes" => notes.push(format!(
                "line {}: {}: not xvsd's (left out)",
                item.line, item.keyword
            )),
            other => notes.push(format!("line {}: {other}: not translated", item.line)),
        }
    }
    Import { config: out, notes }
}

/// `global_defs`' `lvs_timeouts [tcp S] [tcpfin S] [udp S]` (ipvsadm's `--set`) as
/// `[timeouts]`.
fn timeouts(global_defs: &Item, notes: &mut Vec<String>) -> String {
    let Some(entry) = global_defs
        .block
        .iter()
        .flatten()
        .find(|e| e.keyword == "lvs_timeouts")
    else {
        return String::new();
    };
    let mut out = String::from("\n[timeouts]\n");
    for pair in entry.args.chunks(2) {
        match pair {
            [name, seconds]
                if matches!(name.as_str(), "tcp" | "tcpfin" | "udp")
                    && seconds.parse::<u32>().is_ok() =>
            {
                let _ = writeln!(out, "{name} = {seconds}");
            }
            other => notes.push(format!(
                "line {}: lvs_timeouts {}: not translated",
                entry.line,
                other.join(" ")
            )),
        }
    }
    out
}

/// `global_defs`' LVS keywords that xvsd has no counterpart for, named (the others there
/// are mail, SNMP, scripts' users and the like: nothing a director does).
fn global_notes(global_defs: &Item, notes: &mut Vec<String>) {
    for entry in global_defs.block.iter().flatten() {
        let why = match entry.keyword.as_str() {
            "lvs_flush" => "xvsd leaves services its config does not name as they are",
            "lvs_flush_on_stop" => {
                "a stopped xvsd removes its own services (on_stop = \"remove\"), not the others"
            }
            "lvs_notify_fifo" | "lvs_notify_fifo_script" | "notify_fifo" | "notify_fifo_script" => {
                "xvsd runs notify commands (quorum_up/down, notify_up/down), not FIFOs"
            }
            "net_namespace" | "net_namespace_ipvs" => {
                "run xvsd in the namespace instead (ip netns exec)"
            }
            _ => continue,
        };
        notes.push(format!(
            "line {}: {}: not translated ({why})",
            entry.line, entry.keyword
        ));
    }
}

/// keepalived's optional yes/no after a keyword (`alpha`, `alpha off`): bare is true;
/// none for a word it does not take.
fn switch(args: &[String]) -> Option<bool> {
    match args {
        [] => Some(true),
        [word] => match word.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" => Some(true),
            "false" | "off" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `IP PORT` as a socket address (`[v6]:port`).
fn address(args: &[String]) -> Option<String> {
    let ip: IpAddr = args.first()?.parse().ok()?;
    let port: u16 = args.get(1).map_or(Some(0), |p| p.parse().ok())?;
    Some(std::net::SocketAddr::new(ip, port).to_string())
}

fn method(word: &str) -> Option<&'static str> {
    match word.to_ascii_uppercase().as_str() {
        "NAT" => Some("nat"),
        "DR" => Some("dr"),
        "TUN" => Some("tunnel"),
        // DPVS's keepalived.
        "FNAT" | "FULLNAT" => Some("fullnat"),
        _ => None,
    }
}

/// `lvs_method TUN`'s words after `TUN` (`type ipip|gue|gre`, `port N`,
/// `nocsum|csum|remcsum`) as TOML lines; the first word it does not know otherwise.
fn tunnel_lines(words: &[String]) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    let mut words = words.iter().map(|w| w.to_ascii_lowercase());
    while let Some(word) = words.next() {
        let line = match word.as_str() {
            "type" => match words.next() {
                Some(kind) if ["ipip", "gue", "gre"].contains(&kind.as_str()) => {
                    format!("tunnel_type = \"{kind}\"")
                }
                other => return Err(format!("type {}", other.unwrap_or_default())),
            },
            "port" => match words.next() {
                Some(port) if port.parse::<u16>().is_ok_and(|p| p != 0) => {
                    format!("tunnel_port = {port}")
                }
                other => return Err(format!("port {}", other.unwrap_or_default())),
            },
            "nocsum" => "tunnel_checksum = \"none\"".to_string(),
            "csum" | "remcsum" => format!("tunnel_checksum = \"{word}\""),
            _ => return Err(word),
        };
        lines.push(line);
    }
    Ok(lines)
}

/// `lvs_method`'s TOML lines (`method`, and a tunnel's settings), or why not.
fn method_lines(args: &[String]) -> Result<Vec<String>, String> {
    let first = args.first().cloned().unwrap_or_default();
    let method = method(&first).ok_or(first)?;
    let mut lines = vec![format!("method = \"{method}\"")];
    let rest = &args[1..];
    if method == "tunnel" {
        lines.extend(tunnel_lines(rest)?);
    } else if let Some(word) = rest.first() {
        return Err(word.clone());
    }
    Ok(lines)
}

/// The parts of one check as TOML lines (without the table header).
#[derive(Default)]
struct Check {
    lines: Vec<String>,
}

impl Check {
    /// Sets `key` (again: the last setting wins, as a checker's own timing over its real
    /// server's and service's).
    fn set(&mut self, key: &str, value: String) {
        let prefix = format!("{key} = ");
        self.lines.retain(|line| !line.starts_with(&prefix));
        self.lines.push(format!("{prefix}{value}"));
    }
}

/// What a `virtual_server` gives all its checks, and a `real_server` its own (overriding
/// its service's): keepalived's `delay_loop`, `connect_timeout`, `retry`,
/// `delay_before_retry`, `warmup` and `virtualhost`; and the track files FILE_CHECKs name.
#[derive(Clone)]
struct Defaults<'a> {
    interval: Option<String>,
    timeout: Option<String>,
    retries: Option<String>,
    delay_before_retry: Option<String>,
    warmup: Option<String>,
    host: Option<String>,
    /// Every failure logged (the global `checker_log_all_failures`, else a checker's own).
    log_all_failures: bool,
    /// The user a command runs as (the global `script_user`, else a MISC_CHECK's own).
    user: Option<String>,
    track_files: &'a HashMap<String, TrackFile>,
}

impl Defaults<'_> {
    /// Takes `entry` if it is one of the checks' settings.
    fn take(&mut self, entry: &Item) -> bool {
        let arg = entry.args.first().cloned().unwrap_or_default();
        let number = arg.parse::<f64>().is_ok_and(|n| n >= 0.0);
        let setting = match entry.keyword.as_str() {
            "delay_loop" if number => &mut self.interval,
            "connect_timeout" if number => &mut self.timeout,
            "retry" | "nb_get_retry" if arg.parse::<u32>().is_ok() => &mut self.retries,
            "delay_before_retry" if number => &mut self.delay_before_retry,
            "warmup" if number => &mut self.warmup,
            "virtualhost" => &mut self.host,
            _ => return false,
        };
        *setting = Some(arg);
        true
    }
}

/// keepalived's global `track_file NAME { file PATH; weight W [reverse] }`.
#[derive(Default)]
struct TrackFile {
    file: Option<String>,
    weight: Option<(i64, bool)>,
    /// `init_file`: the value written, and whether over a file that is there.
    init: Option<(i64, bool)>,
}

/// `weight W [reverse|noreverse]`: the weight and whether it is reversed.
fn file_weight(args: &[String]) -> Option<(i64, bool)> {
    let weight = args.first()?.parse().ok()?;
    match args.get(1).map(String::as_str) {
        None | Some("noreverse") if args.len() <= 2 => Some((weight, false)),
        Some("reverse") if args.len() == 2 => Some((weight, true)),
        _ => None,
    }
}

/// The `track_file` blocks, by name.
fn track_files(top: &[Item], notes: &mut Vec<String>) -> HashMap<String, TrackFile> {
    let mut files = HashMap::new();
    for item in top.iter().filter(|i| i.keyword == "track_file") {
        let Some(name) = item.args.first() else {
            notes.push(format!("line {}: track_file without a name", item.line));
            continue;
        };
        let mut track = TrackFile::default();
        for entry in item.block.iter().flatten() {
            let arg = entry.args.first().cloned().unwrap_or_default();
            match entry.keyword.as_str() {
                "file" => track.file = Some(arg),
                "weight" if file_weight(&entry.args).is_some() => {
                    track.weight = file_weight(&entry.args)
                }
                // `init_file [V] [overwrite]`: V (default 0) written where the file is
                // missing, or always.
                "init_file" if init_file(&entry.args).is_some() => {
                    track.init = init_file(&entry.args)
                }
                other => notes.push(format!(
                    "line {}: track_file {name}: {other}: not translated",
                    entry.line
                )),
            }
        }
        files.insert(name.clone(), track);
    }
    files
}

/// `init_file [V] [overwrite]`'s value (default 0) and whether it overwrites.
fn init_file(args: &[String]) -> Option<(i64, bool)> {
    match args {
        [] => Some((0, false)),
        [word] if word == "overwrite" => Some((0, true)),
        [value] => Some((value.parse().ok()?, false)),
        [value, word] if word == "overwrite" => Some((value.parse().ok()?, true)),
        _ => None,
    }
}

/// keepalived's FILE_CHECK as xvsd's file check, of its weight (its own if not 0, else its
/// track file's; keepalived's default 1): with 0 a non-zero value in the file fails the
/// real server, with another the value times it moves the server's weight.
fn file_check(item: &Item, defaults: &Defaults, notes: &mut Vec<String>) -> Option<Check> {
    let (mut name, mut weight) = (None, None);
    for entry in item.block.iter().flatten() {
        let arg = entry.args.first().cloned().unwrap_or_default();
        match entry.keyword.as_str() {
            "track_file" => name = Some(arg),
            "weight" if file_weight(&entry.args).is_some() => weight = file_weight(&entry.args),
            other => notes.push(format!(
                "line {}: FILE_CHECK {other} {}: not translated",
                entry.line,
                entry.args.join(" ")
            )),
        }
    }
    let refuse = |why: String| format!("line {}: FILE_CHECK: {why}: not translated", item.line);
    let Some(name) = name else {
        notes.push(refuse("no track_file".into()));
        return None;
    };
    let Some(track) = defaults.track_files.get(&name) else {
        notes.push(refuse(format!("no track_file {name}")));
        return None;
    };
    let (weight, reverse) = weight
        .filter(|&(w, _)| w != 0)
        .or(track.weight)
        .unwrap_or((1, false));
    let Some(file) = track.file.as_ref() else {
        notes.push(refuse(format!("track_file {name} has no file")));
        return None;
    };
    if weight.unsigned_abs() > 65_535 {
        notes.push(refuse(format!("weight {weight} out of -65535..65535")));
        return None;
    }
    let mut check = Check::default();
    check.set("type", quoted("file"));
    check.set("file", quoted(file));
    if weight != 0 {
        check.set("weight", weight.to_string());
    }
    if reverse && weight != 0 {
        check.set("reverse", "true".to_string());
    }
    if let Some((value, overwrite)) = track.init {
        check.set("init_file", value.to_string());
        if overwrite {
            check.set("init_overwrite", "true".to_string());
        }
    }
    Some(check)
}

/// DPVS's keepalived: `local_address_group NAME { ADDRESS [IFACE] ... }`, the FULLNAT local
/// addresses a `virtual_server` names with `laddr_group_name` (a range `A.B.C.D-E` is
/// IPv4's last byte running from D to E).
fn local_address_groups(top: &[Item], notes: &mut Vec<String>) -> HashMap<String, Vec<IpAddr>> {
    named_groups(
        top,
        "local_address_group",
        notes,
        |name, entry, addresses, notes| match addresses_of(&entry.keyword) {
            Some(more) => addresses.extend(more),
            None => notes.push(format!(
                "line {}: local_address_group {name}: {}: not an address or range",
                entry.line, entry.keyword
            )),
        },
    )
}

/// The top-level blocks `keyword NAME { ... }` by name, each entry of a block read by
/// `read` (the group's name, the entry, what the group has so far, the notes); a block
/// without a name is named in the notes.
fn named_groups<T>(
    top: &[Item],
    keyword: &str,
    notes: &mut Vec<String>,
    mut read: impl FnMut(&str, &Item, &mut Vec<T>, &mut Vec<String>),
) -> HashMap<String, Vec<T>> {
    let mut groups = HashMap::new();
    for item in top.iter().filter(|i| i.keyword == keyword) {
        let Some(name) = item.args.first() else {
            notes.push(format!("line {}: {keyword} without a name", item.line));
            continue;
        };
        let mut members = Vec::new();
        for entry in item.block.iter().flatten() {
            read(name, entry, &mut members, notes);
        }
        groups.insert(name.clone(), members);
    }
    groups
}

/// An address, or a range: IPv4's last byte `A.B.C.D-E`, IPv6's last 16 bits in hex
/// `P::X-Y`, each from the first to the last, both included (keepalived's ranges).
fn addresses_of(word: &str) -> Option<Vec<IpAddr>> {
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Some(vec![ip]);
    }
    let (first, last) = word.split_once('-')?;
    match first.parse::<IpAddr>().ok()? {
        IpAddr::V4(first) => {
            let last: u8 = last.parse().ok()?;
            let [a, b, c, d] = first.octets();
            (d <= last).then(|| {
                (d..=last)
                    .map(|x| IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, x)))
                    .collect()
            })
        }
        IpAddr::V6(first) => {
            let last = u16::from_str_radix(last, 16).ok()?;
            let mut groups = first.segments();
            let from = groups[7];
            (from <= last).then(|| {
                (from..=last)
                    .map(|x| {
                        groups[7] = x;
                        IpAddr::V6(std::net::Ipv6Addr::from(groups))
                    })
                    .collect()
            })
        }
    }
}

/// What the translation of a `virtual_server` looks up in the rest of the file.
struct Context<'a> {
    /// `global_defs`' `checker_log_all_failures`: every check's default.
    log_all_failures: bool,
    /// `global_defs`' `script_user`: the user MISC_CHECKs run as unless they name one.
    script_user: Option<String>,
    laddr_groups: &'a HashMap<String, Vec<IpAddr>>,
    track_files: &'a HashMap<String, TrackFile>,
    service_groups: &'a HashMap<String, Vec<Member>>,
}

/// One service a `virtual_server` block stands for: its xvsd head (`address = ...` or
/// `fwmark = N`) and whether it is a fwmark service.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    head: String,
    marked: bool,
}

/// `virtual_server_group NAME { IP PORT ... RANGE PORT ... fwmark N ... }`: the services
/// a `virtual_server group NAME` block stands for, by name.
fn virtual_server_groups(top: &[Item], notes: &mut Vec<String>) -> HashMap<String, Vec<Member>> {
    named_groups(
        top,
        "virtual_server_group",
        notes,
        |name, entry, members, notes| {
            let first = entry.args.first();
            let port = first.and_then(|p| p.parse::<u16>().ok());
            let mark = first.and_then(|m| m.parse::<u32>().ok());
            match (
                entry.keyword.as_str(),
                addresses_of(&entry.keyword),
                port,
                mark,
            ) {
                ("fwmark", _, _, Some(mark)) if mark != 0 => members.push(Member {
                    head: format!("fwmark = {mark}"),
                    marked: true,
                }),
                (_, Some(addresses), Some(port), _) => {
                    members.extend(addresses.into_iter().map(|ip| Member {
                        head: format!(
                            "address = {}",
                            quoted(&std::net::SocketAddr::new(ip, port).to_string())
                        ),
                        marked: false,
                    }))
                }
                _ => notes.push(format!(
                    "line {}: virtual_server_group {name}: {} {}: not an address (or range) \
                 and port, or a fwmark",
                    entry.line,
                    entry.keyword,
                    entry.args.join(" ")
                )),
            }
        },
    )
}

fn virtual_server(item: &Item, context: &Context, out: &mut String, notes: &mut Vec<String>) {
    let mark = match item.args.as_slice() {
        [fwmark, mark] if fwmark == "fwmark" => mark.parse::<u32>().ok().filter(|&m| m != 0),
        _ => None,
    };
    let members = match (mark, address(&item.args), item.args.as_slice()) {
        (Some(mark), _, _) => vec![Member {
            head: format!("fwmark = {mark}"),
            marked: true,
        }],
        (None, Some(vip), _) => vec![Member {
            head: format!("address = {}", quoted(&vip)),
            marked: false,
        }],
        (None, None, [group, name]) if group == "group" => match context.service_groups.get(name) {
            Some(members) => {
                let _ = writeln!(
                    out,
                    "\n# virtual_server group {name} (line {}): a service for each of the \
                         group's {} members; xvsd checks each real server once for them all, \
                         as keepalived checks it once for the group.",
                    item.line,
                    members.len()
                );
                members.clone()
            }
            None => {
                notes.push(format!(
                    "line {}: virtual_server group {name}: no such virtual_server_group",
                    item.line
                ));
                return;
            }
        },
        (None, None, _) => {
            notes.push(format!(
                "line {}: virtual_server {}: not an IP PORT, fwmark or group service",
                item.line,
                item.args.join(" ")
            ));
            return;
        }
    };
    // The block reads the same for every member of a kind; its notes are told once.
    let mut bodies: [Option<String>; 2] = [None, None];
    for member in members {
        let body = bodies[member.marked as usize].get_or_insert_with(|| {
            let mut body = String::new();
            let mut more = Vec::new();
            service_body(item, member.marked, context, &mut body, &mut more);
            notes.extend(
                more.into_iter()
                    .filter(|n| !notes.contains(n))
                    .collect::<Vec<_>>(),
            );
            body
        });
        let _ = write!(out, "\n[[service]]\n{}\n{body}", member.head);
    }
}

/// A `virtual_server` block's settings and real servers, as the lines of an xvsd service
/// after its head (`marked`: a fwmark service).
fn service_body(
    item: &Item,
    marked: bool,
    context: &Context,
    out: &mut String,
    notes: &mut Vec<String>,
) {
    let mut service: Vec<String> = Vec::new();
    let (laddr_groups, track_files) = (context.laddr_groups, context.track_files);
    let mut defaults = Defaults {
        interval: None,
        timeout: None,
        retries: None,
        delay_before_retry: None,
        warmup: None,
        host: None,
        log_all_failures: context.log_all_failures,
        user: context.script_user.clone(),
        track_files,
    };
    let block = item.block.clone().unwrap_or_default();
    let mut servers = Vec::new();
    let mut flags = Vec::new();
    for entry in &block {
        let arg = entry.args.first().cloned().unwrap_or_default();
        let number = || arg.parse::<f64>().is_ok();
        if defaults.take(entry) {
            continue;
        }
        match entry.keyword.as_str() {
            // A fwmark service has no protocol in IPVS: its mark picks the packets.
            "protocol" if marked => {}
            "ip_family" if marked && arg == "inet6" => service.push("family = \"inet6\"".into()),
            "protocol" => match arg.to_ascii_uppercase().as_str() {
                "TCP" => service.push("protocol = \"tcp\"".into()),
                "UDP" => service.push("protocol = \"udp\"".into()),
                other => notes.push(format!(
                    "line {}: protocol {other}: not translated",
                    entry.line
                )),
            },
            "lb_algo" | "lvs_sched" => service.push(format!("scheduler = {}", quoted(&arg))),
            "lb_kind" | "lvs_method" => match method_lines(&entry.args) {
                Ok(lines) => service.extend(lines),
                Err(word) => notes.push(format!(
                    "line {}: {} {}: {word} not translated",
                    entry.line,
                    entry.keyword,
                    entry.args.join(" ")
                )),
            },
            "persistence_timeout" if number() => service.push(format!("persistence = {arg}")),
            // Bare: IPVS's default timeout (`IPVS_SVC_PERSISTENT_TIMEOUT`).
            "persistence_timeout" if entry.args.is_empty() => {
                service.push("persistence = 360".into())
            }
            "persistence_granularity" => service.push(format!("netmask = {}", quoted(&arg))),
            "persistence_engine" => service.push(format!("persistence_engine = {}", quoted(&arg))),
            "ops" => service.push("ops = true".into()),
            "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
            | "mh-fallback" => flags.push(quoted(&entry.keyword)),
            // IPVS sets it on every service itself.
            "hashed" => {}
            "quorum" | "hysteresis" if number() => {
                service.push(format!("{} = {arg}", entry.keyword))
            }
            "alpha"
            | "omega"
            | "ha_suspend"
            | "inhibit_on_failure"
            | "sorry_server_inhibit" => match switch(&entry.args) {
                Some(true) if marked && entry.keyword == "ha_suspend" => notes.push(format!(
                    "line {}: ha_suspend: not translated (a fwmark service has no VIP to follow)",
                    entry.line
                )),
                Some(on) => service.push(format!("{} = {on}", entry.keyword)),
                None => notes.push(not_a_switch(entry)),
            },
            "quorum_up" | "quorum_down" => service.push(format!(
                "{} = {}",
                entry.keyword,
                notify_script(entry, notes)
            )),
            "sorry_server" => match address(&entry.args) {
                Some(sorry) => service.push(format!("sorry_server = {}", quoted(&sorry))),
                None => notes.push(format!("line {}: sorry_server: not an address", entry.line)),
            },
            "sorry_server_lvs_method" => {
                if let Some(m) = method(&arg) {
                    service.push(format!("sorry_method = \"{m}\""));
                }
            }
            "real_server" => servers.push(entry),
            "laddr_group_name" => match laddr_groups.get(&arg) {
                Some(addresses) => {
                    let list: Vec<String> =
                        addresses.iter().map(|a| quoted(&a.to_string())).collect();
                    service.push(format!("local_addresses = [{}]", list.join(", ")));
                }
                None => notes.push(format!(
                    "line {}: laddr_group_name {arg}: no such local_address_group",
                    entry.line
                )),
            },
            other => notes.push(format!("line {}: {other}: not translated", entry.line)),
        }
    }
    if !flags.is_empty() {
        service.push(format!("scheduler_flags = [{}]", flags.join(", ")));
    }
    for line in &service {
        let _ = writeln!(out, "{line}");
    }
    for rs in servers {
        real_server(rs, &defaults, out, notes);
    }
}

fn real_server(item: &Item, defaults: &Defaults, out: &mut String, notes: &mut Vec<String>) {
    let Some(rip) = address(&item.args) else {
        notes.push(format!("line {}: real_server: not an address", item.line));
        return;
    };
    let _ = writeln!(out, "\n[[service.real_server]]\naddress = {}", quoted(&rip));
    let mut checkers = Vec::new();
    let mut defaults = defaults.clone();
    for entry in item.block.clone().unwrap_or_default() {
        let arg = entry.args.first().cloned().unwrap_or_default();
        if defaults.take(&entry) {
            continue;
        }
        match entry.keyword.as_str() {
            "weight" if arg.parse::<u32>().is_ok() => {
                let _ = writeln!(out, "weight = {arg}");
            }
            "lb_kind" | "lvs_method" => match method_lines(&entry.args) {
                Ok(lines) => {
                    for line in lines {
                        let _ = writeln!(out, "{line}");
                    }
                }
                Err(word) => notes.push(format!(
                    "line {}: {} {}: {word} not translated",
                    entry.line,
                    entry.keyword,
                    entry.args.join(" ")
                )),
            },
            "notify_up" | "notify_down" => {
                let script = notify_script(&entry, notes);
                let _ = writeln!(out, "{} = {script}", entry.keyword);
            }
            "uthreshold" | "lthreshold" if arg.parse::<u32>().is_ok() => {
                let _ = writeln!(out, "{}_threshold = {arg}", &entry.keyword[..1]);
            }
            "inhibit_on_failure" | "alpha" => match switch(&entry.args) {
                Some(on) => {
                    let _ = writeln!(out, "{} = {on}", entry.keyword);
                }
                None => notes.push(not_a_switch(&entry)),
            },
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "DNS_CHECK" | "UDP_CHECK"
            | "SMTP_CHECK" | "PING_CHECK" | "FILE_CHECK" => checkers.push(entry),
            other => notes.push(format!("line {}: {other}: not translated", entry.line)),
        }
    }
    // After the whole block: its settings apply to its checkers wherever they stand.
    let mut checks = Vec::new();
    for entry in checkers {
        match entry.keyword.as_str() {
            "FILE_CHECK" => checks.extend(file_check(&entry, &defaults, notes)),
            _ => checks.extend(check(&entry, &defaults, notes)),
        }
    }
    for check in checks {
        out.push_str("\n[[service.real_server.check]]\n");
        for line in check.lines {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// A notify script (`notify_up SCRIPT [USER [GROUP]]`, SCRIPT quoted when it has
/// arguments), quoted for TOML; a user after it is named, not translated: xvsd runs notify
/// commands as root.
fn notify_script(entry: &Item, notes: &mut Vec<String>) -> String {
    if let [_, user @ ..] = entry.args.as_slice()
        && !user.is_empty()
    {
        notes.push(format!(
            "line {}: {}'s user {}: not translated (xvsd runs notify commands as root)",
            entry.line,
            entry.keyword,
            user.join(" ")
        ));
    }
    quoted(entry.args.first().map(String::as_str).unwrap_or_default())
}

/// keepalived's `user NAME [GROUP]` (and `script_user`'s) as xvsd's `NAME[:GROUP]`.
fn user_of(args: &[String]) -> Option<String> {
    match args {
        [name] => Some(name.clone()),
        [name, group] => Some(format!("{name}:{group}")),
        _ => None,
    }
}

/// The note for a yes/no keyword given another word.
fn not_a_switch(entry: &Item) -> String {
    format!(
        "line {}: {} {}: not translated (yes or no)",
        entry.line,
        entry.keyword,
        entry.args.join(" ")
    )
}

/// One keepalived checker as xvsd checks (HTTP_GET with several urls: one each, all must
/// pass, as in keepalived).
fn check(item: &Item, defaults: &Defaults, notes: &mut Vec<String>) -> Vec<Check> {
    let mut common = Check::default();
    let kind = match item.keyword.as_str() {
        "TCP_CHECK" => "tcp",
        "HTTP_GET" => "http",
        "SSL_GET" => "https",
        "MISC_CHECK" => "command",
        "DNS_CHECK" => "dns",
        "SMTP_CHECK" => "smtp",
        "PING_CHECK" => "ping",
        _ => "udp",
    };
    common.set("type", quoted(kind));
    if kind == "https" {
        // keepalived's SSL_GET checks no certificate unless its global SSL context names
        // a CA.
        common.set("tls_verify", "false".into());
    }
    // The checker's own settings over its real server's and service's (`own`); its
    // timeout alone is not inherited by a MISC_CHECK, which makes no connection.
    let mut own = defaults.clone();
    let mut timeout = if kind == "command" {
        None
    } else {
        defaults.timeout.clone()
    };
    let mut urls = Vec::new();
    for entry in item.block.clone().unwrap_or_default() {
        let arg = entry.args.first().cloned().unwrap_or_default();
        let number = arg.parse::<f64>().is_ok_and(|n| n >= 0.0);
        match entry.keyword.as_str() {
            "connect_timeout" | "misc_timeout" if number => {
                timeout = Some(arg);
                continue;
            }
            _ if own.take(&entry) => continue,
            _ => {}
        }
        match entry.keyword.as_str() {
            "connect_port" => common.set("port", arg),
            "bind_port" if arg.parse::<u16>().is_ok_and(|p| p != 0) => {
                common.set("source_port", arg)
            }
            "bind_if" => common.set("interface", quoted(&arg)),
            "fwmark" if arg.parse::<u32>().is_ok() => common.set("mark", arg),
            "alpha" | "log_all_failures" => match switch(&entry.args) {
                Some(on) if entry.keyword == "alpha" => common.set("alpha", on.to_string()),
                Some(on) => own.log_all_failures = on,
                None => notes.push(not_a_switch(&entry)),
            },
            // xvsd checks every url on every round, failed or not.
            "fast_recovery" => {}
            "connect_ip" | "bindto" if arg.parse::<IpAddr>().is_ok() => {
                let key = if entry.keyword == "connect_ip" {
                    "address"
                } else {
                    "source"
                };
                common.set(key, quoted(&arg));
            }
            "url" => urls.push(entry),
            "misc_path" => common.set("command", quoted(&entry.args.join(" "))),
            "misc_dynamic" => common.set("dynamic", "true".into()),
            "user" if kind == "command" => match user_of(&entry.args) {
                Some(user) => own.user = Some(user),
                None => notes.push(format!("line {}: user: no user named", entry.line)),
            },
            "type" => common.set("query_type", quoted(&arg)),
            "name" => common.set("name", quoted(&arg)),
            "payload" => common.set("payload", quoted(&arg)),
            "helo_name" => common.set("helo_name", quoted(&arg)),
            // 1.0 and 1.0C (with `Connection: close`) are xvsd's default request.
            "http_protocol" if arg == "1.1" => common.set("http_version", quoted(&arg)),
            "http_protocol" if arg == "1.0" || arg == "1.0C" => {}
            // xvsd sends the name (sni_name, else virtualhost) whenever it has one.
            "enable_sni" => {}
            "sni_name" => common.set("tls_name", quoted(&arg)),
            other => notes.push(format!("line {}: {other}: not translated", entry.line)),
        }
    }
    // keepalived's defaults where xvsd's differ: one retry (DNS three, MISC none), a
    // 5-second connect timeout (MISC: the check's interval), 3 s between an HTTP check's
    // retries (DNS: the interval).
    if let Some(interval) = &own.interval {
        common.set("interval", interval.clone());
    }
    let retries = match item.keyword.as_str() {
        "DNS_CHECK" => "3",
        "MISC_CHECK" => "0",
        _ => "1",
    };
    common.set("retries", own.retries.unwrap_or(retries.into()));
    let timeout = match kind {
        "command" => timeout.or(own.interval.clone()),
        _ => timeout.or(Some("5".into())),
    };
    if let Some(timeout) = timeout {
        common.set("timeout", timeout);
    }
    let delay_before_retry = match kind {
        "http" | "https" => Some("3".to_string()),
        "dns" => own.interval.clone(),
        _ => None,
    };
    if let Some(delay) = own.delay_before_retry.or(delay_before_retry) {
        common.set("delay_before_retry", delay);
    }
    if let Some(warmup) = &own.warmup {
        common.set("warmup", warmup.clone());
    }
    if own.log_all_failures {
        common.set("log_all_failures", "true".into());
    }
    // root is xvsd's own: said only when it is not.
    if let Some(user) = own.user.filter(|u| kind == "command" && u != "root") {
        common.set("user", quoted(&user));
    }
    if kind == "http" || kind == "https" {
        if let Some(host) = &own.host {
            common.set("host", quoted(host));
        }
        if urls.is_empty() {
            urls_default(&mut common);
            return vec![common];
        }
        return urls
            .iter()
            .map(|url| {
                let mut one = Check {
                    lines: common.lines.clone(),
                };
                let (mut expect, mut regex, mut no_match) = (None, false, None);
                for entry in url.block.clone().unwrap_or_default() {
                    match entry.keyword.as_str() {
                        "path" => one.set("path", quoted(&entry.args.join(" "))),
                        "status_code" => expect = status_codes(&entry.args),
                        "digest" => one.set("digest", quoted(&entry.args.join(""))),
                        "regex" => {
                            regex = true;
                            one.set("body_regex", quoted(&entry.args.join(" ")))
                        }
                        "regex_no_match" => no_match = Some(entry.line),
                        "virtualhost" => one.set("host", quoted(&entry.args.join(" "))),
                        other => notes.push(format!(
                            "line {}: url {other}: not translated (the status is still checked)",
                            entry.line
                        )),
                    }
                }
                match (no_match, regex) {
                    (Some(_), true) => one.set("body_regex_no_match", "true".into()),
                    (Some(line), false) => notes.push(format!(
                        "line {line}: url regex_no_match without a regex: not translated"
                    )),
                    (None, _) => {}
                }
                match expect {
                    Some(codes) => one.set("expect", codes),
                    None => urls_default(&mut one),
                }
                one
            })
            .collect();
    }
    vec![common]
}

/// keepalived accepts any 2xx status by default.
fn urls_default(check: &mut Check) {
    check.set("expect", "[200, 201, 202, 203, 204, 205, 206]".into());
}

/// `200 300-302` as a TOML list.
fn status_codes(args: &[String]) -> Option<String> {
    let mut codes = Vec::new();
    for arg in args {
        match arg.split_once('-') {
            Some((from, to)) => {
                let (from, to): (u16, u16) = (from.parse().ok()?, to.parse().ok()?);
                if to < from || to - from > 100 {
                    return None;
                }
                codes.extend(from..=to);
            }
            None => codes.push(arg.parse().ok()?),
        }
    }
    let list: Vec<String> = codes.iter().map(u16::to_string).collect();
    Some(format!("[{}]", list.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CheckConfig, CheckType, Config, HttpVersion, Method, OnStop, Protocol};

    /// `text` imported, and its config parsed (which must succeed).
    fn imported(text: &str) -> (Import, Config) {
        let imported = import(text, "keepalived.conf");
        let config =
            Config::parse(&imported.config).unwrap_or_else(|e| panic!("{e}\n{}", imported.config));
        (imported, config)
    }

    /// The checks of real server `i` of `config`'s first service, each seen through `view`.
    fn checks_seen<T>(config: &Config, i: usize, view: impl Fn(&CheckConfig) -> T) -> Vec<T> {
        let service = &config.services[0];
        service
            .checks_of(&service.real_servers[i])
            .iter()
            .map(view)
            .collect()
    }

    const KEEPALIVED: &str = r#"
! Configuration File for keepalived
global_defs {
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
}

virtual_server 1.1.1.254 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    protocol TCP
    quorum 2
    hysteresis 1
    sorry_server 192.168.1.99 80
    sorry_server_inhibit
    quorum_down "/usr/local/bin/page ops down"
    omega

    real_server 192.168.1.10 80 {
        weight 3
        notify_down "/usr/local/bin/rs-down.sh 192.168.1.10"
        HTTP_GET {
            url {
              path /health
              status_code 200 300-302
              digest 9b3a0c85a887a256d6939da88aabd8cd
              regex_no_match
            }
            url {
              path /ready
              regex "(?i)error"
              regex_no_match
            }
            connect_timeout 3
            retry 2
            delay_before_retry 1
        }
    }
    real_server 192.168.1.20 80 {
        weight 1
        uthreshold 100
        lthreshold 50
        MISC_CHECK {
            misc_path "/usr/local/bin/check-web 192.168.1.20"
            misc_dynamic
        }
        TCP_CHECK {
            connect_port 8080
            connect_ip 10.0.0.20
            bindto 192.168.1.1
        }
        smtp_alert
    }
}

virtual_server fwmark 1 {
    delay_loop 3
    lb_algo rr
    lb_kind DR
    persistence_timeout 600
    protocol TCP
    real_server 192.168.1.10 0 {
        TCP_CHECK {
            connect_port 443
        }
    }
}

virtual_server 1.1.1.254 5060 {
    lb_algo rr
    lb_kind DR
    protocol UDP
    persistence_timeout 60
    persistence_granularity 0.0.0.0
    persistence_engine sip
    ops
    real_server 1.1.1.10 5060 {
        PING_CHECK {
        }
    }
}

virtual_server 1.1.1.254 443 {
    lb_algo sh
    lb_kind DR
    protocol TCP
    persistence_timeout
    sh-port
    sh-fallback
    hashed
    real_server 1.1.1.10 443 {
    }
}

virtual_server group WEB {
    lb_algo rr
}
"#;

    #[test]
    fn keepalived_s_services_become_xvsd_s_and_the_rest_is_named() {
        let imported = import(KEEPALIVED, "keepalived.conf");
        let config =
            Config::parse(&imported.config).unwrap_or_else(|e| panic!("{e}\n{}", imported.config));
        assert_eq!(config.services.len(), 4);
        let service = &config.services[0];
        assert_eq!(service.key(), "-t 1.1.1.254:80");
        assert_eq!(service.protocol, Some(Protocol::Tcp));
        assert_eq!(service.scheduler, "wrr");
        assert_eq!(service.method, Method::Nat);
        assert_eq!(service.persistence, Some(50));
        assert_eq!((service.quorum, service.hysteresis), (2, 1));
        assert_eq!(service.sorry_server.unwrap().to_string(), "192.168.1.99:80");
        assert!(service.sorry_server_inhibit);
        assert_eq!(
            service.quorum_down.as_deref(),
            Some("/usr/local/bin/page ops down")
        );
        // keepalived removes its services when it stops, with omega's notifies first.
        assert_eq!(config.on_stop, OnStop::Remove);
        assert!(service.omega && !config.services[1].omega);

        let web1 = &service.real_servers[0];
        assert_eq!(web1.weight, 3);
        let checks = &service.checks_of(web1);
        assert_eq!(checks.len(), 2, "one check per url");
        assert_eq!(checks[0].kind, CheckType::Http);
        assert_eq!(checks[0].path, "/health");
        assert_eq!(checks[0].expect, [200, 300, 301, 302]);
        assert_eq!(
            checks[0].digest.as_deref(),
            Some("9b3a0c85a887a256d6939da88aabd8cd")
        );
        assert_eq!(checks[1].expect, [200, 201, 202, 203, 204, 205, 206]);
        assert_eq!(
            (
                checks[1].body_regex.as_deref(),
                checks[1].body_regex_no_match
            ),
            (Some("(?i)error"), true)
        );
        assert!(!checks[0].body_regex_no_match);
        assert_eq!((checks[0].interval, checks[0].timeout), (6.0, 3.0));
        assert_eq!((checks[0].retries, checks[0].delay_before_retry), (2, 1.0));

        let web2 = &service.real_servers[1];
        assert_eq!((web2.u_threshold, web2.l_threshold), (100, 50));
        let checks = &service.checks_of(web2);
        assert_eq!(checks[0].kind, CheckType::Command);
        assert_eq!(
            checks[0].command.as_deref(),
            Some("/usr/local/bin/check-web 192.168.1.20")
        );
        assert!(checks[0].dynamic);
        assert_eq!(checks[0].retries, 0);
        assert_eq!(
            (checks[1].kind, checks[1].port, checks[1].retries),
            (CheckType::Tcp, Some(8080), 1)
        );
        assert_eq!(
            (checks[1].address, checks[1].source),
            (
                Some("10.0.0.20".parse().unwrap()),
                Some("192.168.1.1".parse().unwrap())
            )
        );

        let notes = imported.notes.join("\n");
        for expected in [
            "line 7: vrrp_instance: no virtual_ipaddress",
            "line 34: url regex_no_match without a regex: not translated",
            "line 59: smtp_alert: not translated",
            "line 102: virtual_server group WEB: no such virtual_server_group",
        ] {
            assert!(notes.contains(expected), "{expected}:\n{notes}");
        }

        let marked = &config.services[1];
        assert_eq!(marked.key(), "-f 1");
        assert_eq!(
            (marked.method, marked.persistence, marked.protocol),
            (Method::Dr, Some(600), None)
        );
        let checks = marked.checks_of(&marked.real_servers[0]);
        assert_eq!(marked.real_servers[0].address.port(), 0);
        assert_eq!(
            (checks[0].kind, checks[0].port),
            (CheckType::Tcp, Some(443))
        );
        // Persistence granularity and engine, one-packet scheduling and scheduler flags
        // are the service's ipvsadm options.
        assert_eq!(
            config.services[2].add_command(),
            "-A -u 1.1.1.254:5060 -s rr -p 60 -M 0.0.0.0 --pe sip -o"
        );
        assert_eq!(
            config.services[3].add_command(),
            "-A -t 1.1.1.254:443 -s sh -p 360 -b sh-port,sh-fallback"
        );
    }

    /// `lvs_method TUN` with its tunnel words (keepalived 2's `type gue port N`, `gre`,
    /// `csum`): the service's and a real server's own become xvsd's `tunnel_*` keys; a
    /// word keepalived would not take is named, not dropped.
    /// keepalived's `virtual_server_group`: one block of settings and real servers for
    /// several VIPs (addresses, ranges, marks), a service for each.
    #[test]
    fn a_virtual_server_group_becomes_a_service_per_member() {
        let imported = import(
            r#"
virtual_server_group WEB {
    1.1.1.254 80
    1.1.1.250-252 8080
    fd00::a-c 80
    fwmark 7
    1.1.1.1
}
virtual_server group WEB {
    lb_algo sh
    lb_kind DR
    protocol TCP
    persistence_timeout 60
    no_such_keyword
    real_server 1.1.1.10 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 2
        }
    }
}
virtual_server group NONE {
    lb_algo rr
}
"#,
            "keepalived.conf",
        );
        let config =
            Config::parse(&imported.config).unwrap_or_else(|e| panic!("{e}\n{}", imported.config));
        let keys: Vec<String> = config.services.iter().map(|s| s.key()).collect();
        assert_eq!(
            keys,
            [
                "-t 1.1.1.254:80",
                "-t 1.1.1.250:8080",
                "-t 1.1.1.251:8080",
                "-t 1.1.1.252:8080",
                "-t [fd00::a]:80",
                "-t [fd00::b]:80",
                "-t [fd00::c]:80",
                "-f 7",
            ]
        );
        for service in &config.services {
            assert_eq!(
                (
                    service.scheduler.as_str(),
                    service.method,
                    service.persistence
                ),
                ("sh", Method::Dr, Some(60))
            );
            let rs = &service.real_servers[0];
            assert_eq!(
                (rs.weight, service.checks_of(rs)[0].kind),
                (2, CheckType::Tcp)
            );
        }
        assert!(
            imported
                .config
                .contains("as keepalived checks it once for the group")
        );
        let notes = imported.notes.join("\n");
        for expected in [
            "line 7: virtual_server_group WEB: 1.1.1.1 : not an address (or range) and port",
            "line 14: no_such_keyword: not translated",
            "line 22: virtual_server group NONE: no such virtual_server_group",
        ] {
            assert!(notes.contains(expected), "{expected}:\n{notes}");
        }
        assert_eq!(
            notes.matches("no_such_keyword").count(),
            1,
            "told once, not per member:\n{notes}"
        );
    }

    #[test]
    fn a_tunnel_s_type_port_and_checksum_are_translated() {
        let text = r#"
virtual_server 1.1.1.254 80 {
    lb_algo rr
    lvs_method TUN type gue port 6080 csum
    protocol TCP
    real_server 10.0.0.10 80 {
    }
    real_server 10.0.0.20 80 {
        lvs_method TUN type gre nocsum
    }
}
virtual_server 1.1.1.254 81 {
    lb_algo rr
    lb_kind TUN type vxlan
    protocol TCP
}
"#;
        let imported = import(text, "keepalived.conf");
        let config =
            Config::parse(&imported.config).unwrap_or_else(|e| panic!("{e}\n{}", imported.config));
        let service = &config.services[0];
        let lines: Vec<String> = service
            .real_servers
            .iter()
            .map(|rs| service.server_command(Some(rs), 1))
            .collect();
        assert_eq!(
            lines,
            [
                "-a -t 1.1.1.254:80 -r 10.0.0.10:80 -i --tun-type gue --tun-port 6080 --tun-csum -w 1",
                "-a -t 1.1.1.254:80 -r 10.0.0.20:80 -i --tun-type gre --tun-nocsum -w 1",
            ]
        );
        assert!(
            imported
                .notes
                .iter()
                .any(|n| n.contains("lb_kind TUN type vxlan: type vxlan not translated")),
            "{:?}",
            imported.notes
        );
    }

    /// FILE_CHECK becomes a file check of its weight: on a track file of weight 0 a
    /// non-zero value takes the real server out; with another weight the value times it
    /// moves the server's weight. The check's own weight 0 means its track file's, as in
    /// keepalived's `file_end_handler`.
    #[test]
    fn file_checks_become_xvsd_s_file_checks_of_their_weights() {
        let text = r#"
track_file maintenance {
    file "/etc/keepalived/web1.down"
    weight 0
    init_file 1 overwrite
}
track_file scaled {
    file /etc/keepalived/load
    init_file 0
}
track_file busy {
    file /etc/keepalived/busy
    weight 5 reverse
}
virtual_server 1.1.1.254 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.168.1.10 80 {
        FILE_CHECK {
            track_file maintenance
        }
    }
    real_server 192.168.1.20 80 {
        FILE_CHECK {
            track_file scaled
        }
        TCP_CHECK {
        }
    }
    real_server 192.168.1.30 80 {
        FILE_CHECK {
            track_file scaled
            weight 0
        }
        FILE_CHECK {
            track_file busy
        }
        FILE_CHECK {
            track_file maintenance
            weight 10 reverse
        }
    }
}
"#;
        let (imported, config) = imported(text);
        let checks = |i: usize| {
            checks_seen(&config, i, |c| {
                (
                    c.kind,
                    c.file.clone().unwrap_or_default(),
                    c.weight,
                    c.reverse,
                )
            })
        };
        let file = |path: &str, weight: i32, reverse: bool| {
            (CheckType::File, path.to_string(), weight, reverse)
        };
        assert_eq!(checks(0), [file("/etc/keepalived/web1.down", 0, false)]);
        assert_eq!(
            checks(1),
            [
                file("/etc/keepalived/load", 1, false),
                (CheckType::Tcp, String::new(), 0, false)
            ]
        );
        assert_eq!(
            checks(2),
            [
                file("/etc/keepalived/load", 1, false),
                file("/etc/keepalived/busy", 5, true),
                file("/etc/keepalived/web1.down", 10, true),
            ]
        );
        // init_file: the value written where the file is missing, or over it.
        let inits = |i: usize| checks_seen(&config, i, |c| (c.init_file, c.init_overwrite));
        assert_eq!(inits(0), [(Some(1), true)]);
        assert_eq!(inits(1), [(Some(0), false), (None, false)]);
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
    }

    /// `http_protocol 1.1` asks in HTTP/1.1; 1.0 and 1.0C are xvsd's default request.
    #[test]
    fn http_protocol_becomes_the_check_s_http_version() {
        let text = r#"
virtual_server 1.1.1.254 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.1.10 80 {
        HTTP_GET {
            url {
              path /health
            }
            http_protocol 1.1
        }
        SSL_GET {
            http_protocol 1.0C
            enable_sni
            sni_name www.example.com
        }
    }
    real_server 192.168.1.20 80 {
        HTTP_GET {
            http_protocol 2
        }
    }
}
"#;
        let (imported, config) = imported(text);
        let versions = |i: usize| checks_seen(&config, i, |c| (c.kind, c.http_version));
        assert_eq!(
            versions(0),
            [
                (CheckType::Http, HttpVersion::Http11),
                (CheckType::Https, HttpVersion::Http10)
            ]
        );
        assert_eq!(versions(1), [(CheckType::Http, HttpVersion::Http10)]);
        let names = checks_seen(&config, 0, |c| c.tls_name.clone());
        assert_eq!(names, [None, Some("www.example.com".into())]);
        assert_eq!(
            imported.notes,
            ["line 21: http_protocol: not translated"],
            "{}",
            imported.config
        );
    }

    /// A virtual server's check settings are its real servers', and a real server's its
    /// checkers' (keepalived's `delay_loop`, `connect_timeout`, `retry`,
    /// `delay_before_retry`, `warmup`, `virtualhost`), each level over the one above, with
    /// keepalived's defaults by checker where none is given.
    #[test]
    fn check_settings_pass_from_the_service_to_its_real_servers_and_their_checks() {
        let text = r#"
virtual_server 1.1.1.254 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.1.10 80 {
        HTTP_GET {
            url {
              path /
            }
        }
        TCP_CHECK {
            connect_timeout 1
        }
    }
    delay_loop 10
    connect_timeout 2
    retry 4
    warmup 0
    virtualhost www.example.com
    ha_suspend
    real_server 192.168.1.20 80 {
        MISC_CHECK {
            misc_path /bin/true
        }
        DNS_CHECK {
            name example.com
        }
        HTTP_GET {
            url {
              path /a
              virtualhost a.example.com
            }
            warmup 7
        }
        delay_loop 5
        retry 0
        delay_before_retry 2
    }
}
"#;
        let (imported, config) = imported(text);
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
        let settings = |i: usize| {
            checks_seen(&config, i, |c| {
                (
                    c.kind,
                    c.interval,
                    c.timeout,
                    c.retries,
                    c.delay_before_retry,
                    c.warmup,
                    c.host.clone(),
                )
            })
        };
        assert!(config.services[0].ha_suspend);
        let host = |h: &str| Some(h.to_string());
        assert_eq!(
            settings(0),
            [
                (
                    CheckType::Http,
                    10.0,
                    2.0,
                    4,
                    3.0,
                    Some(0.0),
                    host("www.example.com")
                ),
                (CheckType::Tcp, 10.0, 1.0, 4, 1.0, Some(0.0), None),
            ]
        );
        assert_eq!(
            settings(1),
            [
                // A MISC_CHECK's timeout is its interval (it makes no connection).
                (CheckType::Command, 5.0, 5.0, 0, 2.0, Some(0.0), None),
                (CheckType::Dns, 5.0, 2.0, 0, 2.0, Some(0.0), None),
                (
                    CheckType::Http,
                    5.0,
                    2.0,
                    0,
                    2.0,
                    Some(7.0),
                    host("a.example.com")
                ),
            ]
        );
    }

    /// A checker's `bindto`, `bind_port`, `bind_if` and `fwmark`; `alpha` and
    /// `inhibit_on_failure` per real server and `alpha` per checker, with or without a
    /// yes/no; `log_all_failures` per checker over the global `checker_log_all_failures`;
    /// a MISC_CHECK's `user` over the global `script_user`.
    #[test]
    fn checker_origin_alpha_inhibit_and_failure_logging() {
        let text = r#"
global_defs {
    checker_log_all_failures
    script_user keepalived_script
}
virtual_server 1.1.1.254 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    alpha
    inhibit_on_failure
    real_server 192.168.1.10 80 {
        alpha off
        inhibit_on_failure no
        TCP_CHECK {
            connect_port 8080
            bindto 192.168.1.253
            bind_port 6000
            bind_if eth1
            fwmark 7
            log_all_failures off
        }
        HTTP_GET {
            url {
              path /health
            }
            alpha
            fast_recovery
        }
    }
    real_server 192.168.1.20 80 {
        alpha maybe
        notify_up "/usr/local/bin/up.sh now" nobody
        MISC_CHECK {
            misc_path /bin/true
        }
        MISC_CHECK {
            misc_path /bin/true
            user nobody nogroup
        }
    }
}
"#;
        let (imported, config) = imported(text);
        assert_eq!(
            imported.notes,
            [
                "line 32: alpha maybe: not translated (yes or no)",
                "line 33: notify_up's user nobody: not translated (xvsd runs notify commands as root)"
            ]
        );
        // MISC_CHECK's `user`, else the global `script_user`.
        assert_eq!(
            checks_seen(&config, 1, |c| c.user.clone()),
            [
                Some("keepalived_script".to_string()),
                Some("nobody:nogroup".to_string())
            ]
        );
        let service = &config.services[0];
        assert!(service.alpha && service.inhibit_on_failure);
        let (first, second) = (&service.real_servers[0], &service.real_servers[1]);
        assert_eq!(
            (first.alpha, first.inhibit_on_failure),
            (Some(false), Some(false))
        );
        assert_eq!((second.alpha, second.inhibit_on_failure), (None, None));
        // The script with its argument, not the user after it.
        assert_eq!(
            second.notify_up.as_deref(),
            Some("/usr/local/bin/up.sh now")
        );
        let origin = |c: &CheckConfig| {
            (
                c.source.map(|s| s.to_string()),
                c.source_port,
                c.interface.clone(),
                c.mark,
                c.alpha,
                c.log_all_failures,
            )
        };
        let text = |s: &str| Some(s.to_string());
        assert_eq!(
            checks_seen(&config, 0, origin),
            [
                (
                    text("192.168.1.253"),
                    Some(6000),
                    text("eth1"),
                    Some(7),
                    None,
                    false
                ),
                (None, None, None, None, Some(true), true),
            ]
        );
        assert_eq!(
            checks_seen(&config, 1, origin),
            [
                (None, None, None, None, None, true),
                (None, None, None, None, None, true)
            ]
        );
    }

    /// `lvs_timeouts` (ipvsadm's `--set`) becomes `[timeouts]`.
    #[test]
    fn lvs_timeouts_become_the_director_s_timeouts() {
        let text = "global_defs {\n    lvs_timeouts tcp 7200 udp 60 tcpfin\n    lvs_flush\n}\n";
        let imported = import(text, "keepalived.conf");
        let config =
            Config::parse(&imported.config).unwrap_or_else(|e| panic!("{e}\n{}", imported.config));
        let timeouts = config.timeouts.unwrap();
        assert_eq!(timeouts.set_command(), "--set 7200 0 60");
        let notes = imported.notes.join("\n");
        for expected in [
            "line 2: lvs_timeouts tcpfin: not translated",
            "line 3: lvs_flush: not translated",
        ] {
            assert!(notes.contains(expected), "{expected}:\n{notes}");
        }
    }

    /// keepalived's `vrrp_script`, tracked by an instance (`track_script`), becomes the
    /// instance's `[[vrrp.track_script]]` with its command, timing and weight (the
    /// instance's own weight for it first); what cannot be carried is named.
    #[test]
    fn tracked_vrrp_scripts_become_the_instance_s_track_scripts() {
        let text = r#"
global_defs {
    script_user keepalived_script
}
vrrp_script chk_director {
    script "/usr/local/bin/chk-ipvs.sh --quick"
    interval 2
    timeout 1
    fall 2
    rise 3
    weight -50
    user nobody
}
vrrp_script chk_web {
    script "curl -sf http://127.0.0.1/"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        1.1.1.254/24
    }
    track_interface {
        eth1 weight -20
    }
    track_script {
        chk_director
        chk_web weight 10
        chk_missing
    }
}
"#;
        let imported = import(text, "keepalived.conf");
        let config =
            Config::parse(&imported.config).unwrap_or_else(|e| panic!("{e}\n{}", imported.config));
        let scripts = &config.vrrp[0].track_scripts;
        assert_eq!(scripts.len(), 2, "{}", imported.config);
        assert_eq!(
            (
                scripts[0].command.as_str(),
                scripts[0].interval,
                scripts[0].timeout,
                scripts[0].fall,
                scripts[0].rise,
                scripts[0].weight
            ),
            (
                "/usr/local/bin/chk-ipvs.sh --quick",
                2.0,
                Some(1.0),
                2,
                3,
                -50
            )
        );
        assert_eq!(
            (scripts[1].command.as_str(), scripts[1].weight),
            ("curl -sf http://127.0.0.1/", 10)
        );
        // A script's `user`, else the global `script_user`.
        assert_eq!(
            (scripts[0].user.as_deref(), scripts[1].user.as_deref()),
            (Some("nobody"), Some("keepalived_script"))
        );
        for named in [
            "track_script chk_missing: no vrrp_script of that name",
            "track_interface eth1 weight -20: not translated",
        ] {
            assert!(
                imported.notes.iter().any(|n| n.contains(named)),
                "{named}: {:?}",
                imported.notes
            );
        }
    }

    #[test]
    fn a_vrrp_instance_and_the_sync_daemon_become_vrrp_and_sync() {
        let text = r#"
global_defs {
   lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 ttl 2
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt
    preempt_delay 5
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        1.1.1.254/24
        1.1.1.253 dev eth0 label eth0:1
        fd00::1/64
    }
    track_interface {
        eth1
    }
    unicast_src_ip 1.1.1.251
    unicast_peer {
        1.1.1.252
    }
    notify_master "/usr/local/bin/master.sh"
    notify_fault "/usr/local/bin/fault.sh"
    notify_stop "/usr/local/bin/stop.sh"
    notify "/usr/local/bin/any.sh"
}
vrrp_sync_group DUAL {
    group {
        VI_1
        VI_2
    }
    notify_master "/usr/local/bin/group-master.sh"
    notify_backup "/usr/local/bin/group-backup.sh"
    track_interface {
        eth2
    }
    smtp_alert
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        fd00::fe/64
    }
}
virtual_server 1.1.1.254 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 1.1.1.10 80 {
    }
}
"#;
        let imported = import(text, "keepalived.conf");
        let config =
            Config::parse(&imported.config).unwrap_or_else(|e| panic!("{e}\n{}", imported.config));
        assert_eq!(
            config.vrrp.len(),
            2,
            "both instances:\n{}\n{:?}",
            imported.config,
            imported.notes
        );
        let vrrp = &config.vrrp[0];
        assert_eq!(
            (
                vrrp.interface.as_str(),
                vrrp.vrid,
                vrrp.priority,
                vrrp.interval
            ),
            ("eth0", 51, 150, 1.0)
        );
        assert_eq!(
            (vrrp.preempt, vrrp.preempt_delay, vrrp.version),
            (false, 5.0, 2)
        );
        assert_eq!(vrrp.addresses, ["1.1.1.254/24", "1.1.1.253"]);
        assert_eq!(
            vrrp.unicast_peers,
            ["1.1.1.252".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            vrrp.notify_master.as_deref(),
            Some("/usr/local/bin/master.sh")
        );
        assert_eq!(
            (
                vrrp.name.as_deref(),
                vrrp.notify_fault.as_deref(),
                vrrp.notify_stop.as_deref(),
                vrrp.notify.as_deref()
            ),
            (
                Some("VI_1"),
                Some("/usr/local/bin/fault.sh"),
                Some("/usr/local/bin/stop.sh"),
                Some("/usr/local/bin/any.sh")
            )
        );
        let sync = config.sync.unwrap();
        assert_eq!(
            (
                sync.interface.as_str(),
                sync.syncid,
                sync.maxlen(),
                sync.ttl
            ),
            ("eth1", Some(7), 1400, 2)
        );
        assert_eq!(
            config.vrrp[1].parsed_addresses().unwrap()[0].0.to_string(),
            "fd00::fe"
        );
        assert_eq!(
            (
                config.vrrp[0].group.as_deref(),
                config.vrrp[1].group.as_deref()
            ),
            (Some("DUAL"), Some("DUAL"))
        );
        // The group's notify_backup runs with its first instance, which has none of its
        // own; its notify_master does not (VI_1 has its own); its tracked interface is
        // every member's.
        assert_eq!(
            config.vrrp[0].notify_backup.as_deref(),
            Some("/usr/local/bin/group-backup.sh")
        );
        assert_eq!(config.vrrp[0].track_interfaces, ["eth1", "eth2"]);
        assert_eq!(config.vrrp[1].track_interfaces, ["eth2"]);
        assert_eq!(config.vrrp[1].notify_master, None);
        assert_eq!(config.services.len(), 1);
        let notes = imported.notes.join("\n");
        for expected in [
            "vrrp_instance authentication: not translated",
            "fd00::1/64: an instance's addresses are of one family",
            "1.1.1.253 dev eth0 label eth0:1: only the address is taken",
            "vrrp_sync_group DUAL notify_master: not translated: its first instance, VI_1, has its own",
            "vrrp_sync_group DUAL notify_backup: run by its first instance, VI_1",
            "vrrp_sync_group DUAL smtp_alert: not translated",
        ] {
            assert!(notes.contains(expected), "{expected}:\n{notes}");
        }
    }

    /// SMTP_CHECK (its `helo_name`, keepalived's timing defaults) and PING_CHECK.
    #[test]
    fn smtp_and_ping_checks_become_xvsd_s() {
        let text = r#"
virtual_server 1.1.1.254 25 {
    lb_algo wlc
    lb_kind DR
    protocol TCP
    real_server 192.168.1.10 25 {
        SMTP_CHECK {
            helo_name lvs.example.org
            connect_timeout 4
        }
        PING_CHECK {
            retry 2
        }
    }
    real_server 192.168.1.20 25 {
        SMTP_CHECK {
            connect_port 2525
        }
    }
}
"#;
        let imported = import(text, "keepalived.conf");
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
        let config = Config::parse(&imported.config).unwrap();
        let service = &config.services[0];
        let checks = service.checks_of(&service.real_servers[0]);
        assert_eq!(
            (
                checks[0].kind,
                checks[0].helo_name.as_str(),
                checks[0].timeout
            ),
            (CheckType::Smtp, "lvs.example.org", 4.0)
        );
        assert_eq!(
            (checks[1].kind, checks[1].retries, checks[1].timeout),
            (CheckType::Ping, 2, 5.0)
        );
        let checks = service.checks_of(&service.real_servers[1]);
        assert_eq!(
            (checks[0].kind, checks[0].port, checks[0].helo_name.as_str()),
            (CheckType::Smtp, Some(2525), "smtpchecker.keepalived.org")
        );
    }

    /// DPVS's keepalived: `lb_kind FNAT` and the local addresses of a
    /// `local_address_group` named by `laddr_group_name` (a range expanded).
    #[test]
    fn dpvs_fullnat_services_bring_their_local_addresses() {
        let text = r#"
local_address_group laddr_g1 {
    10.0.0.253 eth1
    10.0.0.250-251 eth1
}
virtual_server 1.1.1.254 80 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    real_server 192.168.5.10 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"#;
        let imported = import(text, "keepalived.conf");
        assert!(imported.notes.is_empty(), "{:?}", imported.notes);
        let config = Config::parse(&imported.config).unwrap();
        let service = &config.services[0];
        assert_eq!(service.method, Method::Fullnat);
        let addresses: Vec<String> = service
            .local_addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(addresses, ["10.0.0.253", "10.0.0.250", "10.0.0.251"]);
        let unknown = import(
            &text.replace("laddr_group_name laddr_g1", "laddr_group_name nope"),
            "keepalived.conf",
        )
        .notes;
        assert!(
            unknown
                .iter()
                .any(|n| n.contains("no such local_address_group")),
            "{unknown:?}"
        );
    }
}
