//! ipvsadm's connection sync daemons as xvsadm starts, lists and stops them, in a lab of
//! two directors on one segment with the client and two DR real servers: connections
//! made through the master director are in the backup's table, and once the VIP moves to
//! the backup (here by hand, as an operator's script or keepalived would) they go on.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use xvs_lab::{Lab, ServerKind, topology};

const XVSADM: &str = env!("CARGO_BIN_EXE_xvsadm");
const VIP: &str = topology::VIP;

fn lab() -> Lab {
    topology::two_directors().build().unwrap()
}

/// xvsadm in `host`: its exit code, stdout and stderr.
fn xvsadm(lab: &Lab, host: &str, line: &str) -> (i32, String, String) {
    let mut argv = vec![XVSADM];
    argv.extend(line.split_whitespace());
    let out = lab.run(host, &argv).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(lab: &Lab, host: &str, line: &str) -> String {
    let (code, out, err) = xvsadm(lab, host, line);
    assert_eq!(code, 0, "xvsadm {line} in {host}: {err}");
    out
}

fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn echo(stream: &mut TcpStream, text: &str) {
    stream.write_all(text.as_bytes()).unwrap();
    let mut back = vec![0u8; text.len()];
    stream
        .read_exact(&mut back)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(back, text.as_bytes());
}

#[test]
fn sync_daemons_started_listed_and_stopped_as_ipvsadm_does_and_connections_move() {
    let mut lab = lab();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Echo).unwrap();
    }
    for host in ["d1", "d2"] {
        ok(&lab, host, &format!("-A -t {VIP}:80 -s rr"));
        ok(&lab, host, &format!("-a -t {VIP}:80 -r 1.1.1.10:80 -g"));
        ok(&lab, host, &format!("-a -t {VIP}:80 -r 1.1.1.20:80 -g"));
        // Nothing runs yet: nothing listed, nothing to stop.
        assert_eq!(ok(&lab, host, "-L --daemon"), "");
    }
    assert_eq!(
        xvsadm(&lab, "d1", "--stop-daemon master"),
        (255, String::new(), "No daemon is running\n".to_string())
    );
    assert_eq!(
        xvsadm(
            &lab,
            "d1",
            "--start-daemon master --mcast-interface nosuch0"
        )
        .2,
        "No such device\n"
    );

    ok(
        &lab,
        "d1",
        "--start-daemon master --mcast-interface eth0 --syncid 7",
    );
    ok(
        &lab,
        "d2",
        "--start-daemon backup --mcast-interface eth0 --syncid 7",
    );
    assert_eq!(
        ok(&lab, "d1", "-L --daemon"),
        "master sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    assert_eq!(
        ok(&lab, "d2", "-L --daemon"),
        "backup sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    assert_eq!(
        xvsadm(&lab, "d1", "--start-daemon master --mcast-interface eth0").2,
        "Daemon has already run\n"
    );

    // The VIP on d1: four connections through it, spread by rr over both servers.
    lab.run_ok(
        "d1",
        &["ip", "addr", "add", &format!("{VIP}/24"), "dev", "eth0"],
    )
    .unwrap();
    let vip: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let mut streams: Vec<TcpStream> = lab
        .within("client", || {
            (0..4)
                .map(|_| {
                    let stream = TcpStream::connect_timeout(&vip, Duration::from_secs(5)).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    stream
                })
                .collect()
        })
        .unwrap();
    for (i, stream) in streams.iter_mut().enumerate() {
        echo(stream, &format!("through d1 {i}\n"));
    }
    let established = |host: &str| {
        ok(&lab, host, "-L -c -n")
            .lines()
            .filter(|l| l.contains("ESTABLISHED"))
            .map(|l| {
                let mut words: Vec<&str> = l.split_whitespace().collect();
                // Expiry counts down: leave it out.
                words.remove(1);
                words.join(" ")
            })
            .collect::<Vec<_>>()
    };
    until("d2 lists d1's connections", || established("d2").len() == 4);
    let mut on_d1 = established("d1");
    let mut on_d2 = established("d2");
    on_d1.sort();
    on_d2.sort();
    assert_eq!(on_d2, on_d1, "the same clients to the same real servers");

    // The VIP moves to d2 (the client learns its MAC anew).
    lab.run_ok(
        "d1",
        &["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"],
    )
    .unwrap();
    lab.run_ok(
        "d2",
        &["ip", "addr", "add", &format!("{VIP}/24"), "dev", "eth0"],
    )
    .unwrap();
    lab.run_ok("client", &["ip", "neigh", "flush", "dev", "eth0"])
        .unwrap();
    for (i, stream) in streams.iter_mut().enumerate() {
        echo(stream, &format!("through d2 {i}\n"));
    }

    ok(&lab, "d1", "--stop-daemon master");
    ok(&lab, "d2", "--stop-daemon backup");
    for host in ["d1", "d2"] {
        assert_eq!(ok(&lab, host, "-L --daemon"), "");
    }
}
