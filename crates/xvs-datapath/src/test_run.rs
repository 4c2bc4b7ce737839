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

/// `union bpf_attr` as BPF_PROG_TEST_RUN reads it.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// Runs `frame` once through the program behind `program` (any loaded XDP program, such
/// as a namespace's installed director) as received on `ingress_ifindex`. Also returns
/// the kernel's measured run time in nanoseconds.
pub fn run_fd(
    program: std::os::fd::BorrowedFd<'_>,
    ingress_ifindex: u32,
    frame: &[u8],
) -> Result<(Outcome, u32)> {
    run_fd_repeated(program, ingress_ifindex, frame, 1)
}

/// As [`run_fd`], with the kernel running the program `repeat` times over the same buffer
/// (changed in place by each run) and timing their mean: the program's own cost, without
/// the system call around it.
pub fn run_fd_repeated(
    program: std::os::fd::BorrowedFd<'_>,
    ingress_ifindex: u32,
    frame: &[u8],
    repeat: u32,
) -> Result<(Outcome, u32)> {
    use std::os::fd::AsRawFd;
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    let ctx = context(frame.len(), ingress_ifindex);
    let mut out = vec![0u8; frame.len() + 256];
    let mut attr = TestRunAttr {
        prog_fd: program.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ..TestRunAttr::default()
    };
    if ingress_ifindex != 0 {
        attr.ctx_in = ctx.as_ptr() as u64;
        attr.ctx_size_in = ctx.len() as u32;
    }
    // SAFETY: attr describes valid buffers that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    if rc < 0 {
        return Err(Error::new(
            "BPF_PROG_TEST_RUN failed",
            std::io::Error::last_os_error(),
        ));
    }
    out.truncate(attr.data_size_out as usize);
    Ok((
        Outcome {
            verdict: attr.retval,
            frame: out,
        },
        attr.duration,
    ))
}
