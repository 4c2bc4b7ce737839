//! ipvsadm's command line: what it accepts, what it makes of it, and every refusal with
//! ipvsadm's words and exit code (shared/reference/ipvsadm.md §1, §3).

use proptest::prelude::*;
use xvs_core::{
    cli::{self, CliError, Command, ListWhat},
    model::{Family, Forward, Protocol, ServiceKey, flags},
    restore,
    table::Table,
    text::NoNames,
};

fn parse(line: &str) -> Result<Command, CliError> {
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    cli::parse(&words, &NoNames)
}

const TRY_HELP: &str = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";

/// Every refusal: the command line, ipvsadm's words, its exit code. (The command comes
/// first: `-n -L` is refused.)
const REFUSALS: &[(&str, &str, u8)] = &[
    ("-K", TRY_HELP, 255),
    // DPVS's FULLNAT words, checked as its ipvsadm checks them.
    (
        "-P -t 1.1.1.1:80",
        "You need to supply the 'laddr' option for the 'add-laddr' command",
        2,
    ),
    (
        "-A -t 1.1.1.1:80 -z 10.0.0.1",
        "Illegal 'laddr' option with the 'add-service' command",
        2,
    ),
    (
        "-a -t 1.1.1.1:80 -r 10.0.0.2 -b -m",
        "multiple 'forwarding-method' options specified",
        2,
    ),
    ("-P -t 1.1.1.1:80 -z nowhere!", "illegal local address", 2),
    ("foo", TRY_HELP, 255),
    ("-n -L", TRY_HELP, 255),
    ("-6 -A", TRY_HELP, 255),
    ("-A -t 1.2.3.4:80 --bogus", "--bogus: unknown option", 255),
    ("-A -t", "-t: missing argument", 255),
    (
        "-A",
        "You need to supply the 'service-address' option for the 'add-service' command",
        2,
    ),
    (
        "-A -t 1.2.3.4",
        "Zero port specified for non-persistent service",
        2,
    ),
    (
        "-A -t 1.2.3.4:80 -t 1.2.3.4:81",
        "multiple 'service-address' options specified",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -g -m",
        "multiple 'forwarding-method' options specified",
        2,
    ),
    ("-A -t 1.2.3.4:80 -D", "invalid option `-D'", 2),
    (
        "-A -t 1.2.3.4:80 -r 1.1.1.1",
        "Illegal 'real-server' option with the 'add-service' command",
        2,
    ),
    (
        "-a -t 1.2.3.4:80",
        "You need to supply the 'real-server' option for the 'add-server' command",
        2,
    ),
    (
        "-L -c --timeout",
        "The option 'timeout' conflicts with the 'connection' option in the 'list' command",
        2,
    ),
    ("-L -c --stats", "options conflicts in the list command", 2),
    (
        "-L --daemon --persistent-conn",
        "options conflicts in the list command",
        2,
    ),
    ("-A -6 -f 1", "-6 used before -f\n", 2),
    (
        "-A -t 1.2.3.4:80 -o",
        "One-Packet Scheduling is only for UDP virtual services",
        2,
    ),
    (
        "-A -t 1.2.3.4:80 -b sh-port",
        "incompatible scheduler flag `sh-port'",
        2,
    ),
    (
        "-A -t 1.2.3.4:80 -s sh -b sh-port,bogus",
        "invalid scheduler flag `bogus'",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r [2001:db8::1]:80 -m",
        "Different address family is allowed only for tunneling servers",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 --tun-type gue",
        "Tunnel options conflict with forward method",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gue",
        "You need to supply the 'tun-port' option for the 'gue' tunnel type",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-port 6080",
        "Illegal 'tun-port' option with the 'ipip' tunnel type",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gue --tun-port 1 --tun-nocsum --tun-csum",
        "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gre --tun-remcsum",
        "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type vxlan",
        "illegal tunnel type specified",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -w 65536",
        "illegal weight specified",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -w -1",
        "illegal weight specified",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -x 2147483648",
        "illegal u_threshold specified",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r 5.6.7.8 -y x",
        "illegal l_threshold specified",
        2,
    ),
    (
        "-a -t 1.2.3.4:80 -r nowhere.invalid",
        "illegal real server address[:port] specified",
        2,
    ),
    (
        "-A -t 80",
        "illegal virtual server address[:port] specified",
        2,
    ),
    ("--set 1 2", "--set option requires 3 timeout values", 2),
    ("--set 1 2 3 4", "unexpected argument 4", 2),
    (
        "--set 1 2 2678401",
        "invalid timeout value `2678401' specified",
        2,
    ),
    ("-L extra", "unexpected argument extra", 2),
    (
        "--start-daemon bogus",
        "illegal start-daemon parameter specified",
        2,
    ),
    ("--stop-daemon bogus", "illegal start_daemon specified", 2),
    (
        "--start-daemon master --syncid 256",
        "illegal syncid specified",
        2,
    ),
    (
        "--start-daemon master --mcast-group 10.0.0.1",
        "invalid IPv4 mcast-group `10.0.0.1'",
        2,
    ),
    (
        "--stop-daemon master --mcast-port 1",
        "Illegal 'mcast-port' option with the 'stop-daemon' command",
        2,
    ),
    ("-A -f 0", "invalid fwmark value `0' specified", 2),
    (
        "-A -f 4294967296",
        "invalid fwmark value `4294967296' specified",
        2,
    ),
    (
        "-A -t 1.2.3.4:80 -p 0",
        "invalid timeout value `0' specified",
        2,
    ),
    (
        "-A -t 1.2.3.4:80 -M bad",
        "illegal virtual server persistent mask specified",
        2,
    ),
    ("-A -t [::1]:80 -M 200", "illegal ipv6 netmask specified", 2),
    (
        "-S -c",
        "Illegal 'connection' option with the 'save' command",
        2,
    ),
    (
        "-C -n",
        "Illegal 'numeric' option with the 'flush' command",
        2,
    ),
];

