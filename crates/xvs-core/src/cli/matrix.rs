//! ipvsadm's command/option legality matrix (`commands_v_options`) and its tunnel-option
//! rules, with the messages ipvsadm prints for each breach.

use super::{CliError, Entry, fail, popt::Opt};
use crate::model::TunnelType;

/// The option columns of ipvsadm's legality matrix, in its order (the order of the
/// rows' characters in [`Cmd::legality`] and of the bits of `Entry::options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Column {
    Numeric,
    Connection,
    ServiceAddress,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    ForwardingMethod,
    Weight,
    UThreshold,
    LThreshold,
    McastInterface,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    Nosort,
    Syncid,
    Exact,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    Laddr,
    Ifname,
    ProxyProtocol,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

impl Column {
    pub(super) const COUNT: usize = 37;

    /// Every column, in the matrix's order.
    const ALL: [Column; Column::COUNT] = [
        Column::Numeric,
        Column::Connection,
        Column::ServiceAddress,
        Column::Scheduler,
        Column::Persistent,
        Column::Netmask,
        Column::RealServer,
        Column::ForwardingMethod,
        Column::Weight,
        Column::UThreshold,
        Column::LThreshold,
        Column::McastInterface,
        Column::Timeout,
        Column::Daemon,
        Column::Stats,
        Column::Rate,
        Column::Thresholds,
        Column::PersistentConn,
        Column::Nosort,
        Column::Syncid,
        Column::Exact,
        Column::Ops,
        Column::Pe,
        Column::SchedFlags,
        Column::McastGroup,
        Column::McastPort,
        Column::McastTtl,
        Column::SyncMaxlen,
        Column::Laddr,
        Column::Ifname,
        Column::ProxyProtocol,
        Column::TunInfo,
        Column::TunType,
        Column::TunPort,
        Column::TunNocsum,
        Column::TunCsum,
        Column::TunRemcsum,
    ];

    /// The column's name in ipvsadm's messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Column::Numeric => "numeric",
            Column::Connection => "connection",
            Column::ServiceAddress => "service-address",
            Column::Scheduler => "scheduler",
            Column::Persistent => "persistent",
            Column::Netmask => "netmask",
            Column::RealServer => "real-server",
            Column::ForwardingMethod => "forwarding-method",
            Column::Weight => "weight",
            Column::UThreshold => "u-threshold",
            Column::LThreshold => "l-threshold",
            Column::McastInterface => "mcast-interface",
            Column::Timeout => "timeout",
            Column::Daemon => "daemon",
            Column::Stats => "stats",
            Column::Rate => "rate",
            Column::Thresholds => "thresholds",
            Column::PersistentConn => "persistent-conn",
            Column::Nosort => "nosort",
            Column::Syncid => "syncid",
            Column::Exact => "exact",
            Column::Ops => "ops",
            Column::Pe => "pe",
            Column::SchedFlags => "sched-flags",
            Column::McastGroup => "mcast-group",
            Column::McastPort => "mcast-port",
            Column::McastTtl => "mcast-ttl",
            Column::SyncMaxlen => "sync-maxlen",
            Column::Laddr => "laddr",
            Column::Ifname => "ifname",
            Column::ProxyProtocol => "proxy-protocol",
            Column::TunInfo => "tun-info",
            Column::TunType => "tun-type",
            Column::TunPort => "tun-port",
            Column::TunNocsum => "tun-nocsum",
            Column::TunCsum => "tun-csum",
            Column::TunRemcsum => "tun-remcsum",
        }
    }

    /// The column option `opt` is counted in, if the matrix tracks it.
    pub(super) fn of(opt: Opt) -> Option<Column> {
        Some(match opt {
            Opt::Numeric => Column::Numeric,
            Opt::Connection => Column::Connection,
            Opt::Tcp | Opt::Udp | Opt::Sctp | Opt::Fwmark => Column::ServiceAddress,
            Opt::Scheduler => Column::Scheduler,
            Opt::Persistent => Column::Persistent,
            Opt::Netmask => Column::Netmask,
            Opt::RealServer => Column::RealServer,
            Opt::Masquerading | Opt::Ipip | Opt::Gatewaying | Opt::Fullnat => {
                Column::ForwardingMethod
            }
            Opt::Weight => Column::Weight,
            Opt::UThreshold => Column::UThreshold,
            Opt::LThreshold => Column::LThreshold,
            Opt::McastInterface => Column::McastInterface,
            Opt::Timeout => Column::Timeout,
            Opt::Daemon => Column::Daemon,
            Opt::Stats => Column::Stats,
            Opt::Rate => Column::Rate,
            Opt::Thresholds => Column::Thresholds,
            Opt::PersistentConn => Column::PersistentConn,
            Opt::NoSort => Column::Nosort,
            Opt::Syncid => Column::Syncid,
            Opt::Exact => Column::Exact,
            Opt::Ops => Column::Ops,
            Opt::Pe => Column::Pe,
            Opt::SchedFlags => Column::SchedFlags,
            Opt::McastGroup => Column::McastGroup,
            Opt::McastPort => Column::McastPort,
            Opt::McastTtl => Column::McastTtl,
            Opt::SyncMaxlen => Column::SyncMaxlen,
            Opt::Laddr => Column::Laddr,
            Opt::Ifname => Column::Ifname,
            Opt::ProxyProtocol => Column::ProxyProtocol,
            Opt::TunInfo => Column::TunInfo,
            Opt::TunType => Column::TunType,
            Opt::TunPort => Column::TunPort,
            Opt::TunNocsum => Column::TunNocsum,
            Opt::TunCsum => Column::TunCsum,
            Opt::TunRemcsum => Column::TunRemcsum,
            _ => return None,
        })
    }

    pub(super) fn bit(self) -> u64 {
        1 << self as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
}

