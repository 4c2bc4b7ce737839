//! Connection sync's cost at both ends (`xvs-bench sync`): a master's round reads its
//! whole connection table (`Director::sync_records`), decides what the backups lack
//! (`xvs_sync::Tracker`) and encodes it; a backup makes entries of what it receives
//! (`Director::take_synced`). Measured at 100,000 and 1,000,000 established DR
//! connections, made by real SYN and ACK frames through the director
//! (BPF_PROG_TEST_RUN), the backup a second director in another namespace.

use std::time::Instant;

use xvs_lab::topology;
use xvs_sync::{Tracker, wire};

use crate::datapath::{configured, tcp4};

/// Real servers of the service (10.0.0.1 to 10.0.0.10, static neighbours).
const SERVERS: u8 = 10;
/// Rounds of each timed step: the median and range are reported.
const ROUNDS: usize = 3;

pub fn run() -> Result<(), String> {
    let lab = topology::one_armed().build().map_err(|e| e.to_string())?;
    let neighbours: Vec<(String, [u8; 6])> = (1..=SERVERS)
        .map(|i| (format!("10.0.0.{i}"), [2, 0, 0, 0, 1, i]))
        .collect();
    lab.static_neighbours("director", "eth0", &neighbours)
        .map_err(|e| e.to_string())?;
    let mut lines = vec!["-A -t 1.1.1.254:80 -s rr".to_string()];
    lines.extend((1..=SERVERS).map(|i| format!("-a -t 1.1.1.254:80 -r 10.0.0.{i} -g")));
    println!("== Connection sync: a master's round and a backup's intake, by table size");
    println!(
        "| connections | master: read the table | master: first round's changes + encoding | messages (bytes) | master: a round with nothing new | backup: take them all |\n|---|---|---|---|---|---|"
    );
    let mut made = 0u32;
    for size in [100_000u32, 1_000_000] {
        let (records, master) = lab
            .within("director", {
                let lines = lines.clone();
                move || fill_and_read(&lines, made, size)
            })
            .map_err(|e| e.to_string())??;
        made = size;
        let backup = lab
            .within("peer", {
                let lines = lines.clone();
                move || -> Result<Vec<f64>, String> {
                    // A fresh backup for each size: it takes the whole table.
                    let _ = xvs_datapath::Director::destroy();
                    let mut director = configured(&lines)?;
                    let mut index = director.sync_index().map_err(|e| e.to_string())?;
                    let started = Instant::now();
                    for chunk in records.chunks(255) {
                        director
                            .take_synced(&mut index, chunk)
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(vec![started.elapsed().as_secs_f64()])
                }
            })
            .map_err(|e| e.to_string())??;
        println!(
            "| {size} | {} | {} | {} ({} MB) | {} | {} |",
            seconds(&master.read),
            seconds(&master.first),
            master.messages,
            master.bytes / 1_000_000,
            seconds(&master.idle),
            seconds(&backup)
        );
    }
    Ok(())
}

struct Master {
    read: Vec<f64>,
    first: Vec<f64>,
    idle: Vec<f64>,
    messages: usize,
    bytes: usize,
}

/// Brings the director's table from `from` to `to` established connections, then times
/// the master's steps; the records, for the backup.
fn fill_and_read(
    lines: &[String],
    from: u32,
    to: u32,
) -> Result<(Vec<xvs_sync::SyncedConn>, Master), String> {
    // The table grows from one size to the next in the same director.
    let director = match xvs_datapath::Director::find().map_err(|e| e.to_string())? {
        Some(director) if from > 0 => director,
        _ => configured(lines)?,
    };
    let eth0 = crate::datapath::eth0_index()?;
    for n in from..to {
        // Client 20.x.y.z, one connection each.
        let client = (0x1400_0000u32 + n).to_be_bytes();
        for syn in [true, false] {
            let frame = tcp4(client, [1, 1, 1, 254], 40000, 80, syn);
            director
                .run_frame(eth0, &frame)
                .map_err(|e| e.to_string())?;
        }
    }
    let mut index = director.sync_index().map_err(|e| e.to_string())?;
    let mut master = Master {
        read: Vec::new(),
        first: Vec::new(),
        idle: Vec::new(),
        messages: 0,
        bytes: 0,
    };
    let mut records = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        records = director
            .sync_records(&mut index)
            .map_err(|e| e.to_string())?;
        master.read.push(started.elapsed().as_secs_f64());
        let mut tracker = Tracker::new();
        let started = Instant::now();
        let changes = tracker.changes(0, records.iter().cloned());
        let messages = wire::encode(0, &changes, wire::DEFAULT_MAXLEN);
        master.first.push(started.elapsed().as_secs_f64());
        master.messages = messages.len();
        master.bytes = messages.iter().map(Vec::len).sum();
        let started = Instant::now();
        let records = director
            .sync_records(&mut index)
            .map_err(|e| e.to_string())?;
        let none = tracker.changes(1, records);
        master.idle.push(started.elapsed().as_secs_f64());
        if !none.is_empty() {
            return Err(format!(
                "{} changes in a round with nothing new",
                none.len()
            ));
        }
    }
    if records.len() != to as usize {
        return Err(format!("{} connections read, {to} made", records.len()));
    }
    Ok((records, master))
}

/// Median (range) in seconds.
fn seconds(runs: &[f64]) -> String {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    if sorted.len() == 1 {
        return format!("{median:.3} s");
    }
    format!(
        "{median:.3} s ({:.3}–{:.3})",
        sorted[0],
        sorted[sorted.len() - 1]
    )
}
