//! The SIP persistence engine's scan of a datagram for its Call-ID (the parser and the
//! template key: xvs-common's `sip` module).

use aya_ebpf::{bindings::xdp_md, helpers::generated::bpf_xdp_load_bytes};
use xvs_common::{CALL_SCAN_BYTES, CallId, CallIdScanner, ConnKey, STEPS_PER_BYTE, with_call};

use crate::{
    maps::{XVS_CALL_SCAN, XVS_CALLS},
    packet::helper_len,
    sched,
};

/// A datagram's bytes and the scan through them (per CPU).
pub struct CallScan {
    scanner: CallIdScanner,
    /// Bytes loaded, and the one the scanner is at.
    len: u32,
    at: u32,
    call: CallId,
    bytes: [u8; CALL_SCAN_BYTES],
}

const UDP_HEADER: u32 = 8;

/// How many bytes of a line one step of the scan may pass over.
const LINE_SKIP: u32 = 32;

/// Looks for the Call-ID of the UDP datagram whose header is at `l4`: 1 if there is one
/// (its hash and text left for [`mark_call`] and [`keep_call_id`]), else 0. The first
/// [`CALL_SCAN_BYTES`] bytes of its payload are copied out and fed to the scanner in a
/// `bpf_loop`. A global BPF function: its walk is verified once.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn xvs_call_scan(ctx: *mut xdp_md, l4: u32) -> u32 {
    let Some(space) = XVS_CALL_SCAN.get_ptr_mut(0) else {
        return 0;
    };
    let space = unsafe { &mut *space };
    let mut udp_len = [0u8; 2];
    if unsafe { bpf_xdp_load_bytes(ctx, l4 + 4, udp_len.as_mut_ptr() as *mut _, 2) } != 0 {
        return 0;
    }
    // What the datagram says it holds, within what the frame has (a first fragment
    // has less).
    let frame = unsafe { (*ctx).data_end.wrapping_sub((*ctx).data) };
    let payload = (u16::from_be_bytes(udp_len) as u32)
        .min(frame.saturating_sub(l4))
        .saturating_sub(UDP_HEADER)
        .min(CALL_SCAN_BYTES as u32);
    let Some(len) = helper_len(payload as u64, 1, CALL_SCAN_BYTES as u64) else {
        return 0;
    };
    let bytes = space.bytes.as_mut_ptr() as *mut core::ffi::c_void;
    if unsafe { bpf_xdp_load_bytes(ctx, l4 + UDP_HEADER, bytes, len) } != 0 {
        return 0;
    }
    space.scanner = CallIdScanner::new();
    space.len = len;
    space.at = 0;
    let mut unused = 0u64;
    sched::walk(len * STEPS_PER_BYTE, &mut unused, scan_step);
    space.scanner.finish();
    space.scanner.found().is_some() as u32
}

/// One step of the scanner (a byte may take several: it moves on when the scanner is
/// done with it).
extern "C" fn scan_step(_: u32, _: *mut u64) -> i64 {
    let Some(space) = XVS_CALL_SCAN.get_ptr_mut(0) else {
        return sched::STOP;
    };
    let space = unsafe { &mut *space };
    // Most bytes are inside lines the scanner passes over: up to LINE_SKIP of them are
    // passed here without a step each (a step per byte cost about 10 ns).
    if space.scanner.passing_over_line() {
        let mut skipped = 0;
        while skipped < LINE_SKIP && space.at < space.len {
            let byte = space.bytes[space.at as usize & (CALL_SCAN_BYTES - 1)];
            if byte == b'\r' || byte == b'\n' {
                break;
            }
            space.at += 1;
            skipped += 1;
        }
    }
    if space.at >= space.len {
        return sched::STOP;
    }
    let byte = space.bytes[space.at as usize & (CALL_SCAN_BYTES - 1)];
    if !space.scanner.step(byte, &mut space.call) {
        space.at += 1;
    }
    if space.scanner.done() {
        sched::STOP
    } else {
        sched::CONTINUE
    }
}

/// Makes template key `key` the key of the call [`xvs_call_scan`] found last on this CPU.
#[inline(always)]
pub fn mark_call(key: &mut ConnKey) {
    if let Some(space) = XVS_CALL_SCAN.get(0)
        && let Some(hash) = space.scanner.found()
    {
        with_call(key, hash);
    }
}

/// Keeps the Call-ID [`xvs_call_scan`] found last beside the template made for it under
/// `key` (for the listing; a full map only leaves it unlisted).
#[inline(always)]
pub fn keep_call_id(key: &ConnKey) {
    if let Some(space) = XVS_CALL_SCAN.get(0)
        && space.scanner.found().is_some()
    {
        let _ = XVS_CALLS.insert(key, &space.call, 0);
    }
}

/// A call's template is gone: its Call-ID too.
#[inline(always)]
pub fn forget_call_id(key: &ConnKey) {
    let _ = XVS_CALLS.remove(key);
}
