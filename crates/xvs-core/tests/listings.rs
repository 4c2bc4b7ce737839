//! Every listing format against ipvsadm's own output (shared/reference/ipvsadm-examples,
//! copied next to this file), built from the ipvsadm commands an operator would type.

use std::net::IpAddr;

use xvs_core::{
    cli::{self, Command, Format, ListWhat},
    listing::{self, ConnectionEntry},
    model::Stats,
    restore,
    table::Table,
    text::NoNames,
};

fn example(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/ipvsadm-examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn run(table: &mut Table, line: &str) {
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let command = cli::parse(&words, &NoNames).unwrap_or_else(|e| panic!("{line}: {e:?}"));
    command
        .apply(table)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
}

fn listing(table: &Table, line: &str) -> String {
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    match cli::parse(&words, &NoNames).unwrap() {
        Command::List { what, format } => listing::list(table, what, format, &NoNames).unwrap(),
        Command::Save { numeric } => listing::save(table, numeric, &NoNames),
        other => panic!("not a listing: {other:?}"),
    }
}

/// The examples' full table, entered in an order unlike the listing's.
fn full_table() -> Table {
    let mut t = Table::default();
    for line in [
        "-A -f 1 -s rr -p 300",
        "-a -f 1 -r 192.168.10.1 -g",
        "-A -t [2001:db8::80]:80 -s rr",
        "-a -t [2001:db8::80]:80 -r [2001:db8::a0a0]:80 -m",
        "-A -u 207.175.44.110:53 -s sh -o -b sh-fallback,sh-port",
        "-a -u 207.175.44.110:53 -r 192.168.10.3 -m -w 5",
        "-A -t 207.175.44.120:80 -s rr",
        "-a -t 207.175.44.120:80 -r 192.168.11.3 -i",
        "-a -t 207.175.44.120:80 -r 192.168.11.2 -i --tun-type gue --tun-port 6080",
        "-a -t 207.175.44.120:80 -r 192.168.11.1 -i --tun-type gre --tun-csum",
        "-A -t 207.175.44.110:443 -p -M 255.255.255.0",
        "-a -t 207.175.44.110:443 -r 192.168.10.1:443 -w 2",
        "-A -t 207.175.44.110:80 -s rr",
        "-a -t 207.175.44.110:80 -r 192.168.10.2:8080 -m",
        "-a -t 207.175.44.110:80 -r 192.168.10.1:80 -m",
    ] {
        run(&mut t, line);
    }
    set_conns(&mut t, "207.175.44.110:80", "192.168.10.1", 3, 12, 0);
    set_conns(&mut t, "207.175.44.110:443", "192.168.10.1", 1, 0, 1);
    set_conns(&mut t, "207.175.44.110:53", "192.168.10.3", 0, 7, 0);
    t
}

fn service_mut<'a>(t: &'a mut Table, vip: &str) -> &'a mut xvs_core::model::Service {
    let (addr, port) = vip.rsplit_once(':').unwrap();
    let addr: IpAddr = addr.parse().unwrap();
    let port: u16 = port.parse().unwrap();
    t.services
        .iter_mut()
        .find(|s| matches!(s.key, xvs_core::model::ServiceKey::Inet { addr: a, port: p, .. } if a == addr && p == port))
        .unwrap()
}

fn set_conns(t: &mut Table, vip: &str, rip: &str, active: u32, inactive: u32, persistent: u32) {
    let rip: IpAddr = rip.parse().unwrap();
    let dest = service_mut(t, vip)
        .dests
        .iter_mut()
        .find(|d| d.addr == rip)
        .unwrap();
    dest.conns.active = active;
    dest.conns.inactive = inactive;
    dest.conns.persistent = persistent;
}

/// The two-service table of the stats, rate, thresholds and persistent-conn examples.
fn small_table() -> Table {
    let mut t = Table::default();
    for line in [
        "-A -t 207.175.44.110:80 -s rr",
        "-a -t 207.175.44.110:80 -r 192.168.10.1:80 -m -x 100 -y 50",
        "-a -t 207.175.44.110:80 -r 192.168.10.2:8080 -m",
        "-A -t 207.175.44.110:443 -p -M 255.255.255.0",
        "-a -t 207.175.44.110:443 -r 192.168.10.1:443 -w 2",
    ] {
        run(&mut t, line);
    }
    set_conns(&mut t, "207.175.44.110:80", "192.168.10.1", 3, 12, 0);
    set_conns(&mut t, "207.175.44.110:443", "192.168.10.1", 1, 0, 1);
    let busy = Stats {
        conns: 1234,
        inpkts: 56789,
        outpkts: 50000,
        inbytes: 123_456_789,
        outbytes: 2_000_000_000,
        cps: 2,
        inpps: 30,
        outpps: 25,
        inbps: 4000,
        outbps: 150_000,
    };
    let service = service_mut(&mut t, "207.175.44.110:80");
    service.stats = busy;
    let rip: IpAddr = "192.168.10.1".parse().unwrap();
    service
        .dests
        .iter_mut()
        .find(|d| d.addr == rip)
        .unwrap()
        .stats = busy;
    t
}

