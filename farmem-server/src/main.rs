use clap::{CommandFactory, Parser};
use cli_support::Parsed;
use farmem_server::budget::{self, MemInfo};
use farmem_server::duration::{Interval, Seconds};
use farmem_server::exit::{self, Exit};
use farmem_server::liveness;
use farmem_server::logging;
use farmem_server::registry::Limits;
use farmem_server::server::{self, Config, ServerError};
use farmem_server::size::Size;
use farmem_server::system::{self, MemlockError};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use tracing::{error, info, warn};

/// Far memory server for Fastswap: serves each client a region of memory
/// over RDMA.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TCP port space port to listen on (as the original rmserver's argument)
    port: u16,
    /// Far memory per client, e.g. 4G or 512M
    #[arg(long, default_value = "4G")]
    size: Size,
    /// Address to listen on (an address of an RDMA-capable interface)
    #[arg(long, default_value_t = Ipv4Addr::UNSPECIFIED)]
    bind: Ipv4Addr,
    /// Memory for all clients' regions together [default: 3/4 of
    /// MemAvailable at start, leaving at least max(256 MiB, 1/16 of RAM)]
    #[arg(long)]
    memory: Option<Size>,
    /// Clients served at once
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    max_clients: u32,
    /// Clients served at once from one peer address
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    max_clients_per_addr: u32,
    /// Time a client has, from its first queue, to connect all its queues;
    /// after it the client is disconnected and its region freed
    #[arg(long, default_value = "60s")]
    join_deadline: Seconds,
    /// Time between keep-alive probes of a client (a zero-length RDMA WRITE
    /// on one of its queues); 0 turns keep-alives off
    #[arg(long, default_value = "5s")]
    keepalive: Interval,
    /// Time a client may go without answering a keep-alive before it is
    /// declared dead, disconnected, and its region freed (more than
    /// --keepalive)
    #[arg(long, default_value = "30s")]
    dead_client_grace: Seconds,
    /// Time a client that had all its queues keeps its region after losing
    /// them (last queue gone, or declared dead), for it to reconnect with
    /// its session secret (at least the client's reconnect_timeout_s,
    /// 600 s by default); 0 frees the region at once
    #[arg(long, default_value = "600s")]
    reconnect_linger: Interval,
    /// The server's oom_score_adj: its clients' regions count as its memory,
    /// and the OOM killer must not pick it first
    #[arg(long, default_value_t = system::DEFAULT_OOM_SCORE_ADJ, allow_hyphen_values = true,
          value_parser = clap::value_parser!(i32).range(-1000..=1000))]
    oom_score_adj: i32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("--dead-client-grace {grace} s must be more than --keepalive {interval} s: a live client would be declared dead between two keep-alives")]
struct GraceError {
    grace: u64,
    interval: u64,
}

impl Cli {
    /// Keep-alive settings, or None when they are off.
    fn liveness(&self) -> Result<Option<liveness::Config>, GraceError> {
        let Some(interval) = self.keepalive.get() else {
            return Ok(None);
        };
        let grace = self.dead_client_grace.0;
        if grace <= interval {
            return Err(GraceError {
                grace: grace.as_secs(),
                interval: interval.as_secs(),
            });
        }
        Ok(Some(liveness::Config { interval, grace }))
    }

    fn limits(&self, m: &MemInfo) -> Result<Limits, budget::BudgetError> {
        let budget = budget::choose(self.size.0, self.memory.map(|s| s.0), m)?;
        Ok(Limits {
            region_size: self.size.0,
            budget,
            max_clients: self.max_clients as usize,
            max_per_peer: self.max_clients_per_addr as usize,
            join_deadline: self.join_deadline.0,
            linger: self.reconnect_linger.get().unwrap_or_default(),
        })
    }
}

