use clap::Parser;
use farmem_server::logging;
use farmem_server::server::{self, Config};
use farmem_server::size::Size;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use tracing::error;

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
}

/// Registered memory is pinned: lift the memlock limit (we run as root on
/// the far memory node) and refuse a size the machine cannot hold.
fn check_size(size: u64) -> Result<(), String> {
    // SAFETY: sysconf has no preconditions.
    let total = unsafe {
        libc::sysconf(libc::_SC_PHYS_PAGES) as u64 * libc::sysconf(libc::_SC_PAGESIZE) as u64
    };
    if size >= total {
        return Err(format!(
            "--size {} MiB cannot be registered: this machine has {} MiB of memory",
            size >> 20,
            total >> 20
        ));
    }
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid out pointer.
        unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut cur) };
        if cur.rlim_cur != libc::RLIM_INFINITY && cur.rlim_cur < size {
            return Err(format!(
                "--size {} MiB exceeds the locked-memory limit of {} KiB (raise `ulimit -l` or run as root)",
                size >> 20,
                cur.rlim_cur >> 10
            ));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    if cli.port == 0 {
        error!("port must be between 1 and 65535");
        return ExitCode::from(2);
    }
    if let Err(e) = check_size(cli.size.0) {
        error!("{e}");
        return ExitCode::from(2);
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
        region_size: cli.size.0,
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

    #[test]
    fn port_is_positional_like_rmserver() {
        let cli = Cli::try_parse_from(["farmem-server", "50000"]).expect("parses");
        assert_eq!(cli.port, 50000);
        assert_eq!(cli.size, Size(4 << 30));
        assert_eq!(cli.bind, Ipv4Addr::UNSPECIFIED);
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
        ])
        .expect("parses");
        assert_eq!(cli.size, Size(512 << 20));
        assert_eq!(cli.bind, Ipv4Addr::new(192, 0, 2, 1));
    }

    #[test]
    fn rejects_bad_arguments() {
        for args in [
            vec!["farmem-server"],
            vec!["farmem-server", "70000"],
            vec!["farmem-server", "50000", "--size", "lots"],
            vec!["farmem-server", "50000", "--bind", "example"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn refuses_more_than_the_machine_has() {
        assert!(check_size(u64::MAX / 2).is_err());
    }
}
