//! ipvsadm's command line: the same words, the same order rules, the same messages and exit
//! codes (shared/reference/ipvsadm.md §1, §3). ipvsadm parses with popt, then checks the
//! command/option matrix; both are reproduced here, option by option.

mod matrix;
mod popt;
mod usage;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use matrix::{Cmd, Column, check_matrix, check_tunnel_options};
use popt::{Opt, Parsed, Popt};
pub use usage::{VERSION_LINE, usage};

use crate::{
    model::{
        DEFAULT_PERSISTENCE_TIMEOUT, Family, Forward, LocalAddress, MAX_TIMEOUT, Protocol,
        ServiceKey, Timeouts, Tunnel, TunnelChecksum, TunnelType, flags,
    },
    table::{DestParams, ServiceParams},
    text::{Resolver, inet_aton, parse_service, string_to_number},
};

/// The default scheduler (`DEF_SCHED`).
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// ipvsadm keeps at most this many characters of a scheduler name.
const SCHED_NAME_MAX: usize = 15;
/// … and of a persistence engine name.
const PE_NAME_MAX: usize = 16;

/// A command line that ipvsadm would refuse, and how it says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// ``Try `PROG -h' or 'PROG --help' for more information.``, exit 255.
    TryHelp,
    /// A popt error after the command: `WORD: REASON`, exit 255.
    Popt { word: String, reason: &'static str },
    /// A validation failure (`fail(2, …)`): the message, exit 2.
    Fail(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::TryHelp | CliError::Popt { .. } => 255,
            CliError::Fail(_) => 2,
        }
    }

    /// The text for stderr, without the final newline.
    pub fn message(&self, program: &str) -> String {
        match self {
            CliError::TryHelp => {
                format!("Try `{program} -h' or '{program} --help' for more information.")
            }
            CliError::Popt { word, reason } => format!("{word}: {reason}"),
            CliError::Fail(message) => message.clone(),
        }
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, CliError> {
    Err(CliError::Fail(message.into()))
}

/// What `-L` should show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListWhat {
    All,
    Service(ServiceKey),
    Connections,
    Timeout,
    Daemon,
}

/// The view and number style of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    pub numeric: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub tun_info: bool,
    pub exact: bool,
    pub nosort: bool,
}

/// Sync daemon role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonState {
    Master,
    Backup,
}

/// `--start-daemon` / `--stop-daemon` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    pub state: DaemonState,
    pub mcast_interface: String,
    pub syncid: u8,
    pub sync_maxlen: u16,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: u16,
    pub mcast_ttl: u8,
}

/// One ipvsadm command, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AddService(ServiceParams),
    EditService(ServiceParams),
    DeleteService(ServiceKey),
    Flush,
    List {
        what: ListWhat,
        format: Format,
    },
    AddDest(ServiceKey, DestParams),
    EditDest(ServiceKey, DestParams),
    DeleteDest(ServiceKey, IpAddr, u16),
    SetTimeouts(Timeouts),
    StartDaemon(Daemon),
    StopDaemon(Daemon),
    Restore,
    Save {
        numeric: bool,
    },
    Zero(Option<ServiceKey>),
    /// DPVS's `-P`/`--add-laddr`: a local address for FULLNAT.
    AddLocalAddress(ServiceKey, LocalAddress),
    /// `-Q`/`--del-laddr`.
    DeleteLocalAddress(ServiceKey, IpAddr),
    /// `-G`/`--get-laddr`: one service's local addresses, or every service's.
    ListLocalAddresses(Option<ServiceKey>),
    Help,
    Version,
}

impl Command {
    /// True for commands that change the table.
    pub fn modifies(&self) -> bool {
        matches!(
            self,
            Command::AddService(_)
                | Command::EditService(_)
                | Command::DeleteService(_)
                | Command::Flush
                | Command::AddDest(..)
                | Command::EditDest(..)
                | Command::DeleteDest(..)
                | Command::SetTimeouts(_)
                | Command::Zero(_)
                | Command::AddLocalAddress(..)
                | Command::DeleteLocalAddress(..)
        )
    }
}

