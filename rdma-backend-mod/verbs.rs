// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers over the kernel's RDMA verbs and CM (ib_core, rdma_cm).
//! All raw `bindings::` use of the backend is here.

use crate::errno;
use crate::page::PageRef;
use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::types::Opaque;

pub(crate) const PAGE_BYTES: u32 = 4096;

/// An IPv4 address and port in the kernel's `sockaddr_in` layout.
#[derive(Clone, Copy)]
pub(crate) struct Endpoint {
    pub(crate) addr: [u8; 4],
    pub(crate) port: u16,
}

impl Endpoint {
    /// Parses dotted-quad `text` with the kernel's own parser.
    pub(crate) fn parse(text: &str, port: u16) -> Option<Self> {
        let mut addr = [0u8; 4];
        let mut end: *const kernel::ffi::c_char = core::ptr::null();
        // SAFETY: `text` is valid for its length; `addr` has room for 4 bytes.
        let ok = unsafe {
            bindings::in4_pton(
                text.as_ptr().cast(),
                text.len() as c_int,
                addr.as_mut_ptr(),
                -1,
                &mut end,
            )
        };
        (ok == 1).then_some(Self { addr, port })
    }

    fn sockaddr(&self) -> bindings::sockaddr_in {
        // SAFETY: all-zero is a valid sockaddr_in.
        let mut s: bindings::sockaddr_in = unsafe { core::mem::zeroed() };
        s.sin_family = bindings::AF_INET as _;
        s.sin_port = self.port.to_be();
        s.sin_addr.s_addr = u32::from_ne_bytes(self.addr);
        s
    }
}

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d] = self.addr;
        write!(f, "{a}.{b}.{c}.{d}:{}", self.port)
    }
}

pub(crate) type CmHandler =
    unsafe extern "C" fn(*mut bindings::rdma_cm_id, *mut bindings::rdma_cm_event) -> c_int;

/// An RDMA CM id for one queue.
///
/// # Invariants
///
/// `self.0` is a live id created by `__rdma_create_kernel_id`, destroyed
/// only in `destroy` (which consumes it).
pub(crate) struct CmId(*mut bindings::rdma_cm_id);

// SAFETY: CM calls on an id may come from any thread; the CM serialises
// them with its own locking.
unsafe impl Send for CmId {}
// SAFETY: as above.
unsafe impl Sync for CmId {}

impl CmId {
    /// Creates an RC id in the initial network namespace whose events go to
    /// `handler` with `context`.
    pub(crate) fn new(handler: CmHandler, context: *const c_void) -> Result<Self> {
        // SAFETY: `init_net` is the static initial namespace; the caller
        // keeps `context` alive until the id is destroyed.
        let id = unsafe {
            bindings::__rdma_create_kernel_id(
                core::ptr::addr_of_mut!(bindings::init_net),
                Some(handler),
                context as *mut c_void,
                bindings::rdma_ucm_port_space_RDMA_PS_TCP,
                bindings::ib_qp_type_IB_QPT_RC,
                c"fastswap_rdma".as_ptr().cast(),
            )
        };
        Ok(Self(from_err_ptr(id)?))
    }

    pub(crate) fn resolve_addr(&self, src: Endpoint, dst: Endpoint, timeout_ms: u32) -> Result {
        let mut s = src.sockaddr();
        let mut d = dst.sockaddr();
        // SAFETY: live id (invariant); the addresses are copied by the call.
        to_result(unsafe {
            bindings::rdma_resolve_addr(
                self.0,
                (&mut s as *mut bindings::sockaddr_in).cast(),
                (&mut d as *mut bindings::sockaddr_in).cast(),
                timeout_ms as _,
            )
        })
    }

    pub(crate) fn disconnect(&self) {
        // SAFETY: live id; disconnecting an unconnected id is harmless.
        unsafe { bindings::rdma_disconnect(self.0) };
    }

