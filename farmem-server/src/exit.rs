//! farmem-server's exit statuses, in the one place they are defined. They
//! follow sysexits.h, so that a supervisor can tell a failure worth a
//! restart (no RDMA device yet, the port still taken) from one that only
//! the operator can fix (a bad option, a size this machine cannot serve).
//! packaging/farmem-server.service lists the latter in
//! RestartPreventExitStatus= (a unit test below keeps the two in step),
//! and `--help` prints the table.

use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Shut down on SIGTERM or SIGINT (and `--help`, `--version`).
    Clean = 0,
    /// EX_USAGE: the command line is wrong.
    Usage = 64,
    /// EX_UNAVAILABLE: no RDMA connection manager (no RDMA device, or
    /// rdma_ucm not loaded).
    Unavailable = 69,
    /// EX_OSERR: the system refused a resource (the event loop, reading
    /// the RDMA CM's events).
    OsErr = 71,
    /// EX_OSFILE: /proc/meminfo cannot be read.
    OsFile = 72,
    /// EX_TEMPFAIL: cannot listen on the address and port yet (address not
    /// on an RDMA device yet, port in use).
    TempFail = 75,
    /// EX_NOPERM: not allowed to pin the memory (locked-memory limit) or to
    /// listen on the port.
    NoPerm = 77,
    /// EX_CONFIG: the options do not fit this machine (--size, --memory).
    Config = 78,
}

impl Exit {
    pub const ALL: [Exit; 8] = [
        Exit::Clean,
        Exit::Usage,
        Exit::Unavailable,
        Exit::OsErr,
        Exit::OsFile,
        Exit::TempFail,
        Exit::NoPerm,
        Exit::Config,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// The sysexits.h name.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Clean => "EX_OK",
            Exit::Usage => "EX_USAGE",
            Exit::Unavailable => "EX_UNAVAILABLE",
            Exit::OsErr => "EX_OSERR",
            Exit::OsFile => "EX_OSFILE",
            Exit::TempFail => "EX_TEMPFAIL",
            Exit::NoPerm => "EX_NOPERM",
            Exit::Config => "EX_CONFIG",
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Clean => "shut down on SIGTERM or SIGINT",
            Exit::Usage => "bad command line (unknown option, bad value, port 0, --dead-client-grace not above --keepalive)",
            Exit::Unavailable => "no RDMA connection manager: no RDMA device, or rdma_ucm not loaded",
            Exit::OsErr => "the system refused a resource (event loop, RDMA CM events)",
            Exit::OsFile => "cannot read /proc/meminfo",
            Exit::TempFail => "cannot listen on the address and port yet (address not on an RDMA device, port in use)",
            Exit::NoPerm => "not allowed to pin the memory budget (locked-memory limit) or to listen on the port",
            Exit::Config => "--size or --memory does not fit this machine's memory",
        }
    }

    /// Whether running the server again unchanged can succeed. The others
    /// need the operator.
    pub fn worth_restarting(self) -> bool {
        matches!(self, Exit::Unavailable | Exit::OsErr | Exit::TempFail)
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The table `--help` ends with.
pub fn help() -> String {
    let mut s = String::from("Exit status (sysexits.h):\n");
    for e in Exit::ALL {
        let again = if e.worth_restarting() {
            "; a restart may succeed"
        } else {
            ""
        };
        s.push_str(&format!(
            "  {:>2}  {:<14}  {}{again}\n",
            e.code(),
            e.name(),
            e.meaning()
        ));
    }
    s.push_str("  Any other status (101: a panic) or a signal is a failure too.");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: &str = include_str!("../../packaging/farmem-server.service");

    /// The values of the unit's `KEY=` lines, split at whitespace.
    fn unit_values(key: &str) -> Vec<String> {
        UNIT.lines()
            .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .flat_map(|v| v.split_whitespace().map(str::to_string))
            .collect()
    }

    #[test]
    fn codes_are_distinct_and_sysexits() {
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Exit::ALL.len());
        assert!(codes.iter().all(|&c| c == 0 || (64..=78).contains(&c)));
    }

    #[test]
    fn help_lists_every_status() {
        let h = help();
        for e in Exit::ALL {
            assert!(
                h.contains(&format!("{:>2}  {}", e.code(), e.name())),
                "{e:?} missing from:\n{h}"
            );
        }
    }

    /// The unit restarts on failure except on the statuses a restart cannot
    /// fix.
    #[test]
    fn unit_restarts_only_what_is_worth_it() {
        assert_eq!(unit_values("Restart"), ["on-failure"]);
        let mut prevent: Vec<u8> = unit_values("RestartPreventExitStatus")
            .iter()
            .map(|v| v.parse().expect("a number"))
            .collect();
        prevent.sort();
        let want: Vec<u8> = Exit::ALL
            .iter()
            .filter(|e| **e != Exit::Clean && !e.worth_restarting())
            .map(|e| e.code())
            .collect();
        assert_eq!(prevent, want);
    }

    #[test]
    fn unit_keeps_the_servers_oom_score_adj() {
        // The server's --oom-score-adj default, which it sets itself.
        assert_eq!(unit_values("OOMScoreAdjust"), ["-900"]);
        assert_eq!(unit_values("LimitMEMLOCK"), ["infinity"]);
    }
}
