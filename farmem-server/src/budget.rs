//! How much memory the server may pin for its clients' regions: a total
//! budget, chosen at start (`--memory`, by default a share of the memory
//! available then), never closer to the machine's size than a reserve kept
//! for the kernel and everything else, and charged for every region from
//! the moment its client is admitted until the region is freed.

/// Least memory kept for the system beside the regions.
pub const MIN_RESERVE: u64 = 256 << 20;
/// Default budget: this many quarters of MemAvailable at start.
pub const DEFAULT_QUARTERS: u64 = 3;
const PAGE: u64 = 4096;

/// The lines of /proc/meminfo the server uses, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub available: u64,
}

impl MemInfo {
    /// Parses /proc/meminfo's text.
    pub fn parse(text: &str) -> Option<Self> {
        let field = |name: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.split(':').next() == Some(name))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        };
        Some(MemInfo {
            total: field("MemTotal")?,
            available: field("MemAvailable")?,
        })
    }
}

/// Memory never given to regions on a machine with `total` bytes: 1/16 of
/// it, at least [`MIN_RESERVE`].
pub fn reserve(total: u64) -> u64 {
    (total / 16).max(MIN_RESERVE)
}

/// The default budget: 3/4 of what is available, and never more than what
/// is available less the reserve. Whole pages.
pub fn default_budget(m: &MemInfo) -> u64 {
    let share = m.available / 4 * DEFAULT_QUARTERS;
    let room = m.available.saturating_sub(reserve(m.total));
    share.min(room) / PAGE * PAGE
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("--size {size} MiB cannot be registered: this machine has {total} MiB of memory")]
    SizeBeyondMemory { size: u64, total: u64 },
    #[error(
        "--memory {budget} MiB leaves less than the {reserve} MiB reserve of this machine's {total} MiB to the system"
    )]
    BudgetBeyondMemory {
        budget: u64,
        reserve: u64,
        total: u64,
    },
    #[error("--size {size} MiB is more than the --memory budget of {budget} MiB: no client could be served")]
    SizeBeyondBudget { size: u64, budget: u64 },
    #[error(
        "--size {size} MiB is more than the default budget of {budget} MiB (3/4 of the {available} MiB available, keeping {reserve} MiB): set --memory or a smaller --size"
    )]
    SizeBeyondDefault {
        size: u64,
        budget: u64,
        available: u64,
        reserve: u64,
    },
}

/// The budget to run with, for regions of `size` bytes and the operator's
/// `--memory`, if any. Sizes in errors are MiB.
pub fn choose(size: u64, memory: Option<u64>, m: &MemInfo) -> Result<u64, BudgetError> {
    let mib = |b: u64| b >> 20;
    if size >= m.total {
        return Err(BudgetError::SizeBeyondMemory {
            size: mib(size),
            total: mib(m.total),
        });
    }
    let budget = match memory {
        Some(b) => {
            let reserve = reserve(m.total);
            if b > m.total.saturating_sub(reserve) {
                return Err(BudgetError::BudgetBeyondMemory {
                    budget: mib(b),
                    reserve: mib(reserve),
                    total: mib(m.total),
                });
            }
            if size > b {
                return Err(BudgetError::SizeBeyondBudget {
                    size: mib(size),
                    budget: mib(b),
                });
            }
            b
        }
        None => {
            let b = default_budget(m);
            if size > b {
                return Err(BudgetError::SizeBeyondDefault {
                    size: mib(size),
                    budget: mib(b),
                    available: mib(m.available),
                    reserve: mib(reserve(m.total)),
                });
            }
            b
        }
    };
    Ok(budget)
}

/// Whether a region of `size` bytes fits in memory right now: what is
/// available, less what is charged to regions still being registered
/// (not yet pinned, so not yet missing from MemAvailable), must leave the
/// reserve.
pub fn fits_now(size: u64, m: &MemInfo, unpinned: u64) -> bool {
    let need = size
        .saturating_add(unpinned)
        .saturating_add(reserve(m.total));
    m.available >= need
}

