//! Types and constants shared by the XDP programs (`xvs-ebpf`) and user space.
//!
//! Everything here is `#[repr(C)]` and plain data: the same bytes are written by one side
//! and read by the other through BPF maps. Defined once, here, one subject per module;
//! every item is also reachable from the crate root.
#![no_std]

mod codes;
mod conn;
mod expiry;
mod maps;
#[cfg(feature = "user")]
mod pod;
mod sched;
mod service;
mod sip;
pub mod tcp;

pub use codes::*;
pub use conn::*;
pub use expiry::*;
pub use maps::*;
pub use sched::*;
pub use service::*;
pub use sip::*;

/// Name of the director XDP program (its function name in `xvs-ebpf`, as the kernel
/// reports it; the kernel keeps at most 15 characters).
pub const DIRECTOR_PROGRAM: &str = "xvs_director";

/// Name of the tunnel decapsulation XDP program.
pub const DECAP_PROGRAM: &str = "xvs_decap";

/// Index of the loopback interface in every network namespace. The director program sits
/// there (generic mode) to anchor the namespace's maps, and passes loopback traffic untouched.
pub const LOOPBACK_INDEX: u32 = 1;

/// Address family codes in map entries.
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;
