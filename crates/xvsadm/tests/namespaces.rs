//! xvsadm as an operator runs it: `ip netns exec NS xvsadm …`, one process per command,
//! the table kept by the namespace between them, and no other namespace seeing it.

use std::process::{Output, Stdio};

use xvs_lab::{Lab, LabBuilder};

const XVSADM: &str = env!("CARGO_BIN_EXE_xvsadm");

fn lab() -> Lab {
    LabBuilder::new()
        .host("director")
        .host("other")
        .build()
        .unwrap()
}

fn xvsadm(lab: &Lab, host: &str, line: &str) -> Output {
    let mut argv = vec![XVSADM];
    argv.extend(line.split_whitespace());
    lab.run(host, &argv).unwrap()
}

#[track_caller]
fn ok(lab: &Lab, host: &str, line: &str) -> String {
    let out = xvsadm(lab, host, line);
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[track_caller]
fn refused(lab: &Lab, host: &str, line: &str) -> (i32, String) {
    let out = xvsadm(lab, host, line);
    assert!(out.stdout.is_empty(), "{line} printed to stdout");
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn restore(lab: &Lab, host: &str, input: &str) -> Output {
    lab.feed(lab.command(host, &[XVSADM, "-R"]), input).unwrap()
}

const EMPTY: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
";

#[test]
fn the_seed_commands_one_process_each_and_the_table_stays_in_its_namespace() {
    let lab = lab();
    assert_eq!(ok(&lab, "director", "-L -n"), EMPTY);
    ok(&lab, "director", "-A -t 1.1.1.254:80 -s rr");
    ok(&lab, "director", "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m");
    ok(&lab, "director", "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m");
    assert_eq!(
        ok(&lab, "director", "-L -n"),
        format!(
            "{EMPTY}TCP  1.1.1.254:80 rr
  -> 192.168.1.10:80              Masq    1      0          0         
  -> 192.168.1.20:80              Masq    1      0          0         
"
        )
    );
    assert_eq!(
        ok(&lab, "other", "-L -n"),
        EMPTY,
        "another namespace sees nothing"
    );
    assert_eq!(
        ok(&lab, "director", "-L -n --stats"),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  1.1.1.254:80                        0        0        0        0        0
  -> 192.168.1.10:80                     0        0        0        0        0
  -> 192.168.1.20:80                     0        0        0        0        0
"
    );
    ok(&lab, "director", "-d -t 1.1.1.254:80 -r 192.168.1.20:80");
    ok(&lab, "director", "-E -t 1.1.1.254:80 -s wrr");
    ok(
        &lab,
        "director",
        "-e -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 2",
    );
    assert_eq!(
        ok(&lab, "director", "-Ln"),
        format!(
            "{EMPTY}TCP  1.1.1.254:80 wrr
  -> 192.168.1.10:80              Masq    2      0          0         
"
        )
    );
    ok(&lab, "director", "--set 1000 0 30");
    assert_eq!(
        ok(&lab, "director", "-L --timeout"),
        "Timeout (tcp tcpfin udp): 1000 120 30\n"
    );
    ok(&lab, "director", "-C");
    assert_eq!(ok(&lab, "director", "-L -n"), EMPTY);
}

#[test]
fn refusals_print_ipvsadm_words_and_exit_codes() {
    let lab = lab();
    ok(&lab, "director", "-A -t 1.1.1.254:80 -s rr");
    assert_eq!(
        refused(&lab, "director", "-A -t 1.1.1.254:80 -s rr"),
        (255, "Service already exists\n".into())
    );
    assert_eq!(
        refused(&lab, "director", "-A -t 1.1.1.254:81 -s nosuch"),
        (255, "Scheduler or persistence engine not found\n".into())
    );
    assert_eq!(
        refused(&lab, "director", "-L -n -t 1.1.1.254:99"),
        (1, "No such service\n".into())
    );
    assert_eq!(
        refused(&lab, "director", "-a -t 1.1.1.254:80 -r 10.0.0.1 -w 70000"),
        (2, "illegal weight specified\n".into())
    );
    let (code, text) = refused(&lab, "director", "--bogus");
    assert_eq!(code, 255);
    assert!(text.starts_with("Try `") && text.ends_with(" --help' for more information.\n"));
    assert_eq!(
        refused(&lab, "director", "-d -t 1.1.1.254:80 -r 10.0.0.9"),
        (255, "No such destination\n".into())
    );
    // ipvsadm takes SCTP services; xvs's datapath does not forward them: refused, not
    // stored and listed for nothing.
    let (code, text) = refused(&lab, "director", "-A --sctp-service 1.1.1.254:80 -s rr");
    assert_eq!(code, 255);
    assert!(
        text.contains("SCTP services are not forwarded by xvs"),
        "{text}"
    );
    assert!(!ok(&lab, "director", "-L -n").contains("SCTP"));
    let (code, text) = refused(&lab, "director", "--start-daemon master");
    assert_ne!(code, 0);
    assert_eq!(text.lines().count(), 1);
    // A refused change creates nothing in a namespace that had no table.
    assert_eq!(
        refused(&lab, "other", "-D -t 1.1.1.254:80"),
        (255, "No such service\n".into())
    );
    let links = lab.run_ok("other", &["ip", "link", "show", "lo"]).unwrap();
    assert!(!links.contains("xdp"), "{links}");
    assert!(ok(&lab, "director", "-v").starts_with("ipvsadm v1.31"));
    assert!(ok(&lab, "director", "-h").contains("--add-service     -A"));
}

#[test]
fn save_restore_round_trip_and_a_bad_restore_changes_nothing() {
    let lab = lab();
    let rules = "-A -t 10.0.0.1:80 -s wrr
-a -t 10.0.0.1:80 -r 192.168.0.1:80 -m -w 3
-a -t 10.0.0.1:80 -r 192.168.0.2:80 -m -w 1
-A -u 10.0.0.1:53 -s sh -o -b sh-port
-a -u 10.0.0.1:53 -r 192.168.0.3:53 -g -w 1
-A -f 7 -s rr -p 300
-a -f 7 -r 192.168.0.4:0 -i -w 1 --tun-type ipip
-A -t [2001:db8::1]:443 -s mh -b mh-fallback
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m -w 5
";
    let out = restore(&lab, "director", rules);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = ok(&lab, "director", "-S -n");
    ok(&lab, "director", "-C");
    let out = restore(&lab, "director", &saved);
    assert!(out.status.success());
    assert_eq!(ok(&lab, "director", "-S -n"), saved);

    let before = ok(&lab, "director", "-L -n");
    let bad = "-A -t 10.9.9.9:80 -s rr\n-a -t 10.9.9.9:80 -r 10.9.9.10 -m\n-a -t 10.0.0.1:80 -r 192.168.0.1:80 -m\n";
    let out = restore(&lab, "director", bad);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "line 3: Destination already exists\n"
    );
    assert_eq!(
        ok(&lab, "director", "-L -n"),
        before,
        "nothing of it applied"
    );
}

#[test]
fn concurrent_xvsadm_processes_lose_nothing() {
    let lab = lab();
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let script: String = (0..8)
                .map(|s| {
                    format!(
                        "{XVSADM} -A -t 10.{w}.{s}.1:80 -s rr && {XVSADM} -a -t 10.{w}.{s}.1:80 -r 192.168.{w}.{s} -m || exit 1\n"
                    )
                })
                .collect();
            lab.command("director", &["sh", "-c", &script])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut worker in workers {
        assert!(worker.wait().unwrap().success());
    }
    let saved = ok(&lab, "director", "-S -n");
    assert_eq!(saved.lines().filter(|l| l.starts_with("-A")).count(), 48);
    assert_eq!(saved.lines().filter(|l| l.starts_with("-a")).count(), 48);
}

#[test]
fn without_root_every_command_says_so_as_ipvsadm_does() {
    let lab = lab();
    // `nobody`, with no capabilities: what an operator gets who forgot sudo.
    let as_nobody = |host: &str, line: &str| -> (Option<i32>, String) {
        let mut argv = vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            XVSADM,
        ];
        argv.extend(line.split_whitespace());
        let out = lab.run(host, &argv).unwrap();
        assert!(out.stdout.is_empty(), "{line} printed to stdout");
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    ok(&lab, "director", "-A -t 10.0.0.1:80 -s rr");
    let denied = (
        Some(2),
        "Can't initialize xvs: Permission denied (you must be root)\n".to_string(),
    );
    let mut wrong = Vec::new();
    for host in ["director", "other"] {
        for line in [
            "-L -n",
            "-L -n -c",
            "-L -n --stats",
            "-S -n",
            "-A -t 10.0.0.2:80",
            "-a -t 10.0.0.1:80 -r 192.168.0.1",
            "-C",
            "-Z",
        ] {
            let got = as_nobody(host, line);
            if got != denied {
                wrong.push(format!("{host}: {line}: {got:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "not refused plainly:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        ok(&lab, "director", "-S -n"),
        "-A -t 10.0.0.1:80 -s rr\n",
        "nothing changed"
    );
}
