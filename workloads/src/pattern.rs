//! The deterministic data every workload writes and checks.

/// SplitMix64: a cheap, well-mixed function of the word's position, so any
/// misplaced, stale or zeroed page is detected.
pub fn word(seed: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn fill(buf: &mut [u64], seed: u64) {
    for (i, w) in buf.iter_mut().enumerate() {
        *w = word(seed, i as u64);
    }
}

/// Index of the first word that differs from the pattern, and how many do.
pub fn check(buf: &[u64], seed: u64) -> Option<(usize, usize)> {
    let mut first = None;
    let mut bad = 0;
    for (i, w) in buf.iter().enumerate() {
        if *w != word(seed, i as u64) {
            first.get_or_insert(i);
            bad += 1;
        }
    }
    first.map(|f| (f, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_one_flipped_bit() {
        let mut v = vec![0u64; 4096];
        fill(&mut v, 7);
        assert_eq!(check(&v, 7), None);
        v[1234] ^= 1 << 17;
        assert_eq!(check(&v, 7), Some((1234, 1)));
    }

    #[test]
    fn seeds_and_pages_differ() {
        assert_ne!(word(1, 0), word(2, 0));
        assert_ne!(word(1, 0), word(1, 512));
        assert_ne!(word(1, 5), 0);
    }
}
