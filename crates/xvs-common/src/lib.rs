//! Types and constants shared by the XDP programs (`xvs-ebpf`) and user space.
//!
//! Everything here is `#[repr(C)]` and plain data: the same bytes are written by one side
//! and read by the other through BPF maps. Defined once, here.
#![no_std]

/// Name of the director XDP program (its function name in `xvs-ebpf`, as the kernel
/// reports it; the kernel keeps at most 15 characters).
pub const DIRECTOR_PROGRAM: &str = "xvs_director";
/// Name of the tunnel decapsulation XDP program.
pub const DECAP_PROGRAM: &str = "xvs_decap";

/// Index of the loopback interface in every network namespace. The director program sits
/// there (generic mode) to anchor the namespace's maps, and passes loopback traffic untouched.
pub const LOOPBACK_INDEX: u32 = 1;

/// Map names (the kernel keeps at most 15 characters, so they stay short).
pub mod map_names {
    /// Per-CPU datapath counters, indexed by [`crate::counter`].
    pub const COUNTERS: &str = "XVS_COUNTERS";
    /// Small array of control values, indexed by [`crate::meta`].
    pub const META: &str = "XVS_META";
}

/// Indexes into the per-CPU `XVS_COUNTERS` array.
pub mod counter {
    /// Frames the director program saw.
    pub const RX_FRAMES: u32 = 0;
    /// Bytes of those frames.
    pub const RX_BYTES: u32 = 1;
    /// Frames that were not Ethernet + IPv4/IPv6 and passed untouched.
    pub const NOT_IP: u32 = 2;
    /// Frames too short for the headers they announce (passed to the stack).
    pub const MALFORMED: u32 = 3;
    /// Number of slots in the array.
    pub const COUNT: u32 = 16;
}

/// Indexes into the `XVS_META` array.
pub mod meta {
    /// Layout version of the maps: user space refuses to drive maps of another layout.
    pub const LAYOUT_VERSION: u32 = 0;
    /// Number of slots in the array.
    pub const COUNT: u32 = 8;
}

/// Bumped whenever a shared map's key or value layout changes.
pub const LAYOUT_VERSION: u64 = 1;
