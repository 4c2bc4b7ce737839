//! xvsadm — the ipvsadm command line over xvs. The command line arrives with its issue.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("xvsadm: not available yet");
    ExitCode::from(2)
}
