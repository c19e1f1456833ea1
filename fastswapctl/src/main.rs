use clap::{CommandFactory, Parser, Subcommand};
use cli_support::Parsed;
use fastswapctl::error::Error;
use fastswapctl::exit::{self, Exit};
use fastswapctl::logging;
use fastswapctl::reclaim::{self, Offload};
use fastswapctl::root::Root;
use fastswapctl::status::Status;
use fastswapctl::table;
use fastswapctl::watch::{self, Options};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tracing::{error, warn};

/// Fastswap's state, backend and counters, and the reclaim offload CPU.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Read and write every /sys and /proc path under DIR (tests)
    #[arg(
        long,
        global = true,
        hide = true,
        env = "FASTSWAPCTL_ROOT",
        default_value = "/"
    )]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Modules loaded, backend, state, server, sizes and page counters
    Status {
        /// One JSON object, with exact numbers
        #[arg(long)]
        json: bool,
    },
    /// The status every interval, with rates per second of the counters
    Watch {
        /// Seconds between refreshes (fractions too)
        #[arg(long, value_name = "SECS", default_value = "1", value_parser = interval)]
        interval: Duration,
        /// Stop after N refreshes
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// One JSON object per line, rates under "rates"
        #[arg(long)]
        json: bool,
    },
    /// Show the CPU that runs memory.high reclaim
    /// (vm.memcg_reclaim_offload_cpu), or set it (root)
    ReclaimOffload {
        /// A CPU number (it must be online), or "off"
        #[arg(value_name = "CPU|off")]
        setting: Option<Offload>,
    },
}

fn interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be more than 0".to_string());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let command = Cli::command()
        .after_help(exit::help())
        .mut_subcommands(|c| c.after_help(exit::help()));
    let cli: Cli = match cli_support::parse(command) {
        Parsed::Run(cli) => cli,
        Parsed::Printed => return Exit::Success.into(),
        Parsed::UsageError => return Exit::Usage.into(),
    };
    logging::init();
    let root = Root::new(cli.root);
    match run(&root, cli.command) {
        Ok(status) => status.into(),
        Err(e) => {
            error!("{e}");
            e.exit().into()
        }
    }
}

fn run(root: &Root, command: Command) -> Result<Exit, Error> {
    match command {
        Command::Status { json } => {
            let status = Status::read(root)?;
            let text = if json {
                serde_json::to_string(&status).map_err(|e| Error::Output(io::Error::other(e)))?
                    + "\n"
            } else {
                table::render(&status, None)
            };
            print(&text)?;
            Ok(inactive(status.inactive_note()))
        }
        Command::Watch {
            interval,
            count,
            json,
        } => {
            let opts = Options {
                interval,
                count,
                json,
            };
            let stdout = io::stdout();
            let tty = stdout.is_terminal();
            let note = watch::run(root, &opts, &mut stdout.lock(), tty)?;
            Ok(inactive(note))
        }
        Command::ReclaimOffload { setting: None } => {
            print(&format!("{}\n", reclaim::read_required(root)?))?;
            Ok(Exit::Success)
        }
        Command::ReclaimOffload { setting: Some(to) } => {
            let was = reclaim::read_required(root)?;
            reclaim::set(root, to)?;
            print(&format!(
                "reclaim offload: {} (was {})\n",
                describe(to),
                describe(was)
            ))?;
            Ok(Exit::Success)
        }
    }
}

/// Status 3 and its note when Fastswap is not active.
fn inactive(note: Option<String>) -> Exit {
    match note {
        Some(n) => {
            warn!("{n}");
            Exit::Inactive
        }
        None => Exit::Success,
    }
}

fn describe(o: Offload) -> String {
    match o {
        Offload::Off => "off".to_string(),
        Offload::Cpu(n) => format!("CPU {n}"),
    }
}

/// Writes to stdout; a reader that has gone (`| head`) is no error.
fn print(text: &str) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::Output(e)),
        _ => Ok(()),
    }
}
