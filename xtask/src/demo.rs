//! `cargo xtask demo`: the seed's Experiments I (LVS/NAT) and II (LVS/DR), end to end, in
//! network namespaces: each lab is built, configured with xvsadm as the seed configures it
//! with ipvsadm, visited by a real client, listed, and removed again.

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

/// Runs a command in a lab host, printing it as a shell session would.
fn show(lab: &Lab, host: &str, argv: &[&str]) -> Result<String, String> {
    // The program by its name, not its build path.
    let mut shown: Vec<&str> = argv.to_vec();
    if let Some(program) = shown.first_mut() {
        *program = program.rsplit('/').next().unwrap_or(program);
    }
    println!("[{host}]# {}", shown.join(" "));
    let out = lab.run_ok(host, argv).map_err(|e| e.to_string())?;
    print!("{out}");
    Ok(out)
}

struct Demo {
    xvsadm: String,
}

impl Demo {
    fn xvsadm(&self, lab: &Lab, line: &str) -> Result<String, String> {
        let mut argv = vec![self.xvsadm.as_str()];
        argv.extend(line.split_whitespace());
        show(lab, "director", &argv)
    }

    /// The client asks `times` times; returns who answered.
    fn visit(&self, lab: &Lab, url: &str, times: usize) -> Result<Vec<String>, String> {
        (0..times)
            .map(|_| {
                show(lab, "client", &["curl", "-s", "--max-time", "5", url])
                    .map(|page| page.trim().to_string())
            })
            .collect()
    }
}

fn expect(what: &str, ok: bool) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("demo check failed: {what}"))
    }
}

pub fn run() -> Result<(), String> {
    require_root("demo")?;
    setup::ensure()?;
    build_release()?;
    let demo = Demo {
        xvsadm: release_binary("xvsadm")
            .to_str()
            .ok_or("target path is not UTF-8")?
            .to_string(),
    };
    experiment_one(&demo)?;
    experiment_two(&demo)?;
    println!("\ndemo done: both labs removed (namespaces, links, servers, director state)");
    Ok(())
}

fn experiment_one(demo: &Demo) -> Result<(), String> {
    println!(
        "\n== Experiment I, LVS/NAT: client 1.1.1.1 -- director 1.1.1.254 | 192.168.1.254 -- web1 192.168.1.10, web2 192.168.1.20"
    );
    let mut lab = topology::nat().build().map_err(|e| e.to_string())?;
    for (web, page) in [("web1", "192.168.1.10"), ("web2", "192.168.1.20")] {
        lab.serve(web, 80, ServerKind::Http(page.into()))
            .map_err(|e| e.to_string())?;
    }
    demo.xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr")?;
    demo.xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.10:80 -m")?;
    demo.xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m")?;
    demo.xvsadm(&lab, "-L -n")?;
    println!("\n-- the client sees the two pages alternate (rr)");
    let pages = demo.visit(&lab, "http://1.1.1.254/", 4)?;
    expect(
        "rr alternates",
        pages.windows(2).all(|w| w[0] != w[1]) && pages.len() == 4,
    )?;
    demo.xvsadm(&lab, "-L -n --stats")?;
    demo.xvsadm(&lab, "-L -n -c")?;
    println!("\n-- remove web2: web1 answers alone");
    demo.xvsadm(&lab, "-d -t 1.1.1.254:80 -r 192.168.1.20:80")?;
    let pages = demo.visit(&lab, "http://1.1.1.254/", 2)?;
    expect("web1 alone", pages.iter().all(|p| p == "192.168.1.10"))?;
    println!("\n-- back, then the scheduler to wrr and web1's weight to 2");
    demo.xvsadm(&lab, "-a -t 1.1.1.254:80 -r 192.168.1.20:80 -m")?;
    demo.xvsadm(&lab, "-E -t 1.1.1.254:80 -s wrr")?;
    demo.xvsadm(&lab, "-e -t 1.1.1.254:80 -r 192.168.1.10:80 -m -w 2")?;
    demo.xvsadm(&lab, "-L -n")?;
    let pages = demo.visit(&lab, "http://1.1.1.254/", 6)?;
    let web1 = pages.iter().filter(|p| *p == "192.168.1.10").count();
    expect("wrr 2:1", web1 == 4)?;
    println!("\n-- clear everything");
    demo.xvsadm(&lab, "-C")?;
    demo.xvsadm(&lab, "-L -n")?;
    drop(lab);
    Ok(())
}

fn experiment_two(demo: &Demo) -> Result<(), String> {
    println!(
        "\n== Experiment II, LVS/DR: client 1.1.1.1, director (VIP 1.1.1.254), web1 1.1.1.10, web2 1.1.1.20 on one segment; the VIP on each web server's lo"
    );
    let mut lab = topology::dr().build().map_err(|e| e.to_string())?;
    for web in ["web1", "web2"] {
        lab.serve(web, 80, ServerKind::Http(web.into()))
            .map_err(|e| e.to_string())?;
        show(&lab, web, &["ip", "-brief", "addr", "show", "lo"])?;
    }
    demo.xvsadm(&lab, "-A -t 1.1.1.254:80 -s rr")?;
    demo.xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.10 -g")?;
    demo.xvsadm(&lab, "-a -t 1.1.1.254:80 -r 1.1.1.20")?;
    demo.xvsadm(&lab, "-L -n")?;
    println!("\n-- the client sees both; the replies go straight from the web servers");
    let pages = demo.visit(&lab, "http://1.1.1.254/", 4)?;
    expect(
        "rr alternates",
        pages.windows(2).all(|w| w[0] != w[1]) && pages.len() == 4,
    )?;
    let stats = demo.xvsadm(&lab, "-L -n --stats")?;
    expect("DR counts no replies", stats.contains("OutPkts"))?;
    demo.xvsadm(&lab, "-L -n -c")?;
    drop(lab);
    Ok(())
}