#[test]
fn refusals_with_ipvsadm_words() {
    let wrong: Vec<String> = REFUSALS
        .iter()
        .filter_map(|&(line, message, code)| {
            let got = match parse(line) {
                Ok(command) => return Some(format!("{line}: accepted as {command:?}")),
                Err(e) => (e.message("ipvsadm"), e.exit_code()),
            };
            (got != (message.to_string(), code))
                .then(|| format!("{line}: {got:?}, not ({message:?}, {code})"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} rows:\n{}",
        wrong.len(),
        REFUSALS.len(),
        wrong.join("\n")
    );
}

fn key(text: &str) -> ServiceKey {
    let (addr, port) = text.rsplit_once(':').unwrap();
    ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: addr.trim_matches(['[', ']']).parse().unwrap(),
        port: port.parse().unwrap(),
    }
}

#[test]
fn what_commands_mean() {
    assert_eq!(
        parse("").unwrap(),
        Command::List {
            what: ListWhat::All,
            format: Default::default()
        }
    );
    let Command::List { what, format } = parse("-Lnc").unwrap() else {
        panic!()
    };
    assert_eq!(what, ListWhat::Connections);
    assert!(format.numeric);
    assert!(matches!(parse("-h").unwrap(), Command::Help));
    assert!(matches!(parse("--version").unwrap(), Command::Version));

    // Persistence: bare -p is 360 s, also before another option; -p N and --persistent=N.
    for (line, timeout) in [
        ("-A -t 1.2.3.4:80 -p", 360),
        ("-A -t 1.2.3.4:80 -p -s rr", 360),
        ("-A -t 1.2.3.4:80 -p 100", 100),
        ("-A -t 1.2.3.4:80 -p100", 100),
        ("-A -t 1.2.3.4:80 --persistent=100", 100),
    ] {
        let Command::AddService(s) = parse(line).unwrap() else {
            panic!("{line}")
        };
        assert_eq!(
            (s.timeout, s.flags & flags::PERSISTENT),
            (timeout, flags::PERSISTENT),
            "{line}"
        );
    }
    // Defaults: wlc, /32.
    let Command::AddService(s) = parse("-At 1.2.3.4:80").unwrap() else {
        panic!()
    };
    assert_eq!((s.scheduler.as_str(), s.netmask), ("wlc", u32::MAX));
    let Command::AddService(s) = parse("-A --tcp-service=1.2.3.4:80 -s rr").unwrap() else {
        panic!()
    };
    assert_eq!(s.key, key("1.2.3.4:80"));
    // Port 0 is fine when persistent.
    assert!(parse("-A -t 1.2.3.4 -p").is_ok());
    // -f then -6: an IPv6 fwmark service with /128.
    let Command::AddService(s) = parse("-A -f 1 -6").unwrap() else {
        panic!()
    };
    assert_eq!(
        (s.key, s.netmask),
        (
            ServiceKey::Fwmark {
                mark: 1,
                family: Family::V6
            },
            128
        )
    );
    // Real server ports: DR and tunnel take the service port; NAT keeps its own or copies.
    let dest_port = |line: &str| match parse(line).unwrap() {
        Command::AddDest(_, d) => (d.port, d.forward),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        dest_port("-a -t 1.2.3.4:80 -r 5.6.7.8:8080"),
        (80, Forward::Route)
    );
    assert_eq!(
        dest_port("-a -t 1.2.3.4:80 -r 5.6.7.8:8080 -i"),
        (80, Forward::Tunnel)
    );
    assert_eq!(
        dest_port("-a -t 1.2.3.4:80 -r 5.6.7.8:8080 -m"),
        (8080, Forward::Masq)
    );
    assert_eq!(
        dest_port("-a -t 1.2.3.4:80 -r 5.6.7.8 -m"),
        (80, Forward::Masq)
    );
    assert_eq!(
        dest_port("-a -r 5.6.7.8 -m -t 1.2.3.4:80"),
        (0, Forward::Masq),
        "order quirk"
    );
    assert_eq!(dest_port("-a -f 7 -r 5.6.7.8"), (0, Forward::Route));
    // Options after the command may come in any order; --sort may repeat.
    assert!(parse("-a -m -t 1.2.3.4:80 -r 5.6.7.8 -w 3").is_ok());
    assert!(parse("-L --sort --sort -n").is_ok());
    let Command::Zero(Some(k)) = parse("-Z -t 1.2.3.4:80").unwrap() else {
        panic!()
    };
    assert_eq!(k, key("1.2.3.4:80"));
}

#[test]
fn seed_experiment_one_command_sequence() {
    let mut t = Table::default();
    for line in [
        "-A -t 1.1.1.254:80 -s rr",
        "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m",
        "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m",
    ] {
        parse(line).unwrap().apply(&mut t).unwrap();
    }
    let list = |t: &Table| {
        let Command::List { what, format } = parse("-L -n").unwrap() else {
            panic!()
        };
        xvs_core::listing::list(t, what, format, &NoNames).unwrap()
    };
    assert_eq!(
        list(&t),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  1.1.1.254:80 rr
  -> 192.168.1.10:80              Masq    1      0          0         
  -> 192.168.1.20:80              Masq    1      0          0         
"
    );
    for line in [
        "-d -t 1.1.1.254:80 -r 192.168.1.20:80",
        "-E -t 1.1.1.254:80 -s wrr",
        "-e -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 2",
    ] {
        parse(line).unwrap().apply(&mut t).unwrap();
    }
    assert_eq!(
        list(&t),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  1.1.1.254:80 wrr
  -> 192.168.1.10:80              Masq    2      0          0         
"
    );
    // -e is a full replace: without -m the method goes back to DR, without -w weight to 1.
    parse("-e -t 1.1.1.254:80 -r 192.168.1.10:80")
        .unwrap()
        .apply(&mut t)
        .unwrap();
    assert!(list(&t).contains("192.168.1.10:80              Route   1"));
    // -E is a full replace too: the scheduler goes back to wlc.
    parse("-E -t 1.1.1.254:80").unwrap().apply(&mut t).unwrap();
    assert!(list(&t).contains("TCP  1.1.1.254:80 wlc"));
    parse("-C").unwrap().apply(&mut t).unwrap();
    assert_eq!(t.services.len(), 0);
}

#[test]
fn a_bad_restore_line_changes_nothing_and_names_its_line() {
    let mut t = Table::default();
    parse("-A -t 1.1.1.254:80 -s rr")
        .unwrap()
        .apply(&mut t)
        .unwrap();
    let before = t.clone();
    let input = "-A -t 10.0.0.1:80 -s rr\n\nipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1 -m\n-a -t 10.0.0.1:80 -r 10.0.1.2 -w 99999\n";
    let e = restore::restore(input, &mut t, &NoNames, "xvsadm").unwrap_err();
    assert_eq!(e.message("xvsadm"), "line 4: illegal weight specified");
    assert_eq!(e.exit_code(), 2);
    assert_eq!(t, before);
    let e = restore::restore("-A -t 1.1.1.254:80 -s rr\n", &mut t, &NoNames, "xvsadm").unwrap_err();
    assert_eq!(e.message("xvsadm"), "line 1: Service already exists");
    assert_eq!(e.exit_code(), 255);
    let e = restore::restore("-R\n", &mut t, &NoNames, "xvsadm").unwrap_err();
    assert_eq!(
        e.message("xvsadm"),
        "line 1: Try `xvsadm -h' or 'xvsadm --help' for more information."
    );
    // Comments are skipped; `ipvsadm` words dropped; the good input applies whole.
    restore::restore(
        "# saved\nipvsadm -A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -m\n",
        &mut t,
        &NoNames,
        "xvsadm",
    )
    .unwrap();
    assert_eq!(t.services.len(), 2);
}

/// FULLNAT's refusals, each with its one message and the table unchanged: a local
/// address of another family, twice, a seventeenth, one not there; one-packet scheduling
/// with FULLNAT servers, either way round.
#[test]
fn fullnat_refusals_leave_the_table_as_it_was() {
    let mut t = Table::default();
    restore::restore(
        "-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 10.0.1.1 -b\n-A -u 1.1.1.254:53 -s rr -o\n-A -u 1.1.1.254:54 -s rr\n-a -u 1.1.1.254:54 -r 10.0.1.1 -b\n",
        &mut t,
        &NoNames,
        "xvsadm",
    )
    .unwrap();
    let before = t.clone();
    for (line, message) in [
        (
            "-P -t 1.1.1.254:80 -z fd00::1",
            "Invalid local address: not unicast, or not of the service's family",
        ),
        ("-P -t 1.1.1.254:81 -z 10.0.0.1", "No such service"),
        ("-Q -t 1.1.1.254:80 -z 10.0.0.1", "No such local address"),
        (
            "-a -u 1.1.1.254:53 -r 10.0.1.1 -b",
            "One-packet scheduling cannot be used with FULLNAT real servers",
        ),
        (
            "-E -u 1.1.1.254:54 -s rr -o",
            "One-packet scheduling cannot be used with FULLNAT real servers",
        ),
    ] {
        let e = parse(line).unwrap().apply(&mut t).unwrap_err();
        assert_eq!(e.to_string(), message, "{line}");
        assert_eq!(t, before, "{line}");
    }
    let mut rules = String::new();
    for i in 1..=16 {
        rules.push_str(&format!("-P -t 1.1.1.254:80 -z 10.0.0.{i}\n"));
    }
    restore::restore(&rules, &mut t, &NoNames, "xvsadm").unwrap();
    let full = t.clone();
    for (line, message) in [
        (
            "-P -t 1.1.1.254:80 -z 10.0.0.1",
            "Local address already exists",
        ),
        (
            "-P -t 1.1.1.254:80 -z 10.0.0.17",
            "Too many local addresses (at most 16 a service)",
        ),
    ] {
        let e = parse(line).unwrap().apply(&mut t).unwrap_err();
        assert_eq!(e.to_string(), message, "{line}");
        assert_eq!(t, full);
    }
    parse("-Q -t 1.1.1.254:80 -z 10.0.0.16")
        .unwrap()
        .apply(&mut t)
        .unwrap();
    assert_eq!(t.services[0].laddrs.len(), 15);
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-A".to_string()),
        Just("-a".to_string()),
        Just("-E".to_string()),
        Just("-e".to_string()),
        Just("-L".to_string()),
        Just("-t".to_string()),
        Just("-u".to_string()),
        Just("-f".to_string()),
        Just("-r".to_string()),
        Just("-p".to_string()),
        Just("-M".to_string()),
        Just("-b".to_string()),
        Just("-6".to_string()),
        Just("--tun-type".to_string()),
        Just("--set".to_string()),
        Just("1.2.3.4:80".to_string()),
        Just("[::1]:80".to_string()),
        "[-a-z0-9:.\\[\\],=]{0,12}",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn the_parser_never_panics(words in proptest::collection::vec(word(), 0..8)) {
        let _ = cli::parse(&words, &NoNames);
    }

    #[test]
    fn restore_never_panics_and_failures_change_nothing(
        lines in proptest::collection::vec(proptest::collection::vec(word(), 0..8), 0..6)
    ) {
        let input: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
        let mut t = Table::default();
        parse("-A -t 1.2.3.4:80").unwrap().apply(&mut t).unwrap();
        let before = t.clone();
        if restore::restore(&input, &mut t, &NoNames, "xvsadm").is_err() {
            prop_assert_eq!(t, before);
        }
    }
}

/// `--proxy-protocol v2`: taken on a TCP service and listed and saved; refused with one
/// message each, the table unchanged, for another version, a UDP service, a real server
/// other than FULLNAT (either way round); `-E` without it turns it off.
#[test]
fn proxy_protocol_is_for_tcp_services_of_fullnat_servers() {
    let mut t = Table::default();
    restore::restore(
        "-A -t 1.1.1.254:80 -s rr --proxy-protocol v2\n-a -t 1.1.1.254:80 -r 10.0.1.1:8080 -b\n-A -t 1.1.1.254:81 -s rr\n-a -t 1.1.1.254:81 -r 10.0.1.1 -m\n",
        &mut t,
        &NoNames,
        "xvsadm",
    )
    .unwrap();
    assert_ne!(t.services[0].flags & xvs_core::model::flags::PROXY_V2, 0);
    let before = t.clone();
    for (line, message) in [
        (
            "-a -t 1.1.1.254:80 -r 10.0.1.2:8080 -m",
            "PROXY protocol is sent on FULLNAT connections only: every real server needs -b",
        ),
        (
            "-e -t 1.1.1.254:80 -r 10.0.1.1:8080 -g",
            "PROXY protocol is sent on FULLNAT connections only: every real server needs -b",
        ),
        (
            "-E -t 1.1.1.254:81 -s rr --proxy-protocol v2",
            "PROXY protocol is sent on FULLNAT connections only: every real server needs -b",
        ),
    ] {
        let e = parse(line).unwrap().apply(&mut t).unwrap_err();
        assert_eq!(e.to_string(), message, "{line}");
        assert_eq!(t, before, "{line}");
    }
    for (line, message) in [
        (
            "-A -u 1.1.1.254:53 -s rr --proxy-protocol v2",
            "PROXY protocol is only for TCP virtual services",
        ),
        (
            "-A -t 1.1.1.254:82 --proxy-protocol v1",
            "proxy-protocol `v1' is not supported: xvs sends v2 (`--proxy-protocol v2')",
        ),
        (
            "-A -t 1.1.1.254:82 --proxy-protocol v3",
            "illegal proxy-protocol `v3' (v2 or disable)",
        ),
        (
            "-a -t 1.1.1.254:82 -r 10.0.1.1 -b --proxy-protocol v2",
            "Illegal 'proxy-protocol' option with the 'add-server' command",
        ),
    ] {
        match parse(line) {
            Err(CliError::Fail(text)) => assert!(text.contains(message), "{line}: {text}"),
            other => panic!("{line}: {other:?}"),
        }
    }
    parse("-E -t 1.1.1.254:80 -s rr")
        .unwrap()
        .apply(&mut t)
        .unwrap();
    assert_eq!(t.services[0].flags & xvs_core::model::flags::PROXY_V2, 0);
}
