//! IPVS's schedulers: which real server gets a new connection. One file per scheduler, as
//! IPVS has `ip_vs_rr.c`, `ip_vs_wlc.c`, …, behind one interface, [`Schedule`]. These are
//! the reference implementations the datapath's in-kernel choices are tested against, and
//! they build the compact tables the datapath reads.

use std::fmt;

/// The schedulers IPVS has, by the names ipvsadm takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Fo,
    Ovf,
    Mh,
    Twos,
}

impl Scheduler {
    /// Every scheduler, in the order ipvsadm's help lists them (twos last: it is newer).
    pub const ALL: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
        Scheduler::Twos,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
            Scheduler::Twos => "twos",
        }
    }

    pub fn from_name(name: &str) -> Option<Scheduler> {
        Scheduler::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod dh;
mod fo;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod wlc;
mod wrr;

pub use dh::Dh;
pub use fo::Fo;
pub use lblc::Lblc;
pub use lblcr::Lblcr;
pub use lc::Lc;
pub use mh::{MH_TABLE_SIZE, Mh};
pub use nq::Nq;
pub use ovf::Ovf;
pub use rr::Rr;
pub use sed::Sed;
pub use sh::{SH_TABLE_SIZE, Sh};
pub use twos::Twos;
pub use wlc::Wlc;
pub use wrr::Wrr;

use std::net::IpAddr;

/// What a scheduler sees of one real server of the service, in IPVS's list order (the
/// newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub addr: IpAddr,
    pub port: u16,
    /// Current weight; 0 = quiescent (no new connections).
    pub weight: u32,
    /// The last non-zero weight (Maglev keeps a quiesced server's slots with it).
    pub last_weight: u32,
    pub active: u32,
    pub inactive: u32,
    /// IPVS's OVERLOAD flag (upper threshold reached).
    pub overloaded: bool,
}

impl Candidate {
    /// A server with `weight` and no connections.
    pub fn new(addr: IpAddr, port: u16, weight: u32) -> Candidate {
        Candidate {
            addr,
            port,
            weight,
            last_weight: weight,
            active: 0,
            inactive: 0,
            overloaded: false,
        }
    }

    /// `ip_vs_dest_conn_overhead`: active connections weigh 256 inactive ones.
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active) << 8) + u64::from(self.inactive)
    }

    /// Can take a new connection at all: weight above 0 and not overloaded.
    pub fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// A real server of the model as a scheduler sees it; `overloaded` is the datapath's
    /// OVERLOAD flag.
    pub fn of(dest: &crate::model::Dest, overloaded: bool) -> Candidate {
        Candidate {
            addr: dest.addr,
            port: dest.port,
            weight: dest.weight,
            last_weight: dest.last_weight,
            active: dest.conns.active,
            inactive: dest.conns.inactive,
            overloaded,
        }
    }

    fn identity(&self) -> (IpAddr, u16) {
        (self.addr, self.port)
    }
}

/// The new connection being scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    /// Seconds on any monotonic clock (lblc/lblcr expire their entries by it).
    pub now: u64,
}

/// One IPVS scheduler with its state for one service.
pub trait Schedule: Send {
    /// The service's real servers changed (added, removed or edited): IPVS's
    /// `add_dest`/`del_dest`/`upd_dest`. Schedulers with tables rebuild them here.
    fn update(&mut self, dests: &[Candidate]) {
        let _ = dests;
    }

    /// The real server (an index into `dests`) for a new connection, or `None` when no
    /// server may take it.
    fn schedule(&mut self, dests: &[Candidate], flow: &Flow) -> Option<usize>;
}

