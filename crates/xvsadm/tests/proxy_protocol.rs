//! PROXY protocol v2 with a real reader of it: nginx behind a router, reached by FULLNAT
//! (it sees the director's local address as its peer), logs the client's own address from
//! the header. Under packet loss on the real server's side (nftables dropping at random:
//! this kernel has no netem), many connections, a large upload and a large download arrive
//! intact, so every retransmitted first segment took its header again and every sequence
//! number, acknowledgement and SACK block was moved right.

mod common;

use std::path::{Path, PathBuf};

use common::{get, xvsadm};
use xvs_lab::{Lab, topology};

/// Pseudo-random bytes (xorshift): a shifted or repeated stretch changes the digest.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn sha256(lab: &Lab, host: &str, path: &Path) -> String {
    let out = lab
        .run_ok(host, &["sha256sum", &path.to_string_lossy()])
        .unwrap();
    out.split_whitespace().next().unwrap().to_string()
}

/// nginx on port 8080 of `host`, reading PROXY protocol on IPv4 and IPv6, serving `dir`'s
/// `www` (uploads by PUT to /upload/), logging the client's address from the header and
/// the peer's address.
fn start_nginx(lab: &mut Lab, host: &str, dir: &Path) -> PathBuf {
    let d = dir.display();
    let config = dir.join("nginx.conf");
    let log = dir.join("access.log");
    std::fs::create_dir_all(dir.join("www/upload")).unwrap();
    std::fs::write(
        &config,
        format!(
            "daemon off;\nuser root;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 1024; }}\n\
             http {{\n\
               log_format pp '$proxy_protocol_addr $remote_addr $request_method $status';\n\
               access_log {d}/access.log pp;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n  client_max_body_size 64m;\n\
               server {{\n\
                 listen 8080 proxy_protocol;\n  listen [::]:8080 proxy_protocol;\n\
                 root {d}/www;\n\
                 location /upload/ {{ dav_methods PUT; }}\n\
               }}\n\
             }}\n"
        ),
    )
    .unwrap();
    lab.spawn(host, &["nginx", "-c", &config.to_string_lossy()])
        .unwrap();
    lab.reach("director", "192.168.5.10").unwrap();
    log
}

/// Drops `percent` % of the TCP packets `host` receives and sends, at random.
fn lose(lab: &Lab, host: &str, percent: u32, dir: &Path) {
    let script = dir.join("loss.nft");
    std::fs::write(
        &script,
        format!(
            "table inet loss {{\n\
               chain in {{ type filter hook input priority 0; meta l4proto tcp numgen random mod 100 < {percent} counter drop; }}\n\
               chain out {{ type filter hook output priority 0; meta l4proto tcp numgen random mod 100 < {percent} counter drop; }}\n\
             }}\n"
        ),
    )
    .unwrap();
    lab.run_ok(host, &["nft", "-f", &script.to_string_lossy()])
        .unwrap();
}

fn curl(lab: &Lab, args: &[&str]) -> String {
    let mut argv = vec!["curl", "-sS", "--max-time", "60"];
    argv.extend_from_slice(args);
    lab.run_ok("client", &argv)
        .unwrap_or_else(|e| panic!("curl {args:?}: {e}"))
}

#[test]
fn nginx_learns_the_client_address_under_loss_and_large_transfers_arrive_intact() {
    let dir = std::env::temp_dir().join(format!("xvs-proxy-lab-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut lab = topology::fullnat().build().unwrap();
    let log = start_nginx(&mut lab, "web1", &dir);
    lab.reach("client", "1.1.1.254").unwrap();

    xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr --proxy-protocol v2");
    xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.5.10:8080 -b");
    xvsadm(&lab, "-P -t 1.1.1.254:80 -z 10.0.0.253");
    xvsadm(&lab, "-A -t [fd00:1::fe]:80 -s rr --proxy-protocol v2");
    xvsadm(&lab, "-a -t [fd00:1::fe]:80 -r [fd00:6::10]:8080 -b");
    xvsadm(&lab, "-P -t [fd00:1::fe]:80 -z fd00:5::fd");
    // The operator sees the option, and a save keeps it.
    let listing = xvsadm(&lab, "-L -n");
    assert!(
        listing.contains("TCP  1.1.1.254:80 rr proxy-protocol v2\n"),
        "{listing}"
    );
    let saved = xvsadm(&lab, "-S -n");
    assert!(
        saved.contains("-A -t 1.1.1.254:80 -s rr --proxy-protocol v2\n"),
        "{saved}"
    );

    let www = dir.join("www");
    let download = www.join("download.bin");
    std::fs::write(&download, noise(8_000_000, 0x9e37_79b9_7f4a_7c15)).unwrap();
    let upload = dir.join("upload.bin");
    std::fs::write(&upload, noise(8_000_000, 0x2545_f491_4f6c_dd1d)).unwrap();
    std::fs::write(www.join("small.txt"), "small\n").unwrap();

    // Without loss first: one request, logged with the client's address.
    assert_eq!(get(&lab, "http://1.1.1.254/small.txt"), "small\n");

    lose(&lab, "web1", 3, &dir);
    // Many connections: some of their first segments (or the server's acknowledgement of
    // the header) are lost and sent again.
    for _ in 0..20 {
        assert_eq!(curl(&lab, &["http://1.1.1.254/small.txt"]), "small\n");
    }
    let fetched = dir.join("fetched.bin");
    curl(
        &lab,
        &[
            "-o",
            &fetched.to_string_lossy(),
            "http://1.1.1.254/download.bin",
        ],
    );
    assert_eq!(
        sha256(&lab, "client", &fetched),
        sha256(&lab, "client", &download),
        "the download arrived intact"
    );
    curl(
        &lab,
        &[
            "-T",
            &upload.to_string_lossy(),
            "http://1.1.1.254/upload/upload.bin",
        ],
    );
    assert_eq!(
        sha256(&lab, "client", &www.join("upload/upload.bin")),
        sha256(&lab, "client", &upload),
        "the upload arrived intact"
    );
    assert_eq!(
        curl(&lab, &["-g", "http://[fd00:1::fe]/small.txt"]),
        "small\n"
    );

    // Packets were lost both ways.
    let ruleset = lab
        .run_ok("web1", &["nft", "list", "table", "inet", "loss"])
        .unwrap();
    let dropped: Vec<u64> = ruleset
        .split("packets ")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(
        dropped.len() == 2 && dropped.iter().all(|&n| n > 0),
        "{ruleset}"
    );

    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 24, "{lines:#?}");
    let v4 = lines
        .iter()
        .filter(|l| l.starts_with("1.1.1.1 10.0.0.253 "));
    assert_eq!(
        v4.count(),
        23,
        "the client's address, from the header: {lines:#?}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("fd00:1::1 fd00:5::fd GET 200"),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.ends_with("PUT 201")), "{lines:#?}");
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}
