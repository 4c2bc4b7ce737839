//! What the lab tests of xvsadm share: xvsadm run in the director as an operator types
//! it, and a page fetched by the client.

use xvs_lab::Lab;

pub const XVSADM: &str = env!("CARGO_BIN_EXE_xvsadm");

#[track_caller]
pub fn xvsadm(lab: &Lab, line: &str) -> String {
    let mut argv = vec![XVSADM];
    argv.extend(line.split_whitespace());
    lab.run_ok("director", &argv)
        .unwrap_or_else(|e| panic!("xvsadm {line}: {e}"))
}

pub fn get(lab: &Lab, url: &str) -> String {
    lab.run_ok("client", &["curl", "-s", "--max-time", "5", url])
        .unwrap_or_else(|e| panic!("curl {url}: {e}"))
}