    /// Destroys the QP (if any), then the id. Waits for a running event
    /// handler to return; no handler runs for this id afterwards.
    ///
    /// Must not be called from this id's own event handler (the CM would
    /// wait for the handler to return).
    pub(crate) fn destroy(self) {
        self.destroy_qp();
        // SAFETY: live id; consumed here, so destroyed exactly once.
        unsafe { bindings::rdma_destroy_id(self.0) };
    }

    /// The id's QP, or `None` before it is created or after `destroy_qp`.
    pub(crate) fn qp(&self) -> Option<*mut bindings::ib_qp> {
        // SAFETY: live id (invariant); `qp` is set by `rdma_create_qp` and
        // cleared by `rdma_destroy_qp`.
        let qp = unsafe { (*self.0).qp };
        (!qp.is_null()).then_some(qp)
    }

    /// The RDMA reads the id's QP may have outstanding at once, as the
    /// connection negotiated it (the server's responder resources). May
    /// sleep. The caller keeps the QP from being destroyed meanwhile.
    pub(crate) fn read_depth(&self) -> Result<u8> {
        let qp = self.qp().ok_or_else(errno::not_connected)?;
        // SAFETY: all-zero attributes are valid; filled by the call.
        let mut attr: bindings::ib_qp_attr = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        let mut init: bindings::ib_qp_init_attr = unsafe { core::mem::zeroed() };
        let mask = bindings::ib_qp_attr_mask_IB_QP_MAX_QP_RD_ATOMIC as c_int;
        // SAFETY: `qp` is the live id's QP, not destroyed during the call
        // (the caller's duty, above); both structs outlive the call.
        to_result(unsafe { bindings::ib_query_qp(qp, &mut attr, mask, &mut init) })?;
        Ok(attr.max_rd_atomic)
    }

    /// The RDMA device the id is bound to (null before address resolution).
    pub(crate) fn device(&self) -> *mut bindings::ib_device {
        // SAFETY: live id (invariant); set once the address is resolved.
        unsafe { (*self.0).device }
    }

    /// Destroys the id's QP, if it has one. The caller makes sure nothing
    /// posts to or drains the QP any more.
    pub(crate) fn destroy_qp(&self) {
        if self.qp().is_some() {
            // SAFETY: live id with a QP; rdma_destroy_qp clears `id->qp`
            // under the CM's QP mutex.
            unsafe { bindings::rdma_destroy_qp(self.0) };
        }
    }
}

/// The id an event handler was called for.
///
/// # Invariants
///
/// Valid for the duration of the handler call.
pub(crate) struct HandlerId(*mut bindings::rdma_cm_id);

impl HandlerId {
    /// # Safety
    ///
    /// `id` must be the id passed to the running CM event handler.
    pub(crate) unsafe fn new(id: *mut bindings::rdma_cm_id) -> Self {
        Self(id)
    }

    pub(crate) fn context(&self) -> *const c_void {
        // SAFETY: valid during the handler (invariant).
        unsafe { (*self.0).context }
    }

    pub(crate) fn resolve_route(&self, timeout_ms: u32) -> Result {
        // SAFETY: valid id (invariant).
        to_result(unsafe { bindings::rdma_resolve_route(self.0, timeout_ms as _) })
    }

    pub(crate) fn device(&self) -> *mut bindings::ib_device {
        // SAFETY: valid id; set once the address is resolved.
        unsafe { (*self.0).device }
    }

