// SPDX-License-Identifier: GPL-2.0

//! Pages held by the DRAM backend, indexed by slot in an XArray, so memory
//! is used only for pages actually stored.

use crate::page::OwnedPage;
use kernel::bindings;
use kernel::ffi::{c_ulong, c_void};
use kernel::prelude::*;
use kernel::types::Opaque;

/// # Invariants
///
/// `xa` is an initialised XArray, boxed so it never moves, whose entries are
/// pages from [`OwnedPage::into_raw`] owned by this pool.
pub(crate) struct PagePool {
    xa: KBox<Opaque<bindings::xarray>>,
}

// SAFETY: the XArray does its own locking; entries are only touched through
// it, and each slot is used by one swap operation at a time.
unsafe impl Sync for PagePool {}
// SAFETY: as above; nothing is tied to the creating thread.
unsafe impl Send for PagePool {}

impl PagePool {
    pub(crate) fn new() -> Result<Self> {
        let xa = KBox::new(Opaque::uninit(), GFP_KERNEL)?;
        // SAFETY: `xa` is boxed, so it is initialised at its final address.
        unsafe { bindings::xa_init_flags(xa.get(), 0) };
        Ok(Self { xa })
    }

    /// Puts `page` at `slot`, returning the page it replaces.
    pub(crate) fn insert(&self, slot: u64, page: OwnedPage) -> Result<Option<OwnedPage>> {
        let raw = page.into_raw();
        // Stores run in reclaim (PF_MEMALLOC): without __GFP_NOMEMALLOC the
        // XArray's node allocations would come from the emergency reserves.
        let gfp = bindings::GFP_NOIO | bindings::__GFP_NOWARN | bindings::__GFP_NOMEMALLOC;
        // SAFETY: `xa` is initialised (type invariant); `raw` is a page
        // pointer, which is aligned and so a valid XArray entry.
        let old =
            unsafe { bindings::xa_store(self.xa.get(), slot as c_ulong, raw as *mut c_void, gfp) };
        // SAFETY: `xa_is_err` only inspects the entry's bits.
        if unsafe { bindings::xa_is_err(old) } {
            // SAFETY: the store failed, so `raw` is still ours.
            drop(unsafe { OwnedPage::from_raw(raw) });
            // SAFETY: `old` is an error entry.
            return Err(Error::from_errno(unsafe { bindings::xa_err(old) }));
        }
        // SAFETY: a non-null entry is a page we stored earlier and now own again.
        Ok((!old.is_null()).then(|| unsafe { OwnedPage::from_raw(old as *mut bindings::page) }))
    }

    /// Runs `f` on the page at `slot`, if any.
    pub(crate) fn with<R>(&self, slot: u64, f: impl FnOnce(&OwnedPage) -> R) -> Option<R> {
        // SAFETY: `xa` is initialised (type invariant).
        let entry = unsafe { bindings::xa_load(self.xa.get(), slot as c_ulong) };
        if entry.is_null() {
            return None;
        }
        // SAFETY: the entry is one of our pages. The swap path does not
        // invalidate a slot while loading it, so it stays alive during `f`;
        // ManuallyDrop keeps ownership with the pool.
        let page = core::mem::ManuallyDrop::new(unsafe {
            OwnedPage::from_raw(entry as *mut bindings::page)
        });
        Some(f(&page))
    }

    /// Removes and returns the page at `slot`.
    pub(crate) fn remove(&self, slot: u64) -> Option<OwnedPage> {
        // SAFETY: `xa` is initialised (type invariant).
        let entry = unsafe { bindings::xa_erase(self.xa.get(), slot as c_ulong) };
        // SAFETY: a non-null entry is a page we stored and now own again.
        (!entry.is_null()).then(|| unsafe { OwnedPage::from_raw(entry as *mut bindings::page) })
    }

    /// Removes every page, returning how many there were.
    pub(crate) fn clear(&self) -> u64 {
        let mut n = 0;
        let mut index: c_ulong = 0;
        loop {
            // SAFETY: `xa` is initialised; `index` is a valid cursor.
            let entry = unsafe {
                bindings::xa_find(
                    self.xa.get(),
                    &mut index,
                    c_ulong::MAX,
                    bindings::XA_PRESENT,
                )
            };
            if entry.is_null() {
                return n;
            }
            if self.remove(index as u64).is_some() {
                n += 1;
            }
        }
    }
}

impl Drop for PagePool {
    fn drop(&mut self) {
        self.clear();
        // SAFETY: empty now; frees the XArray's internal nodes.
        unsafe { bindings::xa_destroy(self.xa.get()) };
    }
}
