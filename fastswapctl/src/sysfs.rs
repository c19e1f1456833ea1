//! /sys/kernel/mm/fastswap/: what the kernel says about Fastswap. The
//! directory exists iff the kernel has the patch series; each file holds
//! one value. Files this tool does not know are future additions and are
//! not read; a known one missing or unparsable is an error naming it.

use crate::counters::Counters;
use crate::error::Error;
use crate::files::{self, read_u64, read_value};
use crate::root::Root;
use serde::Serialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const DIR: &str = "/sys/kernel/mm/fastswap";

/// The backend's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Takes stores, serves loads.
    Active,
    /// The connection to the server is down and being remade: new
    /// swap-outs go to the swap device, loads wait.
    Reconnecting,
    /// Far memory was lost: new swap-outs go to the swap device.
    Lost,
    /// No backend.
    None,
    /// The backend reported a state the kernel has no name for.
    Unknown,
}

impl FromStr for State {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "active" => Ok(State::Active),
            "reconnecting" => Ok(State::Reconnecting),
            "lost" => Ok(State::Lost),
            "none" => Ok(State::None),
            "unknown" => Ok(State::Unknown),
            _ => Err(()),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Active => "active",
            State::Reconnecting => "reconnecting",
            State::Lost => "lost",
            State::None => "none",
            State::Unknown => "unknown",
        })
    }
}

/// The directory's values; field names are the file names (and JSON keys).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fastswap {
    /// fastswap.ko is loaded and registered with frontswap.
    pub enabled: bool,
    /// The registered backend module's name, or "none".
    pub backend: String,
    pub state: State,
    /// The far memory server, for backends that have one.
    pub server: Option<SocketAddr>,
    pub queues: u64,
    pub capacity_bytes: u64,
    pub stored_pages: u64,
    pub used_bytes: u64,
    #[serde(flatten)]
    pub counters: Counters<u64>,
}

pub const NO_BACKEND: &str = "none";

impl Fastswap {
    pub fn has_backend(&self) -> bool {
        self.backend != NO_BACKEND
    }

    pub fn read(root: &Root) -> Result<Self, Error> {
        let dir = root.path(DIR);
        if !dir.is_dir() {
            return Err(Error::NoFastswap(dir));
        }
        let file = |name: &str| -> PathBuf { dir.join(name) };
        let enabled = match read_value(&file("enabled"))?.as_str() {
            "1" => true,
            "0" => false,
            v => return Err(bad(&file("enabled"), v, "0 or 1")),
        };
        let backend = read_value(&file("backend"))?;
        if backend.is_empty() || backend.contains(char::is_whitespace) {
            return Err(bad(&file("backend"), &backend, "a module name"));
        }
        let state = files::parse(
            &file("state"),
            &read_value(&file("state"))?,
            "active, reconnecting, lost, none or unknown",
        )?;
        let server = match read_value(&file("server"))?.as_str() {
            "" => None,
            v => Some(files::parse(&file("server"), v, "ADDR:PORT or empty")?),
        };
        Ok(Fastswap {
            enabled,
            backend,
            state,
            server,
            queues: read_u64(&file("queues"))?,
            capacity_bytes: read_u64(&file("capacity_bytes"))?,
            stored_pages: read_u64(&file("stored_pages"))?,
            used_bytes: read_u64(&file("used_bytes"))?,
            counters: Counters::try_from_fn(|name| read_u64(&file(name)))?,
        })
    }
}

fn bad(path: &Path, value: &str, want: &'static str) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        value: value.to_string(),
        want,
    }
}
