// SPDX-License-Identifier: GPL-2.0

//! The connection to one far memory server: three queues per CPU, the
//! shared protection domain, the remote region, and whether it still works.

use crate::backend::{AsyncLoad, Counters};
use crate::errno;
use crate::once_slot::OnceSlot;
use crate::page::PageRef;
use crate::protocol::Region;
use crate::queue::{Queue, Role, CONNECT_TIMEOUT_MS, ROLES};
use crate::verbs::{self, Endpoint, Pd, PAGE_BYTES};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use kernel::prelude::*;

pub(crate) struct Ctrl {
    pub(crate) server: Endpoint,
    pub(crate) client: Endpoint,
    pub(crate) client_id: u64,
    nq: u32,
    queues: KVec<Pin<KBox<Queue>>>,
    pub(crate) pd: OnceSlot<Pd>,
    region: OnceSlot<Region>,
    /// One bit per remote slot that holds a page, for the statistics.
    held: OnceSlot<KVVec<AtomicU64>>,
    dead: AtomicBool,
    pub(crate) counters: Counters,
    /// Slots set in `held`.
    pub(crate) pages: AtomicU64,
}

impl Ctrl {
    /// Connects `nq * 3` queues to `server`, one after another; any failure
    /// tears down what was connected. Bounded by the per-queue timeout.
    pub(crate) fn connect(server: Endpoint, client: Endpoint, nq: u32) -> Result<KBox<Self>> {
        let mut ctrl = KBox::new(
            Ctrl {
                server,
                client,
                client_id: verbs::random_u64(),
                nq,
                queues: KVec::new(),
                pd: OnceSlot::new(),
                region: OnceSlot::new(),
                held: OnceSlot::new(),
                dead: AtomicBool::new(false),
                counters: Counters::default(),
                pages: AtomicU64::new(0),
            },
            GFP_KERNEL,
        )?;
        let me = &*ctrl as *const Ctrl;
        for i in 0..nq * 3 {
            let q = KBox::pin_init(Queue::new(i as u16, ROLES[(i % 3) as usize], me), GFP_KERNEL)?;
            ctrl.queues.push(q, GFP_KERNEL)?;
        }
        // From here on the queues (and CM handlers) share `ctrl`: only `&`.
        let result = ctrl.queues.iter().try_for_each(|q| {
            q.as_ref().connect().inspect_err(|e| {
                if *e == errno::timed_out() {
                    pr_err!(
                        "connecting queue {} to {} timed out after {} ms: is the server reachable?\n",
                        q.index,
                        server,
                        CONNECT_TIMEOUT_MS
                    );
                }
            })
        });
        let result = result.and_then(|()| ctrl.alloc_held());
        if let Err(e) = result {
            ctrl.shutdown();
            return Err(e);
        }
        Ok(ctrl)
    }

    fn alloc_held(&self) -> Result {
        let words = self.nr_slots().div_ceil(64) as usize;
        let mut v = KVVec::with_capacity(words, GFP_KERNEL)?;
        for _ in 0..words {
            v.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        self.held.set(v).map_err(|_| EBUSY)
    }

    pub(crate) fn queue_count(&self) -> u16 {
        (self.nq * 3) as u16
    }

    /// Records the region from a queue's accept; every queue must get the same.
    pub(crate) fn learn_region(&self, r: Region) -> Result {
        if r.size < u64::from(PAGE_BYTES) {
            pr_err!("server {} offered an empty region\n", self.server);
            return Err(errno::protocol());
        }
        if let Err(r) = self.region.set(r) {
            let first = self.region.get().copied().unwrap_or_default();
            if (first.addr, first.rkey, first.size) != (r.addr, r.rkey, r.size) {
                pr_err!("server {} gave this client two different regions\n", self.server);
                return Err(errno::protocol());
            }
        }
        Ok(())
    }

    pub(crate) fn region(&self) -> Region {
        self.region.get().copied().unwrap_or_default()
    }

    pub(crate) fn rkey(&self) -> u32 {
        self.region().rkey
    }

    pub(crate) fn nr_slots(&self) -> u64 {
        self.region().size / u64::from(PAGE_BYTES)
    }

    /// After the first failure every operation fails fast: stores go to the
    /// swap device, and pages held remotely read as errors (SIGBUS).
    pub(crate) fn mark_dead(&self, why: &str) {
        if !self.dead.swap(true, Relaxed) {
            pr_err!(
                "far memory server {}: {}; new swap-outs go to the swap device, pages held there are lost\n",
                self.server,
                why
            );
        }
    }

    fn queue(&self, role: Role) -> Result<&Queue> {
        if self.dead.load(Relaxed) {
            return Err(EIO);
        }
        // Migrating after reading the CPU is harmless: queues serialise
        // their own use.
        let cpu = verbs::this_cpu();
        let index = (cpu % self.nq) * 3 + role as u32;
        self.queues.get(index as usize).map(|q| &**q).ok_or(EINVAL)
    }

    fn remote_addr(&self, slot: u64) -> Result<u64> {
        if slot >= self.nr_slots() {
            return Err(ENOSPC);
        }
        Ok(self.region().addr + slot * u64::from(PAGE_BYTES))
    }

    fn set_held(&self, slot: u64, held: bool) -> bool {
        let Some(bits) = self.held.get() else { return false };
        let Some(w) = bits.get((slot / 64) as usize) else { return false };
        let bit = 1u64 << (slot % 64);
        let old = if held { w.fetch_or(bit, Relaxed) } else { w.fetch_and(!bit, Relaxed) };
        (old & bit != 0) != held
    }

    pub(crate) fn store(&self, slot: u64, page: PageRef) -> Result {
        let r = self.remote_addr(slot).and_then(|a| self.queue(Role::Write)?.transfer_sync(a, page, true));
        if r.is_ok() && self.set_held(slot, true) {
            self.pages.fetch_add(1, Relaxed);
        }
        self.counters.store(r.is_ok());
        r
    }

    pub(crate) fn load(&self, slot: u64, page: PageRef) -> Result {
        let r = self.remote_addr(slot).and_then(|a| self.queue(Role::SyncRead)?.transfer_sync(a, page, false));
        self.count_load(r.is_ok());
        r
    }

    pub(crate) fn load_async(&self, slot: u64, req: AsyncLoad) -> core::result::Result<(), (Error, AsyncLoad)> {
        let addr = match self.remote_addr(slot) {
            Ok(a) => a,
            Err(e) => return Err((e, req)),
        };
        match self.queue(Role::AsyncRead) {
            Ok(q) => q.read_async(addr, req),
            Err(e) => Err((e, req)),
        }
    }

    pub(crate) fn count_load(&self, ok: bool) {
        self.counters.load(ok);
    }

    pub(crate) fn invalidate(&self, slot: u64) {
        // Nothing to do remotely: the slot is simply overwritten later.
        if self.set_held(slot, false) {
            self.pages.fetch_sub(1, Relaxed);
        }
        self.counters.invalidate();
    }

    /// Disconnects every queue and frees the RDMA resources.
    pub(crate) fn shutdown(&self) {
        for q in self.queues.iter() {
            q.disconnect();
        }
        for q in self.queues.iter() {
            // SAFETY: called at connect failure or module exit, when no
            // swap operation can reach this controller.
            unsafe { q.destroy() };
        }
        // SAFETY: every queue's QP is gone; no `get` of the PD is live.
        if let Some(pd) = unsafe { self.pd.take() } {
            pd.free();
        }
    }
}
