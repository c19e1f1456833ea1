// SPDX-License-Identifier: GPL-2.0

//! Registering with frontswap (`include/linux/frontswap.h`).
//!
//! Frontswap allows one owner and its callbacks carry no context pointer, so
//! the callbacks reach the handler through a static set while registered.

use crate::backend_ref::SwapPage;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::bindings;
use kernel::error::{from_result, to_result};
use kernel::ffi::{c_int, c_uint, c_ulong};
use kernel::prelude::*;
use kernel::types::Opaque;

/// What fastswap.ko does with each frontswap call.
pub(crate) trait Handler: Sync {
    fn init(&self, area: usize, pages: u64);
    fn store(&self, area: usize, offset: u64, page: SwapPage) -> Result;
    fn load(&self, area: usize, offset: u64, page: SwapPage) -> Result;
    fn load_async(&self, area: usize, offset: u64, page: SwapPage) -> Result;
    fn poll_load(&self, cpu: c_int);
    fn invalidate_page(&self, area: usize, offset: u64);
    fn invalidate_area(&self, area: usize);
}

struct HandlerPtr(&'static dyn Handler);

/// The registered handler; non-null exactly while registered.
static HANDLER: AtomicPtr<HandlerPtr> = AtomicPtr::new(core::ptr::null_mut());

fn handler() -> &'static dyn Handler {
    // SAFETY: frontswap calls us only between register and unregister, while
    // HANDLER points to the live box set in `Registration::new`.
    unsafe { (*HANDLER.load(Ordering::Acquire)).0 }
}

/// # Invariants
///
/// `ops` is registered with frontswap and `HANDLER` points to `_handler`
/// until `drop`.
pub(crate) struct Registration {
    ops: KBox<Opaque<bindings::frontswap_ops>>,
    _handler: KBox<HandlerPtr>,
}

// SAFETY: the ops table is only read by frontswap after registration; the
// handler it reaches is `Sync`.
unsafe impl Send for Registration {}
// SAFETY: as above; `&Registration` exposes nothing.
unsafe impl Sync for Registration {}

impl Registration {
    pub(crate) fn new(handler: &'static dyn Handler, module: &'static ThisModule) -> Result<Self> {
        let mut h = KBox::new(HandlerPtr(handler), GFP_KERNEL)?;
        let ops = KBox::new(
            Opaque::new(bindings::frontswap_ops {
                init: Some(init_callback),
                store: Some(store_callback),
                load: Some(load_callback),
                load_async: Some(load_async_callback),
                poll_load: Some(poll_load_callback),
                invalidate_page: Some(invalidate_page_callback),
                invalidate_area: Some(invalidate_area_callback),
                owner: module.as_ptr(),
            }),
            GFP_KERNEL,
        )?;
        if HANDLER
            .compare_exchange(
                core::ptr::null_mut(),
                &mut *h,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return Err(EBUSY);
        }
        // SAFETY: `ops` is boxed and stays alive until `drop` unregisters it.
        if let Err(e) = to_result(unsafe { bindings::frontswap_register_ops(ops.get()) }) {
            HANDLER.store(core::ptr::null_mut(), Ordering::Release);
            return Err(e);
        }
        Ok(Self { ops, _handler: h })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; unregistering waits for callbacks in
        // flight, after which none can start.
        unsafe { bindings::frontswap_unregister_ops(self.ops.get()) };
        HANDLER.store(core::ptr::null_mut(), Ordering::Release);
    }
}

unsafe extern "C" fn init_callback(area: c_uint, pages: c_ulong) {
    handler().init(area as usize, pages as u64);
}

unsafe extern "C" fn store_callback(
    area: c_uint,
    offset: c_ulong,
    page: *mut bindings::page,
) -> c_int {
    from_result(|| {
        handler()
            .store(area as usize, offset as u64, SwapPage(page))
            .map(|()| 0)
    })
}

unsafe extern "C" fn load_callback(
    area: c_uint,
    offset: c_ulong,
    page: *mut bindings::page,
) -> c_int {
    from_result(|| {
        handler()
            .load(area as usize, offset as u64, SwapPage(page))
            .map(|()| 0)
    })
}

unsafe extern "C" fn load_async_callback(
    area: c_uint,
    offset: c_ulong,
    page: *mut bindings::page,
) -> c_int {
    from_result(|| {
        handler()
            .load_async(area as usize, offset as u64, SwapPage(page))
            .map(|()| 0)
    })
}

unsafe extern "C" fn poll_load_callback(cpu: c_int) -> c_int {
    handler().poll_load(cpu);
    0
}

unsafe extern "C" fn invalidate_page_callback(area: c_uint, offset: c_ulong) {
    handler().invalidate_page(area as usize, offset as u64);
}

unsafe extern "C" fn invalidate_area_callback(area: c_uint) {
    handler().invalidate_area(area as usize);
}
