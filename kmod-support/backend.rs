// SPDX-License-Identifier: GPL-2.0

//! Registering a fastswap backend (`include/linux/fastswap_backend.h`).
//!
//! A backend implements [`Backend`]; [`Registration`] builds the C table,
//! registers it, and unregisters it on drop. The C callbacks below are the
//! only place that turns raw pointers into references.

use crate::page::PageRef;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::bindings;
use kernel::error::{from_result, to_result};
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::types::Opaque;

/// Whether a backend can take pages; `state` in /sys/kernel/mm/fastswap.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum State {
    /// Takes stores and serves loads.
    #[default]
    Active,
    /// The far memory is gone: stores are refused and go to the swap device.
    Lost,
    /// The connection is down and being remade: stores are refused, loads
    /// of pages held wait.
    #[allow(dead_code)] // only the RDMA backend reconnects
    Reconnecting,
}

impl State {
    fn to_c(self) -> bindings::fastswap_backend_state {
        match self {
            State::Active => bindings::fastswap_backend_state_FASTSWAP_BACKEND_ACTIVE,
            State::Lost => bindings::fastswap_backend_state_FASTSWAP_BACKEND_LOST,
            State::Reconnecting => bindings::fastswap_backend_state_FASTSWAP_BACKEND_RECONNECTING,
        }
    }
}

/// What a backend reports: its counters (/sys/kernel/debug/fastswap/backend),
/// its state and its connected queues (/sys/kernel/mm/fastswap).
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) stores: u64,
    pub(crate) loads: u64,
    pub(crate) failed_stores: u64,
    pub(crate) failed_loads: u64,
    pub(crate) invalidates: u64,
    pub(crate) pages: u64,
    pub(crate) bytes: u64,
    /// Bytes the backend can hold.
    pub(crate) capacity: u64,
    pub(crate) state: State,
    pub(crate) queues: u32,
}

/// The event counts every backend keeps; pages held are the backend's own.
#[derive(Default)]
pub(crate) struct Counters {
    stores: AtomicU64,
    loads: AtomicU64,
    failed_stores: AtomicU64,
    failed_loads: AtomicU64,
    invalidates: AtomicU64,
}

impl Counters {
    pub(crate) fn store(&self, ok: bool) {
        if ok {
            &self.stores
        } else {
            &self.failed_stores
        }
        .fetch_add(1, Relaxed);
    }

    pub(crate) fn load(&self, ok: bool) {
        if ok { &self.loads } else { &self.failed_loads }.fetch_add(1, Relaxed);
    }

    pub(crate) fn invalidate(&self) {
        self.invalidates.fetch_add(1, Relaxed);
    }

    pub(crate) fn stats(&self, pages: u64, bytes: u64, capacity: u64) -> Stats {
        Stats {
            stores: self.stores.load(Relaxed),
            loads: self.loads.load(Relaxed),
            failed_stores: self.failed_stores.load(Relaxed),
            failed_loads: self.failed_loads.load(Relaxed),
            invalidates: self.invalidates.load(Relaxed),
            pages,
            bytes,
            capacity,
            ..Stats::default()
        }
    }
}

/// An asynchronous load in flight: must be completed exactly once.
pub(crate) struct AsyncLoad(PageRef);

impl AsyncLoad {
    pub(crate) fn page(&self) -> PageRef {
        self.0
    }

    /// Gives up the request while its completion is owed elsewhere (a
    /// completion context that outlives the call).
    pub(crate) fn into_page(self) -> PageRef {
        self.0
    }

    /// Takes back a request given up with [`AsyncLoad::into_page`].
    ///
    /// # Safety
    ///
    /// `page` must come from `into_page` of a request not completed since,
    /// and be turned back into a request only once.
    pub(crate) unsafe fn from_page(page: PageRef) -> Self {
        Self(page)
    }

    /// Reports the result to the swap path, which unlocks the page.
    pub(crate) fn complete(self, result: Result) {
        let err = match result {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        // SAFETY: the page came from ->load_async and is still locked by the
        // swap path until this call, which happens once (self is consumed).
        unsafe { bindings::frontswap_async_load_complete(self.0.as_ptr(), err) };
    }
}

pub(crate) trait Backend: Send + Sync + Sized {
    const NAME: &'static CStr;
    fn nr_slots(&self) -> u64;
    fn store(&self, slot: u64, page: PageRef) -> Result;
    fn load(&self, slot: u64, page: PageRef) -> Result;
    /// Starts a load. On `Err` the request is dropped uncompleted and the
    /// swap path falls back to [`Backend::load`].
    fn load_async(&self, slot: u64, req: AsyncLoad)
        -> core::result::Result<(), (Error, AsyncLoad)>;
    fn poll_load(&self, _cpu: i32) {}
    fn invalidate(&self, slot: u64);
    fn stats(&self) -> Stats;
    /// Writes the far memory server's address (`addr:port`), if there is one.
    fn write_server(&self, _out: &mut dyn Write) -> core::fmt::Result {
        Ok(())
    }
}

/// A `fmt::Write` into a fixed C char array that always holds a C string:
/// NUL-terminated from creation on, and text beyond its size is cut off.
struct CharArrayWriter<'a> {
    buf: &'a mut [c_char],
    len: usize,
}

impl<'a> CharArrayWriter<'a> {
    fn new(buf: &'a mut [c_char]) -> Self {
        if let Some(first) = buf.first_mut() {
            *first = 0;
        }
        Self { buf, len: 0 }
    }
}