#[test]
fn plain_listing() {
    assert_eq!(listing(&full_table(), "-L -n"), example("list-n.txt"));
    assert_eq!(listing(&full_table(), "-Ln"), example("list-n.txt"));
}

#[test]
fn tun_info_listing() {
    assert_eq!(
        listing(&full_table(), "-L -n --tun-info"),
        example("list-n-tun-info.txt")
    );
}

#[test]
fn save_rules() {
    assert_eq!(listing(&full_table(), "-S -n"), example("save-n.txt"));
}

#[test]
fn stats_rate_thresholds_persistent_conn() {
    let t = small_table();
    assert_eq!(listing(&t, "-L -n --stats"), example("list-n-stats.txt"));
    assert_eq!(
        listing(&t, "-L -n --stats --exact"),
        example("list-n-stats-exact.txt")
    );
    assert_eq!(listing(&t, "-L -n --rate"), example("list-n-rate.txt"));
    assert_eq!(
        listing(&t, "-L -n --thresholds"),
        example("list-n-thresholds.txt")
    );
    assert_eq!(
        listing(&t, "-L -n --persistent-conn"),
        example("list-n-persistent-conn.txt")
    );
}

#[test]
fn connection_listing() {
    let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
    let entry = |protocol, c: (&str, u16), v: (&str, u16), d: (&str, u16), state, expires| {
        ConnectionEntry {
            protocol,
            client: (v4(c.0), c.1),
            virtual_: (v4(v.0), v.1),
            dest: (v4(d.0), d.1),
            local: None,
            state,
            expires_seconds: expires,
            pe: None,
        }
    };
    let entries = [
        entry(
            "TCP",
            ("10.0.0.2", 45678),
            ("207.175.44.110", 80),
            ("192.168.10.1", 80),
            "ESTABLISHED",
            899,
        ),
        entry(
            "TCP",
            ("10.0.0.2", 45680),
            ("207.175.44.110", 80),
            ("192.168.10.2", 8080),
            "FIN_WAIT",
            119,
        ),
        entry(
            "UDP",
            ("10.0.0.2", 5353),
            ("207.175.44.110", 53),
            ("192.168.10.3", 53),
            "UDP",
            298,
        ),
        entry(
            "TCP",
            ("10.0.0.2", 0),
            ("207.175.44.110", 443),
            ("192.168.10.1", 443),
            "NONE",
            359,
        ),
        entry(
            "IP",
            ("10.0.0.0", 0),
            ("0.0.0.1", 0),
            ("192.168.10.1", 0),
            "ASSURED",
            7200,
        ),
        entry(
            "TCP",
            ("2001:db8::5", 40000),
            ("2001:db8::80", 80),
            ("2001:db8::a0a0", 80),
            "ESTABLISHED",
            59,
        ),
    ];
    let mut out = String::new();
    let format = Format {
        numeric: true,
        ..Format::default()
    };
    listing::list_connections(&mut out, &entries, format, &NoNames);
    assert_eq!(out, example("list-n-c.txt"));
}

/// With FULLNAT connections in the table, a local column comes in (DPVS's order: source,
/// virtual, local, destination); other connections show `-` there.
#[test]
fn connection_listing_with_fullnat() {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let base = ConnectionEntry {
        protocol: "TCP",
        client: (ip("1.1.1.1"), 41000),
        virtual_: (ip("1.1.1.254"), 80),
        dest: (ip("192.168.5.10"), 80),
        local: Some((ip("10.0.0.253"), 5123)),
        state: "ESTABLISHED",
        expires_seconds: 899,
        pe: None,
    };
    let dr = ConnectionEntry {
        local: None,
        client: (ip("1.1.1.2"), 41001),
        ..base.clone()
    };
    let mut out = String::new();
    let format = Format {
        numeric: true,
        ..Format::default()
    };
    listing::list_connections(&mut out, &[base, dr], format, &NoNames);
    assert_eq!(
        out,
        "IPVS connection entries\n\
         pro expire state       source             virtual            local              destination\n\
         TCP 14:59  ESTABLISHED 1.1.1.1:41000      1.1.1.254:80       10.0.0.253:5123    192.168.5.10:80\n\
         TCP 14:59  ESTABLISHED 1.1.1.2:41001      1.1.1.254:80       -                  192.168.5.10:80\n"
    );
}

