//! xvsd's benchmarks (docs/BENCHMARKS.md, "xvsd"):
//! - **Scale**: 1,000 real servers (four services of 250, half checked by TCP connect,
//!   half by HTTP GET) every second; xvsd's CPU (from /proc/PID/stat over windows of
//!   10 s), resident memory, threads and file descriptors.
//! - **Removal**: the seed's Experiment III with a client asking the VIP without pause;
//!   web2's server stops; the time until xvsd has taken web2 out of the table, and the
//!   client requests that fail after that (the goal: none). Several rounds.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use xvs_core::{listing::save, text::NoNames};
use xvs_datapath::Director;
use xvs_lab::{Lab, LabBuilder, ServerKind, end, topology};

const SERVICES: usize = 4;
const PER_SERVICE: usize = 250;
const WINDOWS: usize = 3;
const WINDOW: Duration = Duration::from_secs(10);
const ROUNDS: usize = 10;

pub fn run() -> Result<(), String> {
    let xvsd = crate::beside("xvsd")?;
    scale(&xvsd)?;
    if std::env::var_os("XVS_BENCH_SCALE_ONLY").is_some() {
        return Ok(());
    }
    removal(&xvsd)
}

fn config_file(name: &str, text: &str) -> Result<String, String> {
    let path = std::env::temp_dir().join(format!("xvs-bench-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

/// The address of real server `i` of the farm.
fn farm_address(i: usize) -> String {
    format!("10.9.{}.{}", i / 250, i % 250 + 1)
}

fn start(lab: &Lab, xvsd: &std::path::Path, config: &str) -> Result<Child, String> {
    let log = std::fs::File::create(format!("{config}.log")).map_err(|e| e.to_string())?;
    lab.command("director", &[&xvsd.to_string_lossy(), "run", config])
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start xvsd: {e}"))
}

fn table(lab: &Lab) -> String {
    lab.within("director", || match Director::find() {
        Ok(Some(director)) => director
            .load_for_change()
            .map(|s| save(&s.table, true, &NoNames))
            .unwrap_or_default(),
        _ => String::new(),
    })
    .unwrap_or_default()
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn median_and_range(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn scale(xvsd: &std::path::Path) -> Result<(), String> {
    let total = SERVICES * PER_SERVICE;
    let mut builder = LabBuilder::new().host("director").host("farm").link(
        end("director", "eth1", &["10.9.255.254/16"]),
        end("farm", "eth0", &[]),
    );
    for i in 0..total {
        builder = builder.address("farm", "eth0", &format!("{}/16", farm_address(i)));
    }
    let mut lab = builder.build().map_err(|e| e.to_string())?;
    lab.serve("farm", 80, ServerKind::Http("farm".into()))
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    for s in 0..SERVICES {
        let kind = if s % 2 == 0 { "tcp" } else { "http" };
        text.push_str(&format!(
            "[[service]]\naddress = \"10.8.0.{}:80\"\nmethod = \"nat\"\n[service.check]\ntype = \"{kind}\"\ninterval = 1.0\ntimeout = 1.0\n",
            s + 1
        ));
        for i in s * PER_SERVICE..(s + 1) * PER_SERVICE {
            text.push_str(&format!(
                "[[service.real_server]]\naddress = \"{}:80\"\n",
                farm_address(i)
            ));
        }
    }
    let config = config_file("scale", &text)?;
    let mut child = start(&lab, xvsd, &config)?;
    let pid = child.id();
    // Warm up: every checker started and a few rounds of checks done.
    std::thread::sleep(Duration::from_secs(5));
    let in_table = table(&lab).lines().filter(|l| l.starts_with("-a ")).count();
    let tick = 100.0; // USER_HZ
    let mut cpu = Vec::new();
    for _ in 0..WINDOWS {
        let (before, started) = (crate::process_ticks(pid)?, Instant::now());
        std::thread::sleep(WINDOW);
        let used = (crate::process_ticks(pid)? - before) as f64 / tick;
        cpu.push(100.0 * used / started.elapsed().as_secs_f64());
    }
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let (rss, peak) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(format!("{config}.log"));
    let _ = std::fs::remove_file(config);
    let (median, low, high) = median_and_range(&mut cpu);
    println!("xvsd, {total} real servers checked every second ({in_table} in the table):");
    println!(
        "  CPU {median:.1} % of one core (median of {WINDOWS} windows of {} s; range {low:.1}-{high:.1} %)",
        WINDOW.as_secs()
    );
    println!(
        "  resident memory {} MiB (peak {} MiB), {threads} threads, {fds} file descriptors",
        rss / 1024,
        peak / 1024
    );
    Ok(())
}

/// One client request to the VIP; whether it was answered.
fn ask(vip: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&vip, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut page = Vec::new();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
        && stream.read_to_end(&mut page).is_ok()
        && (page.starts_with(b"HTTP/1.1 200") || page.starts_with(b"HTTP/1.0 200"))
}

/// How web2 dies.
#[derive(Clone, Copy)]
enum Death {
    /// Its web server process is killed: connections are refused.
    Process,
    /// The machine is gone (its link down): nothing answers, checks time out.
    Machine,
}

/// web2's web server, a process of its own so that it can be killed while the lab is
/// shared with the client (Python's http.server, threaded).
fn web2_server(lab: &Lab, root: &std::path::Path) -> Result<Child, String> {
    let root = root.to_string_lossy();
    lab.command(
        "web2",
        &[
            "python3",
            "-m",
            "http.server",
            "80",
            "--bind",
            "0.0.0.0",
            "--directory",
            &root,
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .map_err(|e| format!("cannot start web2's server: {e}"))
}

fn removal(xvsd: &std::path::Path) -> Result<(), String> {
    for death in [Death::Process, Death::Machine] {
        removal_by(xvsd, death)?;
    }
    Ok(())
}

fn removal_by(xvsd: &std::path::Path, death: Death) -> Result<(), String> {
    let mut lab = topology::nat().build().map_err(|e| e.to_string())?;
    lab.serve("web1", 80, ServerKind::Http("web1".into()))
        .map_err(|e| e.to_string())?;
    let root = std::env::temp_dir().join(format!("xvs-bench-{}-web2", std::process::id()));
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    std::fs::write(root.join("index.html"), "web2\n").map_err(|e| e.to_string())?;
    let mut web2 = web2_server(&lab, &root)?;
    let (interval, timeout) = (0.5, 0.5);
    let config = config_file(
        "removal",
        &format!(
            "[[service]]\naddress = \"1.1.1.254:80\"\nscheduler = \"rr\"\nmethod = \"nat\"\n[service.check]\ntype = \"http\"\ninterval = {interval}\ntimeout = {timeout}\nfall = 1\n[[service.real_server]]\naddress = \"192.168.1.10:80\"\n[[service.real_server]]\naddress = \"192.168.1.20:80\"\n"
        ),
    )?;
    let mut child = start(&lab, xvsd, &config)?;
    let vip: SocketAddr = "1.1.1.254:80".parse().unwrap();
    let web2_in = |t: &str| t.contains("192.168.1.20:80");
    let mut removals = Vec::new();
    let mut late_failures = 0;
    let mut requests = 0;
    for _ in 0..ROUNDS {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !web2_in(&table(&lab)) {
            if Instant::now() > deadline {
                return Err("web2 never came back".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // A random phase against the checks' rhythm.
        let phase = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() % 500);
        std::thread::sleep(Duration::from_millis(200 + u64::from(phase)));
        let stop = AtomicBool::new(false);
        let log: Mutex<Vec<(Instant, bool)>> = Mutex::new(Vec::new());
        let outcome = std::thread::scope(|scope| -> Result<(Instant, Instant), String> {
            scope.spawn(|| {
                let _ = lab.within("client", || {
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let ok = ask(vip);
                        if let Ok(mut log) = log.lock() {
                            log.push((started, ok));
                        }
                    }
                });
            });
            std::thread::sleep(Duration::from_millis(300));
            let died = Instant::now();
            match death {
                Death::Process => {
                    let _ = web2.kill();
                    let _ = web2.wait();
                }
                Death::Machine => {
                    let _ = lab.run("web2", &["ip", "link", "set", "eth0", "down"]);
                }
            }
            let deadline = died + Duration::from_secs(30);
            let result = loop {
                if !web2_in(&table(&lab)) {
                    break Ok((died, Instant::now()));
                }
                if Instant::now() > deadline {
                    break Err("web2 was never removed".to_string());
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if result.is_ok() {
                std::thread::sleep(Duration::from_secs(1));
            }
            stop.store(true, Ordering::Relaxed);
            result
        });
        let (died, removed) = outcome?;
        let log = log.into_inner().unwrap_or_default();
        requests += log.len();
        late_failures += log.iter().filter(|(at, ok)| *at >= removed && !ok).count();
        removals.push((removed - died).as_secs_f64() * 1000.0);
        match death {
            Death::Process => web2 = web2_server(&lab, &root)?,
            Death::Machine => {
                let _ = lab.run("web2", &["ip", "link", "set", "eth0", "up"]);
                let _ = lab.run(
                    "web2",
                    &["ip", "route", "replace", "default", "via", "192.168.1.254"],
                );
            }
        }
    }
    let _ = web2.kill();
    let _ = web2.wait();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(format!("{config}.log"));
    let _ = std::fs::remove_file(config);
    let _ = std::fs::remove_dir_all(root);
    let (median, low, high) = median_and_range(&mut removals);
    let p90 = removals[(removals.len() * 9 / 10).min(removals.len() - 1)];
    let how = match death {
        Death::Process => "its server process killed (connections refused)",
        Death::Machine => "its machine gone (link down: checks time out)",
    };
    println!(
        "xvsd, a real server's death to its removal: {how}; HTTP check, interval {interval} s, timeout {timeout} s, fall 1; {ROUNDS} rounds:"
    );
    println!("  {median:.0} ms median, p90 {p90:.0} ms, range {low:.0}-{high:.0} ms");
    println!(
        "  client requests started after the removal that failed: {late_failures} (of {requests} in all)"
    );
    Ok(())
}