/// The fields ipvsadm fills while it walks the options (its `ipvs_command_entry`).
struct Entry {
    cmd: Cmd,
    options: u64,
    format: Format,
    // service
    family: Option<Family>,
    protocol: Option<Protocol>,
    addr: IpAddr,
    port: u16,
    fwmark: u32,
    sched_name: String,
    flags: u32,
    timeout: u32,
    netmask: u32,
    pe_name: String,
    sched_flags_arg: Option<String>,
    // destination
    dest_addr: IpAddr,
    dest_port: u16,
    forward: Forward,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: TunnelType,
    tun_port: u16,
    tun_flags: u8,
    // daemon
    daemon_state: DaemonState,
    mcast_interface: String,
    syncid: u8,
    sync_maxlen: u16,
    mcast_group: Option<IpAddr>,
    mcast_port: u16,
    mcast_ttl: u8,
    // local address (DPVS)
    laddr: IpAddr,
    ifname: String,
}

impl Entry {
    fn new(cmd: Cmd) -> Entry {
        Entry {
            cmd,
            options: 0,
            format: Format::default(),
            family: None,
            protocol: None,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwmark: 0,
            sched_name: String::new(),
            flags: 0,
            timeout: 0,
            netmask: u32::MAX,
            pe_name: String::new(),
            sched_flags_arg: None,
            dest_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dest_port: 0,
            forward: Forward::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
            tun_flags: 0,
            daemon_state: DaemonState::Master,
            mcast_interface: String::new(),
            syncid: 0,
            sync_maxlen: 0,
            mcast_group: None,
            mcast_port: 0,
            mcast_ttl: 0,
            laddr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ifname: String::new(),
        }
    }

    fn set_option(&mut self, column: Column) -> Result<(), CliError> {
        if self.has(column) {
            return fail(format!("multiple '{}' options specified", column.name()));
        }
        self.options |= column.bit();
        Ok(())
    }

    fn has(&self, column: Column) -> bool {
        self.options & column.bit() != 0
    }

    fn service_key(&self) -> ServiceKey {
        if self.fwmark != 0 {
            ServiceKey::Fwmark {
                mark: self.fwmark,
                family: self.family.unwrap_or(Family::V4),
            }
        } else {
            ServiceKey::Inet {
                protocol: self.protocol.unwrap_or(Protocol::Tcp),
                addr: self.addr,
                port: self.port,
            }
        }
    }
}

fn number(value: &str, min: i64, max: i64, message: &str) -> Result<i64, CliError> {
    string_to_number(value, min, max).map_or_else(|| fail(message), Ok)
}

/// C `atoi`: leading space, sign, digits; stops at anything else; 0 if none.
fn atoi(text: &str) -> i64 {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let mut value: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        value = value.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if negative { -value } else { value }
}

/// `strncpy`-like truncation of a name to what ipvsadm keeps.
fn truncated(name: &str, max: usize) -> String {
    name.chars().take(max).collect()
}

/// Parses one ipvsadm command line (`args` without the program name). An empty line is
/// `-L`, as for ipvsadm without arguments.
pub fn parse(args: &[String], resolver: &dyn Resolver) -> Result<Command, CliError> {
    if args.is_empty() {
        return Ok(Command::List {
            what: ListWhat::All,
            format: Format::default(),
        });
    }
    let mut popt = Popt::new(args);
    let first = match popt.next_opt() {
        Some(Ok(parsed)) => parsed,
        _ => return Err(CliError::TryHelp),
    };
    let mut daemon_state = DaemonState::Master;
    let cmd = match first.opt {
        Opt::AddService => Cmd::Add,
        Opt::EditService => Cmd::Edit,
        Opt::DeleteService => Cmd::Del,
        Opt::AddServer => Cmd::AddDest,
        Opt::EditServer => Cmd::EditDest,
        Opt::DeleteServer => Cmd::DelDest,
        Opt::Clear => Cmd::Flush,
        Opt::List => Cmd::List,
        Opt::Zero => Cmd::Zero,
        Opt::Set => Cmd::Timeout,
        Opt::Restore => Cmd::Restore,
        Opt::Save => Cmd::Save,
        Opt::StartDaemon | Opt::StopDaemon => {
            let start = first.opt == Opt::StartDaemon;
            daemon_state = match first.value.as_deref() {
                Some("master") => DaemonState::Master,
                Some("backup") => DaemonState::Backup,
                _ if start => return fail("illegal start-daemon parameter specified"),
                _ => return fail("illegal start_daemon specified"),
            };
            if start {
                Cmd::StartDaemon
            } else {
                Cmd::StopDaemon
            }
        }
        Opt::AddLaddr => Cmd::AddLaddr,
        Opt::DelLaddr => Cmd::DelLaddr,
        Opt::GetLaddr => Cmd::GetLaddr,
        Opt::Help => return Ok(Command::Help),
        Opt::Version => return Ok(Command::Version),
        _ => return Err(CliError::TryHelp),
    };
    let mut entry = Entry::new(cmd);
    entry.daemon_state = daemon_state;
    popt.server_command = matches!(cmd, Cmd::AddDest | Cmd::EditDest | Cmd::DelDest);
    parse_options(&mut entry, &mut popt, resolver)?;
    build(entry, popt)
}

