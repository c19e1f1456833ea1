//! What the server asks of the machine it runs on: memory figures, the
//! locked-memory limit, and its standing with the OOM killer.

use crate::budget::MemInfo;
use std::io;

/// /proc/meminfo's MemTotal and MemAvailable.
pub fn meminfo() -> io::Result<MemInfo> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    MemInfo::parse(&text)
        .ok_or_else(|| io::Error::other("/proc/meminfo has no MemTotal or MemAvailable"))
}

/// The server's oom_score_adj unless --oom-score-adj says otherwise (and
/// the systemd unit's OOMScoreAdjust=).
pub const DEFAULT_OOM_SCORE_ADJ: i32 = -900;

#[derive(Debug, thiserror::Error)]
pub enum MemlockError {
    #[error("cannot read the locked-memory limit: {0}")]
    Read(io::Error),
    #[error("the memory budget of {budget_mib} MiB exceeds the locked-memory limit of {limit_kib} KiB (raise `ulimit -l`, or LimitMEMLOCK= in a systemd unit, or run as root)")]
    TooLow { budget_mib: u64, limit_kib: u64 },
}

/// Registered memory is pinned: lifts the memlock limit (the server runs as
/// root on the far memory node), or checks that `budget` bytes fit under it.
pub fn lift_memlock(budget: u64) -> Result<(), MemlockError> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0 {
        return Ok(());
    }
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut cur) } != 0 {
        return Err(MemlockError::Read(io::Error::last_os_error()));
    }
    if cur.rlim_cur != libc::RLIM_INFINITY && cur.rlim_cur < budget {
        return Err(MemlockError::TooLow {
            budget_mib: budget >> 20,
            limit_kib: cur.rlim_cur >> 10,
        });
    }
    Ok(())
}

/// Sets this process's oom_score_adj. The clients' regions are counted as
/// the server's memory, so with the default of 0 the server would be the
/// OOM killer's first choice, and every client would lose its pages at
/// once. Lowering it needs CAP_SYS_RESOURCE.
pub fn set_oom_score_adj(value: i32) -> io::Result<()> {
    std::fs::write("/proc/self/oom_score_adj", value.to_string())
}

/// 64 random bits from the kernel (getrandom(2)), for session secrets.
/// Never zero: zero means "no secret" on the wire.
pub fn random_u64() -> io::Result<u64> {
    loop {
        let mut b = [0u8; 8];
        // SAFETY: `b` is a valid, writable buffer of `b.len()` bytes.
        let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n as usize == b.len() && u64::from_le_bytes(b) != 0 {
            return Ok(u64::from_le_bytes(b));
        }
    }
}