    /// Creates the RC queue pair on `cq` in `pd`. The driver calls
    /// `on_event(event, context)` for its asynchronous events, in any
    /// context, until the QP is destroyed.
    pub(crate) fn create_qp(
        &self,
        pd: &Pd,
        cq: &Cq,
        depth: u32,
        on_event: QpEventFn,
        context: *const c_void,
    ) -> Result {
        // SAFETY: all-zero is a valid init attr; fields are set below.
        let mut attr: bindings::ib_qp_init_attr = unsafe { core::mem::zeroed() };
        attr.event_handler = Some(on_event);
        attr.qp_context = context.cast_mut();
        attr.send_cq = cq.0;
        attr.recv_cq = cq.0;
        attr.cap.max_send_wr = depth;
        attr.cap.max_recv_wr = 1;
        attr.cap.max_send_sge = 1;
        attr.cap.max_recv_sge = 1;
        attr.sq_sig_type = bindings::ib_sig_type_IB_SIGNAL_REQ_WR;
        attr.qp_type = bindings::ib_qp_type_IB_QPT_RC;
        // SAFETY: valid id, PD and CQ of the id's device.
        to_result(unsafe { bindings::rdma_create_qp(self.0, pd.0, &mut attr) })
    }

    /// Sends the connect request carrying `data`, asking for up to
    /// `read_depth` outstanding RDMA reads.
    pub(crate) fn connect(&self, data: &[u8], read_depth: u8) -> Result {
        // SAFETY: all-zero is a valid conn param; fields are set below.
        let mut p: bindings::rdma_conn_param = unsafe { core::mem::zeroed() };
        p.private_data = data.as_ptr().cast();
        p.private_data_len = data.len() as u8;
        p.initiator_depth = read_depth;
        p.responder_resources = 0;
        // Few retries: a dead server is detected in seconds, not minutes.
        p.retry_count = 3;
        p.rnr_retry_count = 7;
        // SAFETY: called from the id's own event handler, as
        // rdma_connect_locked requires; `data` is copied.
        to_result(unsafe { bindings::rdma_connect_locked(self.0, &mut p) })
    }

    /// Private data carried by a consumer reject, if any.
    pub(crate) fn reject_data<'a>(&self, ev: &'a Event) -> &'a [u8] {
        let mut len: u8 = 0;
        // SAFETY: valid id and event of the running handler.
        let p = unsafe { bindings::rdma_consumer_reject_data(self.0, ev.0, &mut len) };
        if p.is_null() {
            return &[];
        }
        // SAFETY: the CM returns `len` valid bytes that live with the event.
        unsafe { core::slice::from_raw_parts(p as *const u8, usize::from(len)) }
    }

    /// The CM's text for a reject `status`.
    pub(crate) fn reject_msg(&self, status: c_int) -> &'static CStr {
        // SAFETY: valid id; the CM returns a static string.
        unsafe { CStr::from_char_ptr(bindings::rdma_reject_msg(self.0, status)) }
    }
}

/// A CM event delivered to the handler.
///
/// # Invariants
///
/// Valid for the duration of the handler call.
pub(crate) struct Event(*mut bindings::rdma_cm_event);

impl Event {
    /// # Safety
    ///
    /// `ev` must be the event passed to the running CM event handler.
    pub(crate) unsafe fn new(ev: *mut bindings::rdma_cm_event) -> Self {
        Self(ev)
    }

    pub(crate) fn kind(&self) -> bindings::rdma_cm_event_type {
        // SAFETY: valid (invariant).
        unsafe { (*self.0).event }
    }

    pub(crate) fn status(&self) -> c_int {
        // SAFETY: valid (invariant).
        unsafe { (*self.0).status }
    }

    /// Private data of a connection event (the server's accept).
    pub(crate) fn private_data(&self) -> &[u8] {
        // SAFETY: for connection events `param.conn` is the active member;
        // its data lives as long as the event.
        unsafe {
            let c = &(*self.0).param.conn;
            if c.private_data.is_null() {
                &[]
            } else {
                core::slice::from_raw_parts(
                    c.private_data as *const u8,
                    usize::from(c.private_data_len),
                )
            }
        }
    }
}

/// The protection domain all queues share.
///
/// # Invariants
///
/// `self.0` is a live PD from `__ib_alloc_pd`, freed only in `free`.
pub(crate) struct Pd(*mut bindings::ib_pd);

// SAFETY: a PD is a device object usable from any context; we only read
// its lkey and free it once.
unsafe impl Send for Pd {}
// SAFETY: as above.
unsafe impl Sync for Pd {}

