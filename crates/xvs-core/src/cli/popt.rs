//! popt as ipvsadm uses it: ipvsadm's option table and the walk over argv.

use super::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arg {
    No,
    Required,
    Optional,
}

/// Every option ipvsadm knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opt {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    Syncid,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    ProxyProtocol,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    /// DPVS's additions: FULLNAT and its local addresses.
    Fullnat,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Laddr,
    Ifname,
}

/// ipvsadm's popt table: long name, short letter, argument.
const OPTIONS: &[(&str, Option<char>, Arg, Opt)] = &[
    ("add-service", Some('A'), Arg::No, Opt::AddService),
    ("edit-service", Some('E'), Arg::No, Opt::EditService),
    ("delete-service", Some('D'), Arg::No, Opt::DeleteService),
    ("clear", Some('C'), Arg::No, Opt::Clear),
    ("list", Some('L'), Arg::No, Opt::List),
    ("list", Some('l'), Arg::No, Opt::List),
    ("zero", Some('Z'), Arg::No, Opt::Zero),
    ("add-server", Some('a'), Arg::No, Opt::AddServer),
    ("edit-server", Some('e'), Arg::No, Opt::EditServer),
    ("delete-server", Some('d'), Arg::No, Opt::DeleteServer),
    ("set", None, Arg::No, Opt::Set),
    ("help", Some('h'), Arg::No, Opt::Help),
    ("version", Some('v'), Arg::No, Opt::Version),
    ("restore", Some('R'), Arg::No, Opt::Restore),
    ("save", Some('S'), Arg::No, Opt::Save),
    ("start-daemon", None, Arg::Required, Opt::StartDaemon),
    ("stop-daemon", None, Arg::Required, Opt::StopDaemon),
    ("tcp-service", Some('t'), Arg::Required, Opt::Tcp),
    ("udp-service", Some('u'), Arg::Required, Opt::Udp),
    ("sctp-service", None, Arg::Required, Opt::Sctp),
    ("fwmark-service", Some('f'), Arg::Required, Opt::Fwmark),
    ("scheduler", Some('s'), Arg::Required, Opt::Scheduler),
    ("persistent", Some('p'), Arg::Optional, Opt::Persistent),
    ("netmask", Some('M'), Arg::Required, Opt::Netmask),
    ("real-server", Some('r'), Arg::Required, Opt::RealServer),
    ("masquerading", Some('m'), Arg::No, Opt::Masquerading),
    ("ipip", Some('i'), Arg::No, Opt::Ipip),
    ("gatewaying", Some('g'), Arg::No, Opt::Gatewaying),
    ("weight", Some('w'), Arg::Required, Opt::Weight),
    ("u-threshold", Some('x'), Arg::Required, Opt::UThreshold),
    ("l-threshold", Some('y'), Arg::Required, Opt::LThreshold),
    ("numeric", Some('n'), Arg::No, Opt::Numeric),
    ("connection", Some('c'), Arg::No, Opt::Connection),
    ("mcast-interface", None, Arg::Required, Opt::McastInterface),
    ("syncid", None, Arg::Required, Opt::Syncid),
    ("timeout", None, Arg::No, Opt::Timeout),
    ("daemon", None, Arg::No, Opt::Daemon),
    ("stats", None, Arg::No, Opt::Stats),
    ("rate", None, Arg::No, Opt::Rate),
    ("thresholds", None, Arg::No, Opt::Thresholds),
    ("persistent-conn", None, Arg::No, Opt::PersistentConn),
    ("nosort", None, Arg::No, Opt::NoSort),
    ("sort", None, Arg::No, Opt::Sort),
    ("exact", Some('X'), Arg::No, Opt::Exact),
    ("ipv6", Some('6'), Arg::No, Opt::Ipv6),
    ("ops", Some('o'), Arg::No, Opt::Ops),
    ("pe", None, Arg::Required, Opt::Pe),
    ("sched-flags", Some('b'), Arg::Required, Opt::SchedFlags),
    ("mcast-group", None, Arg::Required, Opt::McastGroup),
    ("mcast-port", None, Arg::Required, Opt::McastPort),
    ("mcast-ttl", None, Arg::Required, Opt::McastTtl),
    ("sync-maxlen", None, Arg::Required, Opt::SyncMaxlen),
    ("tun-info", None, Arg::No, Opt::TunInfo),
    ("tun-type", None, Arg::Required, Opt::TunType),
    ("tun-port", None, Arg::Required, Opt::TunPort),
    ("tun-nocsum", None, Arg::No, Opt::TunNocsum),
    ("tun-csum", None, Arg::No, Opt::TunCsum),
    ("tun-remcsum", None, Arg::No, Opt::TunRemcsum),
    // DPVS's ipvsadm: `-b` is `--fullnat` after a server command (see `Popt::short`).
    ("fullnat", None, Arg::No, Opt::Fullnat),
    ("add-laddr", Some('P'), Arg::No, Opt::AddLaddr),
    ("del-laddr", Some('Q'), Arg::No, Opt::DelLaddr),
    ("get-laddr", Some('G'), Arg::No, Opt::GetLaddr),
    ("laddr", Some('z'), Arg::Required, Opt::Laddr),
    ("ifname", Some('F'), Arg::Required, Opt::Ifname),
    // DPVS's ipvsadm: the client's address for FULLNAT real servers.
    ("proxy-protocol", None, Arg::Required, Opt::ProxyProtocol),
];

