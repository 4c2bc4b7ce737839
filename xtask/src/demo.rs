//! `cargo xtask demo`: the seed's Experiment I topology in network namespaces, the director
//! program attached with `xvsd`, traffic from the client, the program's counters, clean-up.

use std::path::PathBuf;

use xvs_lab::{Lab, ServerKind, topology};

use crate::{build_release, require_root, setup};

pub fn release_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            xtask.parent().unwrap_or(&xtask).join("target")
        });
    target.join("release").join(name)
}

fn show(lab: &Lab, host: &str, argv: &[&str]) -> Result<String, String> {
    println!("[{host}]# {}", argv.join(" "));
    let out = lab.run_ok(host, argv).map_err(|e| e.to_string())?;
    print!("{out}");
    Ok(out)
}

pub fn run() -> Result<(), String> {
    require_root("demo")?;
    setup::ensure()?;
    build_release()?;
    let xvsd = release_binary("xvsd");
    let xvsd = xvsd.to_str().ok_or("target path is not UTF-8")?;

    println!(
        "\n== Experiment I (LVS/NAT) topology: client 1.1.1.1 -- director 1.1.1.254 | 192.168.1.254 -- web1 192.168.1.10, web2 192.168.1.20"
    );
    let mut lab = topology::nat().build().map_err(|e| e.to_string())?;
    lab.serve("web1", 80, ServerKind::Http("192.168.1.10".into()))
        .map_err(|e| e.to_string())?;
    lab.serve("web2", 80, ServerKind::Http("192.168.1.20".into()))
        .map_err(|e| e.to_string())?;

    println!("\n== attach the director's XDP program to both of its interfaces");
    show(&lab, "director", &[xvsd, "attach", "eth0", "eth1"])?;
    show(&lab, "director", &["ip", "-brief", "link", "show"])?;
    let links = lab
        .run_ok("director", &["ip", "link", "show"])
        .map_err(|e| e.to_string())?;
    for line in links.lines().filter(|l| l.contains("prog/xdp")) {
        println!("    {}", line.trim());
    }

    println!(
        "\n== the client reaches both web servers through the director (it routes; load balancing on the VIP arrives with the datapath)"
    );
    for web in ["192.168.1.10", "192.168.1.20"] {
        show(
            &lab,
            "client",
            &["curl", "-s", "--max-time", "5", &format!("http://{web}/")],
        )?;
    }

    println!("\n== the director program saw those frames");
    let status = show(&lab, "director", &[xvsd, "status"])?;
    let frames: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("rx_frames "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if frames == 0 {
        return Err("the director counted no frames".into());
    }

    println!("\n== cleaning up (namespaces, links, servers, and with them the director's state)");
    drop(lab);
    println!("demo done");
    Ok(())
}
