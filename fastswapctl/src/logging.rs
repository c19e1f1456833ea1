//! Diagnostics on standard error through `tracing`, in a command-line
//! tool's form: "fastswapctl: error: ..." for errors, "fastswapctl: ..."
//! for notes. Standard output carries only the requested output.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        w.write_str("fastswapctl: ")?;
        if *event.metadata().level() == Level::ERROR {
            w.write_str("error: ")?;
        }
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

pub fn init() {
    // Fails only if a subscriber is already installed: keep that one.
    let _ = tracing_subscriber::fmt()
        .with_max_level(Level::INFO)
        .with_ansi(false)
        .event_format(Plain)
        .with_writer(|| cli_support::Stderr)
        .try_init();
}
