//! fastswapctl: Fastswap's state and counters from
//! /sys/kernel/mm/fastswap, and the reclaim offload CPU.

pub mod advice;
pub mod counters;
pub mod cpus;
pub mod error;
pub mod exit;
pub mod files;
pub mod logging;
pub mod modules;
pub mod rates;
pub mod reclaim;
pub mod root;
pub mod signal;
pub mod status;
pub mod sysfs;
pub mod table;
pub mod units;
pub mod vmstat;
pub mod watch;
