//! fastswapctl's exit statuses, defined in this one place; `--help` ends
//! with the table. A script can tell "Fastswap is off, load the modules"
//! (3) from "this kernel cannot do it at all" (4) from a plain failure (1).

use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    /// A file could not be read or written, a value did not parse, a CPU
    /// cannot take the reclaim offload.
    Failure = 1,
    /// Bad command line (clap's own status).
    Usage = 2,
    /// The kernel has the patch, but no backend is registered, fastswap.ko
    /// is not loaded, or far memory was lost.
    Inactive = 3,
    /// The kernel lacks the Fastswap patch series.
    NoPatch = 4,
}

impl Exit {
    pub const ALL: [Exit; 5] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::Inactive,
        Exit::NoPatch,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "a runtime error: a file unreadable or unparsable, a write refused, a CPU that cannot take the reclaim offload",
            Exit::Usage => "bad command line",
            Exit::Inactive => "the kernel has the Fastswap patch but Fastswap is not active (no backend module, fastswap.ko not loaded, or the backend not active: reconnecting, or far memory lost); status and watch still print what there is, and a note on standard error says what to load",
            Exit::NoPatch => "the kernel lacks the Fastswap patch series (no /sys/kernel/mm/fastswap, or for reclaim-offload no vm.memcg_reclaim_offload_cpu)",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The table `--help` ends with.
pub fn help() -> String {
    let mut s = String::from("Exit status:\n");
    for e in Exit::ALL {
        s.push_str(&format!("  {}  {}\n", e.code(), e.meaning()));
    }
    s.push_str("  101 (a panic) or a signal is a failure too.");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn help_lists_every_status() {
        let h = help();
        for e in Exit::ALL {
            assert!(
                h.contains(&format!("  {}  {}", e.code(), e.meaning())),
                "{e:?} missing from:\n{h}"
            );
        }
    }
}
