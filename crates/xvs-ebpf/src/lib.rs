//! The XDP programs are binaries (src/director.rs, src/decap.rs); this empty library lets
//! xvs-datapath name the crate as a build dependency so cargo rebuilds the objects on change.
#![no_std]
