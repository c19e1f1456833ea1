//! Swap-out rate and swap-in fault latency of one region.

use crate::region::{Region, PAGE};
use crate::rng;
use rand::seq::SliceRandom;
use std::path::Path;
use std::time::{Duration, Instant};

/// Probabilities at which the latency distribution is reported (the CDF).
pub fn cdf_points() -> Vec<f64> {
    let mut p: Vec<f64> = (1..100).map(|i| i as f64 / 100.0).collect();
    p.extend([0.995, 0.999, 0.9999, 1.0]);
    p
}

pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Page visiting order: 0..n, or a fixed shuffle so readahead rarely hides
/// the fault.
pub fn order(n: usize, seed: u64, sequential: bool) -> Vec<usize> {
    let mut o: Vec<usize> = (0..n).collect();
    if !sequential {
        o.shuffle(&mut rng::seeded(seed));
    }
    o
}

fn memory_current(cgroup: &Path) -> Option<usize> {
    std::fs::read_to_string(cgroup.join("memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Evicts the region and returns the seconds until its memory is free.
/// MADV_PAGEOUT starts the swap-out; a block device finishes its writes
/// later and keeps the pages in the swap cache (still charged to the
/// cgroup) until then, so proactive reclaim of the cgroup is repeated until
/// the cgroup is back at `base`, its usage before the region was filled.
pub fn swap_out(r: &Region, cgroup: Option<&Path>, base: usize) -> std::io::Result<f64> {
    let start = Instant::now();
    r.page_out()?;
    if let Some(cg) = cgroup {
        let slack = r.pages() * PAGE / 32;
        while start.elapsed() < Duration::from_secs(120) {
            match memory_current(cg) {
                Some(cur) if cur > base + slack => {}
                _ => break,
            }
            // EAGAIN just means less was reclaimable than asked for.
            let _ = std::fs::write(cg.join("memory.reclaim"), format!("{}", r.pages() * PAGE));
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

pub fn base_usage(cgroup: Option<&Path>) -> usize {
    cgroup.and_then(memory_current).unwrap_or(0)
}

/// Touches the pages in `order`, split across `threads` threads; returns
/// every touch's latency in microseconds and the wall time in seconds.
pub fn touch_all(r: &Region, order: &[usize], threads: usize) -> (Vec<f64>, f64) {
    let start = Instant::now();
    let chunk = order.len().div_ceil(threads).max(1);
    let mut lat: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = order
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&p| {
                            let t = Instant::now();
                            std::hint::black_box(r.touch(p));
                            t.elapsed().as_secs_f64() * 1e6
                        })
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    (lat, secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation() {
        let mut o = order(1000, 3, false);
        assert_ne!(o, order(1000, 3, true));
        o.sort();
        assert_eq!(o, order(1000, 3, true));
    }

    #[test]
    fn quantiles() {
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
