//! Destination hashing (`ip_vs_dh.c`): 256 buckets dealt to the servers in list order, one
//! each per round (weights ignored); the bucket of the destination address decides.

use super::{Candidate, Flow, Schedule, fold, hash_32};

/// Buckets in the table (`CONFIG_IP_VS_DH_TAB_BITS` = 8).
pub const DH_TABLE_SIZE: usize = 256;

#[derive(Debug, Default)]
pub struct Dh {
    /// Index of the server in each bucket (`None` when the service has none).
    buckets: Vec<Option<usize>>,
}

impl Dh {
    /// The bucket table the datapath reads.
    pub fn buckets(&self) -> &[Option<usize>] {
        &self.buckets
    }
}

impl Schedule for Dh {
    fn update(&mut self, dests: &[Candidate]) {
        self.buckets = (0..DH_TABLE_SIZE)
            .map(|i| (!dests.is_empty()).then(|| i % dests.len()))
            .collect();
    }

    fn schedule(&mut self, dests: &[Candidate], flow: &Flow) -> Option<usize> {
        let bucket = hash_32(fold(&flow.dst), 8) as usize;
        let index = (*self.buckets.get(bucket)?)?;
        dests.get(index).filter(|d| d.available()).map(|_| index)
    }
}
