// SPDX-License-Identifier: GPL-2.0

//! The backend fastswap.ko is bound to (`include/linux/fastswap_backend.h`).

use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::c_int;
use kernel::prelude::*;

/// A page handed over by the swap path; fastswap.ko only passes it on.
#[derive(Clone, Copy)]
pub(crate) struct SwapPage(pub(crate) *mut bindings::page);

/// A reference on the registered backend, which pins its module.
///
/// # Invariants
///
/// `self.0` came from `fastswap_backend_get()`, is non-null, and its
/// reference is dropped only in `drop`, so the table and its callbacks stay
/// valid while `self` lives.
pub(crate) struct BackendRef(*mut bindings::fastswap_backend);

// SAFETY: backend callbacks may be called from any CPU and context the
// header allows; the table is read-only after registration.
unsafe impl Sync for BackendRef {}
// SAFETY: as above.
unsafe impl Send for BackendRef {}

impl BackendRef {
    /// The registered backend, or `None` if no backend module is loaded.
    pub(crate) fn get() -> Option<Self> {
        // SAFETY: no preconditions.
        let b = unsafe { bindings::fastswap_backend_get() };
        // INVARIANT: a non-null result carries a reference.
        (!b.is_null()).then_some(Self(b))
    }

    fn table(&self) -> &bindings::fastswap_backend {
        // SAFETY: valid while we hold the reference (type invariant).
        unsafe { &*self.0 }
    }

    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: the registry requires a NUL-terminated name that lives as
        // long as the backend.
        unsafe { CStr::from_char_ptr(self.table().name) }
    }

    pub(crate) fn nr_slots(&self) -> u64 {
        self.table().nr_slots
    }

    pub(crate) fn store(&self, slot: u64, page: SwapPage) -> Result {
        let t = self.table();
        let f = t.store.ok_or(EINVAL)?;
        // SAFETY: a registered callback with its own `priv`; the swap path
        // keeps `page` locked during the call.
        to_result(unsafe { f(t.priv_, slot, page.0) })
    }

    pub(crate) fn load(&self, slot: u64, page: SwapPage) -> Result {
        let t = self.table();
        let f = t.load.ok_or(EINVAL)?;
        // SAFETY: as in `store`.
        to_result(unsafe { f(t.priv_, slot, page.0) })
    }

    /// Starts an asynchronous load; `Err` means nothing was started.
    pub(crate) fn load_async(&self, slot: u64, page: SwapPage) -> Result {
        let t = self.table();
        let f = t.load_async.ok_or(ENOTSUPP)?;
        // SAFETY: as in `store`; the backend completes the page exactly once
        // if it returns 0.
        to_result(unsafe { f(t.priv_, slot, page.0) })
    }

    pub(crate) fn poll_load(&self, cpu: c_int) {
        let t = self.table();
        if let Some(f) = t.poll_load {
            // SAFETY: a registered callback with its own `priv`.
            unsafe { f(t.priv_, cpu) };
        }
    }

    pub(crate) fn invalidate(&self, slot: u64) {
        let t = self.table();
        if let Some(f) = t.invalidate {
            // SAFETY: a registered callback with its own `priv`; it does not
            // sleep, as frontswap's invalidate requires.
            unsafe { f(t.priv_, slot) };
        }
    }
}

impl Drop for BackendRef {
    fn drop(&mut self) {
        // SAFETY: we hold the reference taken in `get` (type invariant).
        unsafe { bindings::fastswap_backend_put(self.0) };
    }
}