impl Cmd {
    pub(super) fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::AddLaddr => "add-laddr",
            Cmd::DelLaddr => "del-laddr",
            Cmd::GetLaddr => "get-laddr",
        }
    }

    /// ipvsadm's `commands_v_options` row: `+` required, `x` illegal, `1` at most one of
    /// those, `.` optional; one character per [`Column`], in its order.
    fn legality(self) -> &'static [u8; Column::COUNT] {
        match self {
            Cmd::Add | Cmd::Edit => b"xx+...xxxxxxxxxxxxxxx...xxxxxx.xxxxxx",
            Cmd::Del => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Flush | Cmd::Timeout | Cmd::Restore => b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::List => b".11xxxxxxxxx11.......xxxxxxxxxx.xxxxx",
            Cmd::AddDest | Cmd::EditDest => b"xx+xxx+....xxxxxxxxxxxxxxxxxxxxx.....",
            Cmd::DelDest => b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::StartDaemon => b"xxxxxxxxxxx.xxxxxxx.xxxx....xxxxxxxxx",
            Cmd::StopDaemon => b"xxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxx",
            Cmd::Save => b".xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::AddLaddr | Cmd::DelLaddr => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxx+.xxxxxxx",
            Cmd::GetLaddr => b"xx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Zero => b"xx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

/// ipvsadm's `generic_opt_check`, column by column.
pub(super) fn check_matrix(entry: &Entry) -> Result<(), CliError> {
    let subject = format!("'{}' command", entry.cmd.name());
    check_rules(entry, entry.cmd.legality(), Column::ALL[0], &subject)
}

/// ipvsadm's `tunnel_opt_check`: which of tun-port, tun-nocsum, tun-csum, tun-remcsum each
/// tunnel type needs, allows, or takes only one of.
pub(super) fn check_tunnel_options(entry: &Entry) -> Result<(), CliError> {
    let rules: &[u8; 4] = match entry.tun_type {
        TunnelType::Ipip => b"xxxx",
        TunnelType::Gue => b"+111",
        TunnelType::Gre => b"x11x",
    };
    let subject = format!("'{}' tunnel type", entry.tun_type.name());
    check_rules(entry, rules, Column::TunPort, &subject)
}

/// Checks the options from column `first` on against `rules` (`+` required, `x` illegal,
/// `1` at most one of those, `.` optional), in column order, with ipvsadm's words.
fn check_rules(entry: &Entry, rules: &[u8], first: Column, subject: &str) -> Result<(), CliError> {
    let mut exclusive: Option<Column> = None;
    let columns = Column::ALL.iter().skip(first as usize);
    for (rule, &column) in rules.iter().zip(columns) {
        let name = column.name();
        if !entry.has(column) {
            if *rule == b'+' {
                return fail(format!(
                    "You need to supply the '{name}' option for the {subject}"
                ));
            }
            continue;
        }
        match rule {
            b'x' => return fail(format!("Illegal '{name}' option with the {subject}")),
            b'1' => match exclusive {
                None => exclusive = Some(column),
                Some(first) => {
                    return fail(format!(
                        "The option '{name}' conflicts with the '{}' option in the {subject}",
                        first.name()
                    ));
                }
            },
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_in_matrix_order_and_named_once() {
        for (i, column) in Column::ALL.iter().enumerate() {
            assert_eq!(*column as usize, i, "{column:?}");
        }
        let mut names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Column::COUNT);
        assert_eq!(
            Column::TunPort as usize + 4,
            Column::COUNT,
            "tunnel rules' columns"
        );
    }
}
