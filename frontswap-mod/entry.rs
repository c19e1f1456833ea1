// SPDX-License-Identifier: GPL-2.0

//! fastswap.ko: hands swapped-out pages to a Fastswap backend.
//!
//! Load a backend first (fastswap_rdma.ko or fastswap_dram.ko); this module
//! binds to it, registers with frontswap, and maps each swap slot to a
//! backend slot. A store the backend refuses goes to the swap device.

use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::ffi::c_int;
use kernel::prelude::*;

mod backend_ref;
mod frontswap_ops;
mod slots;

use backend_ref::{BackendRef, SwapPage};
use slots::SlotMap;

module! {
    type: Fastswap,
    name: "fastswap",
    author: "Fastswap developers",
    description: "Far memory swap through a frontswap backend",
    license: "GPL",
}

struct Swapper {
    backend: BackendRef,
    slots: SlotMap,
}

impl frontswap_ops::Handler for Swapper {
    fn init(&self, area: usize, pages: u64) {
        let got = self.slots.assign(area, pages, self.backend.nr_slots());
        if got < pages {
            pr_warn!(
                "swap area {}: backend has room for {} of {} pages; the rest go to the swap device\n",
                area, got, pages
            );
        }
    }

    fn store(&self, area: usize, offset: u64, page: SwapPage) -> Result {
        self.backend.store(self.slots.slot(area, offset)?, page)
    }

    fn load(&self, area: usize, offset: u64, page: SwapPage) -> Result {
        self.backend.load(self.slots.slot(area, offset)?, page)
    }

    fn load_async(&self, area: usize, offset: u64, page: SwapPage) -> Result {
        self.backend
            .load_async(self.slots.slot(area, offset)?, page)
    }

    fn poll_load(&self, cpu: c_int) {
        self.backend.poll_load(cpu);
    }

    fn invalidate_page(&self, area: usize, offset: u64) {
        if let Ok(slot) = self.slots.slot(area, offset) {
            self.backend.invalidate(slot);
        }
    }

    fn invalidate_area(&self, area: usize) {
        self.slots.release(area);
    }
}

extern "C" {
    /// Sleeps for the `test_unload_delay_ms` parameter (params.c); 0 by default.
    fn fastswap_test_unload_delay();
}

/// The handler must be `'static` for frontswap; it is leaked in `init` and
/// reclaimed in `drop` after unregistering.
static SWAPPER: AtomicPtr<Swapper> = AtomicPtr::new(core::ptr::null_mut());

struct Fastswap {
    registration: Option<frontswap_ops::Registration>,
}

impl kernel::Module for Fastswap {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let Some(backend) = BackendRef::get() else {
            pr_err!("no backend registered: load fastswap_rdma.ko or fastswap_dram.ko first\n");
            return Err(ENODEV);
        };
        pr_info!("using backend {}\n", backend.name());
        let swapper = KBox::into_raw(KBox::new(
            Swapper {
                backend,
                slots: SlotMap::new(),
            },
            GFP_KERNEL,
        )?);
        SWAPPER.store(swapper, Ordering::Release);
        // SAFETY: `swapper` was just leaked and is freed only in `drop` (or
        // below on failure), after frontswap stops calling it.
        let handler: &'static Swapper = unsafe { &*swapper };
        match frontswap_ops::Registration::new(handler, module) {
            Ok(registration) => {
                pr_info!("ready: swapped-out pages now go to the backend\n");
                Ok(Self {
                    registration: Some(registration),
                })
            }
            Err(e) => {
                pr_err!("cannot register with frontswap ({:?})\n", e);
                free_swapper();
                Err(e)
            }
        }
    }
}

fn free_swapper() {
    let p = SWAPPER.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: `p` came from `KBox::into_raw` in `init` and nothing uses
        // it any more; dropping it releases the backend.
        drop(unsafe { KBox::from_raw(p) });
    }
}

impl Drop for Fastswap {
    fn drop(&mut self) {
        // SAFETY: a plain C function of this module that may sleep; module
        // exit runs in process context.
        unsafe { fastswap_test_unload_delay() };
        // Unregister first: that waits for every callback in flight.
        self.registration.take();
        free_swapper();
        pr_info!("unloaded\n");
    }
}
