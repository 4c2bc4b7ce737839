//! xvs-decap — attaches the tunnel decapsulation XDP program on a real server whose kernel
//! has no ipip driver, so that tunnel-mode (`-i`) traffic from an xvs director arrives as
//! the inner packet. It stays attached after this command exits, until `--detach`.

use std::process::ExitCode;

use xvs_datapath::decap;

const USAGE: &str = "\
Usage:
  xvs-decap IFACE            decapsulate IP-in-IP arriving on IFACE (stays attached)
  xvs-decap --detach IFACE   stop
  xvs-decap --status IFACE   say whether IFACE decapsulates
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
        ["--status", iface] => decap::is_attached(iface).map(|on| {
            println!(
                "{iface}: {}",
                if on {
                    "decapsulating"
                } else {
                    "not decapsulating"
                }
            );
        }),
        [iface] if !iface.starts_with('-') => decap::attach(iface),
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
