//! Per-packet cost of the director through BPF_PROG_TEST_RUN (repeat=1, one call per
//! frame, the kernel's own timing of each run), against a bare XDP_PASS program measured
//! in the same run, and the connection table's memory.

use std::{
    cell::{Cell, RefCell},
    os::fd::{AsFd, OwnedFd},
    time::{Duration, Instant},
};

use aya::{EbpfLoader, programs::Xdp};
use etherparse::PacketBuilder;
use xvs_common::counter;
use xvs_core::{restore, text::NoNames};
use xvs_datapath::{Director, netlink, objects, test_run};
use xvs_lab::topology;

/// The schedulers of the new-flow matrix (every one IPVS has).
const SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos", "sh", "dh", "mh", "lblc", "lblcr",
];

/// Calls per measured case.
const CALLS: u32 = 100_000;
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

pub(crate) fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let payload: &[u8] = if syn { &[] } else { &[0u8; 64] };
    let mut frame = Vec::new();
    b.write(&mut frame, payload).expect("frame");
    frame
}

/// A TCP segment with 64 bytes of data at sequence number `seq`, acknowledging `ack`.
fn tcp4_at(src: [u8; 4], dst: [u8; 4], ports: (u16, u16), seq: u32, ack: u32) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src, dst, 64)
        .tcp(ports.0, ports.1, seq, 64240)
        .ack(ack);
    let mut frame = Vec::new();
    b.write(&mut frame, &[0u8; 64]).expect("frame");
    frame
}

/// FULLNAT's side map (`XVS_FULLNAT`, not preallocated: it grows with connections): what
/// it takes per connection (two entries each), as the kernel charges it, measured over
/// new connections made on the 100-server FULLNAT service.
fn fullnat_side_memory<T>(
    director: &Director,
    run: &dyn Fn(&[u8]) -> Result<T, String>,
    vip: [u8; 4],
) -> Result<(), String> {
    const MADE: u32 = 20_000;
    let side = || {
        director
            .map_memory(xvs_common::map_names::FULLNAT)
            .map(|(_, memlock)| memlock)
            .map_err(|e| e.to_string())
    };
    let made = || {
        director
            .counters()
            .map(|c| c[counter::NEW_CONNECTIONS as usize])
            .map_err(|e| e.to_string())
    };
    let (memory_before, made_before) = (side()?, made()?);
    for i in 0..MADE {
        run(&tcp4(
            [2, 0, (i >> 8) as u8, i as u8],
            vip,
            42000 + (i >> 16) as u16,
            96,
            true,
        ))?;
    }
    let connections = made()? - made_before;
    let grown = side()?.saturating_sub(memory_before);
    println!(
        "\n== FULLNAT side map ({}): {connections} new connections, {grown} bytes more = {:.1} bytes per connection (two entries each)",
        xvs_common::map_names::FULLNAT,
        grown as f64 / connections.max(1) as f64
    );
    Ok(())
}

fn tcp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv6(src, dst, 64)
        .tcp(sport, dport, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let payload: &[u8] = if syn { &[] } else { &[0u8; 64] };
    let mut frame = Vec::new();
    b.write(&mut frame, payload).expect("frame");
    frame
}

pub(crate) fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut frame = Vec::new();
    b.write(&mut frame, &[0u8; 32]).expect("frame");
    frame
}

/// A SIP INVITE (no body, 430-odd bytes, its Call-ID after five other headers, as SIP
/// user agents send it) in a UDP datagram.
fn sip4(src: [u8; 4], dst: [u8; 4], dport: u16, call: u32) -> Vec<u8> {
    let message = format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
         Max-Forwards: 70\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n\
         Call-ID: {call:08x}3848276298220188511@atlanta.example.com\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src, dst, 64)
        .udp(5060, dport);
    let mut frame = Vec::new();
    b.write(&mut frame, message.as_bytes()).expect("frame");
    frame
}

fn v6(last: u8, net: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[3] = net;
    a[15] = last;
    a
}

