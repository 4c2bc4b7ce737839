//! xvs-decap — attaches the tunnel decapsulation XDP program on a real server whose kernel
//! has no ipip (or gre, or fou) driver, so that tunnel-mode (`-i`) traffic from an xvs
//! director arrives as the inner packet: IPIP, GRE, and GUE on a port it is given. It
//! stays attached after this command exits, until `--detach`.

use std::process::ExitCode;

use xvs_datapath::decap;

const USAGE: &str = "\
Usage:
  xvs-decap IFACE [--gue-port N]   decapsulate IP-in-IP and GRE arriving on IFACE, and GUE
                                   on UDP port N (stays attached; again: sets the port)
  xvs-decap --detach IFACE         stop
  xvs-decap --status IFACE         say whether IFACE decapsulates
  xvs-decap -h | --help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["-h" | "--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        ["--detach", iface] => decap::detach(iface),
        ["--status", iface] => decap::is_attached(iface).and_then(|on| {
            let gue = decap::gue_port(iface)?;
            match (on, gue) {
                (false, _) => println!("{iface}: not decapsulating"),
                (true, None) => println!("{iface}: decapsulating IPIP and GRE"),
                (true, Some(port)) => {
                    println!("{iface}: decapsulating IPIP, GRE and GUE on port {port}")
                }
            }
            Ok(())
        }),
        [iface] if !iface.starts_with('-') => decap::attach(iface, None),
        [iface, "--gue-port", port] if !iface.starts_with('-') => {
            match port.parse::<u16>().ok().filter(|p| *p != 0) {
                Some(port) => decap::attach(iface, Some(port)),
                None => {
                    eprintln!("xvs-decap: --gue-port {port}: not a port (1-65535)");
                    return ExitCode::from(2);
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xvs-decap: {e}");
            ExitCode::FAILURE
        }
    }
}
