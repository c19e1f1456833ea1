//! The status as a table for people: one "label  value" row per line,
//! sizes in binary units, counters exact (with their rates in `watch`).

use crate::counters::NAMES;
use crate::rates::Rates;
use crate::status::Status;
use crate::units::{bytes, page_size};

const LABEL_WIDTH: usize = 21;
/// Counter values are padded to this width when a rate follows.
const COUNTER_WIDTH: usize = 14;

/// The table, each line ending in a newline. `rates`: `Some` in `watch`
/// (the inner `None` on its first refresh, which has nothing to compare
/// with).
pub fn render(s: &Status, rates: Option<Option<&Rates>>) -> String {
    let f = &s.fastswap;
    let loaded = s.modules.loaded();
    let mut rows: Vec<(&str, String)> = vec![
        (
            "modules loaded",
            if loaded.is_empty() {
                "none".to_string()
            } else {
                loaded.join(", ")
            },
        ),
        ("enabled", if f.enabled { "yes" } else { "no" }.to_string()),
        ("backend", f.backend.clone()),
        ("state", f.state.to_string()),
        (
            "server",
            f.server.map_or_else(|| "-".to_string(), |a| a.to_string()),
        ),
        ("queues", f.queues.to_string()),
        ("capacity", bytes(f.capacity_bytes)),
        (
            "stored",
            format!(
                "{} ({} pages)",
                bytes(f.stored_pages.saturating_mul(page_size())),
                f.stored_pages
            ),
        ),
        ("used", bytes(f.used_bytes)),
    ];
    let counters = f.counters.values();
    for (i, (_, label)) in NAMES.iter().enumerate() {
        let value = counters[i].to_string();
        let value = match rates {
            None => value,
            Some(None) => format!("{value:<COUNTER_WIDTH$}"),
            Some(Some(r)) => match r.values()[i] {
                Some(per_sec) => format!("{value:<COUNTER_WIDTH$}{per_sec:>12.1}/s"),
                None => format!("{value:<COUNTER_WIDTH$}{:>12}/s", "?"),
            },
        };
        rows.push((label, value));
    }
    if let Some(v) = s.vmstat {
        rows.push(("kernel pswpin", v.pswpin.to_string()));
        rows.push(("kernel pswpout", v.pswpout.to_string()));
    }
    rows.push((
        "reclaim offload CPU",
        s.reclaim_offload_cpu
            .map_or_else(|| "not in this kernel".to_string(), |o| o.to_string()),
    ));
    rows.iter()
        .map(|(label, value)| format!("{label:<LABEL_WIDTH$}{}\n", value.trim_end()))
        .collect()
}
