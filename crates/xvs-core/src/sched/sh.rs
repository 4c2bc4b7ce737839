//! Source hashing (`ip_vs_sh.c`): 256 buckets dealt to the servers in list order, each
//! server taking as many consecutive buckets as its weight (at least one); the bucket of
//! the source address (plus source port with `sh-port`) decides. With `sh-fallback` an
//! unavailable server's clients walk the table to the next available one.

use super::{Candidate, Flow, Schedule, fold, hash_32, table_choice};

/// Buckets in the table (`CONFIG_IP_VS_SH_TAB_BITS` = 8).
pub const SH_TABLE_SIZE: usize = 256;

#[derive(Debug)]
pub struct Sh {
    buckets: Vec<Option<usize>>,
    fallback: bool,
    port: bool,
}

impl Sh {
    pub fn new(fallback: bool, port: bool) -> Sh {
        Sh {
            buckets: vec![None; SH_TABLE_SIZE],
            fallback,
            port,
        }
    }

    /// The bucket table the datapath reads.
    pub fn buckets(&self) -> &[Option<usize>] {
        &self.buckets
    }

    /// `ip_vs_sh_hashkey`.
    fn bucket(addr: u32, port: u16, offset: u32) -> usize {
        (offset.wrapping_add(hash_32(u32::from(port).wrapping_add(addr), 8)) & 0xff) as usize
    }
}

impl Schedule for Sh {
    fn update(&mut self, dests: &[Candidate]) {
        let mut server = 0;
        let mut taken = 0;
        for bucket in self.buckets.iter_mut() {
            if dests.is_empty() {
                *bucket = None;
                continue;
            }
            *bucket = Some(server);
            taken += 1;
            if taken >= dests[server].weight {
                server = (server + 1) % dests.len();
                taken = 0;
            }
        }
    }

    fn schedule(&mut self, dests: &[Candidate], flow: &Flow) -> Option<usize> {
        let addr = fold(&flow.src);
        let port = if self.port { flow.src_port } else { 0 };
        let home = Sh::bucket(addr, port, 0);
        table_choice(dests, &self.buckets, home, self.fallback, |offset| {
            Sh::bucket(addr, port, offset)
        })
    }
}