impl Pd {
    pub(crate) fn new(dev: *mut bindings::ib_device) -> Result<Self> {
        // SAFETY: `dev` is the resolved device of a live CM id.
        let pd = unsafe { bindings::__ib_alloc_pd(dev, 0, c"fastswap_rdma".as_ptr().cast()) };
        Ok(Self(from_err_ptr(pd)?))
    }

    pub(crate) fn local_dma_lkey(&self) -> u32 {
        // SAFETY: live PD (invariant).
        unsafe { (*self.0).local_dma_lkey }
    }

    pub(crate) fn free(self) {
        // SAFETY: live PD whose QPs are all destroyed; consumed here.
        unsafe { bindings::ib_dealloc_pd_user(self.0, core::ptr::null_mut()) };
    }
}

/// How a queue's completions are reaped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polling {
    /// By the caller, spinning (synchronous reads and writes).
    Direct,
    /// In softirq, through each request's `ib_cqe` (asynchronous reads).
    Softirq,
}

/// A completion queue.
///
/// # Invariants
///
/// `self.0` is a live CQ from `__ib_alloc_cq`, freed only in `free`.
pub(crate) struct Cq(*mut bindings::ib_cq);

// SAFETY: polled only under its queue's lock (direct) or by the core
// (softirq); freed once.
unsafe impl Send for Cq {}
// SAFETY: as above.
unsafe impl Sync for Cq {}

impl Cq {
    pub(crate) fn new(
        dev: *mut bindings::ib_device,
        entries: u32,
        vector: u32,
        polling: Polling,
    ) -> Result<Self> {
        let ctx = match polling {
            Polling::Direct => bindings::ib_poll_context_IB_POLL_DIRECT,
            Polling::Softirq => bindings::ib_poll_context_IB_POLL_SOFTIRQ,
        };
        // SAFETY: `dev` is the resolved device of a live CM id.
        let cq = unsafe {
            let vectors = (*dev).num_comp_vectors.max(1) as u32;
            bindings::__ib_alloc_cq(
                dev,
                core::ptr::null_mut(),
                entries as c_int,
                (vector % vectors) as c_int,
                ctx,
                c"fastswap_rdma".as_ptr().cast(),
            )
        };
        Ok(Self(from_err_ptr(cq)?))
    }

    /// Reaps one completion: `Some(success)` or `None` if none is ready.
    pub(crate) fn poll_one(&self) -> Option<bindings::ib_wc_status> {
        // SAFETY: all-zero is a valid work completion to fill in.
        let mut wc: bindings::ib_wc = unsafe { core::mem::zeroed() };
        // SAFETY: live direct-polled CQ (invariant).
        let n = unsafe { bindings::ib_poll_cq(self.0, 1, &mut wc) };
        (n > 0).then_some(wc.status)
    }

    pub(crate) fn free(self) {
        // SAFETY: live CQ whose QP is destroyed; consumed here.
        unsafe { bindings::ib_free_cq(self.0) };
    }
}

/// A page mapped for DMA by the device; unmapped on drop.
// SAFETY: a mapping is plain data, unmapped once on drop from any context.
unsafe impl Send for DmaMapping {}

pub(crate) struct DmaMapping {
    dev: *mut bindings::ib_device,
    addr: u64,
    dir: bindings::dma_data_direction,
}

impl DmaMapping {
    /// Maps `page` for the device to read (`to_device`) or write.
    pub(crate) fn new(
        dev: *mut bindings::ib_device,
        page: PageRef,
        to_device: bool,
    ) -> Result<Self> {
        let dir = if to_device {
            bindings::dma_data_direction_DMA_TO_DEVICE
        } else {
            bindings::dma_data_direction_DMA_FROM_DEVICE
        };
        // SAFETY: a valid device and a page the swap path keeps alive until
        // the mapping is dropped.
        let addr =
            unsafe { bindings::ib_dma_map_page(dev, page.as_ptr(), 0, PAGE_BYTES as usize, dir) };
        // SAFETY: checking the address just returned.
        if unsafe { bindings::ib_dma_mapping_error(dev, addr) } != 0 {
            return Err(ENOMEM);
        }
        Ok(Self { dev, addr, dir })
    }
}

