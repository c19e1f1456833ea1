//! A key-value store serving skewed lookups: an open-addressing hash table
//! of 64-byte entries, queried with Zipf-distributed keys (YCSB-C style).
//! Hot keys hash to pages all over the table, so the hot set is scattered.

use crate::pattern::word;
use crate::rng::{self, ZipfRanks};

const VALUE_WORDS: usize = 7;

#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    key: u64,
    value: [u64; VALUE_WORDS],
}

const EMPTY: Entry = Entry {
    key: 0,
    value: [0; VALUE_WORDS],
};

pub struct Store {
    slots: Vec<Entry>,
    items: u64,
    seed: u64,
}

pub struct Outcome {
    pub lookups: u64,
}

fn key_of(seed: u64, rank: u64) -> u64 {
    word(seed, rank) | 1 // never 0, which marks an empty slot
}

fn value_word(key: u64, i: usize) -> u64 {
    word(key, i as u64)
}

impl Store {
    /// A table of `bytes` (rounded down to a power of two of entries),
    /// three quarters full.
    pub fn prepare(bytes: usize, seed: u64) -> Store {
        let want = (bytes / std::mem::size_of::<Entry>()).max(16);
        let n = 1usize << (usize::BITS - 1 - want.leading_zeros());
        let mut s = Store {
            slots: vec![EMPTY; n],
            items: (n as u64) * 3 / 4,
            seed,
        };
        for rank in 0..s.items {
            let key = key_of(seed, rank);
            let i = s.find_slot(key);
            let e = &mut s.slots[i];
            e.key = key;
            for (j, w) in e.value.iter_mut().enumerate() {
                *w = value_word(key, j);
            }
        }
        s
    }

    fn find_slot(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) as usize & mask;
        while self.slots[i].key != key && self.slots[i].key != 0 {
            i = (i + 1) & mask;
        }
        i
    }

    /// The key ranks of `lookups` Zipf(0.99) lookups. They are drawn before
    /// the timed phase: rand_distr's sampler (rejection, three powf calls a
    /// draw) takes longer than a lookup in memory, and would otherwise be
    /// most of the time the bench compares.
    pub fn queries(&self, lookups: u64, seed: u64) -> Result<Vec<u32>, String> {
        if self.items > u64::from(u32::MAX) {
            return Err(format!(
                "kvstore: {} keys do not fit ranks of 32 bits",
                self.items
            ));
        }
        let zipf = ZipfRanks::new(self.items, 0.99)
            .map_err(|e| format!("kvstore: Zipf over {} keys: {e}", self.items))?;
        let mut rng = rng::seeded(seed ^ 0x6b76);
        let mut ranks = Vec::new();
        usize::try_from(lookups)
            .ok()
            .and_then(|n| ranks.try_reserve_exact(n).ok())
            .ok_or_else(|| format!("kvstore: no memory for {lookups} lookups"))?;
        // A rank is below items, which fits in 32 bits.
        ranks.extend((0..lookups).map(|_| zipf.sample(&mut rng) as u32));
        Ok(ranks)
    }

    /// Looks up the keys of `ranks`, checking each value word by word.
    pub fn run(&self, ranks: &[u32]) -> Result<Outcome, String> {
        for &rank in ranks {
            let key = key_of(self.seed, u64::from(rank));
            let e = &self.slots[self.find_slot(key)];
            if e.key != key {
                return Err(format!("kvstore: key {key:#x} missing"));
            }
            if (0..VALUE_WORDS).any(|j| e.value[j] != value_word(key, j)) {
                return Err(format!("kvstore: value of key {key:#x} corrupted"));
            }
        }
        Ok(Outcome {
            lookups: ranks.len() as u64,
        })
    }

    pub fn items(&self) -> u64 {
        self.items
    }

    #[cfg(test)]
    fn corrupt_hottest(&mut self) {
        let i = self.find_slot(key_of(self.seed, 0));
        self.slots[i].value[3] ^= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_every_lookup() {
        let s = Store::prepare(1 << 20, 4);
        assert_eq!(s.items(), (1 << 14) * 3 / 4);
        let q = s.queries(20_000, 1).expect("ranks");
        assert!(q.iter().all(|&r| u64::from(r) < s.items()));
        assert_eq!(q, s.queries(20_000, 1).expect("ranks"), "same seed");
        assert_eq!(s.run(&q).map(|o| o.lookups), Ok(20_000));
    }

    #[test]
    fn detects_a_corrupted_value() {
        let mut s = Store::prepare(1 << 20, 4);
        s.corrupt_hottest();
        let q = s.queries(1000, 1).expect("ranks");
        assert!(s.run(&q).is_err());
    }
}
