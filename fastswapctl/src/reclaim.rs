//! vm.memcg_reclaim_offload_cpu (kernel-patch/ 0003): -1 is off, else the
//! CPU that runs memory.high reclaim for every cgroup.

use crate::cpus;
use crate::error::Error;
use crate::files::{self, read_value};
use crate::root::Root;
use serde::{Serialize, Serializer};
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;

pub const SYSCTL: &str = "/proc/sys/vm/memcg_reclaim_offload_cpu";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offload {
    Off,
    Cpu(u32),
}

impl Offload {
    /// The sysctl's value for it.
    fn sysctl_value(self) -> i64 {
        match self {
            Offload::Off => -1,
            Offload::Cpu(n) => n.into(),
        }
    }
}

/// The command line's form: "off" or a CPU number.
impl FromStr for Offload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" {
            return Ok(Offload::Off);
        }
        s.parse()
            .map(Offload::Cpu)
            .map_err(|_| format!("{s:?} is neither a CPU number nor \"off\""))
    }
}

impl fmt::Display for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offload::Off => f.write_str("off"),
            Offload::Cpu(n) => write!(f, "{n}"),
        }
    }
}

/// JSON: null when off, else the CPU.
impl Serialize for Offload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Offload::Off => s.serialize_none(),
            Offload::Cpu(n) => s.serialize_u32(*n),
        }
    }
}

/// The current setting, or None if this kernel has no such sysctl.
pub fn read(root: &Root) -> Result<Option<Offload>, Error> {
    let path = root.path(SYSCTL);
    if !path.exists() {
        return Ok(None);
    }
    let value = read_value(&path)?;
    match files::parse::<i64>(&path, &value, "-1 or a CPU number")? {
        -1 => Ok(Some(Offload::Off)),
        n => u32::try_from(n)
            .map(|n| Some(Offload::Cpu(n)))
            .map_err(|_| Error::Parse {
                path,
                value,
                want: "-1 or a CPU number",
            }),
    }
}

/// Like [`read`], but a kernel without the sysctl is an error.
pub fn read_required(root: &Root) -> Result<Offload, Error> {
    read(root)?.ok_or_else(|| Error::NoReclaimOffload(root.path(SYSCTL)))
}

/// Sets the offload CPU, after checking that the CPU is online (the
/// kernel's EINVAL would not say which CPUs are).
pub fn set(root: &Root, to: Offload) -> Result<(), Error> {
    let path = root.path(SYSCTL);
    if !path.exists() {
        return Err(Error::NoReclaimOffload(path));
    }
    if let Offload::Cpu(cpu) = to {
        cpus::check_online(root, cpu)?;
    }
    // One write(2) with the whole value: a sysctl ignores writes past
    // offset 0. Without create: a kernel's sysctl exists, a fake tree's
    // must too.
    let value = format!("{}\n", to.sysctl_value());
    let written = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    written.map_err(|source| write_error(path, to, source))
}

/// What a failed write of `to` means: not root, or the kernel's own check
/// of the CPU (it went offline since ours).
fn write_error(path: PathBuf, to: Offload, source: io::Error) -> Error {
    match (source.kind(), to) {
        (io::ErrorKind::PermissionDenied, _) => Error::NeedsRoot { path },
        (_, Offload::Cpu(cpu)) if source.raw_os_error() == Some(libc::EINVAL) => {
            Error::KernelRefused { cpu }
        }
        _ => Error::Write { path, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_form() {
        assert_eq!("off".parse(), Ok(Offload::Off));
        assert_eq!("3".parse(), Ok(Offload::Cpu(3)));
        assert!("-1".parse::<Offload>().is_err());
        assert!("cpu3".parse::<Offload>().is_err());
        assert_eq!(Offload::Off.sysctl_value(), -1);
        assert_eq!(Offload::Cpu(7).sysctl_value(), 7);
    }

    #[test]
    fn write_errors_say_why() {
        let path = PathBuf::from(SYSCTL);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let e = write_error(path.clone(), Offload::Cpu(1), denied);
        assert!(matches!(e, Error::NeedsRoot { .. }), "{e:?}");
        assert!(e.to_string().contains("needs root"), "{e}");
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        let e = write_error(path.clone(), Offload::Cpu(3), einval);
        assert!(matches!(e, Error::KernelRefused { cpu: 3 }), "{e:?}");
        let eio = io::Error::from_raw_os_error(libc::EIO);
        let e = write_error(path, Offload::Off, eio);
        assert!(matches!(e, Error::Write { .. }), "{e:?}");
        assert!(e.to_string().contains(SYSCTL), "{e}");
    }

    #[test]
    fn json_is_null_when_off() {
        assert_eq!(serde_json::to_string(&Offload::Off).expect("json"), "null");
        assert_eq!(serde_json::to_string(&Offload::Cpu(1)).expect("json"), "1");
    }
}
