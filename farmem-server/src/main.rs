use clap::Parser;
use farmem_server::budget::{self, MemInfo};
use farmem_server::clients::Limits;
use farmem_server::duration::{Interval, Seconds};
use farmem_server::liveness;
use farmem_server::logging;
use farmem_server::server::{self, Config};
use farmem_server::size::Size;
use farmem_server::system;
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
    /// The server's oom_score_adj: its clients' regions count as its memory,
    /// and the OOM killer must not pick it first
    #[arg(long, default_value_t = -900, allow_hyphen_values = true,
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
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    if cli.port == 0 {
        error!("port must be between 1 and 65535");
        return ExitCode::from(2);
    }
    let mem = match system::meminfo() {
        Ok(m) => m,
        Err(e) => {
            error!("cannot read the machine's memory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let limits = match cli.limits(&mem) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    let liveness = match cli.liveness() {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = system::lift_memlock(limits.budget) {
        error!("{e}");
        return ExitCode::from(2);
    }
    match system::set_oom_score_adj(cli.oom_score_adj) {
        Ok(()) => info!("oom_score_adj set to {}", cli.oom_score_adj),
        Err(e) => warn!(
            "cannot set oom_score_adj to {} ({e}): the OOM killer may pick this server first",
            cli.oom_score_adj
        ),
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = Config {
        addr: SocketAddrV4::new(cli.bind, cli.port),
        limits,
        liveness,
    };
    match rt.block_on(server::run(cfg, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
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
        assert_eq!(cli.oom_score_adj, -900);
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
}
