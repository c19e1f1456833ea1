//! Which CPUs exist and are online, from /sys/devices/system/cpu: the
//! reclaim offload CPU must be one of the online ones.

use crate::error::Error;
use crate::files::read_value;
use crate::root::Root;
use std::fmt;
use std::str::FromStr;

pub const DIR: &str = "/sys/devices/system/cpu";

/// A set of CPUs, in the kernel's list format ("0-3,6").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuList(Vec<u32>);

impl CpuList {
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }
}

impl FromStr for CpuList {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let mut cpus = Vec::new();
        for part in s.trim().split(',').filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (lo.parse().map_err(|_| ())?, hi.parse().map_err(|_| ())?),
                None => {
                    let n: u32 = part.parse().map_err(|_| ())?;
                    (n, n)
                }
            };
            if lo > hi {
                return Err(());
            }
            cpus.extend(lo..=hi);
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuList(cpus))
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            // The run of consecutive CPUs starting at i.
            let mut j = i;
            while j + 1 < self.0.len() && self.0[j + 1] == self.0[j] + 1 {
                j += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if i == j {
                write!(f, "{}", self.0[i])?;
            } else {
                write!(f, "{}-{}", self.0[i], self.0[j])?;
            }
            i = j + 1;
        }
        Ok(())
    }
}

/// The online CPUs.
pub fn online(root: &Root) -> Result<CpuList, Error> {
    let path = root.path(format!("{DIR}/online"));
    let text = read_value(&path)?;
    text.parse().map_err(|()| Error::Parse {
        path,
        value: text,
        want: "a CPU list",
    })
}

/// Ok if `cpu` exists and is online. A CPU's own `online` file decides;
/// a CPU without one (cpu0 often cannot be taken offline) is online if
/// the system's online list has it.
pub fn check_online(root: &Root, cpu: u32) -> Result<(), Error> {
    let list = online(root)?;
    let dir = root.path(format!("{DIR}/cpu{cpu}"));
    if !dir.is_dir() {
        return Err(Error::NoSuchCpu { cpu, online: list });
    }
    let own = dir.join("online");
    let is_online = if own.exists() {
        match read_value(&own)?.as_str() {
            "1" => true,
            "0" => false,
            v => {
                return Err(Error::Parse {
                    path: own,
                    value: v.to_string(),
                    want: "0 or 1",
                })
            }
        }
    } else {
        list.contains(cpu)
    };
    if is_online {
        Ok(())
    } else {
        Err(Error::CpuOffline { cpu, online: list })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> CpuList {
        s.parse().expect("a CPU list")
    }

    #[test]
    fn parses_and_prints_kernel_lists() {
        assert_eq!(list("0-3,6\n"), CpuList(vec![0, 1, 2, 3, 6]));
        assert_eq!(list("0"), CpuList(vec![0]));
        assert_eq!(list(""), CpuList(vec![]));
        assert_eq!(list("0-3,6").to_string(), "0-3,6");
        assert_eq!(list("0,1,3,5-7").to_string(), "0-1,3,5-7");
        assert_eq!(list("").to_string(), "none");
        assert!("3-1".parse::<CpuList>().is_err());
        assert!("a".parse::<CpuList>().is_err());
        assert!("0-".parse::<CpuList>().is_err());
    }
}