/// A fresh scheduler of kind `scheduler` for a service with `flags` (`-b`) and real
/// servers `dests`. `seed` feeds the random choices of `twos`.
pub fn new_scheduler(
    scheduler: Scheduler,
    flags: u32,
    dests: &[Candidate],
    seed: u64,
) -> Box<dyn Schedule> {
    use crate::model::flags::{FALLBACK, PORT};
    let fallback = flags & FALLBACK != 0;
    let port = flags & PORT != 0;
    let mut state: Box<dyn Schedule> = match scheduler {
        Scheduler::Rr => Box::new(Rr::default()),
        Scheduler::Wrr => Box::new(Wrr::default()),
        Scheduler::Lc => Box::new(Lc),
        Scheduler::Wlc => Box::new(Wlc),
        Scheduler::Sed => Box::new(Sed),
        Scheduler::Nq => Box::new(Nq),
        Scheduler::Fo => Box::new(Fo),
        Scheduler::Ovf => Box::new(Ovf),
        Scheduler::Twos => Box::new(Twos::new(seed)),
        Scheduler::Lblc => Box::new(Lblc::default()),
        Scheduler::Lblcr => Box::new(Lblcr::default()),
        Scheduler::Dh => Box::new(Dh::default()),
        Scheduler::Sh => Box::new(Sh::new(fallback, port)),
        Scheduler::Mh => Box::new(Mh::new(fallback, port)),
    };
    state.update(dests);
    state
}

/// The table a hashing scheduler (sh, dh, mh) schedules from, for real servers `dests`
/// (in IPVS's list order) and service `flags`: the index of the server in each slot.
/// `None` for the other schedulers. The datapath reads this table and hashes as the
/// reference does.
pub fn lookup_table(
    scheduler: Scheduler,
    flags: u32,
    dests: &[Candidate],
) -> Option<Vec<Option<usize>>> {
    use crate::model::flags::{FALLBACK, PORT};
    let (fallback, port) = (flags & FALLBACK != 0, flags & PORT != 0);
    Some(match scheduler {
        Scheduler::Sh => {
            let mut sh = Sh::new(fallback, port);
            sh.update(dests);
            sh.buckets().to_vec()
        }
        Scheduler::Dh => {
            let mut dh = Dh::default();
            dh.update(dests);
            dh.buckets().to_vec()
        }
        Scheduler::Mh => {
            let mut mh = Mh::new(fallback, port);
            mh.update(dests);
            mh.lookup().to_vec()
        }
        _ => return None,
    })
}

/// The weighted-least-connection rule IPVS uses in wlc, sed, lblc and lblcr: the first
/// available server is the candidate; a later non-overloaded server replaces it when
/// `overhead(candidate) * weight(later) > overhead(later) * weight(candidate)` (strictly,
/// so ties keep the earlier one; a weight-0 server can never win that way).
fn weighted_least(dests: &[Candidate], overhead: impl Fn(&Candidate) -> u64) -> Option<usize> {
    let first = dests.iter().position(Candidate::available)?;
    let mut least = first;
    let mut least_overhead = overhead(&dests[first]);
    for (index, dest) in dests.iter().enumerate().skip(first + 1) {
        if dest.overloaded {
            continue;
        }
        let dest_overhead = overhead(dest);
        if u128::from(least_overhead) * u128::from(dest.weight)
            > u128::from(dest_overhead) * u128::from(dests[least].weight)
        {
            least = index;
            least_overhead = dest_overhead;
        }
    }
    Some(least)
}

/// The kernel's `hash_32(value, bits)`: multiplicative hashing by the golden ratio.
fn hash_32(value: u32, bits: u32) -> u32 {
    value.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// An address as IPVS folds it into 32 bits (IPv6: the XOR of its four words), host order.
fn fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(v4) => u32::from(*v4),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (0..4)
                .map(|i| u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]))
                .fold(0, |acc, word| acc ^ word)
        }
    }
}

/// The hashing schedulers' choice: the server in the key's home slot if it is available;
/// otherwise, with `fallback`, the first available server found by rehashing with offsets
/// `home, home+1, …` (mod `size`) through `slot_at`; an empty slot ends the search.
fn table_choice(
    dests: &[Candidate],
    table: &[Option<usize>],
    home: usize,
    fallback: bool,
    slot_at: impl Fn(u32) -> usize,
) -> Option<usize> {
    let first = table[home]?;
    if dests.get(first)?.available() {
        return Some(first);
    }
    if !fallback {
        return None;
    }
    let size = table.len() as u32;
    for k in 0..size {
        let index = table[slot_at((k + home as u32) % size)]?;
        if dests.get(index)?.available() {
            return Some(index);
        }
    }
    None
}

/// Greatest common divisor.
fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}
