//! xvsd's metrics and status page in the seed's NAT lab: `/metrics` counts the client's
//! connections and says which real servers are up, and the status page, rendered by a
//! real headless browser (Debian's chromium), shows both real servers with their state
//! and a traffic graph; the test writes a screenshot of it.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use xvs_lab::{Lab, ServerKind, topology};

const XVSD: &str = env!("CARGO_BIN_EXE_xvsd");

const CONFIG: &str = r#"
[[service]]
address = "1.1.1.254:80"
scheduler = "rr"
method = "nat"

[service.check]
type = "http"
interval = 0.2
timeout = 0.5

[[service.real_server]]
address = "192.168.1.10:80"

[[service.real_server]]
address = "192.168.1.20:80"
"#;

fn fetch(lab: &Lab, path: &str) -> String {
    lab.run_ok(
        "director",
        &[
            "curl",
            "-sf",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:9180{path}"),
        ],
    )
    .unwrap_or_default()
}

/// The value of the sample `line_start` (name and labels) in `metrics`.
fn value(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn chromium(lab: &Lab, extra: &[&str]) -> String {
    let profile = std::env::temp_dir().join(format!("xvsd-chromium-{}", std::process::id()));
    let profile_arg = format!("--user-data-dir={}", profile.display());
    let mut argv = vec![
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        &profile_arg,
        "--virtual-time-budget=6000",
    ];
    argv.extend_from_slice(extra);
    argv.push("http://127.0.0.1:9180/");
    let output = lab
        .run("director", &argv)
        .expect("chromium (Debian package chromium, installed by cargo xtask setup)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn metrics_and_the_status_page_show_the_director() {
    let mut lab = topology::nat().build().unwrap();
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .unwrap();
    lab.serve("web2", 80, ServerKind::Http("web2".into()))
        .unwrap();
    let config = std::env::temp_dir().join(format!("xvsd-{}-status.toml", std::process::id()));
    std::fs::write(&config, CONFIG).unwrap();
    lab.spawn("director", &[XVSD, "run", &config.to_string_lossy()])
        .unwrap();
    let web2_up =
        "xvs_real_server_up{service=\"TCP 1.1.1.254:80\",real_server=\"192.168.1.20:80\"}";
    until("web2 up in the metrics", || {
        value(&fetch(&lab, "/metrics"), web2_up) == Some(1.0)
    });
    for _ in 0..10 {
        lab.run_ok(
            "client",
            &["curl", "-sf", "--max-time", "5", "http://1.1.1.254/"],
        )
        .unwrap();
    }
    let metrics = fetch(&lab, "/metrics");
    let service = "xvs_service_connections_total{service=\"TCP 1.1.1.254:80\"}";
    assert_eq!(value(&metrics, service), Some(10.0), "{metrics}");
    let web1 = "{service=\"TCP 1.1.1.254:80\",real_server=\"192.168.1.10:80\"}";
    assert_eq!(
        value(
            &metrics,
            &format!("xvs_real_server_connections_total{web1}")
        ),
        Some(5.0)
    );
    assert!(value(&metrics, &format!("xvs_real_server_packets_in_total{web1}")).unwrap() >= 25.0);
    assert!(
        value(
            &metrics,
            &format!(
                "xvs_check_duration_seconds{}",
                web1.replace('}', ",check=\"0\"}")
            )
        )
        .is_some()
    );
    assert_eq!(
        value(
            &metrics,
            "xvs_service_quorum_up{service=\"TCP 1.1.1.254:80\"}"
        ),
        Some(1.0)
    );
    assert!(fetch(&lab, "/nowhere").is_empty(), "404");

    // web2 goes down: the page shows it down, out of the table, web1 up with a graph.
    lab.stop_servers("web2");
    until("web2 down in the metrics", || {
        value(&fetch(&lab, "/metrics"), web2_up) == Some(0.0)
    });
    let load = under_load(&lab, || chromium(&lab, &["--dump-dom"]));
    let row = |address: &str| -> String {
        let start = load
            .find(&format!("data-address=\"{address}\""))
            .unwrap_or_else(|| panic!("no row for {address}:\n{load}"));
        let end = load[start..].find("</tr>").unwrap() + start;
        load[start..end].to_string()
    };
    let web1_row = row("192.168.1.10:80");
    assert!(
        web1_row.contains("<span class=\"up\">up</span>"),
        "{web1_row}"
    );
    assert!(web1_row.contains("<polyline points=\""), "{web1_row}");
    assert!(web1_row.contains("passed"), "{web1_row}");
    let web2_row = row("192.168.1.20:80");
    assert!(
        web2_row.contains("<span class=\"down\">down</span>"),
        "{web2_row}"
    );
    assert!(web2_row.contains(">out<"), "{web2_row}");
    assert!(
        web2_row.contains("failed: connect to 192.168.1.20:80"),
        "{web2_row}"
    );
    assert!(load.contains("<h2>TCP 1.1.1.254:80</h2>"));

    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("xvsd-status.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = format!("--screenshot={}", screenshot.display());
    under_load(&lab, || {
        chromium(
            &lab,
            &[&shot, "--window-size=1280,420", "--hide-scrollbars"],
        )
    });
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    println!("status page screenshot: {}", screenshot.display());
    let _ = std::fs::remove_file(config);
}

/// Runs `work` while a client keeps fetching pages through the VIP.
fn under_load<T: Send>(lab: &Lab, work: impl FnOnce() -> T + Send) -> T {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            lab.within("client", || {
                use std::io::{Read, Write};
                let vip: std::net::SocketAddr = "1.1.1.254:80".parse().unwrap();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(mut stream) = std::net::TcpStream::connect(vip) {
                        let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
                        let _ = stream.read_to_end(&mut Vec::new());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
            .unwrap();
        });
        let result = work();
        stop.store(true, Ordering::Relaxed);
        client.join().unwrap();
        result
    })
}