/// One option as popt hands it over: which, its argument, and the word it came from.
pub(super) struct Parsed {
    pub(super) opt: Opt,
    pub(super) value: Option<String>,
    pub(super) word: String,
}

/// popt's walk over argv: options in order, with bundled short options (`-Ln`), attached
/// or separate values (`-t1.2.3.4:80`, `--tcp-service=…`), an optional `-p` value, and
/// non-option words collected as leftovers (they may appear anywhere; `--` ends options).
pub(super) struct Popt<'a> {
    args: &'a [String],
    next: usize,
    /// Remaining letters of a short-option bundle, and the bundle's word.
    bundle: Option<(String, usize)>,
    pub(super) leftovers: Vec<String>,
    only_leftovers: bool,
    /// The command is a real-server command (`-a`, `-e`, `-d`): there `-b` is DPVS's
    /// `--fullnat`, where ipvsadm's `-b` (`--sched-flags`, a service option) is illegal
    /// anyway.
    pub(super) server_command: bool,
}

impl<'a> Popt<'a> {
    pub(super) fn new(args: &'a [String]) -> Popt<'a> {
        Popt {
            args,
            next: 0,
            bundle: None,
            leftovers: Vec::new(),
            only_leftovers: false,
            server_command: false,
        }
    }

    fn take_next_word(&mut self) -> Option<String> {
        let word = self.args.get(self.next)?.clone();
        self.next += 1;
        Some(word)
    }

    pub(super) fn next_opt(&mut self) -> Option<Result<Parsed, CliError>> {
        if let Some((word, pos)) = self.bundle.take() {
            return Some(self.short(word, pos));
        }
        loop {
            let word = self.take_next_word()?;
            if self.only_leftovers {
                self.leftovers.push(word);
                continue;
            }
            if word == "--" {
                self.only_leftovers = true;
                continue;
            }
            if let Some(long) = word.strip_prefix("--") {
                return Some(self.long(&word, long));
            }
            if word.len() > 1 && word.starts_with('-') {
                return Some(self.short(word, 1));
            }
            self.leftovers.push(word);
        }
    }

    fn long(&mut self, word: &str, long: &str) -> Result<Parsed, CliError> {
        let (name, attached) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (long, None),
        };
        let unknown = || CliError::Popt {
            word: word.to_string(),
            reason: "unknown option",
        };
        let &(_, _, arg, opt) = OPTIONS
            .iter()
            .find(|(long_name, ..)| *long_name == name)
            .ok_or_else(unknown)?;
        let value = match arg {
            Arg::No => {
                if attached.is_some() {
                    return Err(CliError::Popt {
                        word: word.to_string(),
                        reason: "option does not take an argument",
                    });
                }
                None
            }
            Arg::Required => match attached {
                Some(value) => Some(value),
                None => Some(self.take_next_word().ok_or_else(|| CliError::Popt {
                    word: word.to_string(),
                    reason: "missing argument",
                })?),
            },
            Arg::Optional => attached.or_else(|| self.optional_value()),
        };
        Ok(Parsed {
            opt,
            value,
            word: word.to_string(),
        })
    }

    /// An optional value is the next word unless that word looks like an option.
    fn optional_value(&mut self) -> Option<String> {
        let next = self.args.get(self.next)?;
        if next.starts_with('-') {
            return None;
        }
        self.take_next_word()
    }

    fn short(&mut self, word: String, pos: usize) -> Result<Parsed, CliError> {
        let letter = word[pos..].chars().next().unwrap_or('\0');
        let rest_at = pos + letter.len_utf8();
        let fullnat = (letter == 'b' && self.server_command).then_some((Arg::No, Opt::Fullnat));
        let Some((arg, opt)) = fullnat.or_else(|| {
            OPTIONS
                .iter()
                .find(|(_, short, ..)| *short == Some(letter))
                .map(|&(_, _, arg, opt)| (arg, opt))
        }) else {
            return Err(CliError::Popt {
                word,
                reason: "unknown option",
            });
        };
        let rest = &word[rest_at..];
        let value = match arg {
            Arg::No => {
                if !rest.is_empty() {
                    self.bundle = Some((word.clone(), rest_at));
                }
                None
            }
            Arg::Required => {
                if rest.is_empty() {
                    Some(self.take_next_word().ok_or_else(|| CliError::Popt {
                        word: word.clone(),
                        reason: "missing argument",
                    })?)
                } else {
                    Some(rest.to_string())
                }
            }
            Arg::Optional => {
                if rest.is_empty() {
                    self.optional_value()
                } else {
                    Some(rest.to_string())
                }
            }
        };
        Ok(Parsed { opt, value, word })
    }
}
