//! VRRP without I/O (DESIGN.md, "Decide without I/O"): the advertisement as bytes
//! (`wire.rs`, VRRPv3 per RFC 5798 and v2 per RFC 3768) and one virtual router's
//! election (`router.rs`), which takes the time and the packets it receives as inputs
//! and returns what to send and do. xvsd's VRRP (not yet wired) only carries them out.
#![forbid(unsafe_code)]

pub mod router;
pub mod wire;
