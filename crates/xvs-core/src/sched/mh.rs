//! Maglev hashing (`ip_vs_mh.c`): a lookup table of 4093 slots filled by each server's
//! permutation (offset and skip from SipHash of its address and port), in proportion to
//! its last non-zero weight; the slot of the source address (plus port with `mh-port`)
//! decides. Few keys move when a server comes or goes. With `mh-fallback` an unavailable
//! server's clients are rehashed to the next available one.

use super::{Candidate, Flow, Schedule, fold, gcd, table_choice};

/// Slots in the lookup table (the prime IPVS uses by default).
pub const MH_TABLE_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS`: weights are shifted so that weight/gcd fits in this many bits.
const WEIGHT_BITS: u32 = 6;
/// The fixed SipHash keys IPVS uses for the offset and the skip.
const KEY_OFFSET: u64 = 2_654_435_761;
const KEY_SKIP: u64 = 2_654_446_892;

#[derive(Debug)]
pub struct Mh {
    lookup: Vec<Option<usize>>,
    fallback: bool,
    port: bool,
}

/// SipHash-1-3 of one 32-bit word with key (k, k), folded to 32 bits: what the kernel's
/// `hsiphash` is on 64-bit machines.
fn hsiphash(word: u32, k: u64) -> u32 {
    let mut v0 = 0x736f_6d65_7073_6575u64 ^ k;
    let mut v1 = 0x646f_7261_6e64_6f6du64 ^ k;
    let mut v2 = 0x6c79_6765_6e65_7261u64 ^ k;
    let mut v3 = 0x7465_6462_7974_6573u64 ^ k;
    let b: u64 = (4u64 << 56) | u64::from(word);
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13);
        *v1 ^= *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16);
        *v3 ^= *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21);
        *v3 ^= *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17);
        *v1 ^= *v2;
        *v2 = v2.rotate_left(32);
    };
    v3 ^= b;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= b;
    v2 ^= 0xff;
    for _ in 0..3 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    (v0 ^ v1 ^ v2 ^ v3) as u32
}

/// `ip_vs_mh_hashkey`.
fn hash_key(addr: u32, port: u16, key: u64, offset: u32) -> u32 {
    hsiphash(offset.wrapping_add(u32::from(port)).wrapping_add(addr), key)
}

impl Mh {
    pub fn new(fallback: bool, port: bool) -> Mh {
        Mh {
            lookup: vec![None; MH_TABLE_SIZE],
            fallback,
            port,
        }
    }

    /// The lookup table the datapath reads: a server index per slot.
    pub fn lookup(&self) -> &[Option<usize>] {
        &self.lookup
    }

    fn slot(addr: u32, port: u16, offset: u32) -> usize {
        hash_key(addr, port, KEY_OFFSET, offset) as usize % MH_TABLE_SIZE
    }
}

impl Schedule for Mh {
    fn update(&mut self, dests: &[Candidate]) {
        let g = dests
            .iter()
            .map(|d| d.last_weight)
            .filter(|w| *w > 0)
            .fold(0, gcd);
        self.lookup = vec![None; MH_TABLE_SIZE];
        if g == 0 || dests.len() > MH_TABLE_SIZE {
            return;
        }
        let max = dests.iter().map(|d| d.last_weight).max().unwrap_or(0) / g;
        let shift = (32 - max.leading_zeros()).saturating_sub(WEIGHT_BITS);
        let m = MH_TABLE_SIZE as u32;
        let mut perm: Vec<u32> = Vec::with_capacity(dests.len());
        let mut skip: Vec<u32> = Vec::with_capacity(dests.len());
        let mut turns: Vec<u32> = Vec::with_capacity(dests.len());
        for dest in dests {
            let addr = fold(&dest.addr);
            perm.push(hash_key(addr, dest.port, KEY_OFFSET, 0) % m);
            skip.push(hash_key(addr, dest.port, KEY_SKIP, 0) % (m - 1) + 1);
            let lw = dest.last_weight;
            turns.push(match (lw / g) >> shift {
                0 => u32::from(lw != 0),
                t => t,
            });
        }
        let mut filled = 0;
        let mut taken = 0;
        'rounds: loop {
            let mut index = 0;
            while index < dests.len() {
                if turns[index] < 1 {
                    index += 1;
                    continue;
                }
                while self.lookup[perm[index] as usize].is_some() {
                    perm[index] = (perm[index] + skip[index]) % m;
                }
                self.lookup[perm[index] as usize] = Some(index);
                filled += 1;
                if filled == MH_TABLE_SIZE {
                    break 'rounds;
                }
                taken += 1;
                if taken >= turns[index] {
                    taken = 0;
                    index += 1;
                }
            }
        }
    }

    fn schedule(&mut self, dests: &[Candidate], flow: &Flow) -> Option<usize> {
        let addr = fold(&flow.src);
        let port = if self.port { flow.src_port } else { 0 };
        let home = Mh::slot(addr, port, 0);
        table_choice(dests, &self.lookup, home, self.fallback, |offset| {
            Mh::slot(addr, port, offset)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsiphash_matches_an_independent_siphash_1_3() {
        // Values from a separate SipHash-1-3 written from the paper's description (Python,
        // c=1 d=3, 4-byte little-endian message, key (k, k), low 32 bits of the result).
        assert_eq!(hsiphash(0, KEY_OFFSET), 492_468_162);
        assert_eq!(hsiphash(0, KEY_SKIP), 4_169_286_463);
        assert_eq!(hsiphash(1, KEY_OFFSET), 384_591_538);
        assert_eq!(hsiphash(1, KEY_SKIP), 2_182_130_385);
        assert_eq!(hsiphash(0xdead_beef, KEY_OFFSET), 4_127_575_327);
        assert_eq!(hsiphash(0xdead_beef, KEY_SKIP), 937_261_950);
    }
}
