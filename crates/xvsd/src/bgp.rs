//! xvsd's BGP: a BIRD 2 of its own announces the director's VIPs to its routers, so that
//! several directors share them by ECMP (shared/reference/conn-sync-and-ecmp.md §b).
//!
//! xvsd writes BIRD's config (one static protocol per VIP, each a /32 blackhole route
//! that only BGP exports: the director's own routing is not touched), starts BIRD on a
//! control socket of its own, and turns each VIP's protocol on while a service of that
//! VIP has its quorum and xvsd is not draining (`birdc enable|disable`). When xvsd stops,
//! BIRD stops and its sessions close, so the routers withdraw the VIPs at once; a
//! director that freezes is dropped by BFD (if on) or the hold time.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use xvs_health::config::BgpConfig;

/// The running BIRD: stopped with [`Bgp::stop`] (or when dropped).
pub struct Bgp {
    child: Child,
    birdc: PathBuf,
    socket: PathBuf,
    folder: PathBuf,
    vips: Vec<IpAddr>,
    /// The VIPs announced now.
    announced: BTreeSet<IpAddr>,
}

impl Bgp {
    /// Starts BIRD announcing nothing yet; [`Bgp::announce`] says what.
    pub fn start(config: &BgpConfig, vips: &[IpAddr]) -> Result<Bgp, String> {
        let folder = runtime_folder()?;
        let conf = folder.join("bird.conf");
        let socket = folder.join("bird.ctl");
        std::fs::write(&conf, render(config, vips, &BTreeSet::new()))
            .map_err(|e| format!("bgp: cannot write {}: {e}", conf.display()))?;
        let child = crate::control::with_signals(&mut Command::new(&config.bird))
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(&socket)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("bgp: cannot start {}: {e}", config.bird))?;
        let birdc = match Path::new(&config.bird).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join("birdc"),
            _ => PathBuf::from("birdc"),
        };
        let mut bgp = Bgp {
            child,
            birdc,
            socket,
            folder,
            vips: vips.to_vec(),
            announced: BTreeSet::new(),
        };
        // Ready once its control socket answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = bgp.child.try_wait() {
                return Err(format!("bgp: BIRD stopped at start ({status})"));
            }
            if bgp.birdc(&["show", "status"]).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                return Err("bgp: BIRD does not answer on its control socket".to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let neighbors: Vec<String> = config
            .neighbors
            .iter()
            .map(|n| format!("{} (AS {})", n.address, config.as_of(n)))
            .collect();
        println!(
            "bgp: BIRD started (AS {}, routers {})",
            config.local_as,
            neighbors.join(", ")
        );
        Ok(bgp)
    }

    /// Announces exactly `wanted` (of the configured VIPs), withdrawing the others.
    pub fn announce(&mut self, wanted: &BTreeSet<IpAddr>) {
        for vip in self.vips.clone().iter() {
            let (now, want) = (self.announced.contains(vip), wanted.contains(vip));
            if now == want {
                continue;
            }
            let protocol = protocol_name(vip);
            let verb = if want { "enable" } else { "disable" };
            match self.birdc(&[verb, &protocol]) {
                Ok(_) => {
                    if want {
                        self.announced.insert(*vip);
                        println!("bgp: announcing {vip}");
                    } else {
                        self.announced.remove(vip);
                        println!("bgp: withdrawing {vip}");
                    }
                }
                Err(e) => eprintln!("bgp: cannot {verb} {vip}: {e}"),
            }
        }
    }

    /// Takes a changed `[bgp]` section or VIP list without dropping the sessions: BIRD
    /// reads its config again (`birdc configure`) and restarts only what changed; the
    /// VIPs announced stay announced.
    pub fn reconfigure(&mut self, config: &BgpConfig, vips: &[IpAddr]) -> Result<(), String> {
        self.announced.retain(|vip| vips.contains(vip));
        let conf = self.folder.join("bird.conf");
        std::fs::write(&conf, render(config, vips, &self.announced))
            .map_err(|e| format!("bgp: cannot write {}: {e}", conf.display()))?;
        let said = self.birdc(&["configure"])?;
        if !said.contains("Reconfigured") && !said.contains("Reconfiguration in progress") {
            return Err(format!("bgp: BIRD refused the new config: {}", said.trim()));
        }
        self.vips = vips.to_vec();
        println!("bgp: BIRD reconfigured");
        Ok(())
    }

    /// Each VIP and whether it is announced now.
    pub fn view(&self) -> Vec<(String, bool)> {
        self.vips
            .iter()
            .map(|vip| (vip.to_string(), self.announced.contains(vip)))
            .collect()
    }

    /// Stops BIRD: its sessions close and the routers withdraw every VIP at once.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        // SAFETY: kill(2) on our own child, still unreaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }

    fn birdc(&self, words: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.birdc)
            .arg("-s")
            .arg(&self.socket)
            .args(words)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", self.birdc.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && !text.contains("Unable to connect") {
            Ok(text)
        } else {
            Err(format!(
                "{}{}",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Bgp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.shut_down();
        }
    }
}

