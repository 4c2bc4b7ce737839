//! The connection table at scale (`cargo xtask bench scale`; sizes from XVS_SCALE_SIZES,
//! default `100000,1000000,10000000`). For each size N, in a lab namespace of its own (a
//! child process, so that each director is sized when it is created and its memory is
//! given back before the next), a director whose table has room for N connections and
//! some more is filled with N established TCP connections through BPF_PROG_TEST_RUN (a
//! SYN and an ACK each; DR, rr over 10 real servers; ESTABLISHED timeout two hours, so
//! that none ends meanwhile), then measured, each case beside the XDP_PASS floor
//! interleaved with it:
//! - the fill: a SYN's kernel-timed cost over the first and the last tenth of the fill,
//!   and the fill's rate in real time (frames built, two calls per connection);
//! - memory: what the kernel charges for the table and its sweep queues (`memlock`), per
//!   connection held;
//! - established: ACKs of connections picked across all N (each lookup meets a cold
//!   bucket and entry, as on a director whose clients are many), and of one (hot);
//! - a new flow: SYNs of new clients into the table holding N;
//! - steady churn: new UDP flows that last a second, 50,000 a second beside the N, each
//!   new one also ending one that has ended (as `datapath`'s steady-state case, but in a
//!   full table).
//!
//! XVS_SCALE_SETTLE=S runs those UDP flows for S seconds after the fill, before the
//! measurements, so that the fill's sweep records come due and are looked at first (as on
//! a director that has held its connections for a minute or more).

use std::{
    os::fd::AsFd,
    process::Command,
    time::{Duration, Instant},
};

use xvs_common::map_names;
use xvs_datapath::{objects::CONNECTIONS_ENV, test_run};

use crate::datapath::{
    CHUNK, Runner, configured, eth0_index, floor_program, measure, tcp4, ten_servers_lab, udp4,
};

/// Sizes measured unless XVS_SCALE_SIZES says otherwise.
const SIZES: &[u32] = &[100_000, 1_000_000, 10_000_000];

/// Room beyond N: the new-flow and churn cases' connections (100,000 calls each, the
/// churn's alive for a second), and a quarter of N for the hash table's load.
fn capacity(size: u32) -> u32 {
    size + size / 4 + 250_000
}

const VIP: [u8; 4] = [1, 1, 1, 254];
const XDP_TX: u32 = 3;

/// Client `i` of the fill (and, past N, of the new flows): 16 million addresses.
fn client(i: u32) -> [u8; 4] {
    [
        11 + (i >> 24) as u8,
        (i >> 16) as u8,
        (i >> 8) as u8,
        i as u8,
    ]
}

/// New UDP flows a second in the churn case (as `datapath`'s steady state).
const CHURN_RATE: u32 = 50_000;

pub fn run() -> Result<(), String> {
    let sizes: Vec<u32> = match std::env::var("XVS_SCALE_SIZES") {
        Ok(text) => text
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .map_err(|_| format!("XVS_SCALE_SIZES={text}: not a list of numbers"))
            })
            .collect::<Result<_, _>>()?,
        Err(_) => SIZES.to_vec(),
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for &size in &sizes {
        eprintln!(
            "scale: {size} connections (table capacity {})",
            capacity(size)
        );
        let out = Command::new(&exe)
            .args(["scale-one", &size.to_string()])
            .env(CONNECTIONS_ENV, capacity(size).to_string())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "{size} connections: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("scale: "))
            .ok_or_else(|| format!("{size} connections: no result in {text}"))?;
        let row: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        rows.push(row);
    }
    let f = |row: &serde_json::Value, key: &str| row[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "\n== The connection table at scale: N established TCP connections (DR, rr over 10), \
         BPF_PROG_TEST_RUN, kernel-timed, × the XDP_PASS floor interleaved"
    );
    println!(
        "| connections | table capacity | director made in | fill rate (connections/s, real time) | memory, table + sweep queues | per entry of capacity | per connection held |\n|---|---|---|---|---|---|---|"
    );
    for row in &rows {
        let memory = f(row, "memory");
        println!(
            "| {} | {} | {:.1} s | {:.0} | {:.0} MiB | {:.1} B | {:.1} B |",
            f(row, "size"),
            f(row, "capacity"),
            f(row, "made_s"),
            f(row, "fill_rate"),
            memory / 1048576.0,
            memory / f(row, "capacity"),
            memory / f(row, "size")
        );
    }
    println!(
        "\n| connections | fill, first tenth | fill, last tenth | established, across all | established, one | new flow | steady churn |\n|---|---|---|---|---|---|---|"
    );
    for row in &rows {
        let ratio = |key: &str| {
            format!(
                "{:.1} ns ({:.2})",
                f(row, key),
                f(row, key) / f(row, &format!("{key}_floor"))
            )
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            f(row, "size"),
            ratio("fill_first"),
            ratio("fill_last"),
            ratio("established_across"),
            ratio("established_one"),
            ratio("new_flow"),
            ratio("churn"),
        );
    }
    println!("\n| connections | sweep looks per new flow | per churn flow |\n|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {:.2} | {:.2} |",
            f(row, "size"),
            f(row, "new_flow_looks"),
            f(row, "churn_looks")
        );
    }
    Ok(())
}

