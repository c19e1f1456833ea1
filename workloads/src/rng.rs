//! Seeded random numbers for the workloads. ChaCha8 (rand_chacha) gives the
//! same stream for the same seed on every platform and in every release of
//! the crate, so a run with the same `--seed` draws the same numbers; the
//! Zipf ranks come from rand_distr.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf, ZipfError};

pub type Rng = ChaCha8Rng;

/// The generator for `seed`.
pub fn seeded(seed: u64) -> Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Ranks 0..n drawn with probability proportional to 1 / (rank + 1)^theta.
pub struct ZipfRanks {
    n: u64,
    zipf: Zipf<f64>,
}

impl ZipfRanks {
    /// Fails for n = 0 or a negative theta.
    pub fn new(n: u64, theta: f64) -> Result<Self, ZipfError> {
        Ok(ZipfRanks {
            n,
            zipf: Zipf::new(n as f64, theta)?,
        })
    }

    pub fn sample(&self, rng: &mut Rng) -> u64 {
        // Zipf draws whole numbers in 1..=n (as floats).
        (self.zipf.sample(rng) as u64).clamp(1, self.n) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn same_seed_same_numbers() {
        let draw = |seed| {
            let mut r = seeded(seed);
            (0..8).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn zipf_is_skewed_towards_low_ranks() {
        let z = ZipfRanks::new(100_000, 0.99).expect("valid parameters");
        let mut r = seeded(1);
        let draws = 100_000;
        let mut top = 0;
        let mut max = 0;
        let mut zeros = 0;
        for _ in 0..draws {
            let k = z.sample(&mut r);
            max = max.max(k);
            if k < 1000 {
                top += 1;
            }
            if k == 0 {
                zeros += 1;
            }
        }
        // With theta 0.99 the top 1% of keys take roughly half the draws,
        // and rank 0 alone about 1/zeta(n), some 8%.
        assert!(
            top > draws * 35 / 100 && top < draws * 75 / 100,
            "top 1% got {top}"
        );
        assert!(
            zeros > draws * 5 / 100 && zeros < draws * 12 / 100,
            "rank 0 got {zeros}"
        );
        assert!(max < 100_000 && max > 10_000);
    }

    #[test]
    fn zipf_refuses_an_empty_set() {
        assert!(ZipfRanks::new(0, 0.99).is_err());
        let one = ZipfRanks::new(1, 0.99).expect("one rank");
        let mut r = seeded(3);
        assert!((0..1000).all(|_| one.sample(&mut r) == 0));
    }
}