impl Write for CharArrayWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            // Keep the last byte for the NUL, which follows every write.
            if self.len + 1 >= self.buf.len() {
                return Err(core::fmt::Error);
            }
            self.buf[self.len] = b as c_char;
            self.len += 1;
            self.buf[self.len] = 0;
        }
        Ok(())
    }
}

/// A registered backend.
///
/// # Invariants
///
/// `table` is registered with the fastswap registry and its `priv` points to
/// `*data`, which lives at a fixed address until `drop` unregisters it.
pub(crate) struct Registration<T: Backend> {
    table: KBox<Opaque<bindings::fastswap_backend>>,
    data: KBox<T>,
}

// SAFETY: the C table is only read by the registry after registration, and
// `T` itself is `Send + Sync`.
unsafe impl<T: Backend> Send for Registration<T> {}
// SAFETY: as above; `&Registration` only exposes `&T`.
unsafe impl<T: Backend> Sync for Registration<T> {}

impl<T: Backend> Registration<T> {
    pub(crate) fn new(data: T, module: &'static ThisModule) -> Result<Self> {
        let data = KBox::new(data, GFP_KERNEL)?;
        let table = KBox::new(
            Opaque::new(bindings::fastswap_backend {
                name: T::NAME.as_char_ptr(),
                owner: module.as_ptr(),
                priv_: &*data as *const T as *mut c_void,
                nr_slots: data.nr_slots(),
                store: Some(store_callback::<T>),
                load: Some(load_callback::<T>),
                load_async: Some(load_async_callback::<T>),
                poll_load: Some(poll_load_callback::<T>),
                invalidate: Some(invalidate_callback::<T>),
                stats: Some(stats_callback::<T>),
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: `table` is fully initialised and boxed; it and `data` stay
        // at their addresses until `drop` unregisters the table.
        to_result(unsafe { bindings::fastswap_backend_register(table.get()) })?;
        Ok(Self { table, data })
    }

    pub(crate) fn data(&self) -> &T {
        &self.data
    }
}

impl<T: Backend> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new` (type invariant). The data path's
        // callbacks are done: our module cannot be unloaded while fastswap.ko
        // holds it. `stats` may be called from sysfs or debugfs without a
        // module reference, but only under the registry's mutex, which
        // unregistering takes: once this returns no callback runs, and only
        // then does `data` drop (fields drop after `drop`).
        unsafe { bindings::fastswap_backend_unregister(self.table.get()) };
    }
}

/// # Safety
///
/// `priv_` must be the `priv` of a live [`Registration<T>`].
unsafe fn backend<'a, T: Backend>(priv_: *mut c_void) -> &'a T {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(priv_ as *const T) }
}

unsafe extern "C" fn store_callback<T: Backend>(
    priv_: *mut c_void,
    slot: u64,
    page: *mut bindings::page,
) -> c_int {
    // SAFETY: the registry passes our `priv` and a page locked by the swap path.
    let (b, page) = unsafe { (backend::<T>(priv_), PageRef::from_raw(page)) };
    from_result(|| b.store(slot, page).map(|()| 0))
}

unsafe extern "C" fn load_callback<T: Backend>(
    priv_: *mut c_void,
    slot: u64,
    page: *mut bindings::page,
) -> c_int {
    // SAFETY: as in `store_callback`.
    let (b, page) = unsafe { (backend::<T>(priv_), PageRef::from_raw(page)) };
    from_result(|| b.load(slot, page).map(|()| 0))
}

unsafe extern "C" fn load_async_callback<T: Backend>(
    priv_: *mut c_void,
    slot: u64,
    page: *mut bindings::page,
) -> c_int {
    // SAFETY: as in `store_callback`; the page stays locked until completed.
    let (b, page) = unsafe { (backend::<T>(priv_), PageRef::from_raw(page)) };
    match b.load_async(slot, AsyncLoad(page)) {
        Ok(()) => 0,
        // Not started: the swap path reads it synchronously instead.
        Err((e, _req)) => e.to_errno(),
    }
}

unsafe extern "C" fn poll_load_callback<T: Backend>(priv_: *mut c_void, cpu: c_int) -> c_int {
    // SAFETY: the registry passes our `priv`.
    unsafe { backend::<T>(priv_) }.poll_load(cpu);
    0
}

unsafe extern "C" fn invalidate_callback<T: Backend>(priv_: *mut c_void, slot: u64) {
    // SAFETY: the registry passes our `priv`.
    unsafe { backend::<T>(priv_) }.invalidate(slot);
}

unsafe extern "C" fn stats_callback<T: Backend>(
    priv_: *mut c_void,
    out: *mut bindings::fastswap_backend_stats,
) {
    // SAFETY: the registry passes our `priv`, alive until `Registration::drop`
    // unregisters, which waits for this call (the registry's mutex).
    let backend = unsafe { backend::<T>(priv_) };
    // SAFETY: `out` points to a stats struct owned by the caller, not shared
    // while this callback runs.
    let out = unsafe { &mut *out };
    let s = backend.stats();
    *out = bindings::fastswap_backend_stats {
        stores: s.stores,
        loads: s.loads,
        failed_stores: s.failed_stores,
        failed_loads: s.failed_loads,
        invalidates: s.invalidates,
        pages: s.pages,
        bytes: s.bytes,
        capacity: s.capacity,
        state: s.state.to_c(),
        queues: s.queues,
        server: [0; bindings::FASTSWAP_SERVER_LEN as usize],
    };
    let mut w = CharArrayWriter::new(&mut out.server);
    // A server address too long for the field is shown cut short.
    let _ = backend.write_server(&mut w);
}
