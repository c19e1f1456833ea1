//! `watch`: the status again every interval, with the counters' rates.
//! On a terminal it redraws in place; otherwise it appends one block per
//! refresh (or one JSON line), so that a pipe or a log reads every one.

use crate::counters::Counters;
use crate::error::Error;
use crate::rates::{self, Rates};
use crate::root::Root;
use crate::signal;
use crate::status::Status;
use crate::table;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{Duration, Instant};

pub struct Options {
    pub interval: Duration,
    /// Stop after this many refreshes.
    pub count: Option<u64>,
    pub json: bool,
}

/// One JSON line: the status, and the rates since the previous refresh
/// (null on the first).
#[derive(Serialize)]
struct Refresh<'a> {
    #[serde(flatten)]
    status: &'a Status,
    /// Seconds measured since the previous refresh's read.
    interval_secs: Option<f64>,
    rates: Option<Rates>,
}

/// Clear the screen from the top left corner.
const REDRAW: &str = "\x1b[H\x1b[J";

/// Refreshes until the count, a signal or a closed output; returns the
/// last refresh's note when Fastswap was not active then.
pub fn run(
    root: &Root,
    opts: &Options,
    out: &mut dyn Write,
    tty: bool,
) -> Result<Option<String>, Error> {
    signal::catch_interrupt();
    let mut prev: Option<(Counters<u64>, Instant)> = None;
    let mut note = None;
    let mut done: u64 = 0;
    let mut next = Instant::now();
    while !signal::interrupted() {
        let at = Instant::now();
        let status = Status::read(root)?;
        let elapsed = prev.map(|(_, t)| at - t);
        let rates =
            prev.and_then(|(c, t)| rates::per_second(&c, &status.fastswap.counters, at - t));
        note = status.inactive_note();
        done += 1;
        let text = if opts.json {
            let line = Refresh {
                status: &status,
                interval_secs: elapsed.map(|d| d.as_secs_f64()),
                rates,
            };
            serde_json::to_string(&line).map_err(|e| Error::Output(io::Error::other(e)))? + "\n"
        } else {
            block(
                &status,
                rates.as_ref(),
                elapsed,
                done,
                opts.interval,
                tty,
                note.as_deref(),
            )
        };
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            // A reader that is done (`| head`) ends the watch, cleanly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(Error::Output(e)),
        }
        if opts.count.is_some_and(|n| done >= n) {
            break;
        }
        prev = Some((status.fastswap.counters, at));
        // A late refresh (a slow read, a stopped process) starts the
        // schedule again rather than catching up in a burst.
        next = (next + opts.interval).max(Instant::now());
        signal::sleep_until(next);
    }
    Ok(note)
}

/// One refresh as text: a header, the table, on a terminal the note.
fn block(
    status: &Status,
    rates: Option<&Rates>,
    elapsed: Option<Duration>,
    n: u64,
    interval: Duration,
    tty: bool,
    note: Option<&str>,
) -> String {
    let since = match elapsed {
        Some(d) => format!("rates over the last {:.3} s", d.as_secs_f64()),
        None => "rates from the next refresh on".to_string(),
    };
    let table = table::render(status, Some(rates));
    if tty {
        let note = note.map(|n| format!("\n{n}\n")).unwrap_or_default();
        format!(
            "{REDRAW}fastswapctl watch: every {} s, refresh {n}, {since}\n\n{table}{note}",
            interval.as_secs_f64()
        )
    } else {
        // Blocks apart by a blank line; notes go to stderr at the end.
        format!("refresh {n}: {since}\n{table}\n")
    }
}
