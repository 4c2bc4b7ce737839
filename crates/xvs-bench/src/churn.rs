//! The expiry sweep under a steady load (`cargo xtask bench churn`, a few minutes): UDP
//! flows that last 65 s arrive at a steady rate through the installed director
//! (BPF_PROG_TEST_RUN), so after a minute connections end as fast as new ones come. The
//! table must level off at rate × lifetime, nothing may be refused for a full table, and
//! each connection should be looked at twice by the sweep (at 60 s in the 60 s queue, then
//! at its expiry in the short one).

use std::time::{Duration, Instant};

use crate::datapath::{configured, eth0_index, ten_servers_lab, udp4};
use xvs_common::counter;

/// Lifetime of a flow (the UDP timeout), seconds.
const LIFETIME: u32 = 65;

pub fn run() -> Result<(), String> {
    let setting = |name: &str, default: u64| -> Result<u64, String> {
        match std::env::var(name) {
            Ok(text) => text
                .parse()
                .map_err(|_| format!("{name}={text}: not a number")),
            Err(_) => Ok(default),
        }
    };
    // New flows a second (in steps of 100), and how long to keep them coming.
    let rate = setting("XVS_CHURN_RATE", 5_000)?.max(100);
    let seconds = setting("XVS_CHURN_SECONDS", 140)?;
    let lab = ten_servers_lab()?;
    let mut lines = vec![
        format!("--set 0 0 {LIFETIME}"),
        "-A -u 1.1.1.254:53 -s rr".to_string(),
    ];
    lines.extend((1..=10).map(|i| format!("-a -u 1.1.1.254:53 -r 10.0.0.{i} -g")));
    println!(
        "== Expiry under a steady load: UDP flows of {LIFETIME} s, {rate} new a second, for {seconds} s"
    );
    println!(
        "| s | new | expired | in the table | sweep looks | refused (table full) |\n|---|---|---|---|---|---|"
    );
    lab.within("director", move || -> Result<(), String> {
        let director = configured(&lines)?;
        let eth0 = eth0_index()?;
        let start = Instant::now();
        let mut made: u32 = 0;
        let mut report = 10;
        // Every 10 ms, a hundredth of a second's flows.
        while start.elapsed() < Duration::from_secs(seconds) {
            let step = Instant::now();
            for _ in 0..rate / 100 {
                let src = [10, 1 + (made >> 16) as u8, (made >> 8) as u8, made as u8];
                let frame = udp4(src, [1, 1, 1, 254], 1024 + (made % 60_000) as u16, 53);
                director
                    .run_frame(eth0, &frame)
                    .map_err(|e| e.to_string())?;
                made = made.wrapping_add(1);
            }
            std::thread::sleep(Duration::from_millis(10).saturating_sub(step.elapsed()));
            if start.elapsed().as_secs() >= report {
                let c = director.counters().map_err(|e| e.to_string())?;
                let (new, expired) = (
                    c[counter::NEW_CONNECTIONS as usize],
                    c[counter::EXPIRED as usize],
                );
                println!(
                    "| {report} | {new} | {expired} | {} | {} | {} |",
                    new - expired,
                    c[counter::SWEEP_LOOKS as usize],
                    c[counter::TABLE_FULL as usize]
                );
                report += 10;
            }
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?
}
