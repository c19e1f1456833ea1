//! In-place quicksort of a large array of u64: sequential partition passes
//! over shrinking ranges, so locality improves as the recursion deepens.

use crate::rng;
use rand::Rng as _;

pub struct Outcome {
    pub elements: usize,
}

/// Fills `n` words, sorts them in place (timed by the caller through `run`),
/// and checks the result is ordered and a permutation of the input (sum and
/// xor of all words unchanged).
pub fn prepare(n: usize, seed: u64) -> (Vec<u64>, (u64, u64)) {
    let mut rng = rng::seeded(seed);
    let v: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
    let sig = signature(&v);
    (v, sig)
}

fn signature(v: &[u64]) -> (u64, u64) {
    v.iter().fold((0u64, 0u64), |(s, x), &w| {
        (s.wrapping_add(w), x ^ w.rotate_left(17))
    })
}

pub fn run(v: &mut [u64]) {
    quicksort(v);
}

pub fn check(v: &[u64], sig: (u64, u64)) -> Result<Outcome, String> {
    if let Some(i) = v.windows(2).position(|w| w[0] > w[1]) {
        return Err(format!("quicksort: out of order at element {i}"));
    }
    if signature(v) != sig {
        return Err("quicksort: output is not a permutation of the input".into());
    }
    Ok(Outcome { elements: v.len() })
}

fn quicksort(mut v: &mut [u64]) {
    // Recurse into the smaller side, loop on the larger: O(log n) stack.
    while v.len() > 16 {
        let p = partition(v);
        let (lo, hi) = v.split_at_mut(p);
        if lo.len() < hi.len() {
            quicksort(lo);
            v = hi;
        } else {
            quicksort(hi);
            v = lo;
        }
    }
    insertion_sort(v);
}

/// Hoare partition around the median of three; returns a split point with
/// both sides non-empty.
fn partition(v: &mut [u64]) -> usize {
    let n = v.len();
    let (a, b, c) = (v[0], v[n / 2], v[n - 1]);
    let pivot = a.max(b).min(a.min(b).max(c));
    let (mut i, mut j) = (0usize, n - 1);
    loop {
        while v[i] < pivot {
            i += 1;
        }
        while v[j] > pivot {
            j -= 1;
        }
        if i >= j {
            return (j + 1).clamp(1, n - 1);
        }
        v.swap(i, j);
        i += 1;
        j -= 1;
    }
}

fn insertion_sort(v: &mut [u64]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_and_checks() {
        for n in [0, 1, 2, 17, 1000, 100_003] {
            let (mut v, sig) = prepare(n, 9);
            run(&mut v);
            assert!(check(&v, sig).is_ok(), "n={n}");
        }
    }

    #[test]
    fn sorts_duplicates() {
        let mut v: Vec<u64> = (0..50_000).map(|i| i % 3).collect();
        let sig = signature(&v);
        run(&mut v);
        assert!(check(&v, sig).is_ok());
    }

    #[test]
    fn check_catches_corruption() {
        let (mut v, sig) = prepare(10_000, 2);
        run(&mut v);
        v[5000] = v[5001];
        assert!(check(&v, sig).is_err());
        let (mut w, sig) = prepare(10_000, 2);
        run(&mut w);
        w.swap(10, 9000);
        assert!(check(&w, sig).is_err());
    }
}
