// SPDX-License-Identifier: GPL-2.0

//! A borrowed `struct page` handed to us by the swap path.

use kernel::bindings;
use kernel::page::PAGE_SIZE;

/// A page that the caller keeps alive (and locked) for the duration of a
/// callback. We only copy its contents.
///
/// # Invariants
///
/// `self.0` points to a valid `struct page` for the lifetime of the value.
#[derive(Clone, Copy)]
pub(crate) struct PageRef(*mut bindings::page);

impl PageRef {
    /// # Safety
    ///
    /// `page` must point to a valid `struct page` that stays valid while the
    /// returned value is used.
    pub(crate) unsafe fn from_raw(page: *mut bindings::page) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self(page)
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::page {
        self.0
    }

    /// Copies the whole of `src` into `self`.
    pub(crate) fn copy_from(self, src: PageRef) {
        // SAFETY: both pages are valid by the type invariant. kmap_local
        // mappings are unmapped in reverse order before returning, and the
        // two pages are distinct (one is ours, one the swap path's), so the
        // PAGE_SIZE copy does not overlap.
        unsafe {
            let s = bindings::kmap_local_page(src.0);
            let d = bindings::kmap_local_page(self.0);
            core::ptr::copy_nonoverlapping(s as *const u8, d as *mut u8, PAGE_SIZE);
            bindings::kunmap_local(d);
            bindings::kunmap_local(s);
        }
    }
}

/// Bytes of RAM the kernel manages (what `MemTotal` shows).
pub(crate) fn total_ram_bytes() -> u64 {
    // SAFETY: reads a counter; no preconditions.
    let pages = unsafe { bindings::totalram_pages() };
    pages as u64 * PAGE_SIZE as u64
}

/// A page we allocated and must free.
///
/// # Invariants
///
/// `self.0` is an order-0 page obtained from `alloc_pages` and owned by us.
pub(crate) struct OwnedPage(PageRef);

impl OwnedPage {
    /// Allocates a page from inside reclaim: no deep reclaim of its own, and
    /// never from the emergency reserves (stores run under PF_MEMALLOC, and a
    /// page taken from the reserves to hold a swapped-out page frees
    /// nothing). A failure only sends the page to the swap device.
    pub(crate) fn alloc_for_reclaim() -> Option<Self> {
        let gfp = bindings::GFP_NOIO
            | bindings::__GFP_NORETRY
            | bindings::__GFP_NOWARN
            | bindings::__GFP_NOMEMALLOC;
        // SAFETY: plain order-0 allocation.
        let page = unsafe { bindings::alloc_pages(gfp, 0) };
        if page.is_null() {
            None
        } else {
            // INVARIANT: freshly allocated order-0 page.
            Some(Self(PageRef(page)))
        }
    }

    pub(crate) fn page(&self) -> PageRef {
        self.0
    }

    /// Gives up ownership, for storing the pointer in a C container.
    pub(crate) fn into_raw(self) -> *mut bindings::page {
        let p = self.0 .0;
        core::mem::forget(self);
        p
    }

    /// # Safety
    ///
    /// `page` must come from [`OwnedPage::into_raw`] and not be used again.
    pub(crate) unsafe fn from_raw(page: *mut bindings::page) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self(PageRef(page))
    }
}

impl Drop for OwnedPage {
    fn drop(&mut self) {
        // SAFETY: we own this order-0 page (type invariant).
        unsafe { bindings::__free_pages(self.0 .0, 0) };
    }
}
