//! Operable logs: everything goes through `tracing`, filtered like
//! `RUST_LOG` (default `info`), one line per event, to standard error.
//! Writing a log line never fails the server: a closed or broken stderr
//! only loses the line (println! would panic).
//!
//! Client ids are logged as a short hash ([`ShortId`]): the id is what a
//! client presents to join its queues, so a log reader must not learn it.
//! A flood of bad connect requests is logged at a bounded rate
//! ([`RateLimit`]), with a count of the lines left out.

use std::fmt;
use std::time::{Duration, Instant};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Installs the global subscriber: `RUST_LOG` directives, `info` by
/// default (and, with a warning, when `RUST_LOG` does not parse); no
/// colours, no module targets.
pub fn init() {
    let builder = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into());
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let (filter, bad) = match builder.parse(&spec) {
        Ok(f) => (f, None),
        Err(e) => (builder.parse_lossy(""), Some(e)),
    };
    // Fails only if a subscriber is already installed (tests): keep that one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .log_internal_errors(false)
        .with_writer(|| cli_support::Stderr)
        .try_init();
    if let Some(e) = bad {
        tracing::warn!("ignoring RUST_LOG={spec:?} ({e}); logging at info");
    }
}

/// A short, stable hash of a client id for logs: 8 hex digits that tell
/// clients apart without disclosing the id (2^32 ids share each value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShortId(pub u32);

impl ShortId {
    pub fn of(client_id: u64) -> Self {
        // The splitmix64 finaliser: every input bit affects every output
        // bit, so nearby ids get unrelated short ids.
        let mut z = client_id;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ShortId((z >> 32) as u32)
    }
}

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// At most `burst` events logged per `window`; the rest are counted and
/// reported in one line when the window is over.
#[derive(Debug)]
pub struct RateLimit {
    burst: u32,
    window: Duration,
    start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// What to do with one event.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Log this event.
    pub log: bool,
    /// Before it, report this many events that earlier windows left out.
    pub suppressed_before: Option<u64>,
}

impl RateLimit {
    pub fn new(burst: u32, window: Duration) -> Self {
        Self {
            burst,
            window,
            start: None,
            logged: 0,
            suppressed: 0,
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counts one event at `now`.
    pub fn event(&mut self, now: Instant) -> Verdict {
        let mut suppressed_before = None;
        if self.start.is_none_or(|s| now >= s + self.window) {
            if self.suppressed > 0 {
                suppressed_before = Some(std::mem::take(&mut self.suppressed));
            }
            self.start = Some(now);
            self.logged = 0;
        }
        let log = self.logged < self.burst;
        if log {
            self.logged += 1;
        } else {
            self.suppressed += 1;
        }
        Verdict {
            log,
            suppressed_before,
        }
    }

    /// When the events left out so far should be reported, if any were.
    pub fn flush_at(&self) -> Option<Instant> {
        match self.start {
            Some(s) if self.suppressed > 0 => Some(s + self.window),
            _ => None,
        }
    }

    /// The number of events left out, once their window is over.
    pub fn flush(&mut self, now: Instant) -> Option<u64> {
        let due = self.flush_at()?;
        if now < due {
            return None;
        }
        self.start = None;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_stable_and_spread() {
        // Fixed values: tests/guest/rdma-isolation.sh greps the server's
        // log for farmem-probe's two clients.
        assert_eq!(ShortId::of(0xa11ce).to_string(), "494fe6b1");
        assert_eq!(ShortId::of(0xb0b).to_string(), "28dea1b0");
        assert_eq!(ShortId::of(0).to_string(), "00000000");
        let ids: std::collections::HashSet<_> = (0..10_000u64).map(ShortId::of).collect();
        assert!(ids.len() > 9_990, "nearby ids collide: {}", ids.len());
    }

    #[test]
    fn short_id_hides_the_id() {
        let id = 0x0123_4567_89ab_cdefu64;
        let s = ShortId::of(id).to_string();
        assert!(!format!("{id:016x}").contains(&s));
    }

    #[test]
    fn rate_limit_logs_a_burst_then_counts() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(3, Duration::from_secs(10));
        for _ in 0..3 {
            assert_eq!(
                r.event(t0),
                Verdict {
                    log: true,
                    suppressed_before: None
                }
            );
        }
        assert_eq!(r.flush_at(), None);
        for i in 0..5 {
            let v = r.event(t0 + Duration::from_secs(i));
            assert!(!v.log);
        }
        assert_eq!(r.flush_at(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(r.flush(t0 + Duration::from_secs(9)), None);
        // The next window's first event reports what was left out.
        let v = r.event(t0 + Duration::from_secs(10));
        assert_eq!(
            v,
            Verdict {
                log: true,
                suppressed_before: Some(5)
            }
        );
        assert_eq!(r.flush_at(), None);
    }

    #[test]
    fn rate_limit_reports_when_the_flood_stops() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(1, Duration::from_secs(10));
        assert!(r.event(t0).log);
        assert!(!r.event(t0).log);
        assert!(!r.event(t0).log);
        assert_eq!(r.flush(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(r.flush(t0 + Duration::from_secs(11)), None);
        assert_eq!(
            r.event(t0 + Duration::from_secs(12)),
            Verdict {
                log: true,
                suppressed_before: None
            }
        );
    }
}
