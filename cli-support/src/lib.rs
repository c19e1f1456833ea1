//! What the project's command-line programs share: parsing the command
//! line while leaving the exit status to the program (each has its own
//! table of statuses, listed by its `--help`), and a standard error that
//! a log line cannot fail on.

use clap::{ArgMatches, Command, FromArgMatches};
use std::io::{self, Write};

/// The outcome of parsing the command line.
pub enum Parsed<T> {
    /// Run with these arguments.
    Run(T),
    /// clap printed `--help` or `--version` (to standard output): exit
    /// successfully.
    Printed,
    /// clap printed a usage error (to standard error): exit with the
    /// program's usage status.
    UsageError,
}

/// Parses the process's arguments with `command`, the program's clap
/// command (with its `after_help` and any other changes already made).
pub fn parse<T: FromArgMatches>(command: Command) -> Parsed<T> {
    match command
        .try_get_matches()
        .and_then(|m: ArgMatches| T::from_arg_matches(&m))
    {
        Ok(args) => Parsed::Run(args),
        Err(e) => {
            // A failure to print the message changes nothing about the outcome.
            let _ = e.print();
            if e.use_stderr() {
                Parsed::UsageError
            } else {
                Parsed::Printed
            }
        }
    }
}

/// Standard error, ignoring write errors: a closed or broken stderr
/// (EPIPE, EBADF, ENOSPC) loses the line, and nothing else; `eprintln!`
/// would panic. One `write_all` per formatted line keeps lines whole.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
