//! xvs-decap — attaches the tunnel decapsulation XDP program on a real server whose kernel
//! has no ipip driver. The program and this loader are filled in with the datapath.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "xvs-decap: tunnel decapsulation is not available yet (it arrives with the XDP datapath)"
    );
    ExitCode::from(2)
}
