//! The seed's Experiment III, with xvsd in place of the shell script: in the NAT lab,
//! `xvsd run` defines the virtual service from its config, takes web2 out when its HTTP
//! server stops and brings it back when it answers again, while a client keeps being
//! served and a service xvsd does not own stays as it was.

use std::{
    collections::BTreeSet,
    process::Command,
    time::{Duration, Instant},
};

use xvs_core::{listing::save, text::NoNames};
use xvs_datapath::{ChangeOptions, Director};
use xvs_lab::{Lab, ServerKind, topology};

const XVSD: &str = env!("CARGO_BIN_EXE_xvsd");

const CONFIG: &str = r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"

[service.check]
type = "http"
path = "/"
interval = 0.2
timeout = 0.5
fall = 2
rise = 2

[[service.real_server]]
address = "192.168.1.10:80"

[[service.real_server]]
address = "192.168.1.20:80"
"#;

fn write_config(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("xvsd-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn saved(lab: &Lab) -> String {
    lab.within("director", || match Director::find().unwrap() {
        Some(director) => save(&director.load().unwrap().table, true, &NoNames),
        None => String::new(),
    })
    .unwrap()
}

/// Waits (at most 30 s, a bound on a hang and not a speed goal) until the table holds
/// what `wanted` accepts; the table it found.
fn table_until(lab: &Lab, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let table = saved(lab);
        if wanted(&table) {
            return table;
        }
        assert!(Instant::now() < deadline, "never {what}; table:\n{table}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pages of `n` new connections to the VIP.
fn pages(lab: &Lab, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|_| {
            lab.run_ok(
                "client",
                &["curl", "-s", "--max-time", "5", "http://1.1.1.254/"],
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn a_stopped_real_server_leaves_the_service_and_comes_back_when_it_answers() {
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    // Someone else's service, defined before xvsd starts.
    lab.within("director", || {
        Director::change(ChangeOptions::default(), |t| {
            xvs_core::restore::restore("-A -u 1.1.1.254:53 -s wrr", t, &NoNames, "xvsadm")
        })
        .unwrap()
    })
    .unwrap();
    let config = write_config("nat", CONFIG);
    lab.spawn("director", &[XVSD, "run", &config]).unwrap();

    let both = table_until(&lab, "both real servers in", |t| {
        t.contains("-r 192.168.1.10:80 -m -w 1") && t.contains("-r 192.168.1.20:80 -m -w 1")
    });
    assert!(both.contains("-A -t 1.1.1.254:80 -s rr"), "{both}");
    assert!(both.contains("-A -u 1.1.1.254:53 -s wrr"), "{both}");
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );

    lab.stop_servers("web2");
    let without = table_until(&lab, "web2 taken out", |t| !t.contains("192.168.1.20"));
    assert!(without.contains("-r 192.168.1.10:80 -m -w 1"), "{without}");
    assert!(
        without.contains("-A -u 1.1.1.254:53 -s wrr"),
        "not xvsd's: kept"
    );
    assert_eq!(pages(&lab, 4), ["web1\n"].map(String::from).into());

    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let back = table_until(&lab, "web2 back", |t| t.contains("192.168.1.20:80"));
    assert!(back.contains("-A -u 1.1.1.254:53 -s wrr"), "{back}");
    assert_eq!(
        pages(&lab, 4),
        ["web1\n", "web2\n"].map(String::from).into()
    );
    let _ = std::fs::remove_file(config);
}

#[test]
fn check_config_accepts_a_good_file_and_names_the_line_of_a_bad_one() {
    let good = write_config("good", CONFIG);
    let output = Command::new(XVSD)
        .args(["check-config", &good])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout).ends_with(": ok (1 services, 2 real servers)\n")
    );
    let bad = write_config(
        "bad",
        &CONFIG.replace("scheduler = \"rr\"", "sheduler = \"rr\""),
    );
    let output = Command::new(XVSD)
        .args(["check-config", &bad])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("sheduler"), "{message}");
    for path in [good, bad] {
        let _ = std::fs::remove_file(path);
    }
}

fn dist() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist")
}

#[test]
fn the_shipped_example_configs_are_valid() {
    for example in ["xvsd.toml", "xvsd-dr.toml"] {
        let output = Command::new(XVSD)
            .arg("--check-config")
            .arg(dist().join(example))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// systemd-analyze checks that the commands exist: the unit is verified with this build's
/// xvsd where it names /usr/sbin/xvsd.
#[test]
fn the_unit_passes_systemd_analyze_verify_and_checks_the_config_first() {
    let unit = std::fs::read_to_string(dist().join("systemd/xvsd.service")).unwrap();
    assert!(unit.contains("ExecStartPre=/usr/sbin/xvsd check-config /etc/xvs/xvsd.toml"));
    assert!(unit.contains("ExecStart=/usr/sbin/xvsd run /etc/xvs/xvsd.toml"));
    let folder = std::env::temp_dir().join(format!("xvsd-unit-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let copy = folder.join("xvsd.service");
    std::fs::write(&copy, unit.replace("/usr/sbin/xvsd", XVSD)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian package systemd, installed by cargo xtask setup)");
    let _ = std::fs::remove_dir_all(&folder);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
