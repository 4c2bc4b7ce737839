//! The XDP objects, built by build.rs from `xvs-ebpf` and embedded in every binary.

use aya::{Ebpf, EbpfLoader};

use crate::{Error, Result};

/// ELF object of the director program (`xvs-ebpf/src/director.rs`).
pub static DIRECTOR: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-director-ebpf"));
/// ELF object of the decapsulation program (`xvs-ebpf/src/decap.rs`).
pub static DECAP: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-decap-ebpf"));

/// Loads the director object: creates its maps (fresh, empty) and relocates its programs.
/// The programs themselves are not yet loaded into the kernel.
pub fn load_director() -> Result<Ebpf> {
    EbpfLoader::new()
        .load(DIRECTOR)
        .map_err(|e| Error::new("cannot load the director object", e))
}
