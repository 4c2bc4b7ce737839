//! New flows on two CPUs at once, each thread pinned to its own CPU, beside the same flows
//! on one CPU alone: what a new connection costs when another CPU makes them too, through
//! the state the CPUs share (the connection table's buckets, the sweep queue's lock, the
//! service's scheduler state, its real servers' counts).

use std::{
    os::fd::{AsFd, OwnedFd},
    sync::Barrier,
};

use xvs_datapath::test_run;

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; the macros write within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "cannot pin a thread to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The floor a case is measured beside, on each runner: a bare XDP_PASS program and its
/// frame, run in chunks interleaved with the case's (this VM's CPUs slow down unevenly
/// when both are busy; a floor measured apart would not see it).
pub struct Floor<'a> {
    pub program: &'a OwnedFd,
    pub frame: &'a [u8],
}

/// Runs `frames` through `program` on `cpu`, once `start` lets every runner go, in chunks
/// of [`CHUNK`] interleaved with as many runs of the floor: the mean kernel-timed run of
/// each, ns.
fn run_on(
    cpu: usize,
    program: &OwnedFd,
    ingress: u32,
    frames: &[Vec<u8>],
    floor: &Floor<'_>,
    start: &Barrier,
) -> Result<(f64, f64), String> {
    pin(cpu)?;
    start.wait();
    let (mut total, mut floor_total) = (0u64, 0u64);
    let run = |program: &OwnedFd, frame: &[u8]| -> Result<u64, String> {
        let (_, ns) =
            test_run::run_fd(program.as_fd(), ingress, frame).map_err(|e| e.to_string())?;
        Ok(u64::from(ns))
    };
    for chunk in frames.chunks(CHUNK) {
        for _ in chunk {
            floor_total += run(floor.program, floor.frame)?;
        }
        for frame in chunk {
            total += run(program, frame)?;
        }
    }
    let calls = frames.len() as f64;
    Ok((total as f64 / calls, floor_total as f64 / calls))
}

/// Calls of a case between two chunks of the floor's.
const CHUNK: usize = 1000;

/// A case on two CPUs: each CPU's cost alone and both at once, each × its floor.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Mean of the two CPUs' cost alone, ns, and × the floor.
    pub alone_ns: f64,
    pub alone: f64,
    /// The same with both CPUs at it.
    pub together_ns: f64,
    pub together: f64,
}

/// The cost of `frames[cpu]` on CPU 0 and on CPU 1, each alone and then both at once, each
/// from a fresh director (`fresh` makes one and hands back its program), each beside
/// `floor` on the same CPU.
pub fn alone_and_together(
    ingress: u32,
    frames: &[Vec<Vec<u8>>; 2],
    floor: &Floor<'_>,
    fresh: &dyn Fn() -> Result<OwnedFd, String>,
) -> Result<Round, String> {
    let (mut alone_ns, mut alone) = (0.0, 0.0);
    for (cpu, cpu_frames) in frames.iter().enumerate() {
        let program = fresh()?;
        let start = Barrier::new(1);
        let (ns, floor_ns) = std::thread::scope(|s| {
            s.spawn(|| run_on(cpu, &program, ingress, cpu_frames, floor, &start))
                .join()
                .map_err(|_| "a runner panicked".to_string())?
        })?;
        alone_ns += ns / 2.0;
        alone += ns / floor_ns / 2.0;
    }
    let program = fresh()?;
    let start = Barrier::new(2);
    let together: Vec<Result<(f64, f64), String>> = std::thread::scope(|s| {
        let runners: Vec<_> = frames
            .iter()
            .enumerate()
            .map(|(cpu, cpu_frames)| {
                let (program, start) = (&program, &start);
                s.spawn(move || run_on(cpu, program, ingress, cpu_frames, floor, start))
            })
            .collect();
        runners
            .into_iter()
            .map(|r| r.join().map_err(|_| "a runner panicked".to_string())?)
            .collect()
    });
    let (mut together_ns, mut together_x) = (0.0, 0.0);
    for result in together {
        let (ns, floor_ns) = result?;
        together_ns += ns / 2.0;
        together_x += ns / floor_ns / 2.0;
    }
    Ok(Round {
        alone_ns,
        alone,
        together_ns,
        together: together_x,
    })
}
