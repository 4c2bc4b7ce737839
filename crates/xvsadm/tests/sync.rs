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

/// The lab of two directors, with echo servers on both real servers.
fn lab() -> Lab {
    let mut lab = topology::two_directors().build().unwrap();
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Echo).unwrap();
    }
    lab
}

/// The VIP's port 80 on `host`, rr over `real_servers` (DR).
fn service(lab: &Lab, host: &str, real_servers: &[&str]) {
    ok(lab, host, &format!("-A -t {VIP}:80 -s rr"));
    for server in real_servers {
        ok(lab, host, &format!("-a -t {VIP}:80 -r {server}:80 -g"));
    }
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
    let lab = lab();
    for host in ["d1", "d2"] {
        service(&lab, host, &["1.1.1.10", "1.1.1.20"]);
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

    let mut streams = four_through_d1(&lab);
    until("d2 lists d1's connections", || {
        established(&lab, "d2").len() == 4
    });
    assert_eq!(
        established(&lab, "d2"),
        established(&lab, "d1"),
        "the same clients to the same real servers"
    );

    vip_moves_to_d2(&lab);
    for (i, stream) in streams.iter_mut().enumerate() {
        echo(stream, &format!("through d2 {i}\n"));
    }

    ok(&lab, "d1", "--stop-daemon master");
    ok(&lab, "d2", "--stop-daemon backup");
    for host in ["d1", "d2"] {
        assert_eq!(ok(&lab, host, "-L --daemon"), "");
    }
}

/// Connection sync over IPv6 (`--mcast-group ff02::51`, as ipvsadm takes an IPv6 group):
/// listed with IPVS's IPv6 default message size, and the backup holds the master's
/// connections, which go on through it once the VIP moves.
#[test]
fn sync_daemons_over_an_ipv6_group() {
    let lab = lab();
    for host in ["d1", "d2"] {
        service(&lab, host, &["1.1.1.10", "1.1.1.20"]);
    }
    assert_eq!(
        xvsadm(
            &lab,
            "d1",
            "--start-daemon master --mcast-interface eth0 --mcast-group fd00::51"
        )
        .2,
        "invalid IPv6 mcast-group `fd00::51'\n"
    );
    ok(
        &lab,
        "d1",
        "--start-daemon master --mcast-interface eth0 --mcast-group ff02::51",
    );
    ok(
        &lab,
        "d2",
        "--start-daemon backup --mcast-interface eth0 --mcast-group ff02::51",
    );
    assert_eq!(
        ok(&lab, "d1", "-L --daemon"),
        "master sync daemon (mcast=eth0, syncid=0, maxlen=1452, group=ff02::51, port=8848, ttl=1)\n"
    );
    let mut streams = four_through_d1(&lab);
    until("d2 lists d1's connections", || {
        established(&lab, "d2").len() == 4
    });
    assert_eq!(established(&lab, "d2"), established(&lab, "d1"));
    vip_moves_to_d2(&lab);
    for (i, stream) in streams.iter_mut().enumerate() {
        echo(stream, &format!("through d2 {i}\n"));
    }
    ok(&lab, "d1", "--stop-daemon master");
    ok(&lab, "d2", "--stop-daemon backup");
}

/// A backup configured after its master (or whose health checks have not yet added a real
/// server back): the records of connections to a real server it does not have wait, and
/// once the server is added there they are placed, and go on through it.
#[test]
fn a_backup_places_the_connections_of_a_real_server_added_after_they_came() {
    let lab = lab();
    service(&lab, "d1", &["1.1.1.10", "1.1.1.20"]);
    service(&lab, "d2", &["1.1.1.10"]);
    ok(&lab, "d1", "--start-daemon master --mcast-interface eth0");
    ok(&lab, "d2", "--start-daemon backup --mcast-interface eth0");

    let mut streams = four_through_d1(&lab);
    until("d2 lists the connections to 1.1.1.10", || {
        established(&lab, "d2").len() == 2
    });
    ok(&lab, "d2", &format!("-a -t {VIP}:80 -r 1.1.1.20:80 -g"));
    // Told once: the master sends them again only before d2's copy would run out (in
    // 450 s), so these are the records that waited.
    until("d2 lists every connection", || {
        established(&lab, "d2").len() == 4
    });
    assert_eq!(established(&lab, "d2"), established(&lab, "d1"));

    vip_moves_to_d2(&lab);
    for (i, stream) in streams.iter_mut().enumerate() {
        echo(stream, &format!("through d2 {i}\n"));
    }
    ok(&lab, "d1", "--stop-daemon master");
    ok(&lab, "d2", "--stop-daemon backup");
}

/// SIP calls (`-p -M 0.0.0.0 -o --pe sip`) keep their real servers across a failover:
/// each call's template travels with its Call-ID (IPVS's persistence-engine options), so
/// the backup sends a call's next message where the master sent its first. (The backup
/// lists its real servers in the other order: scheduling afresh there would send each
/// call elsewhere.)
#[test]
fn sip_calls_keep_their_real_servers_across_a_failover() {
    let mut lab = lab();
    for web in ["web1", "web2"] {
        let listen = format!("UDP4-RECVFROM:5060,bind={VIP},fork");
        let answer = format!("SYSTEM:echo {web}");
        lab.spawn(web, &["socat", &listen, &answer]).unwrap();
    }
    for web in ["web1", "web2"] {
        until("socat listens", || {
            lab.run_ok(web, &["ss", "-Huln", "sport", "5060"])
                .unwrap()
                .contains(&format!("{VIP}:5060"))
        });
    }
    for (host, servers) in [
        ("d1", ["1.1.1.10", "1.1.1.20"]),
        ("d2", ["1.1.1.20", "1.1.1.10"]),
    ] {
        ok(
            &lab,
            host,
            &format!("-A -u {VIP}:5060 -s rr -p 60 -M 0.0.0.0 -o --pe sip"),
        );
        for server in servers {
            ok(&lab, host, &format!("-a -u {VIP}:5060 -r {server} -g"));
        }
    }
    ok(&lab, "d1", "--start-daemon master --mcast-interface eth0");
    ok(&lab, "d2", "--start-daemon backup --mcast-interface eth0");
    lab.run_ok(
        "d1",
        &["ip", "addr", "add", &format!("{VIP}/24"), "dev", "eth0"],
    )
    .unwrap();
    // A message of `call` from a socket of its own: the answering server's name.
    let send = |call: &str, method: &str| {
        let message = format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 1.1.1.1\r\n\
             Call-ID: {call}\r\nCSeq: 1 {method}\r\n\r\n"
        );
        lab.within("client", move || {
            // Sent again after 2 s without an answer, as SIP over UDP retransmits (the
            // director may still be resolving a real server's MAC on a loaded machine).
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut answer = [0u8; 64];
            for _ in 0..5 {
                socket
                    .send_to(message.as_bytes(), format!("{VIP}:5060"))
                    .unwrap();
                if let Ok(n) = socket.recv(&mut answer) {
                    return String::from_utf8_lossy(&answer[..n]).into_owned();
                }
            }
            panic!("no answer to {message:?}")
        })
        .unwrap()
    };
    let calls = ["c1@client", "c2@client", "c3@client", "c4@client"];
    let first: Vec<String> = calls.iter().map(|call| send(call, "INVITE")).collect();
    let mut spread = first.clone();
    spread.sort();
    assert_eq!(spread, ["web1\n", "web1\n", "web2\n", "web2\n"]);
    until("d2 lists the four calls", || {
        let listed = ok(&lab, "d2", "-L -n -c --persistent-conn");
        calls
            .iter()
            .all(|call| listed.contains(&format!(" sip                {call}")))
    });

    vip_moves_to_d2(&lab);
    for (call, server) in calls.iter().zip(&first) {
        assert_eq!(&send(call, "BYE"), server, "{call} after the failover");
    }
    ok(&lab, "d1", "--stop-daemon master");
    ok(&lab, "d2", "--stop-daemon backup");
}

/// The VIP on d1, and four connections through it (rr spreads them over the real
/// servers), each echoed once.
fn four_through_d1(lab: &Lab) -> Vec<TcpStream> {
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
    streams
}

/// `host`'s established connections as `-L -c -n` lists them, without their expiry
/// (which counts down), sorted.
fn established(lab: &Lab, host: &str) -> Vec<String> {
    let mut listed: Vec<String> = ok(lab, host, "-L -c -n")
        .lines()
        .filter(|l| l.contains("ESTABLISHED"))
        .map(|l| {
            let mut words: Vec<&str> = l.split_whitespace().collect();
            words.remove(1);
            words.join(" ")
        })
        .collect();
    listed.sort();
    listed
}

/// The VIP moves from d1 to d2 (the client learns its MAC anew).
fn vip_moves_to_d2(lab: &Lab) {
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
}
