//! The kernel's own swap counters from /proc/vmstat, shown beside
//! Fastswap's (frontswap stores and loads are counted there too).

use crate::root::Root;
use serde::Serialize;

pub const PATH: &str = "/proc/vmstat";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VmStat {
    pub pswpin: u64,
    pub pswpout: u64,
}

impl VmStat {
    /// None if /proc/vmstat or the two lines are not there: they are
    /// context, not what this tool reports on.
    pub fn read(root: &Root) -> Option<Self> {
        let text = std::fs::read_to_string(root.path(PATH)).ok()?;
        Self::parse(&text)
    }

    fn parse(text: &str) -> Option<Self> {
        let value = |key: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
        };
        Some(VmStat {
            pswpin: value("pswpin")?,
            pswpout: value("pswpout")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_swap_lines() {
        let text = "nr_free_pages 1000\npswpin 196698\npswpout 131516\npswpin_zero 3\n";
        assert_eq!(
            VmStat::parse(text),
            Some(VmStat {
                pswpin: 196698,
                pswpout: 131516
            })
        );
        assert_eq!(VmStat::parse("pswpin 1\n"), None);
        assert_eq!(VmStat::parse("pswpin x\npswpout 2\n"), None);
    }
}
