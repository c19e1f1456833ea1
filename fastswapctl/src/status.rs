//! Everything `status` and `watch` show, read in one go.

use crate::advice;
use crate::error::Error;
use crate::modules::Modules;
use crate::reclaim::{self, Offload};
use crate::root::Root;
use crate::sysfs::Fastswap;
use crate::vmstat::VmStat;
use serde::Serialize;

/// JSON: the sysfs files' names and values, then the rest.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub fastswap: Fastswap,
    pub modules: Modules,
    /// Omitted on a kernel without the sysctl; null when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reclaim_offload_cpu: Option<Offload>,
    pub vmstat: Option<VmStat>,
}

impl Status {
    pub fn read(root: &Root) -> Result<Self, Error> {
        Ok(Status {
            fastswap: Fastswap::read(root)?,
            modules: Modules::read(root),
            reclaim_offload_cpu: reclaim::read(root)?,
            vmstat: VmStat::read(root),
        })
    }

    /// Why Fastswap is not active, or None.
    pub fn inactive_note(&self) -> Option<String> {
        advice::inactive_note(&self.fastswap, &self.modules)
    }
}
