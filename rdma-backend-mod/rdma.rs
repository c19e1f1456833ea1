// SPDX-License-Identifier: GPL-2.0

//! fastswap_rdma.ko: a Fastswap backend that keeps pages in far memory.
//!
//!     insmod fastswap_rdma.ko sport=50000 sip=<server> cip=<client> nq=<cpus>
//!
//! Connects three queue pairs per CPU to farmem-server (synchronous reads
//! polled by the faulting CPU, asynchronous reads completed in softirq,
//! writes), learns the client's region from the accept, and stores page
//! `slot` at region offset `slot * 4096` with one-sided RDMA.

// `Ctrl`'s pin initialiser has more fields than the default limit expands.
#![recursion_limit = "256"]

use core::sync::atomic::Ordering::Relaxed;
use kernel::prelude::*;

// Shared with the other backend; not every item is used here.
#[allow(dead_code)]
#[path = "../kmod-support/backend.rs"]
mod backend;
mod ctrl;
mod errno;
mod once_slot;
// Shared with the other backend; not every item is used here.
#[allow(dead_code)]
#[path = "../kmod-support/page.rs"]
mod page;
mod protocol;
mod queue;
// Shared with the other backend; not every item is used here.
#[allow(dead_code)]
#[path = "../kmod-support/size.rs"]
mod size;
mod verbs;
mod work;

use backend::{AsyncLoad, Backend, Registration, State, Stats};
use ctrl::Ctrl;
use page::PageRef;
use verbs::Endpoint;

module! {
    type: FastswapRdma,
    name: "fastswap_rdma",
    author: "Fastswap developers",
    description: "Fastswap backend keeping swapped-out pages in far memory over RDMA",
    license: "GPL",
}

extern "C" {
    // The module parameters, declared in params.c.
    static fastswap_rdma_sport: kernel::ffi::c_int;
    static fastswap_rdma_sip: *const kernel::ffi::c_char;
    static fastswap_rdma_cip: *const kernel::ffi::c_char;
    static fastswap_rdma_nq: kernel::ffi::c_int;
    static fastswap_rdma_reconnect_timeout_s: kernel::ffi::c_int;
}

/// The largest `reconnect_timeout_s=`: an hour.
const MAX_RECONNECT_TIMEOUT_S: i32 = 3600;

struct Params {
    server: Endpoint,
    client: Endpoint,
    nq: u32,
    reconnect_timeout_s: u32,
}

fn address_param(name: &str, raw: *const kernel::ffi::c_char, what: &str) -> Result<Endpoint> {
    let text = size::param_str(raw).unwrap_or("");
    if text.is_empty() {
        pr_err!("missing {}=: give {}\n", name, what);
        return Err(EINVAL);
    }
    Endpoint::parse(text, 0).ok_or_else(|| {
        pr_err!(
            "invalid {}=\"{}\": expected {} (an IPv4 address)\n",
            name,
            text,
            what
        );
        EINVAL
    })
}

fn params() -> Result<Params> {
    // SAFETY: 0444 parameters, set before init and never changed.
    let (sport, sip, cip, nq) = unsafe {
        (
            fastswap_rdma_sport,
            fastswap_rdma_sip,
            fastswap_rdma_cip,
            fastswap_rdma_nq,
        )
    };
    let mut server = address_param("sip", sip, "the far memory server's address")?;
    let client = address_param("cip", cip, "this machine's address on the RDMA network")?;
    if !(1..=65535).contains(&sport) {
        pr_err!(
            "invalid sport={}: expected the port farmem-server listens on (1-65535)\n",
            sport
        );
        return Err(EINVAL);
    }
    server.port = sport as u16;
    let cpus = verbs::online_cpus();
    // farmem-server takes at most MAX_QUEUES queues per client, three per CPU.
    let max = cpus.min(protocol::MAX_QUEUES / 3);
    let nq = match nq {
        -1 => {
            if cpus > max {
                pr_info!(
                    "serving {} of {} CPUs: a client has at most {} queues\n",
                    max,
                    cpus,
                    protocol::MAX_QUEUES
                );
            }
            max
        }
        n if n > 0 && n as u32 <= max => n as u32,
        n => {
            pr_err!(
                "invalid nq={}: expected 1 to {} (the online CPUs, at most {})\n",
                n,
                max,
                protocol::MAX_QUEUES / 3
            );
            return Err(EINVAL);
        }
    };
    // SAFETY: as above.
    let reconnect_timeout_s = match unsafe { fastswap_rdma_reconnect_timeout_s } {
        t @ 0..=MAX_RECONNECT_TIMEOUT_S => t as u32,
        t => {
            pr_err!(
                "invalid reconnect_timeout_s={}: expected 0 to {} seconds\n",
                t,
                MAX_RECONNECT_TIMEOUT_S
            );
            return Err(EINVAL);
        }
    };
    Ok(Params {
        server,
        client,
        nq,
        reconnect_timeout_s,
    })
}

