// SPDX-License-Identifier: GPL-2.0

//! fastswap_dram.ko: a Fastswap backend that keeps pages in local memory.
//!
//! Memory is allocated one page per stored page and freed on invalidate, up
//! to the `size` parameter. A full pool refuses stores, which sends the
//! pages to the swap device.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;

// Shared with the other backend; not every item is used here.
#[allow(dead_code)]
#[path = "../kmod-support/backend.rs"]
mod backend;
// Shared with the other backend; not every item is used here.
#[allow(dead_code)]
#[path = "../kmod-support/page.rs"]
mod page;
mod page_pool;
// Shared with the other backend; not every item is used here.
#[allow(dead_code)]
#[path = "../kmod-support/size.rs"]
mod size;

use backend::{AsyncLoad, Backend, Counters, Registration, Stats};
use page::{OwnedPage, PageRef};
use page_pool::PagePool;

module! {
    type: FastswapDram,
    name: "fastswap_dram",
    author: "Fastswap developers",
    description: "Fastswap backend keeping swapped-out pages in local DRAM",
    license: "GPL",
}

extern "C" {
    /// The `size` module parameter, declared in params.c.
    static fastswap_dram_size: *const kernel::ffi::c_char;
}

/// XArray overhead per page, roughly: one 576-byte node per 64 slots.
const NODE_BYTES_PER_PAGE: u64 = 9;

struct DramBackend {
    pool: PagePool,
    capacity: u64,
    held: AtomicU64,
    counters: Counters,
}

impl DramBackend {
    /// Reserves room for one more page, or fails if the pool is full.
    fn reserve(&self) -> Result {
        self.held
            .fetch_update(Relaxed, Relaxed, |n| (n < self.capacity).then_some(n + 1))
            .map(|_| ())
            .map_err(|_| ENOSPC)
    }

    fn try_store(&self, slot: u64, page: PageRef) -> Result {
        self.reserve()?;
        let Some(copy) = OwnedPage::alloc_for_reclaim() else {
            self.held.fetch_sub(1, Relaxed);
            return Err(ENOMEM);
        };
        copy.page().copy_from(page);
        match self.pool.insert(slot, copy) {
            Ok(Some(_replaced)) => {
                self.held.fetch_sub(1, Relaxed);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                self.held.fetch_sub(1, Relaxed);
                Err(e)
            }
        }
    }
}

impl Backend for DramBackend {
    const NAME: &'static CStr = kernel::c_str!("dram");

    fn nr_slots(&self) -> u64 {
        // Any slot may be used: the pool is sparse and bounded by `capacity`.
        u64::MAX / PAGE_SIZE as u64
    }

    fn store(&self, slot: u64, page: PageRef) -> Result {
        let r = self.try_store(slot, page);
        self.counters.store(r.is_ok());
        r
    }

    fn load(&self, slot: u64, page: PageRef) -> Result {
        let r = self
            .pool
            .with(slot, |copy| page.copy_from(copy.page()))
            .ok_or(ENOENT);
        self.counters.load(r.is_ok());
        r
    }

    fn load_async(
        &self,
        slot: u64,
        req: AsyncLoad,
    ) -> core::result::Result<(), (Error, AsyncLoad)> {
        // A memory copy is as fast as queueing one: complete it right away.
        let r = self.load(slot, req.page());
        req.complete(r);
        Ok(())
    }

    fn invalidate(&self, slot: u64) {
        if self.pool.remove(slot).is_some() {
            self.held.fetch_sub(1, Relaxed);
            self.counters.invalidate();
        }
    }

    fn stats(&self) -> Stats {
        let pages = self.held.load(Relaxed);
        self.counters.stats(
            pages,
            pages.saturating_mul(PAGE_SIZE as u64 + NODE_BYTES_PER_PAGE),
            self.capacity.saturating_mul(PAGE_SIZE as u64),
        )
    }
}

struct FastswapDram {
    reg: Registration<DramBackend>,
}

/// Default capacity, as a share of RAM: zswap's default pool limit. The
/// pool holds pages taken out of memory, so a pool near the size of RAM
/// would free nothing under global pressure.
const DEFAULT_PERCENT_OF_RAM: u64 = 20;

/// The pool's capacity in pages, and whether it is the default.
fn capacity_param() -> Result<(u64, bool)> {
    // SAFETY: a 0444 charp parameter, set before init and never changed.
    let raw = unsafe { fastswap_dram_size };
    let text = size::param_str(raw).unwrap_or("");
    if text.is_empty() {
        let bytes = page::total_ram_bytes() / 100 * DEFAULT_PERCENT_OF_RAM;
        return Ok(((bytes / PAGE_SIZE as u64).max(1), true));
    }
    let bytes = size::parse_size(text).ok_or_else(|| {
        pr_err!(
            "invalid size=\"{}\": expected bytes with an optional K, M, G or T suffix\n",
            text
        );
        EINVAL
    })?;
    let pages = bytes / PAGE_SIZE as u64;
    if pages == 0 {
        pr_err!("invalid size=\"{}\": must hold at least one page\n", text);
        return Err(EINVAL);
    }
    Ok((pages, false))
}

impl kernel::Module for FastswapDram {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let (capacity, default) = capacity_param()?;
        let backend = DramBackend {
            pool: PagePool::new()?,
            capacity,
            held: AtomicU64::new(0),
            counters: Counters::default(),
        };
        let reg = Registration::new(backend, module)?;
        let mib = capacity * PAGE_SIZE as u64 >> 20;
        if default {
            pr_info!(
                "DRAM backend ready: capacity {} MiB (default: {}% of RAM; set size= to change), allocated on demand\n",
                mib,
                DEFAULT_PERCENT_OF_RAM
            );
        } else {
            pr_info!(
                "DRAM backend ready: capacity {} MiB, allocated on demand\n",
                mib
            );
        }
        Ok(Self { reg })
    }
}

impl Drop for FastswapDram {
    fn drop(&mut self) {
        let left = self.reg.data().pool.clear();
        pr_info!("DRAM backend unloaded ({} pages freed)\n", left);
    }
}