/// FULLNAT real servers list as DPVS lists them (`FullNat`), save with `-b`, and the
/// service's local addresses save as the `-P` lines that restore them; `--get-laddr`
/// prints DPVS's table.
#[test]
fn fullnat_servers_and_local_addresses_list_save_and_restore() {
    let rules = "-A -t 1.1.1.254:80 -s rr\n\
                 -a -t 1.1.1.254:80 -r 192.168.5.10:80 -b -w 1\n\
                 -P -t 1.1.1.254:80 -z 10.0.0.253 -F eth1\n\
                 -P -t 1.1.1.254:80 -z 10.0.0.252\n";
    let mut table = Table::default();
    restore::restore(rules, &mut table, &NoNames, "xvsadm").unwrap();
    assert!(
        listing(&table, "-L -n")
            .contains("  -> 192.168.5.10:80              FullNat 1      0          0         \n")
    );
    let saved = listing::save(&table, true, &NoNames);
    assert_eq!(saved, rules);
    let mut again = Table::default();
    restore::restore(&saved, &mut again, &NoNames, "xvsadm").unwrap();
    assert_eq!(again, table);
    let mut out = String::new();
    listing::list_local_addresses(&mut out, &table.services.iter().collect::<Vec<_>>());
    assert_eq!(
        out,
        "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n\
         1.1.1.254:80         2        \n\
         \x20                             10.0.0.253           0          0         \n\
         \x20                             10.0.0.252           0          0         \n"
    );
}

#[test]
fn one_service_empty_table_timeouts() {
    let t = full_table();
    let one = listing(&t, "-L -n -t 207.175.44.110:443");
    assert_eq!(
        one,
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  207.175.44.110:443 wlc persistent 360 mask 255.255.255.0\n  -> 192.168.10.1:443             Route   2      1          0         \n"
    );
    let words: Vec<String> = ["-L", "-n", "-t", "9.9.9.9:1"].map(String::from).to_vec();
    let Command::List { what, format } = cli::parse(&words, &NoNames).unwrap() else {
        panic!()
    };
    assert_eq!(
        what,
        ListWhat::Service(match cli::parse(&words, &NoNames).unwrap() {
            Command::List {
                what: ListWhat::Service(k),
                ..
            } => k,
            _ => unreachable!(),
        })
    );
    let missing = listing::list(&t, what, format, &NoNames).unwrap_err();
    assert_eq!(missing.to_string(), "No such service");

    assert_eq!(
        listing(&Table::default(), "-L -n"),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
    let mut t = Table::default();
    assert_eq!(
        listing(&t, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    run(&mut t, "--set 0 60 0");
    assert_eq!(
        listing(&t, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 60 300\n"
    );
    assert_eq!(listing(&t, "-L --daemon"), "");
}

#[test]
fn save_then_restore_rebuilds_the_same_table() {
    let original = full_table();
    let saved = listing::save(&original, true, &NoNames);
    let mut rebuilt = Table::default();
    restore::restore(&saved, &mut rebuilt, &NoNames, "ipvsadm").unwrap();
    assert_eq!(listing::save(&rebuilt, true, &NoNames), saved);
    // Real servers come back in the same list order too (it decides scheduling).
    let addrs = |t: &Table| -> Vec<Vec<IpAddr>> {
        let mut services: Vec<_> = t.services.iter().collect();
        services.sort_by_key(|s| format!("{:?}", s.key));
        services
            .iter()
            .map(|s| {
                let mut a: Vec<IpAddr> = s.dests.iter().map(|d| d.addr).collect();
                a.sort();
                a
            })
            .collect()
    };
    assert_eq!(addrs(&rebuilt), addrs(&original));
}

#[test]
fn the_signed_difference_quirk_orders_far_apart_addresses_backwards() {
    let mut t = Table::default();
    for vip in ["10.0.0.1:80", "207.175.44.110:80", "192.168.0.1:80"] {
        run(&mut t, &format!("-A -t {vip} -s rr"));
    }
    let order: Vec<String> = listing(&t, "-L -n")
        .lines()
        .skip(3)
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    // 10.0.0.1 sorts after both (ipvsadm's order, not numeric order).
    assert_eq!(
        order,
        ["192.168.0.1:80", "207.175.44.110:80", "10.0.0.1:80"]
    );
    // --nosort: creation order.
    let created: Vec<String> = listing(&t, "-L -n --nosort")
        .lines()
        .skip(3)
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        created,
        ["10.0.0.1:80", "207.175.44.110:80", "192.168.0.1:80"]
    );
}

#[test]
fn large_numbers() {
    use listing::large_number as n;
    assert_eq!(n(99_999_999, false), " 99999999");
    assert_eq!(n(100_000_000, false), "  100000K");
    assert_eq!(n(999_999_999, false), "  999999K");
    assert_eq!(n(1_000_000_000, false), "    1000M");
    assert_eq!(n(100_000_000_000, false), "     100G");
    assert_eq!(n(100_000_000_000_000, false), "     100T");
    assert_eq!(n(12, true), "       12");
    assert_eq!(n(123_456_789, true), " 123456789");
}