struct RdmaBackend {
    ctrl: Pin<KBox<Ctrl>>,
}

impl Backend for RdmaBackend {
    const NAME: &'static CStr = kernel::c_str!("rdma");

    fn nr_slots(&self) -> u64 {
        self.ctrl.nr_slots()
    }

    fn store(&self, slot: u64, page: PageRef) -> Result {
        self.ctrl.store(slot, page)
    }

    fn load(&self, slot: u64, page: PageRef) -> Result {
        self.ctrl.load(slot, page)
    }

    fn load_async(
        &self,
        slot: u64,
        req: AsyncLoad,
    ) -> core::result::Result<(), (Error, AsyncLoad)> {
        self.ctrl.load_async(slot, req)
    }

    fn invalidate(&self, slot: u64) {
        self.ctrl.invalidate(slot);
    }

    fn stats(&self) -> Stats {
        let pages = self.ctrl.pages.load(Relaxed);
        let page_bytes = u64::from(verbs::PAGE_BYTES);
        let capacity = self.ctrl.nr_slots().saturating_mul(page_bytes);
        let counters = self
            .ctrl
            .counters
            .stats(pages, pages * page_bytes, capacity);
        // Any queue's failure takes the whole controller down (`mark_lost`),
        // so while live every queue is connected, and while reconnecting
        // or once lost none is.
        if self.ctrl.is_live() {
            Stats {
                queues: self.ctrl.queue_count().into(),
                ..counters
            }
        } else if self.ctrl.is_reconnecting() {
            Stats {
                state: State::Reconnecting,
                ..counters
            }
        } else {
            Stats {
                state: State::Lost,
                ..counters
            }
        }
    }

    fn write_server(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        write!(out, "{}", self.ctrl.server)
    }
}

impl Drop for RdmaBackend {
    fn drop(&mut self) {
        self.ctrl.shutdown();
    }
}

/// A negotiated read depth for the log: the number, or "unknown".
struct ReadDepth(Option<u8>);

impl core::fmt::Display for ReadDepth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(d) => write!(f, "{d}"),
            None => f.write_str("unknown"),
        }
    }
}

struct FastswapRdma {
    _reg: Registration<RdmaBackend>,
    // Dropped after `_reg` (field order), so after the controller's work.
    _wq: work::Workqueue,
}

impl kernel::Module for FastswapRdma {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let p = params()?;
        let wq = work::Workqueue::new()?;
        pr_info!(
            "connecting to {} from {} with {} queues\n",
            p.server,
            p.client,
            p.nq * 3
        );
        let ctrl = Ctrl::connect(p.server, p.client, p.nq, p.reconnect_timeout_s)?;
        let region = ctrl.region();
        pr_info!(
            "ctrl is ready for reqs: {} MiB of far memory at {} ({} queues, read depth {})\n",
            region.size >> 20,
            p.server,
            p.nq * 3,
            ReadDepth(ctrl.read_depth())
        );
        let reg = Registration::new(RdmaBackend { ctrl }, module)?;
        Ok(Self { _reg: reg, _wq: wq })
    }
}

impl Drop for FastswapRdma {
    fn drop(&mut self) {
        pr_info!("disconnected from the far memory server\n");
    }
}