/// A case measured on two CPUs, round by round.
type Parallel = (&'static str, Vec<crate::parallel::Round>);

/// What the run measured: the cases, the connection table's (entries, memlock), the cases
/// on two CPUs.
type Results = (Vec<Case>, (u32, u64), Vec<Parallel>);

struct Case {
    name: &'static str,
    mean_ns: f64,
    /// The floor measured interleaved with this case.
    floor_ns: f64,
}

/// Calls of a case between two runs of the floor's calls: the floor is measured in chunks
/// interleaved with each case, so a drift of the machine's speed (this VM's moves by 10 %
/// within minutes) weighs on both alike.
pub(crate) const CHUNK: u32 = 1000;

/// Runs one frame: its outcome and the kernel's run time in nanoseconds.
pub(crate) type Runner<'a> = dyn Fn(&[u8]) -> Result<(test_run::Outcome, u32), String> + 'a;

/// Mean kernel-measured run time of `frames(i)` over CALLS calls, and of the floor's
/// `floor_frame` run interleaved with them, [`CHUNK`] calls at a time.
pub(crate) fn measure(
    run: &Runner<'_>,
    frames: &dyn Fn(u32) -> Vec<u8>,
    floor: &Runner<'_>,
    floor_frame: &[u8],
    pace: Option<Duration>,
) -> Result<(f64, f64), String> {
    let calls = calls();
    // Every frame is built before the timing starts: building one between two runs (as a
    // new-flow case must, each frame new) cools the caches the next run starts from, and
    // made the floor read about 106 ns instead of 81.
    let built: Vec<Vec<u8>> = (0..calls).map(frames).collect();
    let (mut total, mut floor_total) = (0u64, 0u64);
    for chunk in built.chunks(CHUNK as usize) {
        let start = Instant::now();
        for _ in chunk {
            floor_total += u64::from(floor(floor_frame)?.1);
        }
        for frame in chunk {
            total += u64::from(run(frame)?.1);
        }
        // A paced case makes its chunk's frames in no less than `pace` of real time.
        if let Some(pace) = pace {
            std::thread::sleep(pace.saturating_sub(start.elapsed()));
        }
    }
    let calls = f64::from(calls);
    Ok((total as f64 / calls, floor_total as f64 / calls))
}

/// New flows a second in the steady-state case.
const STEADY_RATE: u32 = 50_000;

/// Calls per case: [`CALLS`], or XVS_BENCH_CALLS (e.g. to profile one case at length).
pub(crate) fn calls() -> u32 {
    std::env::var("XVS_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CALLS)
}

/// Runs per call when measuring a program's own cost.
const REPEAT: u32 = 10_000;

/// The mean of ten calls of `run(REPEAT)`, each the kernel's mean time of one run.
fn repeated_cost(
    run: &dyn Fn(u32) -> Result<(test_run::Outcome, u32), String>,
) -> Result<f64, String> {
    let mut total = 0u64;
    for _ in 0..10 {
        total += u64::from(run(REPEAT)?.1);
    }
    Ok(total as f64 / 10.0)
}

/// New flows on two CPUs at once (each its own clients), beside each CPU alone: three
/// rounds, each from fresh directors (holding `lines`), every run beside the floor
/// (`pass`, `floor_frame`) on its own CPU; the cases `wanted` says.
fn two_cpus(
    director: &RefCell<Director>,
    lines: &[String],
    eth0: u32,
    pass: &aya::programs::ProgramFd,
    floor_frame: &[u8],
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Parallel>, String> {
    let vip = [1, 1, 1, 254];
    let pass = pass
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| e.to_string())?;
    let floor = crate::parallel::Floor {
        program: &pass,
        frame: floor_frame,
    };
    // Each CPU's new flows (its own clients) to `port`.
    let new_flows = |cpu: u32, port: u16| -> Vec<Vec<u8>> {
        (0..calls())
            .map(|i| {
                let i = ((100 * cpu) << 16) + i;
                let src = [10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
                tcp4(src, vip, 1024 + (i % 60000) as u16, port, true)
            })
            .collect()
    };
    let fresh_program = || -> Result<OwnedFd, String> {
        renew(director, lines)?;
        director
            .borrow()
            .program_fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())
    };
    let three_rounds = |frames: &[Vec<Vec<u8>>; 2]| {
        (0..3)
            .map(|_| crate::parallel::alone_and_together(eth0, frames, &floor, &fresh_program))
            .collect::<Result<Vec<_>, String>>()
    };
    let mut measured = Vec::new();
    for (name, port) in [
        ("new DR flow, rr over 100 real servers", 81u16),
        ("new DR flow, wlc over 100 real servers", 82),
    ] {
        if wanted(name) {
            let frames = [new_flows(0, port), new_flows(1, port)];
            measured.push((name, three_rounds(&frames)?));
        }
    }
    if wanted("new DR flow, rr over 100") {
        // A control: established DR packets, each CPU its own connection (its entry, its
        // counters: per-CPU or its own), where nothing is shared. Each CPU's first frame
        // opens its connection, so that its entry comes from that CPU's free list (two
        // entries made on one CPU lie side by side, and would share a cache line).
        let acks: [Vec<Vec<u8>>; 2] = [0u8, 1].map(|cpu| {
            let src = [10, 250, cpu, 1];
            let mut frames = vec![tcp4(src, vip, 40000, 80, false); calls() as usize];
            frames[0] = tcp4(src, vip, 40000, 80, true);
            frames
        });
        let name = "established DR (each CPU its own connection)";
        measured.push((name, three_rounds(&acks)?));
        // New flows, each CPU to a service of its own (rr over the same 100 servers): only
        // the connection table and the sweep queues are shared.
        let name = "new DR flow, rr over 100, each CPU its own service";
        measured.push((name, three_rounds(&[new_flows(0, 81), new_flows(1, 95)])?));
    }
    Ok(measured)
}

/// Prints what one service of 256 and one of 1,000 real servers take in the maps, as the
/// kernel charges them (`memlock`): a fresh director holding only that service, beside
/// the same director empty.
fn service_memory() -> Result<(), String> {
    use xvs_common::map_names as names;
    let maps = [
        names::SERVICES,
        names::SERVICES_LARGE,
        names::SCHED,
        names::SCHED_LARGE,
        names::DEST_COUNTS,
    ];
    let charged = |lines: &[String]| -> Result<Vec<u64>, String> {
        Director::destroy().map_err(|e| e.to_string())?;
        let director = configured(lines)?;
        maps.iter()
            .map(|name| {
                director
                    .map_memory(name)
                    .map(|(_, memlock)| memlock)
                    .map_err(|e| e.to_string())
            })
            .collect()
    };
    // An empty service keeps the director (an empty table would make none).
    let empty = charged(&["-A -t 1.1.1.254:99 -s wlc".to_string()])?;
    println!(
        "\n== Memory of one more service, as the kernel charges it (memlock, bytes, beside a director with one empty service)"
    );
    println!(
        "| real servers | {} |\n|---|---|---|---|---|---|",
        maps.join(" | ")
    );
    for size in [256usize, 1000] {
        let mut lines = vec!["-A -t 1.1.1.254:99 -s wlc".to_string()];
        lines.push("-A -t 1.1.1.254:98 -s wlc".to_string());
        lines.extend((0..size).map(|i| {
            format!(
                "-a -t 1.1.1.254:98 -r 10.0.{}.{}:80 -m",
                1 + i / 250,
                1 + i % 250
            )
        }));
        let with = charged(&lines)?;
        let deltas: Vec<String> = with
            .iter()
            .zip(&empty)
            .map(|(with, without)| format!("{}", *with as i64 - *without as i64))
            .collect();
        println!("| {size} | {} |", deltas.join(" | "));
    }
    Director::destroy().map_err(|e| e.to_string())
}

/// The floor: a bare XDP_PASS program, loaded (the object, which must live as long as
/// the program is used, and the program's descriptor).
pub(crate) fn floor_program() -> Result<(aya::Ebpf, aya::programs::ProgramFd), String> {
    let mut pass = EbpfLoader::new()
        .load(objects::PASS)
        .map_err(|e| e.to_string())?;
    let program: &mut Xdp = pass
        .program_mut("xvs_pass")
        .ok_or("no pass program")?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    program.load().map_err(|e| e.to_string())?;
    let fd = program
        .fd()
        .map_err(|e| e.to_string())?
        .try_clone()
        .map_err(|e| e.to_string())?;
    Ok((pass, fd))
}

/// Replaces `director` by a fresh one holding the services of `lines`, once the kernel has
/// had time to free the old one's maps: freeing a table of 100,000 connections runs in a
/// kernel worker, and measured alongside, it made the next case read up to 10 % slower.
fn renew(director: &RefCell<Director>, lines: &[String]) -> Result<(), String> {
    Director::destroy().map_err(|e| e.to_string())?;
    drop(director.replace(configured(lines)?));
    std::thread::sleep(Duration::from_secs(1));
    Ok(())
}

/// The index of this namespace's `eth0` (the lab's link: frames are run as if they came
/// in by it).
pub(crate) fn eth0_index() -> Result<u32, String> {
    Ok(netlink::interfaces()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|i| i.name == "eth0")
        .ok_or("no eth0")?
        .index)
}

/// The one-armed lab with ten DR real servers, 10.0.0.1 to 10.0.0.10, as static
/// neighbours of the director's eth0 (what the churn and scale benches run on).
pub(crate) fn ten_servers_lab() -> Result<xvs_lab::Lab, String> {
    let lab = topology::one_armed().build().map_err(|e| e.to_string())?;
    let neighbours: Vec<(String, [u8; 6])> = (1..=10u8)
        .map(|i| (format!("10.0.0.{i}"), [2, 0, 0, 0, 1, i]))
        .collect();
    lab.static_neighbours("director", "eth0", &neighbours)
        .map_err(|e| e.to_string())?;
    Ok(lab)
}

/// This namespace's director, created if need be, holding the services of `lines`.
pub(crate) fn configured(lines: &[String]) -> Result<Director, String> {
    let mut director = Director::find_or_create().map_err(|e| e.to_string())?;
    let before = director.load().map_err(|e| e.to_string())?;
    let mut table = before.table.clone();
    restore::restore(&lines.join("\n"), &mut table, &NoNames, "xvs-bench")
        .map_err(|e| e.to_string())?;
    director.store(&before, &table).map_err(|e| e.to_string())?;
    Ok(director)
}

pub fn run() -> Result<(), String> {
    let lab = topology::one_armed().build().map_err(|e| e.to_string())?;
    let mut neighbours: Vec<(String, [u8; 6])> = (1..=100u8)
        .map(|i| (format!("10.0.0.{i}"), [2, 0, 0, 0, 1, i]))
        .collect();
    neighbours.push(("fd00:2::10".into(), [2, 0, 0, 0, 2, 0x10]));
    neighbours.push(("1.1.1.1".into(), CLIENT_MAC));
    // A thousand more real servers, 10.0.1.1 to 10.0.4.250, on the same link.
    let thousand: Vec<String> = (1..=4u8)
        .flat_map(|net| (1..=250u8).map(move |host| format!("10.0.{net}.{host}")))
        .collect();
    neighbours.extend(
        thousand
            .iter()
            .enumerate()
            .map(|(i, addr)| (addr.clone(), [2, 0, 0, 1, (i >> 8) as u8, i as u8])),
    );
    lab.run_ok(
        "director",
        &["ip", "route", "add", "10.0.0.0/21", "dev", "eth0"],
    )
    .map_err(|e| e.to_string())?;
    lab.static_neighbours("director", "eth0", &neighbours)
        .map_err(|e| e.to_string())?;

    let mut lines = vec![
        "-A -t 1.1.1.254:80 -s rr".to_string(),
        "-a -t 1.1.1.254:80 -r 10.0.0.1 -g".to_string(),
        "-A -t 1.1.1.254:81 -s rr".to_string(),
        "-A -t 1.1.1.254:82 -s wlc".to_string(),
        "-A -t 1.1.1.254:83 -s rr".to_string(),
        "-a -t 1.1.1.254:83 -r 10.0.0.2:8080 -m".to_string(),
        "-A -t 1.1.1.254:84 -s rr".to_string(),
        "-a -t 1.1.1.254:84 -r 10.0.0.3 -i".to_string(),
        "-A -t 1.1.1.254:76 -s rr".to_string(),
        "-a -t 1.1.1.254:76 -r 10.0.0.3 -i --tun-type gue --tun-port 6080 --tun-csum".to_string(),
        "-A -t 1.1.1.254:77 -s rr".to_string(),
        "-a -t 1.1.1.254:77 -r 10.0.0.3 -i --tun-type gre --tun-csum".to_string(),
        "-A -t [fd00:1::fe]:80 -s rr".to_string(),
        "-a -t [fd00:1::fe]:80 -r [fd00:2::10]:80 -g".to_string(),
    ];
    // UDP connections last 1 s (only the steady-state case uses UDP).
    lines.push("--set 0 0 1".to_string());
    lines.push("-A -u 1.1.1.254:85 -s rr".to_string());
    // Persistent: every client its own template (/32), or one per /16.
    lines.push("-A -t 1.1.1.254:86 -s rr -p 300".to_string());
    lines.push("-A -t 1.1.1.254:87 -s rr -p 300 -M 255.255.0.0".to_string());
    // SIP, as SIP directors run it: one template for all (-M 0.0.0.0), or, with the SIP
    // engine, one per call; every datagram scheduled (-o).
    lines.push("-A -u 1.1.1.254:91 -s rr -p 300 -M 0.0.0.0 -o --pe sip".to_string());
    lines.push("-A -u 1.1.1.254:92 -s rr -p 300 -M 0.0.0.0 -o".to_string());
    // The hashing and locality schedulers.
    lines.push("-A -t 1.1.1.254:88 -s sh".to_string());
    lines.push("-A -t 1.1.1.254:89 -s mh".to_string());
    lines.push("-A -t 1.1.1.254:90 -s lblc".to_string());
    // A second rr over the same 100 (the two-CPU case's second service).
    lines.push("-A -t 1.1.1.254:95 -s rr".to_string());
    // New NAT and FULLNAT flows over the same 100; an established FULLNAT connection.
    lines.push("-A -t 1.1.1.254:94 -s rr".to_string());
    lines.push("-A -t 1.1.1.254:96 -s rr".to_string());
    lines.push("-P -t 1.1.1.254:96 -z 10.0.0.254".to_string());
    lines.push("-A -t 1.1.1.254:97 -s rr".to_string());
    lines.push("-a -t 1.1.1.254:97 -r 10.0.0.2:8080 -b".to_string());
    lines.push("-P -t 1.1.1.254:97 -z 10.0.0.254".to_string());
    // The same with the PROXY protocol header.
    lines.push("-A -t 1.1.1.254:98 -s rr --proxy-protocol v2".to_string());
    lines.push("-a -t 1.1.1.254:98 -r 10.0.0.2:8080 -b".to_string());
    lines.push("-P -t 1.1.1.254:98 -z 10.0.0.254".to_string());
    for i in 1..=100 {
        for port in [81, 82, 86, 87, 88, 89, 90, 95] {
            lines.push(format!("-a -t 1.1.1.254:{port} -r 10.0.0.{i} -g"));
        }
        for port in [85, 91, 92] {
            lines.push(format!("-a -u 1.1.1.254:{port} -r 10.0.0.{i} -g"));
        }
        lines.push(format!("-a -t 1.1.1.254:94 -r 10.0.0.{i}:8080 -m"));
        lines.push(format!("-a -t 1.1.1.254:96 -r 10.0.0.{i}:8080 -b"));
    }
    // Every scheduler over 10, 100 and 1,000 real servers (1,000: the large services map),
    // but those measured above at 100.
    let mut matrix = Vec::new();
    for (si, scheduler) in SCHEDULERS.iter().enumerate() {
        for (ni, size) in [10usize, 100, 1000].into_iter().enumerate() {
            if size == 100 && ["rr", "wlc", "sh", "mh", "lblc"].contains(scheduler) {
                continue;
            }
            let port = 100 + 3 * si as u16 + ni as u16;
            lines.push(format!("-A -t 1.1.1.254:{port} -s {scheduler}"));
            let servers: Vec<String> = if size == 1000 {
                thousand.clone()
            } else {
                (1..=size).map(|i| format!("10.0.0.{i}")).collect()
            };
            for (i, addr) in servers.iter().enumerate() {
                // Assorted weights, so that the weighted schedulers weigh.
                let weight = 1 + i % 3;
                lines.push(format!("-a -t 1.1.1.254:{port} -r {addr} -g -w {weight}"));
            }
            let name: &'static str = Box::leak(
                format!("new DR flow, {scheduler} over {size} real servers").into_boxed_str(),
            );
            matrix.push((name, port));
        }
    }

    let results = lab
        .within(
            "director",
            move || -> Result<Results, String> {
                let director = RefCell::new(configured(&lines)?);
                let eth0 = eth0_index()?;

                let (_pass, pass_fd) = floor_program()?;
                let floor_run = |f: &[u8]| {
                    test_run::run_fd(pass_fd.as_fd(), eth0, f).map_err(|e| e.to_string())
                };
                let director_run = |f: &[u8]| {
                    director
                        .borrow()
                        .run_frame(eth0, f)
                        .map_err(|e| e.to_string())
                };

                let client = [1, 1, 1, 1];
                let vip = [1, 1, 1, 254];
                let floor_frame = tcp4(client, vip, 40000, 80, false);
                let mut cases = Vec::new();
                // XVS_BENCH_ONLY (a part of the case names) runs only those cases beside
                // the floor, e.g. to profile one at length.
                let only = std::env::var("XVS_BENCH_ONLY").ok();
                // Real time per chunk of a paced case (see `measure`).
                let pace = Cell::new(None);
                let mut case = |name: &'static str,
                                run: &Runner<'_>,
                                frames: &dyn Fn(u32) -> Vec<u8>|
                 -> Result<(), String> {
                    if only
                        .as_ref()
                        .is_none_or(|only| name.contains(only.as_str()))
                    {
                        let (mean_ns, floor_ns) =
                            measure(run, frames, &floor_run, &floor_frame, pace.get())?;
                        cases.push(Case {
                            name,
                            mean_ns,
                            floor_ns,
                        });
                    }
                    Ok(())
                };

                // Established flows: one SYN opens the connection, then the same ACK.
                director_run(&tcp4(client, vip, 40000, 80, true))?;
                let ack = tcp4(client, vip, 40000, 80, false);
                case("established DR, IPv4 TCP", &director_run, &|_| ack.clone())?;
                // The same through a persistent service (issue 10: within 10 % of an
                // address service): its packets find their connection as any do; the
                // template is read only when a connection is made.
                director_run(&tcp4(client, vip, 40007, 86, true))?;
                let persistent_ack = tcp4(client, vip, 40007, 86, false);
                case(
                    "established DR, IPv4 TCP, persistent service",
                    &director_run,
                    &|_| persistent_ack.clone(),
                )?;
                // The program's own cost for that frame, without the system call around
                // each run (the kernel runs it 10,000 times per call and takes the mean;
                // DR changes nothing a second run would see differently).
                let own = repeated_cost(&|repeat| {
                    director
                        .borrow()
                        .run_frame_repeated(eth0, &ack, repeat)
                        .map_err(|e| e.to_string())
                })?;
                let floor_own = repeated_cost(&|repeat| {
                    test_run::run_fd_repeated(pass_fd.as_fd(), eth0, &floor_frame, repeat)
                        .map_err(|e| e.to_string())
                })?;
                println!(
                    "established DR, IPv4 TCP, repeat={REPEAT}: {own:.1} ns a run (bare XDP_PASS: {floor_own:.1} ns)"
                );
                // New flows: every frame a SYN from another client port/address.
                let fresh = |port: u16, first: u32| {
                    move |i: u32| {
                        let i = first + i;
                        let src = [10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
                        tcp4(src, vip, 1024 + (i % 60000) as u16, port, true)
                    }
                };
                // Each from an empty connection table: a table filled by the case before
                // makes every insert walk longer bucket chains (a cache miss per entry
                // met), and the cases would not compare. (A fresh director: the
                // established cases after them make their own connections.)
                for (name, port) in [
                    ("new DR flow, rr over 100 real servers", 81),
                    ("new DR flow, wlc over 100 real servers", 82),
                ] {
                    renew(&director, &lines)?;
                    case(name, &director_run, &fresh(port, 0))?;
                }
                // How much the fill costs: wlc again, on the table its case left (the
                // inserts meet 0.1 to 0.2 entries per bucket instead of 0 to 0.1).
                case(
                    "new DR flow, wlc, 100,000 connections in the table",
                    &director_run,
                    &fresh(82, calls()),
                )?;
                for (name, port) in [
                    ("new NAT flow, rr over 100 real servers", 94),
                    ("new FULLNAT flow, rr over 100 real servers", 96),
                ] {
                    renew(&director, &lines)?;
                    case(name, &director_run, &fresh(port, 0))?;
                }
                for (name, port) in [
                    ("new DR flow, sh over 100 real servers", 88),
                    ("new DR flow, mh over 100 real servers", 89),
                    ("new DR flow, lblc over 100 real servers", 90),
                ] {
                    renew(&director, &lines)?;
                    case(name, &director_run, &fresh(port, 0))?;
                }
                for &(name, port) in &matrix {
                    renew(&director, &lines)?;
                    case(name, &director_run, &fresh(port, 0))?;
                }
                // Persistence: a template looked up for every new connection, and made
                // for every new client (/32: each frame's client is new) or used (/16:
                // the frames' clients are in two networks).
                for (name, port) in [
                    (
                        "new DR flow, rr, persistent, a new client (template made)",
                        86,
                    ),
                    (
                        "new DR flow, rr, persistent, a known network (template used)",
                        87,
                    ),
                ] {
                    renew(&director, &lines)?;
                    case(name, &director_run, &fresh(port, 0))?;
                }
                // SIP: every datagram a new connection (-o) looked up by its template;
                // with the engine, the template is the call's, found by a scan of the
                // datagram for its Call-ID (a new call per datagram, or one of 16).
                let sip = |port: u16, calls: u32| {
                    move |i: u32| sip4([10, 9, 9, 9], vip, port, i % calls)
                };
                for (name, port, calls) in [
                    ("new SIP datagram, -o -p, one template (no engine)", 92, 1),
                    ("new SIP datagram, -o -p --pe sip, a known call", 91, 16),
                    ("new SIP datagram, -o -p --pe sip, a new call", 91, u32::MAX),
                ] {
                    renew(&director, &lines)?;
                    case(name, &director_run, &sip(port, calls))?;
                }
                // Steady state: UDP flows that last 1 s, 50,000 new ones a second (so the
                // records of a second's flows fit the short sweep queue, an eighth of the
                // table). After more than a second of them, every new flow also sweeps
                // about one that has ended (a queue pop, a lookup of a cold entry, its
                // delete and its counts), as on a director whose connections end as fast as
                // new ones come.
                let steady = "new DR flow, rr, UDP, steady state (each new flow ends one)";
                if only
                    .as_ref()
                    .is_none_or(|only| steady.contains(only.as_str()))
                {
                    renew(&director, &lines)?;
                    let udp = |first: u32| {
                        move |i: u32| {
                            let i = first + i;
                            let src = [10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
                            udp4(src, vip, 1024 + (i % 60000) as u16, 85)
                        }
                    };
                    let per_chunk = Duration::from_secs(1) * CHUNK / STEADY_RATE;
                    let warm_up = udp(0);
                    let mut made = 0;
                    while made < STEADY_RATE * 3 / 2 {
                        let start = Instant::now();
                        for _ in 0..CHUNK {
                            director_run(&warm_up(made))?;
                            made += 1;
                        }
                        std::thread::sleep(per_chunk.saturating_sub(start.elapsed()));
                    }
                    let before = director.borrow().counters().map_err(|e| e.to_string())?;
                    pace.set(Some(per_chunk));
                    case(steady, &director_run, &udp(made))?;
                    pace.set(None);
                    let after = director.borrow().counters().map_err(|e| e.to_string())?;
                    let delta = |c: u32| after[c as usize] - before[c as usize];
                    println!(
                        "steady state: {} new connections, {} expired and forgotten, {} sweep looks during the measurement",
                        delta(counter::NEW_CONNECTIONS),
                        delta(counter::EXPIRED),
                        delta(counter::SWEEP_LOOKS)
                    );
                }
                let parallel = two_cpus(&director, &lines, eth0, &pass_fd, &floor_frame, &|name| {
                    only.as_ref().is_none_or(|only| name.contains(only.as_str()))
                })?;
                director_run(&tcp4(client, vip, 40001, 83, true))?;
                let nat_in = tcp4(client, vip, 40001, 83, false);
                case(
                    "NAT in (established, client to real server)",
                    &director_run,
                    &|_| nat_in.clone(),
                )?;
                let nat_reply = tcp4([10, 0, 0, 2], client, 8080, 40001, false);
                case("NAT reply (real server to client)", &director_run, &|_| {
                    nat_reply.clone()
                })?;
                let (syn_out, _) = director_run(&tcp4(client, vip, 40005, 97, true))?;
                let lport = u16::from_be_bytes([syn_out.frame[34], syn_out.frame[35]]);
                let fullnat_in = tcp4(client, vip, 40005, 97, false);
                case(
                    "FULLNAT in (established, client to real server)",
                    &director_run,
                    &|_| fullnat_in.clone(),
                )?;
                let fullnat_reply = tcp4([10, 0, 0, 2], [10, 0, 0, 254], 8080, lport, false);
                case("FULLNAT reply (real server to client)", &director_run, &|_| {
                    fullnat_reply.clone()
                })?;
                // PROXY protocol: the SYN's sequence number is 1, the stream starts at 2.
                let (syn_out, _) = director_run(&tcp4(client, vip, 40006, 98, true))?;
                let lport = u16::from_be_bytes([syn_out.frame[34], syn_out.frame[35]]);
                let first = tcp4_at(client, vip, (40006, 98), 2, 1);
                case(
                    "FULLNAT + PROXY first segment (header put in)",
                    &director_run,
                    &|_| first.clone(),
                )?;
                let server = [10, 0, 0, 2];
                let local = [10, 0, 0, 254];
                // The server acknowledges the header: from now on sequence numbers move.
                director_run(&tcp4_at(server, local, (8080, lport), 1, 2 + 28))?;
                let proxy_in = tcp4_at(client, vip, (40006, 98), 2 + 64, 1);
                case(
                    "FULLNAT + PROXY in (established, sequence moved)",
                    &director_run,
                    &|_| proxy_in.clone(),
                )?;
                let proxy_reply = tcp4_at(server, local, (8080, lport), 1, 2 + 28 + 64);
                case(
                    "FULLNAT + PROXY reply (acknowledgement moved)",
                    &director_run,
                    &|_| proxy_reply.clone(),
                )?;
                director_run(&tcp4(client, vip, 40002, 84, true))?;
                let tun = tcp4(client, vip, 40002, 84, false);
                case("tunnel encapsulation (established)", &director_run, &|_| {
                    tun.clone()
                })?;
                for (port, name) in [
                    (76, "GUE tunnel with checksum (established)"),
                    (77, "GRE tunnel with checksum (established)"),
                ] {
                    director_run(&tcp4(client, vip, 40002, port, true))?;
                    let segment = tcp4(client, vip, 40002, port, false);
                    case(name, &director_run, &|_| segment.clone())?;
                }
                director_run(&tcp6(v6(1, 1), v6(0xfe, 1), 40003, 80, true))?;
                let ack6 = tcp6(v6(1, 1), v6(0xfe, 1), 40003, 80, false);
                case("established DR, IPv6 TCP", &director_run, &|_| ack6.clone())?;
                fullnat_side_memory(&director.borrow(), &director_run, vip)?;
                let memory = director
                    .borrow()
                    .connection_table_memory()
                    .map_err(|e| e.to_string())?;
                service_memory()?;
                Ok((cases, memory, parallel))
            },
        )
        .map_err(|e| e.to_string())??;
    let (cases, (entries, memlock), parallel) = results;
    println!(
        "\n== Per-packet cost through BPF_PROG_TEST_RUN ({CALLS} calls each, repeat=1, kernel-timed; \
         the floor, a bare XDP_PASS program, run in chunks of {CHUNK} calls interleaved with each case)"
    );
    println!("| case | mean ns | floor ns | × floor |\n|---|---|---|---|");
    for case in &cases {
        println!(
            "| {} | {:.1} | {:.1} | {:.2} |",
            case.name,
            case.mean_ns,
            case.floor_ns,
            case.mean_ns / case.floor_ns
        );
    }
    if !parallel.is_empty() {
        println!(
            "\n== New flows on two CPUs at once, a thread pinned to each, beside each CPU alone \
             ({} calls per CPU, kernel-timed; mean of the two CPUs; three rounds, fresh directors)",
            calls()
        );
        println!(
            "| case | round | alone ns (× floor) | together ns (× floor) | together / alone, × floor |\n|---|---|---|---|---|"
        );
        for (name, rounds) in &parallel {
            for (round, r) in rounds.iter().enumerate() {
                println!(
                    "| {name} | {} | {:.1} ({:.2}) | {:.1} ({:.2}) | {:.3} |",
                    round + 1,
                    r.alone_ns,
                    r.alone,
                    r.together_ns,
                    r.together,
                    r.together / r.alone
                );
            }
        }
    }
    println!(
        "\n== Connection table: {entries} entries, memlock {memlock} bytes = {:.1} bytes per entry; {:.1} MiB per million entries",
        memlock as f64 / f64::from(entries),
        memlock as f64 / f64::from(entries) * 1e6 / 1048576.0
    );
    Ok(())
}