/// One size, in this process (its table sized by CONNECTIONS_ENV, set by [`run`]):
/// prints `scale: {json}`.
pub fn one(size: &str) -> Result<(), String> {
    let size: u32 = size
        .parse()
        .map_err(|_| format!("scale-one {size}: not a number"))?;
    let lab = ten_servers_lab()?;
    let mut lines = vec![
        "--set 7200 0 1".to_string(),
        "-A -t 1.1.1.254:80 -s rr".to_string(),
        "-A -u 1.1.1.254:53 -s rr".to_string(),
    ];
    for i in 1..=10 {
        lines.push(format!("-a -t 1.1.1.254:80 -r 10.0.0.{i} -g"));
        lines.push(format!("-a -u 1.1.1.254:53 -r 10.0.0.{i} -g"));
    }
    let result = lab
        .within("director", move || -> Result<serde_json::Value, String> {
            let started = Instant::now();
            let director = configured(&lines)?;
            let made_s = started.elapsed().as_secs_f64();
            let eth0 = eth0_index()?;
            let (_pass, pass_fd) = floor_program()?;
            let floor: &Runner<'_> =
                &|f: &[u8]| test_run::run_fd(pass_fd.as_fd(), eth0, f).map_err(|e| e.to_string());
            let run: &Runner<'_> =
                &|f: &[u8]| director.run_frame(eth0, f).map_err(|e| e.to_string());
            let floor_frame = tcp4([1, 1, 1, 1], VIP, 40000, 80, false);
            let floor_mean = |calls: u32| -> Result<f64, String> {
                let mut total = 0u64;
                for _ in 0..calls {
                    total += u64::from(floor(&floor_frame)?.1);
                }
                Ok(total as f64 / f64::from(calls))
            };

            // The fill: a SYN and an ACK per connection; the SYNs of the first and last
            // tenth timed, beside the floor's calls interleaved (CHUNK every 10 CHUNKs).
            let started = Instant::now();
            let tenth = (size / 10).max(1);
            let (mut first, mut last) = ((0u64, 0u64), (0u64, 0u64));
            let (mut floor_first, mut floor_last) = (Vec::new(), Vec::new());
            for i in 0..size {
                let (syn, ack) = (
                    tcp4(client(i), VIP, 40000, 80, true),
                    tcp4(client(i), VIP, 40000, 80, false),
                );
                let (outcome, ns) = run(&syn)?;
                if outcome.verdict != XDP_TX {
                    return Err(format!("connection {i}: the SYN was not forwarded"));
                }
                run(&ack)?;
                let timed = if i < tenth {
                    Some((&mut first, &mut floor_first))
                } else if i >= size - tenth {
                    Some((&mut last, &mut floor_last))
                } else {
                    None
                };
                if let Some(((total, count), floors)) = timed {
                    *total += u64::from(ns);
                    *count += 1;
                    if *count % (10 * u64::from(CHUNK)) == 1 {
                        floors.push(floor_mean(CHUNK / 10)?);
                    }
                }
            }
            let fill_rate = f64::from(size) / started.elapsed().as_secs_f64();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            let counters = director.counters().map_err(|e| e.to_string())?;
            let held = counters[xvs_common::counter::NEW_CONNECTIONS as usize]
                - counters[xvs_common::counter::EXPIRED as usize];
            if held < u64::from(size) {
                return Err(format!("{held} connections held of {size}"));
            }
            let mut memory = 0u64;
            for name in [
                map_names::CONNS,
                map_names::SWEEP,
                map_names::SWEEP_60,
                map_names::SWEEP_300,
                map_names::SWEEP_SOON,
            ] {
                memory += director.map_memory(name).map_err(|e| e.to_string())?.1;
            }

            // Optionally (XVS_SCALE_SETTLE seconds), the churn's UDP flows for a while
            // first, so that the fill's records come due and are looked at as on a
            // director that has held its connections for a while (the sweep is driven
            // by new flows).
            let pace = Duration::from_secs_f64(f64::from(CHUNK) / f64::from(CHURN_RATE));
            let udp = |first: u32| {
                move |i: u32| {
                    let i = first + i;
                    udp4(client(i), VIP, 1024 + (i % 60_000) as u16, 53)
                }
            };
            let settle: u64 = std::env::var("XVS_SCALE_SETTLE")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let settling = Instant::now();
            let mut i = 0u32;
            while settling.elapsed() < Duration::from_secs(settle) {
                let start = Instant::now();
                for _ in 0..CHUNK {
                    run(&udp(1 << 28)(i))?;
                    i += 1;
                }
                std::thread::sleep(pace.saturating_sub(start.elapsed()));
            }

            // Established: across all N (a multiplicative hash of the call spreads them),
            // then one connection.
            let across = |i: u32| {
                let c = (u64::from(i) * 2_654_435_761 % u64::from(size)) as u32;
                tcp4(client(c), VIP, 40000, 80, false)
            };
            let (established_across, established_across_floor) =
                measure(run, &across, floor, &floor_frame, None)?;
            let one = tcp4(client(size / 2), VIP, 40000, 80, false);
            let (established_one, established_one_floor) =
                measure(run, &|_| one.clone(), floor, &floor_frame, None)?;
            // New flows into the table holding N (and how many entries the sweep looked
            // at meanwhile: records come due from its queues at any size).
            let looks = || -> Result<u64, String> {
                let c = director.counters().map_err(|e| e.to_string())?;
                Ok(c[xvs_common::counter::SWEEP_LOOKS as usize])
            };
            let fresh = |i: u32| tcp4(client(size + i), VIP, 40000, 80, true);
            let looks_before = looks()?;
            let (new_flow, new_flow_floor) = measure(run, &fresh, floor, &floor_frame, None)?;
            let new_flow_looks =
                (looks()? - looks_before) as f64 / f64::from(crate::datapath::calls());
            // Steady churn: UDP flows of a second at CHURN_RATE, after a second and a half
            // of them unmeasured, so that every new one meets ended ones to sweep.
            let warm = CHURN_RATE * 3 / 2;
            for i in 0..warm / CHUNK {
                let start = Instant::now();
                for j in 0..CHUNK {
                    run(&udp(0)(i * CHUNK + j))?;
                }
                std::thread::sleep(pace.saturating_sub(start.elapsed()));
            }
            let looks_before = looks()?;
            let (churn, churn_floor) = measure(run, &udp(warm), floor, &floor_frame, Some(pace))?;
            let churn_looks =
                (looks()? - looks_before) as f64 / f64::from(crate::datapath::calls());
            Ok(serde_json::json!({
                "size": size,
                "capacity": director.connection_table_memory().map_err(|e| e.to_string())?.0,
                "made_s": made_s,
                "fill_rate": fill_rate,
                "memory": memory,
                "fill_first": first.0 as f64 / first.1.max(1) as f64,
                "fill_first_floor": mean(&floor_first),
                "fill_last": last.0 as f64 / last.1.max(1) as f64,
                "fill_last_floor": mean(&floor_last),
                "established_across": established_across,
                "established_across_floor": established_across_floor,
                "established_one": established_one,
                "established_one_floor": established_one_floor,
                "new_flow": new_flow,
                "new_flow_floor": new_flow_floor,
                "churn": churn,
                "churn_floor": churn_floor,
                "new_flow_looks": new_flow_looks,
                "churn_looks": churn_looks,
            }))
        })
        .map_err(|e| e.to_string())??;
    println!("scale: {result}");
    Ok(())
}
