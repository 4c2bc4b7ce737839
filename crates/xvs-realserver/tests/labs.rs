//! Real servers prepared only by `xvs-realserver`, in the seed's DR lab and the tunnel lab:
//! they serve through the VIP, running it again changes nothing, `--check` names each
//! setting removed by hand, and `--undo` takes everything back.

use xvs_core::{restore::restore, text::NoNames};
use xvs_datapath::{ChangeOptions, Director};
use xvs_lab::{Lab, ServerKind, topology};

const REALSERVER: &str = env!("CARGO_BIN_EXE_xvs-realserver");

/// A folder for the command's saved sysctl values (instead of /run/xvs), removed on drop.
struct StateDir(std::path::PathBuf);

impl StateDir {
    fn new(name: &str) -> StateDir {
        let dir =
            std::env::temp_dir().join(format!("xvs-realserver-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        StateDir(dir)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(lab: &Lab, state: &StateDir, host: &str, line: &str) -> (Option<i32>, String) {
    let mut argv = vec![REALSERVER];
    argv.extend(line.split_whitespace());
    let out = lab
        .command(host, &argv)
        .env("XVS_STATE_DIR", &state.0)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

fn sh(lab: &Lab, host: &str, script: &str) {
    lab.run_ok(host, &["sh", "-c", script]).unwrap();
}

/// Configures the director as `xvsadm -R` would (through the same edit transaction).
fn configure(lab: &Lab, rules: &'static str) {
    lab.within("director", || {
        Director::change(ChangeOptions::default(), |table| {
            restore(rules, table, &NoNames, "xvsadm")
        })
        .unwrap()
    })
    .unwrap();
}

fn pages(lab: &Lab, times: usize) -> Vec<String> {
    (0..times)
        .map(|_| {
            lab.run_ok(
                "client",
                &["curl", "-s", "--max-time", "5", "http://1.1.1.254/"],
            )
            .unwrap()
        })
        .collect()
}

fn serve(lab: &mut Lab) {
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Http(web.into())).unwrap();
    }
}

/// The `missing:` lines of a `--check`.
fn missing(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter_map(|l| l.strip_prefix("missing: "))
        .collect()
}

#[test]
fn direct_routing_real_servers_prepared_by_the_command_serve_the_vip() {
    let mut lab = topology::dr_unprepared().build().unwrap();
    let state = StateDir::new("dr");
    serve(&mut lab);
    for web in ["web1", "web2"] {
        let (code, report) = run(&lab, &state, web, "--check dr 1.1.1.254");
        assert_eq!(code, Some(1), "{report}");
        assert_eq!(missing(&report).len(), 3, "{report}");
        let (code, _) = run(&lab, &state, web, "dr 1.1.1.254");
        assert_eq!(code, Some(0));
        let (code, again) = run(&lab, &state, web, "dr 1.1.1.254");
        assert_eq!(code, Some(0));
        assert!(again.starts_with("already prepared"), "{again}");
    }
    configure(
        &lab,
        "-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 1.1.1.10 -g\n-a -t 1.1.1.254:80 -r 1.1.1.20 -g",
    );
    assert_eq!(pages(&lab, 4), ["web2\n", "web1\n", "web2\n", "web1\n"]);

    // Settings removed by hand are named, each.
    sh(&lab, "web1", "ip addr del 1.1.1.254/32 dev lo");
    sh(&lab, "web1", "sysctl -qw net.ipv4.conf.all.arp_announce=0");
    let (code, report) = run(&lab, &state, "web1", "--check dr 1.1.1.254");
    assert_eq!(code, Some(1));
    assert_eq!(
        missing(&report),
        [
            "net.ipv4.conf.all.arp_announce = 2 (now 0)",
            "1.1.1.254/32 on lo (now absent)"
        ]
    );

    // Undo takes it all back, to the values the kernel had.
    let (code, _) = run(&lab, &state, "web2", "--undo dr 1.1.1.254");
    assert_eq!(code, Some(0));
    let (_, report) = run(&lab, &state, "web2", "--check dr 1.1.1.254");
    assert_eq!(
        missing(&report),
        [
            "net.ipv4.conf.all.arp_ignore = 1 (now 0)",
            "net.ipv4.conf.all.arp_announce = 2 (now 0)",
            "1.1.1.254/32 on lo (now absent)"
        ]
    );
}

#[test]
fn tunnel_real_servers_prepared_by_the_command_serve_the_vip() {
    let mut lab = topology::tun_unprepared().build().unwrap();
    let state = StateDir::new("tun");
    serve(&mut lab);
    for web in ["web1", "web2"] {
        let (code, _) = run(&lab, &state, web, "tun eth0 1.1.1.254");
        assert_eq!(code, Some(0));
        let (code, report) = run(&lab, &state, web, "--check tun eth0 1.1.1.254");
        assert_eq!(code, Some(0), "{report}");
    }
    configure(
        &lab,
        "-A -t 1.1.1.254:80 -s rr\n-a -t 1.1.1.254:80 -r 10.0.0.10 -i\n-a -t 1.1.1.254:80 -r 10.0.0.20 -i",
    );
    assert_eq!(pages(&lab, 4), ["web2\n", "web1\n", "web2\n", "web1\n"]);

    sh(&lab, "web2", "sysctl -qw net.ipv4.conf.eth0.rp_filter=1");
    let (code, report) = run(&lab, &state, "web2", "--check tun eth0 1.1.1.254");
    assert_eq!(code, Some(1));
    assert_eq!(
        missing(&report),
        ["net.ipv4.conf.eth0.rp_filter = 0 (now 1)"]
    );
    let (code, _) = run(&lab, &state, "web2", "--undo tun eth0 1.1.1.254");
    assert_eq!(code, Some(0));
    let (_, report) = run(&lab, &state, "web2", "--check tun eth0 1.1.1.254");
    assert!(
        missing(&report).contains(&"tunnel decapsulation on eth0 (now off)"),
        "{report}"
    );
}

/// `--gue-port`: real servers prepared for a director that sends GUE (`--tun-type gue
/// --tun-port 6080`) and GRE serve the VIP; `--check` tells a decapsulator on another GUE
/// port from the right one, and running the command again sets the port in place.
#[test]
fn tunnel_real_servers_prepared_for_gue_and_gre_serve_the_vip() {
    let mut lab = topology::tun_unprepared().build().unwrap();
    let state = StateDir::new("gue");
    serve(&mut lab);
    let (code, _) = run(&lab, &state, "web1", "tun eth0 --gue-port 6081 1.1.1.254");
    assert_eq!(code, Some(0));
    let (code, report) = run(
        &lab,
        &state,
        "web1",
        "--check tun eth0 --gue-port 6080 1.1.1.254",
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        missing(&report),
        ["tunnel decapsulation on eth0, GUE on port 6080 (now on, GUE on port 6081)"]
    );
    for web in ["web1", "web2"] {
        let (code, _) = run(&lab, &state, web, "tun eth0 --gue-port 6080 1.1.1.254");
        assert_eq!(code, Some(0));
        let (code, report) = run(
            &lab,
            &state,
            web,
            "--check tun eth0 --gue-port 6080 1.1.1.254",
        );
        assert_eq!(code, Some(0), "{report}");
    }
    configure(
        &lab,
        "-A -t 1.1.1.254:80 -s rr\n\
         -a -t 1.1.1.254:80 -r 10.0.0.10 -i --tun-type gue --tun-port 6080\n\
         -a -t 1.1.1.254:80 -r 10.0.0.20 -i --tun-type gre --tun-csum",
    );
    assert_eq!(pages(&lab, 4), ["web2\n", "web1\n", "web2\n", "web1\n"]);
    let (code, report) = run(&lab, &state, "web1", "tun eth0 --gue-port 0 1.1.1.254");
    assert_eq!(code, Some(2), "{report}");
}