/// A folder of this process's own for BIRD's config and socket: under /run/xvs when
/// it can be made, else the temporary folder.
fn runtime_folder() -> Result<PathBuf, String> {
    let name = format!("bgp-{}", std::process::id());
    for base in [PathBuf::from("/run/xvs"), std::env::temp_dir()] {
        let folder = base.join(&name);
        if std::fs::create_dir_all(&folder).is_ok() {
            return Ok(folder);
        }
    }
    Err("bgp: cannot make a folder for BIRD".to_string())
}

/// The static protocol of a VIP, named after it (so that a reconfiguration that adds or
/// drops VIPs leaves the others' protocols as they are).
fn protocol_name(vip: &IpAddr) -> String {
    let name: String = vip
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("vip_{name}")
}

/// BIRD's config: a disabled static protocol per VIP (a /32 or /128 blackhole, exported by
/// BGP only), BFD if asked, and an eBGP session with each router that exports the VIPs of
/// its family and imports nothing.
pub fn render(config: &BgpConfig, vips: &[IpAddr], announced: &BTreeSet<IpAddr>) -> String {
    let mut text = String::from(
        "# Written by xvsd: announces this director's VIPs to its routers.\n\
         log stderr { warning, error, fatal };\n",
    );
    if let Some(id) = config.router_id {
        text.push_str(&format!("router id {id};\n"));
    }
    text.push_str("protocol device {}\n");
    for vip in vips {
        let (channel, length) = if vip.is_ipv4() {
            ("ipv4", 32)
        } else {
            ("ipv6", 128)
        };
        // Written as it is now, so that a reconfiguration changes no announcement.
        let disabled = if announced.contains(vip) {
            ""
        } else {
            " disabled;"
        };
        text.push_str(&format!(
            "protocol static {} {{{disabled} {channel}; route {vip}/{length} blackhole; }}\n",
            protocol_name(vip)
        ));
    }
    if config.bfd {
        text.push_str(
            "protocol bfd { interface \"*\" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }\n",
        );
    }
    // One template per family: a session carries the VIPs of its neighbor's family.
    for channel in ["ipv4", "ipv6"] {
        text.push_str(&format!(
            "template bgp routers_{channel} {{\n  local as {};\n  hold time {};\n{}  {channel} {{ import none; export where source = RTS_STATIC; }};\n}}\n",
            config.local_as,
            config.hold_time,
            if config.bfd { "  bfd on;\n" } else { "" }
        ));
    }
    for (i, neighbor) in config.neighbors.iter().enumerate() {
        let channel = if neighbor.is_ipv4() { "ipv4" } else { "ipv6" };
        text.push_str(&format!(
            "protocol bgp router{} from routers_{channel} {{ neighbor {} as {}; }}\n",
            i + 1,
            neighbor.address,
            config.as_of(neighbor)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bird_is_told_the_vips_the_routers_and_bfd() {
        let config = BgpConfig {
            local_as: 65001,
            peer_as: Some(65000),
            neighbors: vec![
                "10.0.0.254".parse().unwrap(),
                "fd00::fe".parse().unwrap(),
                "10.0.1.254 as 65002".parse().unwrap(),
            ],
            router_id: Some("10.0.0.1".parse().unwrap()),
            bfd: true,
            hold_time: 9,
            addresses: Vec::new(),
            bird: "bird".to_string(),
        };
        let announced = BTreeSet::from(["1.1.1.254".parse().unwrap()]);
        let text = render(
            &config,
            &["1.1.1.254".parse().unwrap(), "fd00:1::fe".parse().unwrap()],
            &announced,
        );
        for line in [
            "router id 10.0.0.1;",
            "protocol static vip_1_1_1_254 { ipv4; route 1.1.1.254/32 blackhole; }",
            "protocol static vip_fd00_1__fe { disabled; ipv6; route fd00:1::fe/128 blackhole; }",
            "  local as 65001;",
            "  hold time 9;",
            "  bfd on;",
            "  ipv4 { import none; export where source = RTS_STATIC; };",
            "  ipv6 { import none; export where source = RTS_STATIC; };",
            "protocol bgp router1 from routers_ipv4 { neighbor 10.0.0.254 as 65000; }",
            "protocol bgp router2 from routers_ipv6 { neighbor fd00::fe as 65000; }",
            "protocol bgp router3 from routers_ipv4 { neighbor 10.0.1.254 as 65002; }",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
        }
        assert!(text.contains("protocol bfd"));
    }
}
