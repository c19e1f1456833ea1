//! Which of Fastswap's modules are loaded (/sys/module/NAME exists).

use crate::root::Root;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Modules {
    pub fastswap: bool,
    pub fastswap_rdma: bool,
    pub fastswap_dram: bool,
}

impl Modules {
    pub fn read(root: &Root) -> Self {
        let loaded = |name: &str| root.path(format!("/sys/module/{name}")).is_dir();
        Modules {
            fastswap: loaded("fastswap"),
            fastswap_rdma: loaded("fastswap_rdma"),
            fastswap_dram: loaded("fastswap_dram"),
        }
    }

    /// The loaded ones' names.
    pub fn loaded(&self) -> Vec<&'static str> {
        [
            ("fastswap", self.fastswap),
            ("fastswap_rdma", self.fastswap_rdma),
            ("fastswap_dram", self.fastswap_dram),
        ]
        .into_iter()
        .filter_map(|(n, l)| l.then_some(n))
        .collect()
    }
}
