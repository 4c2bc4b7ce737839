//! xvsd — the director daemon: runs the config's virtual services with health checks
//! (`run`), manages where the director's XDP program is attached and shows its state.

mod bgp;
mod check;
mod control;
mod daemon;
mod forwarded;
mod http;
mod ping;
mod smtp;
mod sockaddr;
mod sync;
mod sysctl;
mod tls;
mod vrrp;

use std::{fmt::Write as _, io::Write as _, process::ExitCode};

use xvs_common::counter;
use xvs_datapath::Director;

const USAGE: &str = "\
Usage:
  xvsd run CONFIG          define CONFIG's virtual services and keep them true to their
                           real servers' health checks (runs until stopped)
  xvsd check-config CONFIG validate CONFIG and say what it defines; changes nothing
                           (also --check-config CONFIG)
  xvsd import-keepalived FILE
                           print FILE's virtual_server blocks (keepalived.conf) as
                           xvsd's config; what cannot be translated is named on stderr
  xvsd reload              make the running `xvsd run` read its config again and apply
                           only the differences (as SIGHUP does); a bad file changes nothing
  xvsd health              the running `xvsd run`'s view: each service's quorum, each real
                           server's state, weight and last check
  xvsd drain [off]         the running `xvsd run` withdraws its VIPs from its BGP routers
                           (new flows go to the other directors; forwarding goes on), or
                           announces them again
  xvsd status              show this namespace's director: program, interfaces, counters
  xvsd sysctl [NAME[=VALUE]]... | -p [FILE]
                           show or set IPVS's sysctls that xvs has, as sysctl(8) does
                           (net.ipv4.vs.conn_reuse_mode, ...); -p sets the net.ipv4.vs
                           lines of a sysctl.conf file
  xvsd sync-daemon master|backup [--mcast-interface IF] [--syncid N] [--sync-maxlen N]
                  [--mcast-group ADDR] [--mcast-port N] [--mcast-ttl N] [--detach]
                           run IPVS's connection sync daemon of that role for this
                           namespace (what xvsadm --start-daemon starts)
  xvsd attach IFACE...     attach the director to interfaces (creates it if needed)
  xvsd detach IFACE...     detach the director from interfaces
  xvsd destroy             remove the director from this namespace, with all its state
  xvsd upgrade             replace the running director program by this build's, keeping
                           its maps: table, connections and counters (same map layout)
  xvsd -h | --help         this text
  xvsd -V | --version      version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["run", config] => daemon::run(config),
        ["check-config" | "--check-config", config] => daemon::check_config(config),
        ["import-keepalived", file] => import_keepalived(file),
        ["reload"] => control::ask("reload"),
        ["health"] => control::ask("health"),
        ["drain"] => control::ask("drain"),
        ["drain", "off"] => control::ask("drain off"),
        ["status"] => status(),
        ["sysctl", words @ ..] => sysctl::run(words),
        ["sync-daemon", words @ ..] => sync::run_daemon(words),
        ["attach", interfaces @ ..] if !interfaces.is_empty() => attach(interfaces),
        ["detach", interfaces @ ..] if !interfaces.is_empty() => detach(interfaces),
        ["destroy"] => Director::destroy().map_err(|e| e.to_string()),
        ["upgrade"] => xvs_datapath::upgrade::upgrade()
            .map(|done| {
                let layouts = if done.from_layout == xvs_common::LAYOUT_VERSION {
                    String::new()
                } else {
                    format!(
                        " (layout {} → {})",
                        done.from_layout,
                        xvs_common::LAYOUT_VERSION
                    )
                };
                println!(
                    "director program {} replaced by {} on {}; maps kept{layouts}",
                    done.old_program,
                    done.new_program,
                    done.interfaces.join(" ")
                );
            })
            .map_err(|e| e.to_string()),
        ["-h" | "--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        ["-V" | "--version"] => {
            println!("xvsd {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xvsd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn import_keepalived(file: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let imported = xvs_health::keepalived::import(&text, file);
    print!("{}", imported.config);
    for note in &imported.notes {
        eprintln!("{file}: {note}");
    }
    Ok(())
}

fn status() -> Result<(), String> {
    let text = status_text()?;
    // A closed pipe (`xvsd status | head`) is not an error worth a panic.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    Ok(())
}

fn status_text() -> Result<String, String> {
    let mut out = String::new();
    let Some(director) = Director::find().map_err(|e| e.to_string())? else {
        return Ok("no director in this network namespace\n".to_string());
    };
    let _ = writeln!(out, "director program id {}", director.program_id());
    if let Some(count) = director.verified_instructions() {
        let _ = writeln!(out, "verified_instructions {count}");
    }
    let interfaces = director.attached_interfaces().map_err(|e| e.to_string())?;
    let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
    let _ = writeln!(out, "attached to {}", names.join(" "));
    let counters = director.counters().map_err(|e| e.to_string())?;
    for (name, index) in [
        ("rx_frames", counter::RX_FRAMES),
        ("rx_bytes", counter::RX_BYTES),
        ("not_ip", counter::NOT_IP),
        ("malformed", counter::MALFORMED),
        ("fragments", counter::FRAGMENTS),
        ("forwarded", counter::FORWARDED),
        ("new_connections", counter::NEW_CONNECTIONS),
        ("no_destination", counter::NO_DESTINATION),
        ("not_scheduled", counter::NOT_SCHEDULED),
        ("no_route", counter::NO_ROUTE),
        ("table_full", counter::TABLE_FULL),
        ("tunnel_failed", counter::TUNNEL_FAILED),
        ("expired", counter::EXPIRED),
        ("sched_fallback", counter::SCHED_FALLBACK),
        ("sweep_looks", counter::SWEEP_LOOKS),
        ("dest_gone", counter::DEST_GONE),
        ("too_big", counter::TOO_BIG),
        ("too_big_dropped", counter::TOO_BIG_DROPPED),
        ("fragments_forwarded", counter::FRAGMENTS_FORWARDED),
        ("icmp_forwarded", counter::ICMP_FORWARDED),
        ("evicted", counter::EVICTED),
        ("adopted", counter::ADOPTED),
        ("no_local_port", counter::NO_LOCAL_PORT),
        ("proxy_headers", counter::PROXY_HEADERS),
    ] {
        let _ = writeln!(out, "{name} {}", counters[index as usize]);
    }
    Ok(out)
}

fn attach(interfaces: &[&str]) -> Result<(), String> {
    let director = Director::find_or_create().map_err(|e| e.to_string())?;
    for name in interfaces {
        director.attach(name).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn detach(interfaces: &[&str]) -> Result<(), String> {
    let Some(director) = Director::find().map_err(|e| e.to_string())? else {
        return Ok(());
    };
    for name in interfaces {
        director.detach(name).map_err(|e| e.to_string())?;
    }
    Ok(())
}