impl Drop for DmaMapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped, once.
        unsafe { bindings::ib_dma_unmap_page(self.dev, self.addr, PAGE_BYTES as usize, self.dir) };
    }
}

/// One RDMA READ or WRITE of a whole page.
pub(crate) struct PageTransfer<'a> {
    pub(crate) dma: &'a DmaMapping,
    pub(crate) lkey: u32,
    pub(crate) remote_addr: u64,
    pub(crate) rkey: u32,
    pub(crate) write: bool,
}

/// Posts `t` on `qp`. `cqe` (if any) is called on completion; otherwise the
/// completion is reaped by direct polling.
///
/// # Safety
///
/// `qp` must be a live QP; `cqe` must stay valid until its completion.
pub(crate) unsafe fn post(
    qp: *mut bindings::ib_qp,
    t: &PageTransfer<'_>,
    cqe: *mut bindings::ib_cqe,
) -> Result {
    let mut sge = bindings::ib_sge {
        addr: t.dma.addr,
        length: PAGE_BYTES,
        lkey: t.lkey,
    };
    // SAFETY: all-zero is a valid work request; fields are set below.
    let mut wr: bindings::ib_rdma_wr = unsafe { core::mem::zeroed() };
    wr.wr.__bindgen_anon_1.wr_cqe = cqe;
    wr.wr.sg_list = &mut sge;
    wr.wr.num_sge = 1;
    wr.wr.opcode = if t.write {
        bindings::ib_wr_opcode_IB_WR_RDMA_WRITE
    } else {
        bindings::ib_wr_opcode_IB_WR_RDMA_READ
    };
    wr.wr.send_flags = bindings::ib_send_flags_IB_SEND_SIGNALED as _;
    wr.remote_addr = t.remote_addr;
    wr.rkey = t.rkey;
    let mut bad: *const bindings::ib_send_wr = core::ptr::null();
    // SAFETY: live QP (caller); the WR and SGE are copied by the driver.
    to_result(unsafe { bindings::ib_post_send(qp, &wr.wr, &mut bad) })
}

/// Moves `qp` to the error state, which flushes its outstanding requests.
///
/// # Safety
///
/// `qp` must be a live QP.
pub(crate) unsafe fn set_error(qp: *mut bindings::ib_qp) {
    // SAFETY: all-zero is a valid attr; only the state is applied.
    let mut attr: bindings::ib_qp_attr = unsafe { core::mem::zeroed() };
    attr.qp_state = bindings::ib_qp_state_IB_QPS_ERR;
    // SAFETY: live QP (caller).
    unsafe {
        bindings::ib_modify_qp(
            qp,
            &mut attr,
            bindings::ib_qp_attr_mask_IB_QP_STATE as c_int,
        )
    };
}

/// Drains `qp` as `ib_drain_qp` does: moves it to the error state, posts a
/// marker request on each of its queues and waits until the marker's
/// completion was processed. Completions arrive in order, so every request
/// posted before has completed (successfully or flushed) and its completion
/// handler has returned: afterwards no completion refers to a buffer or
/// context of this QP. For a direct-polled CQ the drain polls it itself.
///
/// # Safety
///
/// `qp` must be a live QP in a state that may be moved to error. No one
/// else may poll a direct-polled CQ of it meanwhile, and no reaped-by-hand
/// (cqe-less) request may be outstanding on it.
pub(crate) unsafe fn drain(qp: *mut bindings::ib_qp) {
    // SAFETY: guaranteed by the caller.
    unsafe { bindings::ib_drain_qp(qp) };
}

