//! Why a command failed, and the exit status each failure gets.

use crate::cpus::CpuList;
use crate::exit::Exit;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("this kernel has no Fastswap ({} does not exist): boot a kernel built with the kernel-patch/ series", .0.display())]
    NoFastswap(PathBuf),
    #[error("this kernel has no reclaim offload ({} does not exist): boot a kernel built with the kernel-patch/ series", .0.display())]
    NoReclaimOffload(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {value:?} is not {want}", path.display())]
    Parse {
        path: PathBuf,
        value: String,
        want: &'static str,
    },
    #[error("cannot write {}: permission denied: setting the reclaim offload CPU needs root", path.display())]
    NeedsRoot { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("CPU {cpu} does not exist; online CPUs: {online}")]
    NoSuchCpu { cpu: u32, online: CpuList },
    #[error("CPU {cpu} is offline; online CPUs: {online}")]
    CpuOffline { cpu: u32, online: CpuList },
    #[error("the kernel refused CPU {cpu} for the reclaim offload (EINVAL: it is not online)")]
    KernelRefused { cpu: u32 },
    #[error("cannot write the output: {0}")]
    Output(io::Error),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::NoFastswap(_) | Error::NoReclaimOffload(_) => Exit::NoPatch,
            _ => Exit::Failure,
        }
    }
}
