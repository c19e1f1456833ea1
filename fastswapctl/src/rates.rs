//! Rates per second from two reads of the counters, over the time
//! measured between the reads (a refresh can come late).

use crate::counters::Counters;
use std::time::Duration;

/// Pages per second; None for a counter that went backwards (they are
/// monotonic, so that would be a kernel bug, not a rate).
pub type Rates = Counters<Option<f64>>;

/// None if no time passed.
pub fn per_second(prev: &Counters<u64>, cur: &Counters<u64>, elapsed: Duration) -> Option<Rates> {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return None;
    }
    Some(cur.zip_with(prev, |c, p| c.checked_sub(*p).map(|d| d as f64 / secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(stores: u64, loads: u64) -> Counters<u64> {
        Counters {
            stores,
            loads,
            async_loads: 10,
            failed_stores: 5,
            failed_loads: 0,
            invalidates: 100,
        }
    }

    #[test]
    fn divides_by_the_measured_time() {
        let r = per_second(
            &counters(1000, 50),
            &counters(3000, 50),
            Duration::from_millis(500),
        )
        .expect("time passed");
        assert_eq!(r.stores, Some(4000.0));
        assert_eq!(r.loads, Some(0.0));
        assert_eq!(r.invalidates, Some(0.0));
        let r = per_second(&counters(0, 0), &counters(300, 0), Duration::from_secs(3))
            .expect("time passed");
        assert_eq!(r.stores, Some(100.0));
    }

    #[test]
    fn no_rate_without_time_or_backwards() {
        assert!(per_second(&counters(0, 0), &counters(1, 0), Duration::ZERO).is_none());
        let r = per_second(&counters(10, 5), &counters(4, 6), Duration::from_secs(1))
            .expect("time passed");
        assert_eq!(r.stores, None);
        assert_eq!(r.loads, Some(1.0));
    }
}
