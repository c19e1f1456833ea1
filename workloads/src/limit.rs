//! The local-memory limit an application runs its compute phase under.
//!
//! The application is prepared with no limit, then the cgroup's memory.high
//! is lowered to the local share (the write reclaims down to it, so the
//! coldest pages start out in swap). memory.high is the limit reclaim
//! offload acts on: a task over it reclaims (or, with offload, has the
//! offload CPU reclaim) on its way back to user space, and is throttled if
//! that falls behind. memory.max stays unset, so a small working set is
//! never OOM-killed for its fixed overhead (binary, page tables). The limit
//! is lifted again before the result is checked, so only the compute phase
//! pays for swap.

use std::path::{Path, PathBuf};

pub struct Limit {
    cgroup: PathBuf,
    high: usize,
}

fn write(cg: &Path, file: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(cg.join(file), value)
}

impl Limit {
    /// Parses `DIR:BYTES`.
    pub fn parse(s: &str) -> Option<Limit> {
        let (dir, bytes) = s.rsplit_once(':')?;
        let high = bytes.parse().ok().filter(|&b| b > 0)?;
        Some(Limit {
            cgroup: PathBuf::from(dir),
            high,
        })
    }

    pub fn apply(&self) -> std::io::Result<()> {
        write(&self.cgroup, "memory.high", &self.high.to_string())
    }

    pub fn lift(&self) -> std::io::Result<()> {
        write(&self.cgroup, "memory.high", "max")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dir_and_bytes() {
        let l = Limit::parse("/sys/fs/cgroup/work:1048576");
        assert!(
            l.is_some_and(|l| l.high == 1 << 20 && l.cgroup == Path::new("/sys/fs/cgroup/work"))
        );
        assert!(Limit::parse("/x:0").is_none());
        assert!(Limit::parse("/x").is_none());
        assert!(Limit::parse("/x:12k").is_none());
    }
}