/// Sleeps for about `ms` milliseconds.
pub(crate) fn sleep_ms(ms: u32) {
    // SAFETY: called from process context that may sleep.
    unsafe { bindings::msleep(ms) };
}

/// A `struct completion`: one context waits, another signals.
#[pin_data]
pub(crate) struct Completion {
    #[pin]
    raw: Opaque<bindings::completion>,
}

// SAFETY: completions are made to be signalled and waited for from any
// thread; the kernel serialises them with their wait-queue lock.
unsafe impl Send for Completion {}
// SAFETY: as above.
unsafe impl Sync for Completion {}

impl Completion {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `p` points to the completion's final, pinned location.
            raw <- Opaque::ffi_init(|p| unsafe { bindings::init_completion(p) }),
        })
    }

    /// Waits up to `ms` milliseconds; `true` if it was signalled.
    pub(crate) fn wait_timeout_ms(&self, ms: u32) -> bool {
        // SAFETY: initialised in `new`; called from process context.
        let left = unsafe {
            bindings::wait_for_completion_timeout(self.raw.get(), bindings::__msecs_to_jiffies(ms))
        };
        left != 0
    }

    /// Signals the waiter; callable from any context.
    pub(crate) fn complete(&self) {
        // SAFETY: initialised in `new`.
        unsafe { bindings::complete(self.raw.get()) };
    }

    /// Makes the completion wait again. Only while nothing can signal it
    /// (its queue has no CM id).
    pub(crate) fn reinit(&self) {
        // SAFETY: initialised in `new`; the caller guarantees no concurrent
        // `complete`.
        unsafe { fastswap_rdma_reinit_completion(self.raw.get()) };
    }
}

extern "C" {
    /// `reinit_completion`, from helpers.c.
    fn fastswap_rdma_reinit_completion(c: *mut bindings::completion);
}

/// Milliseconds since boot, for timeouts.
pub(crate) fn now_ms() -> i64 {
    // SAFETY: no preconditions.
    unsafe { bindings::ktime_get() / 1_000_000 }
}

/// Lets other work (and the soft-RoCE driver) run on this CPU.
pub(crate) fn yield_cpu() {
    // SAFETY: called from process context that may sleep.
    unsafe { bindings::__cond_resched() };
}

extern "C" {
    /// `raw_smp_processor_id()`, from helpers.c.
    fn fastswap_rdma_this_cpu() -> kernel::ffi::c_uint;
}

pub(crate) fn this_cpu() -> u32 {
    // SAFETY: no preconditions.
    unsafe { fastswap_rdma_this_cpu() }
}

pub(crate) fn online_cpus() -> u32 {
    // SAFETY: no preconditions.
    unsafe { bindings::num_online_cpus() }
}

pub(crate) fn random_u64() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bindings::get_random_u64() }
}

/// A QP's asynchronous event callback (`ib_qp_init_attr.event_handler`).
pub(crate) type QpEventFn = unsafe extern "C" fn(*mut bindings::ib_event, *mut c_void);

/// What an asynchronous QP event says went wrong with the connection, or
/// `None` for an event that is not an error (SQ drained, last WQE, ...).
///
/// # Safety
///
/// `ev` is the event the driver passed to a [`QpEventFn`], which is valid
/// for that call.
pub(crate) unsafe fn qp_event_error(ev: *const bindings::ib_event) -> Option<&'static str> {
    // SAFETY: valid for the call (caller).
    match unsafe { (*ev).event } {
        bindings::ib_event_type_IB_EVENT_QP_FATAL => Some("a queue pair reported a fatal error"),
        bindings::ib_event_type_IB_EVENT_QP_REQ_ERR => {
            Some("a queue pair reported an invalid request")
        }
        bindings::ib_event_type_IB_EVENT_QP_ACCESS_ERR => {
            Some("a queue pair reported an access error")
        }
        bindings::ib_event_type_IB_EVENT_PATH_MIG_ERR => {
            Some("a queue pair's path migration failed")
        }
        _ => None,
    }
}
