// SPDX-License-Identifier: GPL-2.0

//! A work item embedded in a longer-lived object, run on the module's own
//! reclaim-safe workqueue. All raw `bindings::` use for it is here.

use kernel::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// What runs when the [`Work`] embedded in `Self` is executed. `ID` tells
/// apart several work items embedded in one type.
///
/// # Safety
///
/// `OFFSET` must be the byte offset of a [`Work`] field inside `Self`
/// (`core::mem::offset_of!`), and a `Self` holding a queued or running
/// work item must stay alive until [`Work::cancel_sync`] returned.
pub(crate) unsafe trait WorkItem<const ID: u8 = 0>: Sync {
    const OFFSET: usize;
    fn run(&self);
}

/// A `work_struct`.
#[repr(transparent)]
#[pin_data]
pub(crate) struct Work {
    #[pin]
    raw: Opaque<bindings::work_struct>,
}

// SAFETY: the workqueue API may be called on one work item from any thread
// (queueing and cancelling synchronise on the item's atomic pending bit and
// the pool's lock); nothing else touches the `work_struct`.
unsafe impl Send for Work {}
// SAFETY: as above.
unsafe impl Sync for Work {}

extern "C" {
    /// `alloc_workqueue` of the module's workqueue, from helpers.c.
    fn fastswap_rdma_wq_create() -> kernel::ffi::c_int;
    /// `destroy_workqueue` of it, from helpers.c.
    fn fastswap_rdma_wq_destroy();
    /// `INIT_WORK`, from helpers.c.
    fn fastswap_rdma_init_work(work: *mut bindings::work_struct, func: bindings::work_func_t);
    /// `queue_work` on the module's workqueue, from helpers.c.
    fn fastswap_rdma_queue_work(work: *mut bindings::work_struct) -> bool;
}

/// The module's workqueue (`WQ_MEM_RECLAIM`), alive while this exists.
///
/// # Invariants
///
/// At most one exists at a time (the module creates it once in `init`), and
/// [`Work::queue`] is called only while it exists: it is dropped after
/// everything that owns a [`Work`].
pub(crate) struct Workqueue(());

impl Workqueue {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: called once, from module init.
        kernel::error::to_result(unsafe { fastswap_rdma_wq_create() })?;
        Ok(Self(()))
    }
}

impl Drop for Workqueue {
    fn drop(&mut self) {
        // SAFETY: created in `new`; every work item was cancelled or ran
        // (type invariant), so nothing queues on it any more.
        unsafe { fastswap_rdma_wq_destroy() };
    }
}

impl Work {
    /// A work item that calls `T::run` (of `WorkItem<ID>`) on the `T` it is
    /// embedded in.
    pub(crate) fn new<T: WorkItem<ID>, const ID: u8>() -> impl PinInit<Self> {
        pin_init!(Self {
            raw <- Opaque::ffi_init(|p| {
                // SAFETY: `p` is the work item's final, pinned location.
                unsafe { fastswap_rdma_init_work(p, Some(run_callback::<T, ID>)) }
            }),
        })
    }

    /// Queues the work unless it is already pending.
    pub(crate) fn queue(&self) {
        // SAFETY: initialised in `new`; the owner keeps it alive until
        // `cancel_sync` (trait contract).
        unsafe { fastswap_rdma_queue_work(self.raw.get()) };
    }

    /// Cancels the work if it is pending and waits for it if it is running.
    pub(crate) fn cancel_sync(&self) {
        // SAFETY: initialised in `new`; may sleep, called from process context.
        unsafe { bindings::cancel_work_sync(self.raw.get()) };
    }
}

unsafe extern "C" fn run_callback<T: WorkItem<ID>, const ID: u8>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `Work` (repr(transparent) over its
    // work_struct) at `T::OFFSET` inside a live `T` (trait contract).
    let owner = unsafe {
        &*(work
            .cast::<u8>()
            .sub(<T as WorkItem<ID>>::OFFSET)
            .cast::<T>())
    };
    <T as WorkItem<ID>>::run(owner);
}