/// Bytes charged against the budget.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    /// Charges `bytes` if they fit in what is left.
    pub fn try_charge(&mut self, bytes: u64) -> bool {
        match self.used.checked_add(bytes) {
            Some(n) if n <= self.limit => {
                self.used = n;
                true
            }
            _ => false,
        }
    }

    /// Gives back `bytes` charged earlier.
    pub fn refund(&mut self, bytes: u64) {
        debug_assert!(
            bytes <= self.used,
            "refund of {bytes} with {} charged",
            self.used
        );
        self.used = self.used.saturating_sub(bytes);
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn mem(total: u64, available: u64) -> MemInfo {
        MemInfo { total, available }
    }

    #[test]
    fn parses_meminfo() {
        let text = "MemTotal:        1501234 kB\nMemFree:          900000 kB\nMemAvailable:    1400000 kB\nBuffers: 1 kB\n";
        assert_eq!(
            MemInfo::parse(text),
            Some(mem(1_501_234 * 1024, 1_400_000 * 1024))
        );
        assert_eq!(MemInfo::parse("MemTotal: 5 kB\n"), None);
        assert_eq!(MemInfo::parse("MemTotal: x kB\nMemAvailable: 1 kB\n"), None);
        // A prefix of another field's name is not the field.
        assert_eq!(
            MemInfo::parse("MemTotalX: 1 kB\nMemTotal: 2 kB\nMemAvailable: 1 kB\n"),
            Some(mem(2048, 1024))
        );
    }

    #[test]
    fn reserve_grows_with_the_machine() {
        assert_eq!(reserve(GIB), MIN_RESERVE);
        assert_eq!(reserve(64 * GIB), 4 * GIB);
    }

    #[test]
    fn default_is_a_share_of_available_keeping_the_reserve() {
        // Plenty available: 3/4 of it.
        assert_eq!(default_budget(&mem(64 * GIB, 60 * GIB)), 45 * GIB);
        // Little available: what is left above the reserve.
        assert_eq!(default_budget(&mem(1536 * MIB, 600 * MIB)), 344 * MIB);
        // Less than the reserve available: nothing.
        assert_eq!(default_budget(&mem(GIB, 200 * MIB)), 0);
        // Whole pages.
        assert_eq!(default_budget(&mem(64 * GIB, 60 * GIB + 5)) % PAGE, 0);
    }

    #[test]
    fn chooses_and_checks_the_budget() {
        let m = mem(1536 * MIB, 1400 * MIB);
        assert_eq!(choose(256 * MIB, None, &m), Ok(1050 * MIB));
        assert_eq!(choose(256 * MIB, Some(768 * MIB), &m), Ok(768 * MIB));
        assert!(matches!(
            choose(2 * GIB, None, &m),
            Err(BudgetError::SizeBeyondMemory { .. })
        ));
        assert!(matches!(
            choose(u64::MAX / 2, Some(GIB), &m),
            Err(BudgetError::SizeBeyondMemory { .. })
        ));
        assert!(matches!(
            choose(256 * MIB, Some(1400 * MIB), &m),
            Err(BudgetError::BudgetBeyondMemory { .. })
        ));
        assert!(matches!(
            choose(512 * MIB, Some(256 * MIB), &m),
            Err(BudgetError::SizeBeyondBudget { .. })
        ));
        assert!(matches!(
            choose(1100 * MIB, None, &m),
            Err(BudgetError::SizeBeyondDefault { .. })
        ));
        // The budget of an explicit --memory may exceed what is available
        // now (fits_now still guards each region).
        assert_eq!(
            choose(256 * MIB, Some(1200 * MIB), &mem(1536 * MIB, 500 * MIB)),
            Ok(1200 * MIB)
        );
    }

    #[test]
    fn fits_now_counts_unpinned_registrations() {
        let m = mem(1536 * MIB, 1000 * MIB);
        assert!(fits_now(512 * MIB, &m, 0));
        assert!(!fits_now(512 * MIB, &m, 256 * MIB));
        assert!(!fits_now(800 * MIB, &m, 0));
        assert!(!fits_now(u64::MAX, &m, u64::MAX));
    }

    #[test]
    fn budget_never_goes_over() {
        let mut b = Budget::new(1000);
        assert!(b.try_charge(400));
        assert!(b.try_charge(600));
        assert!(!b.try_charge(1));
        assert!(!b.try_charge(u64::MAX));
        assert_eq!(b.used(), 1000);
        b.refund(400);
        assert!(!b.try_charge(401));
        assert!(b.try_charge(400));
        assert_eq!(b.used(), b.limit());
    }
}
