//! Runs frames through a loaded XDP program with BPF_PROG_TEST_RUN, as if they had
//! arrived on a given interface: for golden-packet tests and per-packet benchmarks.

use aya::programs::{TestRun, TestRunOptions, Xdp};

use crate::{Error, Result};

/// What the program did with one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The XDP verdict (`XDP_PASS` = 2, `XDP_TX` = 3, `XDP_DROP` = 1, …).
    pub verdict: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
}

/// The kernel's `struct xdp_md` as a test run's context: the frame spans `data..data_end`
/// (the kernel insists that `data_end` is the frame's length) and arrived on
/// `ingress_ifindex`.
fn context(frame_len: usize, ingress_ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(frame_len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
    ctx
}

/// Runs `frame` once through `program` as received on interface `ingress_ifindex` (an
/// interface of the calling thread's network namespace; 0 means the kernel's default, `lo`).
pub fn run(program: &Xdp, ingress_ifindex: u32, frame: &[u8]) -> Result<Outcome> {
    let ctx = context(frame.len(), ingress_ifindex);
    // Room for encapsulation headers a program may push.
    let mut out = vec![0u8; frame.len() + 256];
    let result = program
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: (ingress_ifindex != 0).then_some(&ctx[..]),
            ..Default::default()
        })
        .map_err(|e| Error::new("BPF_PROG_TEST_RUN failed", e))?;
    out.truncate(result.data_size_out as usize);
    Ok(Outcome {
        verdict: result.return_value,
        frame: out,
    })
}
