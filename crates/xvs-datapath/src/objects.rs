//! The XDP objects, built by build.rs from `xvs-ebpf` and embedded in every binary.

use aya::{Ebpf, EbpfLoader};

use xvs_common::{DEFAULT_CONNECTIONS, map_names};

use crate::{Error, Result};

/// ELF object of the director program (`xvs-ebpf/src/director.rs`).
pub static DIRECTOR: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-director-ebpf"));
/// ELF object of the decapsulation program (`xvs-ebpf/src/decap.rs`).
pub static DECAP: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-decap-ebpf"));

/// ELF object of a bare XDP_PASS program: the floor benchmarks compare against.
pub static PASS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-pass-ebpf"));

/// Environment variable that sizes the connection table of a new director (entries; a NAT
/// connection takes two). Read when the director is created.
pub const CONNECTIONS_ENV: &str = "XVS_CONNECTIONS";

/// Loads the director object: creates its maps (fresh, empty) and relocates its programs.
/// The programs themselves are not yet loaded into the kernel.
pub fn load_director() -> Result<Ebpf> {
    let connections = match std::env::var(CONNECTIONS_ENV) {
        Ok(text) => text.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            Error::plain(format!("{CONNECTIONS_ENV}={text}: not a positive number"))
        })?,
        Err(_) => DEFAULT_CONNECTIONS,
    };
    EbpfLoader::new()
        .map_max_entries(map_names::CONNS, connections)
        .map_max_entries(map_names::SWEEP, connections)
        .load(DIRECTOR)
        .map_err(|e| Error::new("cannot load the director object", e))
}

/// Loads the decapsulation object.
pub fn load_decap() -> Result<Ebpf> {
    EbpfLoader::new()
        .load(DECAP)
        .map_err(|e| Error::new("cannot load the decapsulation object", e))
}