/// The rest of ipvsadm's `parse_options`: every option after the command, in order.
fn parse_options(
    entry: &mut Entry,
    popt: &mut Popt<'_>,
    resolver: &dyn Resolver,
) -> Result<(), CliError> {
    while let Some(parsed) = popt.next_opt() {
        let Parsed {
            opt,
            value: given,
            word,
        } = parsed?;
        let value = given.clone().unwrap_or_default();
        if let Some(column) = Column::of(opt) {
            entry.set_option(column)?;
        }
        match opt {
            Opt::Tcp | Opt::Udp | Opt::Sctp => {
                let protocol = match opt {
                    Opt::Tcp => Protocol::Tcp,
                    Opt::Udp => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                entry.protocol = Some(protocol);
                let parsed = parse_service(&value, Some(protocol), resolver).map_or_else(
                    || fail("illegal virtual server address[:port] specified"),
                    Ok,
                )?;
                entry.addr = parsed.addr;
                entry.family = Some(Family::of(&parsed.addr));
                if let Some(port) = parsed.port {
                    entry.port = port;
                }
                if entry.family == Some(Family::V6) {
                    entry.netmask = 128;
                }
            }
            Opt::Fwmark => {
                entry.family = Some(Family::V4);
                entry.protocol = Some(Protocol::Tcp);
                entry.fwmark = match string_to_number(&value, 1, i64::from(u32::MAX)) {
                    Some(mark) => mark as u32,
                    None => return fail(format!("invalid fwmark value `{value}' specified")),
                };
            }
            Opt::Scheduler => entry.sched_name = truncated(&value, SCHED_NAME_MAX),
            Opt::Persistent => {
                entry.flags |= flags::PERSISTENT;
                entry.timeout = match given {
                    None => DEFAULT_PERSISTENCE_TIMEOUT,
                    Some(_) => match string_to_number(&value, 1, i64::from(MAX_TIMEOUT)) {
                        Some(t) => t as u32,
                        None => return fail(format!("invalid timeout value `{value}' specified")),
                    },
                };
            }
            Opt::Netmask => {
                if entry.family != Some(Family::V6) {
                    let mask = inet_aton(&value).or_else(|| resolver.host_to_v4(&value));
                    match mask {
                        Some(mask) => entry.netmask = u32::from(mask),
                        None => return fail("illegal virtual server persistent mask specified"),
                    }
                } else {
                    let prefix = atoi(&value);
                    if !(1..=128).contains(&prefix) {
                        return fail("illegal ipv6 netmask specified");
                    }
                    entry.netmask = prefix as u32;
                }
            }
            Opt::RealServer => {
                // ipvsadm parses into a copy of the service so far: its protocol names the
                // port, and its port is the default.
                let parsed = parse_service(&value, entry.protocol, resolver)
                    .map_or_else(|| fail("illegal real server address[:port] specified"), Ok)?;
                entry.dest_addr = parsed.addr;
                entry.dest_port = parsed.port.unwrap_or(entry.port);
            }
            Opt::Ipip => entry.forward = Forward::Tunnel,
            Opt::Gatewaying => entry.forward = Forward::Route,
            Opt::Masquerading => entry.forward = Forward::Masq,
            Opt::Fullnat => entry.forward = Forward::FullNat,
            Opt::Laddr => {
                entry.laddr = parse_service(&value, None, resolver)
                    .map_or_else(|| fail("illegal local address"), |parsed| Ok(parsed.addr))?
            }
            Opt::Ifname => entry.ifname = truncated(&value, 15),
            Opt::Weight => {
                entry.weight = number(&value, 0, 65535, "illegal weight specified")? as u32
            }
            Opt::UThreshold => {
                entry.u_threshold = number(
                    &value,
                    0,
                    i64::from(i32::MAX),
                    "illegal u_threshold specified",
                )? as u32
            }
            Opt::LThreshold => {
                entry.l_threshold = number(
                    &value,
                    0,
                    i64::from(i32::MAX),
                    "illegal l_threshold specified",
                )? as u32
            }
            Opt::Connection | Opt::Timeout | Opt::Daemon => {}
            Opt::Numeric => entry.format.numeric = true,
            Opt::McastInterface => entry.mcast_interface = truncated(&value, 15),
            Opt::Syncid => entry.syncid = number(&value, 0, 255, "illegal syncid specified")? as u8,
            Opt::Stats => entry.format.stats = true,
            Opt::Rate => entry.format.rate = true,
            Opt::Thresholds => entry.format.thresholds = true,
            Opt::PersistentConn => entry.format.persistent_conn = true,
            Opt::NoSort => entry.format.nosort = true,
            Opt::Sort => {}
            Opt::Exact => entry.format.exact = true,
            Opt::Ipv6 => {
                if entry.fwmark != 0 {
                    entry.family = Some(Family::V6);
                    entry.netmask = 128;
                } else {
                    return fail("-6 used before -f\n");
                }
            }
            Opt::Ops => entry.flags |= flags::ONEPACKET,
            Opt::ProxyProtocol => match value.as_str() {
                "v2" => entry.flags |= flags::PROXY_V2,
                "disable" | "none" => entry.flags &= !flags::PROXY_V2,
                "v1" | "v1-insecure" | "v2-insecure" => {
                    return fail(format!(
                        "proxy-protocol `{value}' is not supported: xvs sends v2 (`--proxy-protocol v2')"
                    ));
                }
                _ => return fail(format!("illegal proxy-protocol `{value}' (v2 or disable)")),
            },
            Opt::Pe => entry.pe_name = truncated(&value, PE_NAME_MAX),
            Opt::SchedFlags => entry.sched_flags_arg = Some(value),
            Opt::McastGroup => {
                if value.contains(':') {
                    match value.parse::<Ipv6Addr>() {
                        Ok(group) if group.is_multicast() => {
                            entry.mcast_group = Some(IpAddr::V6(group))
                        }
                        _ => return fail(format!("invalid IPv6 mcast-group `{value}'")),
                    }
                } else {
                    match value.parse::<Ipv4Addr>() {
                        Ok(group) if group.is_multicast() => {
                            entry.mcast_group = Some(IpAddr::V4(group))
                        }
                        _ => return fail(format!("invalid IPv4 mcast-group `{value}'")),
                    }
                }
            }
            Opt::McastPort => {
                entry.mcast_port = number(&value, 1, 65535, "illegal mcast-port specified")? as u16
            }
            Opt::McastTtl => {
                entry.mcast_ttl = number(&value, 1, 255, "illegal mcast-ttl specified")? as u8
            }
            Opt::SyncMaxlen => {
                entry.sync_maxlen =
                    number(&value, 1, 65535 - 20 - 8, "illegal sync-maxlen specified")? as u16
            }
            Opt::TunInfo => entry.format.tun_info = true,
            Opt::TunType => {
                entry.tun_type = TunnelType::from_name(&value)
                    .map_or_else(|| fail("illegal tunnel type specified"), Ok)?
            }
            Opt::TunPort => {
                entry.tun_port = number(&value, 1, 65535, "illegal tunnel port specified")? as u16
            }
            Opt::TunNocsum => {}
            Opt::TunCsum => entry.tun_flags |= 1,
            Opt::TunRemcsum => entry.tun_flags |= 2,
            // A second command, -h or -v after the command.
            _ => return fail(format!("invalid option `{word}'")),
        }
    }
    Ok(())
}

/// Timeouts, leftovers, scheduler flags, then ipvsadm's `process_options` checks.
fn build(mut entry: Entry, mut popt: Popt<'_>) -> Result<Command, CliError> {
    let mut leftovers = std::mem::take(&mut popt.leftovers).into_iter();
    let mut timeouts = Timeouts {
        tcp: 0,
        tcp_fin: 0,
        udp: 0,
    };
    if entry.cmd == Cmd::Timeout {
        let values: Vec<String> = leftovers.by_ref().take(3).collect();
        if values.len() < 3 {
            return fail("--set option requires 3 timeout values");
        }
        let timeout = |v: &str| {
            string_to_number(v, 0, i64::from(MAX_TIMEOUT)).map_or_else(
                || fail(format!("invalid timeout value `{v}' specified")),
                |t| Ok(t as u32),
            )
        };
        timeouts = Timeouts {
            tcp: timeout(&values[0])?,
            tcp_fin: timeout(&values[1])?,
            udp: timeout(&values[2])?,
        };
    }
    if let Some(word) = leftovers.next() {
        return fail(format!("unexpected argument {word}"));
    }
    if let Some(arg) = entry.sched_flags_arg.take().filter(|a| !a.is_empty()) {
        entry.flags &= !flags::SCHED_MASK;
        entry.flags |= parse_sched_flags(&entry.sched_name, &arg)?;
    }
    check_matrix(&entry)?;

    if matches!(entry.cmd, Cmd::Add | Cmd::Edit) {
        if entry.fwmark == 0 && entry.port == 0 && entry.flags & flags::PERSISTENT == 0 {
            return fail("Zero port specified for non-persistent service");
        }
        if entry.flags & flags::ONEPACKET != 0
            && entry.fwmark == 0
            && entry.protocol != Some(Protocol::Udp)
        {
            return fail("One-Packet Scheduling is only for UDP virtual services");
        }
        if entry.flags & flags::PROXY_V2 != 0
            && entry.fwmark == 0
            && entry.protocol != Some(Protocol::Tcp)
        {
            return fail("PROXY protocol is only for TCP virtual services");
        }
        if entry.sched_name.is_empty() {
            entry.sched_name = DEFAULT_SCHEDULER.to_string();
        }
    }
    if entry.cmd == Cmd::StartDaemon && entry.mcast_interface.is_empty() {
        entry.mcast_interface = "eth0".into();
    }
    if matches!(entry.cmd, Cmd::AddDest | Cmd::EditDest) {
        // DR and tunnel real servers are reached on the service's port.
        if entry.fwmark == 0 && matches!(entry.forward, Forward::Tunnel | Forward::Route) {
            entry.dest_port = entry.port;
        }
        if Some(Family::of(&entry.dest_addr)) != entry.family && entry.forward != Forward::Tunnel {
            return fail("Different address family is allowed only for tunneling servers");
        }
        let tunnel_options = [
            Column::TunType,
            Column::TunPort,
            Column::TunNocsum,
            Column::TunCsum,
            Column::TunRemcsum,
        ];
        if tunnel_options.iter().any(|c| entry.has(*c)) && entry.forward != Forward::Tunnel {
            return fail("Tunnel options conflict with forward method");
        }
        check_tunnel_options(&entry)?;
    }
    if entry.cmd == Cmd::List
        && ((entry.has(Column::Connection)
            || entry.has(Column::Timeout)
            || entry.has(Column::Daemon))
            && (entry.has(Column::Stats)
                || entry.has(Column::Rate)
                || entry.has(Column::Thresholds))
            || (entry.has(Column::Timeout) || entry.has(Column::Daemon))
                && entry.has(Column::PersistentConn))
    {
        return fail("options conflicts in the list command");
    }

    let key = entry.service_key();
    let service = || ServiceParams {
        key,
        scheduler: entry.sched_name.clone(),
        flags: entry.flags,
        timeout: entry.timeout,
        netmask: entry.netmask,
        pe: (!entry.pe_name.is_empty()).then(|| entry.pe_name.clone()),
    };
    let dest = || DestParams {
        addr: entry.dest_addr,
        port: entry.dest_port,
        forward: entry.forward,
        weight: entry.weight,
        u_threshold: entry.u_threshold,
        l_threshold: entry.l_threshold,
        tunnel: Tunnel {
            kind: entry.tun_type,
            port: entry.tun_port,
            checksum: TunnelChecksum::from_flags(entry.tun_flags).unwrap_or(TunnelChecksum::None),
        },
    };
    let daemon = || Daemon {
        state: entry.daemon_state,
        mcast_interface: entry.mcast_interface.clone(),
        syncid: entry.syncid,
        sync_maxlen: entry.sync_maxlen,
        mcast_group: entry.mcast_group,
        mcast_port: entry.mcast_port,
        mcast_ttl: entry.mcast_ttl,
    };
    Ok(match entry.cmd {
        Cmd::Add => Command::AddService(service()),
        Cmd::Edit => Command::EditService(service()),
        Cmd::Del => Command::DeleteService(key),
        Cmd::Flush => Command::Flush,
        Cmd::List => Command::List {
            what: if entry.has(Column::Connection) {
                ListWhat::Connections
            } else if entry.has(Column::ServiceAddress) {
                ListWhat::Service(key)
            } else if entry.has(Column::Timeout) {
                ListWhat::Timeout
            } else if entry.has(Column::Daemon) {
                ListWhat::Daemon
            } else {
                ListWhat::All
            },
            format: entry.format,
        },
        Cmd::AddDest => Command::AddDest(key, dest()),
        Cmd::EditDest => Command::EditDest(key, dest()),
        Cmd::DelDest => Command::DeleteDest(key, entry.dest_addr, entry.dest_port),
        Cmd::Timeout => Command::SetTimeouts(timeouts),
        Cmd::StartDaemon => Command::StartDaemon(daemon()),
        Cmd::StopDaemon => Command::StopDaemon(daemon()),
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save {
            numeric: entry.format.numeric,
        },
        Cmd::Zero => Command::Zero(entry.has(Column::ServiceAddress).then_some(key)),
        Cmd::AddLaddr => Command::AddLocalAddress(
            key,
            LocalAddress::new(
                entry.laddr,
                (!entry.ifname.is_empty()).then(|| entry.ifname.clone()),
            ),
        ),
        Cmd::DelLaddr => Command::DeleteLocalAddress(key, entry.laddr),
        Cmd::GetLaddr => {
            Command::ListLocalAddresses(entry.has(Column::ServiceAddress).then_some(key))
        }
    })
}

/// ipvsadm's `parse_sched_flags`: comma-separated words; sh-*/mh-* only with their
/// scheduler (the one given with -s, else the default).
fn parse_sched_flags(scheduler: &str, arg: &str) -> Result<u32, CliError> {
    let scheduler = if scheduler.is_empty() {
        DEFAULT_SCHEDULER
    } else {
        scheduler
    };
    let mut bits = 0;
    let words: Vec<&str> = arg.split(',').filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return fail(format!("invalid scheduler flag `{arg}'"));
    }
    for flag in words {
        let (bit, needs) = match flag {
            "flag-1" => (flags::SCHED1, None),
            "flag-2" => (flags::SCHED2, None),
            "flag-3" => (flags::SCHED3, None),
            "sh-fallback" => (flags::FALLBACK, Some("sh")),
            "sh-port" => (flags::PORT, Some("sh")),
            "mh-fallback" => (flags::FALLBACK, Some("mh")),
            "mh-port" => (flags::PORT, Some("mh")),
            _ => return fail(format!("invalid scheduler flag `{flag}'")),
        };
        bits |= bit;
        if needs.is_some_and(|needed| needed != scheduler) {
            return fail(format!("incompatible scheduler flag `{flag}'"));
        }
    }
    Ok(bits)
}

impl Command {
    /// Applies a table-changing command to `table`; other commands leave it alone.
    pub fn apply(&self, table: &mut crate::table::Table) -> Result<(), crate::table::IpvsError> {
        match self {
            Command::AddService(params) => table.add_service(params),
            Command::EditService(params) => table.edit_service(params),
            Command::DeleteService(key) => table.delete_service(key),
            Command::Flush => {
                table.flush();
                Ok(())
            }
            Command::AddDest(key, params) => table.add_dest(key, params),
            Command::EditDest(key, params) => table.edit_dest(key, params),
            Command::DeleteDest(key, addr, port) => table.delete_dest(key, addr, *port),
            Command::SetTimeouts(timeouts) => {
                table.set_timeouts(*timeouts);
                Ok(())
            }
            Command::Zero(key) => table.zero(key.as_ref()),
            Command::AddLocalAddress(key, laddr) => table.add_laddr(key, laddr.clone()),
            Command::DeleteLocalAddress(key, addr) => table.delete_laddr(key, addr),
            _ => Ok(()),
        }
    }
}
