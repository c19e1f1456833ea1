//! The hidden `--root DIR`: every absolute path fastswapctl reads or
//! writes is taken under DIR, so that tests can run it against a fake
//! /sys and /proc.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root(dir.into())
    }

    /// `abs` (an absolute path on a real system) under this root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        self.0.join(abs.strip_prefix("/").unwrap_or(abs))
    }
}

impl Default for Root {
    fn default() -> Self {
        Root::new("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_absolute_paths() {
        assert_eq!(
            Root::default().path("/sys/kernel/mm/fastswap"),
            PathBuf::from("/sys/kernel/mm/fastswap")
        );
        assert_eq!(
            Root::new("/tmp/fake").path("/proc/vmstat"),
            PathBuf::from("/tmp/fake/proc/vmstat")
        );
    }
}