/// Why the server did not start, or stopped.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("port must be between 1 and 65535")]
    Port,
    #[error("cannot read the machine's memory: {0}")]
    MemInfo(io::Error),
    #[error(transparent)]
    Budget(#[from] budget::BudgetError),
    #[error(transparent)]
    Grace(#[from] GraceError),
    #[error(transparent)]
    Memlock(#[from] MemlockError),
    #[error("cannot start the event loop: {0}")]
    Runtime(io::Error),
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl Failure {
    /// The exit status a supervisor sees (see farmem_server::exit).
    fn exit(&self) -> Exit {
        let denied = |e: &io::Error| e.kind() == io::ErrorKind::PermissionDenied;
        match self {
            Failure::Port | Failure::Grace(_) => Exit::Usage,
            Failure::MemInfo(_) => Exit::OsFile,
            Failure::Budget(_) => Exit::Config,
            Failure::Memlock(MemlockError::TooLow { .. }) => Exit::NoPerm,
            Failure::Memlock(MemlockError::Read(_)) | Failure::Runtime(_) => Exit::OsErr,
            Failure::Server(ServerError::NoRdma(e)) if denied(e) => Exit::NoPerm,
            Failure::Server(ServerError::NoRdma(_)) => Exit::Unavailable,
            Failure::Server(ServerError::Listen { source, .. }) if denied(source) => Exit::NoPerm,
            Failure::Server(ServerError::Listen { .. }) => Exit::TempFail,
            Failure::Server(ServerError::Events(_)) => Exit::OsErr,
        }
    }
}

fn main() -> ExitCode {
    // Parsed by hand to exit with EX_USAGE rather than clap's 2, and to end
    // --help with the exit statuses.
    let cli: Cli = match cli_support::parse(Cli::command().after_help(exit::help())) {
        Parsed::Run(cli) => cli,
        Parsed::Printed => return Exit::Clean.into(),
        Parsed::UsageError => return Exit::Usage.into(),
    };
    logging::init();
    match serve(&cli) {
        Ok(()) => Exit::Clean.into(),
        Err(e) => {
            let status = e.exit();
            error!("{e} (exit status {}, {})", status.code(), status.name());
            status.into()
        }
    }
}

/// Checks the options against the machine, then serves until SIGTERM or
/// SIGINT.
fn serve(cli: &Cli) -> Result<(), Failure> {
    // Usage errors first, then what the machine allows.
    if cli.port == 0 {
        return Err(Failure::Port);
    }
    let liveness = cli.liveness()?;
    let mem = system::meminfo().map_err(Failure::MemInfo)?;
    let limits = cli.limits(&mem)?;
    system::lift_memlock(limits.budget)?;
    match system::set_oom_score_adj(cli.oom_score_adj) {
        Ok(()) => info!("oom_score_adj set to {}", cli.oom_score_adj),
        Err(e) => warn!(
            "cannot set oom_score_adj to {} ({e}): the OOM killer may pick this server first",
            cli.oom_score_adj
        ),
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::Runtime)?;
    let cfg = Config {
        addr: SocketAddrV4::new(cli.bind, cli.port),
        limits,
        liveness,
    };
    rt.block_on(server::run(cfg, shutdown_signal()))?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIB: u64 = 1 << 20;

    #[test]
    fn port_is_positional_like_rmserver() {
        let cli = Cli::try_parse_from(["farmem-server", "50000"]).expect("parses");
        assert_eq!(cli.port, 50000);
        assert_eq!(cli.size, Size(4 << 30));
        assert_eq!(cli.bind, Ipv4Addr::UNSPECIFIED);
        assert_eq!(cli.memory, None);
        assert_eq!(cli.max_clients, 32);
        assert_eq!(cli.max_clients_per_addr, 4);
        assert_eq!(cli.join_deadline, Seconds(Duration::from_secs(60)));
        assert_eq!(cli.oom_score_adj, system::DEFAULT_OOM_SCORE_ADJ);
        assert_eq!(
            cli.liveness(),
            Ok(Some(liveness::Config {
                interval: Duration::from_secs(5),
                grace: Duration::from_secs(30)
            }))
        );
    }

    #[test]
    fn keepalive_options() {
        let parse = |args: &[&str]| {
            let mut v = vec!["farmem-server", "50000"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v).expect("parses").liveness()
        };
        assert_eq!(
            parse(&["--keepalive", "2s", "--dead-client-grace", "10s"]),
            Ok(Some(liveness::Config {
                interval: Duration::from_secs(2),
                grace: Duration::from_secs(10)
            }))
        );
        assert_eq!(parse(&["--keepalive", "0"]), Ok(None), "0 turns them off");
        assert_eq!(
            parse(&["--keepalive", "0", "--dead-client-grace", "1"]),
            Ok(None),
            "the grace does not matter then"
        );
        assert!(parse(&["--keepalive", "30s"]).is_err(), "grace = interval");
        assert!(parse(&["--keepalive", "1m"]).is_err());
        assert!(parse(&["--keepalive", "5", "--dead-client-grace", "6"]).is_ok());
    }

    #[test]
    fn options() {
        let cli = Cli::try_parse_from([
            "farmem-server",
            "7000",
            "--size",
            "512M",
            "--bind",
            "192.0.2.1",
            "--memory",
            "2G",
            "--max-clients",
            "3",
            "--max-clients-per-addr",
            "1",
            "--join-deadline",
            "10s",
            "--oom-score-adj",
            "-1000",
        ])
        .expect("parses");
        assert_eq!(cli.size, Size(512 << 20));
        assert_eq!(cli.bind, Ipv4Addr::new(192, 0, 2, 1));
        let l = cli
            .limits(&MemInfo {
                total: 8 << 30,
                available: 7 << 30,
            })
            .expect("fits");
        assert_eq!(l.budget, 2 << 30);
        assert_eq!((l.max_clients, l.max_per_peer), (3, 1));
        assert_eq!(l.join_deadline, Duration::from_secs(10));
        assert_eq!(cli.oom_score_adj, -1000);
    }

    #[test]
    fn rejects_bad_arguments() {
        for args in [
            vec!["farmem-server"],
            vec!["farmem-server", "70000"],
            vec!["farmem-server", "50000", "--size", "lots"],
            vec!["farmem-server", "50000", "--bind", "example"],
            vec!["farmem-server", "50000", "--memory", "1000"],
            vec!["farmem-server", "50000", "--max-clients", "0"],
            vec!["farmem-server", "50000", "--max-clients-per-addr", "0"],
            vec!["farmem-server", "50000", "--join-deadline", "0"],
            vec!["farmem-server", "50000", "--oom-score-adj", "-1001"],
            vec!["farmem-server", "50000", "--keepalive", "-1"],
            vec!["farmem-server", "50000", "--keepalive", "fast"],
            vec!["farmem-server", "50000", "--dead-client-grace", "0"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn refuses_more_than_the_machine_has() {
        let m = MemInfo {
            total: 1536 * MIB,
            available: 1400 * MIB,
        };
        let cli = Cli::try_parse_from(["farmem-server", "1", "--size", "999T"]).expect("parses");
        assert!(cli.limits(&m).is_err());
        let cli = Cli::try_parse_from(["farmem-server", "1", "--size", "256M", "--memory", "2G"])
            .expect("parses");
        assert!(cli.limits(&m).is_err());
        let cli = Cli::try_parse_from(["farmem-server", "1", "--size", "256M"]).expect("parses");
        assert_eq!(cli.limits(&m).map(|l| l.budget), Ok(1050 * MIB));
    }

    #[test]
    fn failures_map_to_exit_statuses() {
        let os = |kind| io::Error::new(kind, "test");
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50000);
        let listen = |kind| {
            Failure::Server(ServerError::Listen {
                addr,
                source: os(kind),
            })
        };
        let m = MemInfo {
            total: 1536 * MIB,
            available: 1400 * MIB,
        };
        let cli = Cli::try_parse_from(["farmem-server", "1", "--size", "999T"]).expect("parses");
        let budget = cli.limits(&m).map(|_| ()).map_err(Failure::from);
        let cli = Cli::try_parse_from(["farmem-server", "1", "--keepalive", "1m"]).expect("parses");
        let grace = cli.liveness().map(|_| ()).map_err(Failure::from);
        for (f, want) in [
            (Failure::Port, Exit::Usage),
            (grace.expect_err("grace <= keepalive"), Exit::Usage),
            (budget.expect_err("too big"), Exit::Config),
            (Failure::MemInfo(os(io::ErrorKind::NotFound)), Exit::OsFile),
            (
                Failure::Memlock(MemlockError::TooLow {
                    budget_mib: 1024,
                    limit_kib: 8192,
                }),
                Exit::NoPerm,
            ),
            (
                Failure::Memlock(MemlockError::Read(os(io::ErrorKind::Other))),
                Exit::OsErr,
            ),
            (Failure::Runtime(os(io::ErrorKind::Other)), Exit::OsErr),
            (
                Failure::Server(ServerError::NoRdma(io::Error::from_raw_os_error(
                    libc::ENODEV,
                ))),
                Exit::Unavailable,
            ),
            (
                Failure::Server(ServerError::NoRdma(io::Error::from_raw_os_error(
                    libc::EACCES,
                ))),
                Exit::NoPerm,
            ),
            (listen(io::ErrorKind::AddrInUse), Exit::TempFail),
            (listen(io::ErrorKind::AddrNotAvailable), Exit::TempFail),
            (listen(io::ErrorKind::PermissionDenied), Exit::NoPerm),
            (
                Failure::Server(ServerError::Events(os(io::ErrorKind::Other))),
                Exit::OsErr,
            ),
        ] {
            assert_eq!(f.exit(), want, "{f}");
        }
    }

    #[test]
    fn help_ends_with_the_exit_statuses() {
        let help = Cli::command()
            .after_help(exit::help())
            .render_help()
            .to_string();
        assert!(help.contains("Exit status"), "{help}");
        assert!(help.contains("64  EX_USAGE"), "{help}");
    }
}
