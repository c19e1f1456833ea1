// SPDX-License-Identifier: GPL-2.0

//! A value written once by one context and read by others afterwards.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const SET: u8 = 2;

pub(crate) struct OnceSlot<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is written once, before `state` becomes SET with
// Release ordering, and only read after an Acquire load sees SET.
unsafe impl<T: Send + Sync> Sync for OnceSlot<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for OnceSlot<T> {}

impl<T> OnceSlot<T> {
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
        }
    }

    /// Stores `v`, or hands it back if a value is already there.
    pub(crate) fn set(&self, v: T) -> core::result::Result<(), T> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(v);
        }
        // SAFETY: the WRITING state gives us exclusive access.
        unsafe { *self.value.get() = Some(v) };
        self.state.store(SET, Ordering::Release);
        Ok(())
    }

    pub(crate) fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != SET {
            return None;
        }
        // SAFETY: SET means the value is written and never changed until `take`.
        unsafe { (*self.value.get()).as_ref() }
    }

    /// Removes the value.
    ///
    /// # Safety
    ///
    /// No reference from `get` may be alive, and no `get` may run
    /// concurrently.
    pub(crate) unsafe fn take(&self) -> Option<T> {
        if self.state.swap(EMPTY, Ordering::Acquire) != SET {
            return None;
        }
        // SAFETY: exclusive by the caller's guarantee.
        unsafe { (*self.value.get()).take() }
    }
}
