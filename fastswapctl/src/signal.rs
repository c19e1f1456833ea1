//! SIGINT and SIGTERM end `watch` between refreshes, so it exits with
//! its own status (and its note) rather than being killed mid-line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    // An atomic store is async-signal-safe.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From now on SIGINT and SIGTERM only set the flag.
pub fn catch_interrupt() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let handler = on_interrupt as extern "C" fn(libc::c_int);
        // SAFETY: the handler only stores to an atomic.
        if unsafe { libc::signal(sig, handler as libc::sighandler_t) } == libc::SIG_ERR {
            tracing::warn!(
                "cannot catch signal {sig}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Sleeps until `deadline` or a signal, whichever comes first (in short
/// steps: std's sleep resumes after a signal).
pub fn sleep_until(deadline: Instant) {
    const STEP: Duration = Duration::from_millis(50);
    while !interrupted() {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(STEP));
    }
}
