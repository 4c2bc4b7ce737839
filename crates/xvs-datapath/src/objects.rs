//! The XDP objects, built by build.rs from `xvs-ebpf` and embedded in every binary.

use aya::{Ebpf, EbpfLoader};

use xvs_common::{
    Counters, DEFAULT_CONNECTIONS, MAX_STATS, SWEEP_10_SHARE, SWEEP_60_SHARE, SWEEP_SOON_SHARE,
    map_names,
};

use crate::{Error, Result};

/// ELF object of the director program (`xvs-ebpf/src/director.rs`).
pub static DIRECTOR: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-director-ebpf"));
/// ELF object of the decapsulation program (`xvs-ebpf/src/decap.rs`).
pub static DECAP: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-decap-ebpf"));

/// ELF object of the fwmark loop's marker (`xvs-ebpf/src/mark.rs`, TC).
pub static MARK: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-mark-ebpf"));

/// ELF object of a bare XDP_PASS program: the floor benchmarks compare against.
pub static PASS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs-pass-ebpf"));

/// Environment variable that sizes the connection table of a new director (entries; a NAT
/// connection takes two). Read when the director is created.
pub const CONNECTIONS_ENV: &str = "XVS_CONNECTIONS";

/// Environment variable that sizes the counter array of a new director: how many services
/// and real servers, together, it can hold. Read when the director is created.
pub const COUNTER_SLOTS_ENV: &str = "XVS_COUNTER_SLOTS";

/// Memory the counter array may take by default, over all CPUs.
const COUNTER_BUDGET: usize = 32 << 20;

/// Loads the director object: creates its maps (fresh, empty) and relocates its programs.
/// The programs themselves are not yet loaded into the kernel.
pub fn load_director() -> Result<Ebpf> {
    sized(&mut EbpfLoader::new())?
        .load(DIRECTOR)
        .map_err(|e| Error::new("cannot load the director object", e))
}

/// `loader` with the director's maps sized as this machine and the environment ask.
pub fn sized<'a, 'b>(loader: &'a mut EbpfLoader<'b>) -> Result<&'a mut EbpfLoader<'b>> {
    let connections = positive_setting(CONNECTIONS_ENV)?.unwrap_or(DEFAULT_CONNECTIONS);
    let counter_slots = positive_setting(COUNTER_SLOTS_ENV)?
        .unwrap_or_else(default_counter_slots)
        .min(MAX_STATS);
    Ok(loader
        .map_max_entries(map_names::CONNS, connections)
        .map_max_entries(map_names::FULLNAT, connections)
        .map_max_entries(map_names::SWEEP, (connections / SWEEP_10_SHARE).max(1))
        .map_max_entries(map_names::SWEEP_60, (connections / SWEEP_60_SHARE).max(1))
        .map_max_entries(map_names::SWEEP_300, connections)
        .map_max_entries(
            map_names::SWEEP_SOON,
            (connections / SWEEP_SOON_SHARE).max(1),
        )
        .map_max_entries(map_names::STATS, counter_slots)
        .map_max_entries(map_names::TUNNEL_SOURCES, counter_slots)
        .map_max_entries(map_names::DESTS, 2 * counter_slots))
}

fn positive_setting(name: &str) -> Result<Option<u32>> {
    match std::env::var(name) {
        Ok(text) => match text.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(Error::plain(format!(
                "{name}={text}: not a positive number"
            ))),
        },
        Err(_) => Ok(None),
    }
}

/// As many counter slots as fit [`COUNTER_BUDGET`] on this machine's CPUs (each slot is
/// one [`Counters`] per CPU), between 4,096 and [`MAX_STATS`].
fn default_counter_slots() -> u32 {
    let cpus = aya::util::nr_cpus().unwrap_or(1).max(1);
    let slots = COUNTER_BUDGET / (cpus * std::mem::size_of::<Counters>());
    slots.clamp(4096, MAX_STATS as usize) as u32
}

/// Loads the decapsulation object.
pub fn load_decap() -> Result<Ebpf> {
    EbpfLoader::new()
        .load(DECAP)
        .map_err(|e| Error::new("cannot load the decapsulation object", e))
}
