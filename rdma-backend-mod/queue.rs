// SPDX-License-Identifier: GPL-2.0

//! One RDMA connection to the far memory server: its connect sequence (an
//! rdma_cm state machine driven by CM events) and its data path.

use crate::backend::AsyncLoad;
use crate::ctrl::Ctrl;
use crate::errno;
use crate::once_slot::OnceSlot;
use crate::page::PageRef;
use crate::protocol;
use crate::verbs::{
    self, CmId, Completion, Cq, DmaMapping, Event, HandlerId, PageTransfer, Pd, Polling,
};
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, Ordering};
use kernel::bindings;
use kernel::ffi::{c_int, c_void};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

const RESOLVE_TIMEOUT_MS: u32 = 5000;
/// Bound on one queue's whole connect sequence.
pub(crate) const CONNECT_TIMEOUT_MS: u32 = 12000;
/// A page transfer that takes longer than this means the link is gone.
const OP_TIMEOUT_MS: i64 = 4000;
/// Work requests a queue may have outstanding.
const DEPTH: u32 = 128;
/// Asynchronous reads in flight per queue before readahead falls back to
/// synchronous reads (back-pressure instead of overflowing the send queue).
const ASYNC_LIMIT: u32 = DEPTH - 8;
/// Outstanding RDMA reads we ask the server to accept.
const READ_DEPTH: u8 = 16;

/// A queue's job; the value is its position among a CPU's three queues.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Reads of faulting pages, polled by the faulting CPU.
    SyncRead = 0,
    /// Readahead reads, completed in softirq.
    AsyncRead = 1,
    /// Page writes (swap-out), polled by the reclaiming CPU.
    Write = 2,
}

pub(crate) const ROLES: [Role; 3] = [Role::SyncRead, Role::AsyncRead, Role::Write];

#[pin_data]
pub(crate) struct Queue {
    pub(crate) index: u16,
    pub(crate) role: Role,
    ctrl: *const Ctrl,
    /// Serialises post-and-poll on a direct-polled queue.
    #[pin]
    op_lock: Mutex<()>,
    /// Completed by the CM handler when connecting succeeds or fails.
    #[pin]
    connected: Completion,
    status: AtomicI32,
    /// The connect in progress only ends the session (see `close_session`).
    closing_session: core::sync::atomic::AtomicBool,
    id: OnceSlot<CmId>,
    cq: OnceSlot<Cq>,
    inflight: AtomicU32,
}

// SAFETY: shared state is atomics, a mutex, and once-set slots; `ctrl`
// outlives every queue (it owns them).
unsafe impl Send for Queue {}
// SAFETY: as above.
unsafe impl Sync for Queue {}

impl Queue {
    pub(crate) fn new(index: u16, role: Role, ctrl: *const Ctrl) -> impl PinInit<Self> {
        pin_init!(Self {
            index,
            role,
            ctrl,
            op_lock <- new_mutex!(()),
            connected <- Completion::new(),
            status: AtomicI32::new(0),
            closing_session: core::sync::atomic::AtomicBool::new(false),
            id: OnceSlot::new(),
            cq: OnceSlot::new(),
            inflight: AtomicU32::new(0),
        })
    }

    fn ctrl(&self) -> &Ctrl {
        // SAFETY: the controller owns its queues and outlives them.
        unsafe { &*self.ctrl }
    }

    /// Runs the connect sequence and waits (bounded) for its outcome.
    pub(crate) fn connect(self: Pin<&Self>) -> Result {
        self.connect_within(CONNECT_TIMEOUT_MS)
    }

    /// Ends the session on the server: a connect request with the close
    /// flag and the secret, without a QP, which the server answers with a
    /// reject saying "session closed" after freeing the region. Waits at
    /// most `ms`. The queue's id must be gone (destroyed) before; the
    /// caller destroys the one this creates.
    pub(crate) fn close_session(self: Pin<&Self>, ms: u32) -> Result {
        self.closing_session.store(true, Ordering::Release);
        self.connected.reinit();
        self.status.store(0, Ordering::Release);
        self.connect_within(ms)
    }

    fn connect_within(self: Pin<&Self>, ms: u32) -> Result {
        let ctx = &*self as *const Queue as *const c_void;
        if let Err(id) = self.id.set(CmId::new(cm_handler, ctx)?) {
            // Never started, so no handler runs for it; `CmId` has no
            // `Drop`: destroy it here or it leaks.
            id.destroy();
            return Err(EBUSY);
        }
        let c = self.ctrl();
        let id = self.id.get().ok_or(EINVAL)?;
        id.resolve_addr(c.client, c.server, RESOLVE_TIMEOUT_MS)?;
        if !self.connected.wait_timeout_ms(ms) {
            return Err(errno::timed_out());
        }
        match self.status.load(Ordering::Acquire) {
            0 => Ok(()),
            e => Err(Error::from_errno(e)),
        }
    }

    /// Connects again after the controller tore the old connection down
    /// (its id destroyed, so no handler can signal `connected` meanwhile).
    pub(crate) fn reconnect(self: Pin<&Self>) -> Result {
        self.connected.reinit();
        self.status.store(0, Ordering::Release);
        self.connect()
    }

    fn finish(&self, result: Result) {
        self.status
            .store(result.err().map_or(0, |e| e.to_errno()), Ordering::Release);
        self.connected.complete();
    }

    /// Creates this queue's CQ and QP (and the shared PD) and sends the
    /// connect request.
    fn start_connect(&self, id: &HandlerId) -> Result {
        let c = self.ctrl();
        if self.closing_session.load(Ordering::Acquire) {
            let secret = c.session().ok_or(EINVAL)?;
            return id.connect(
                &protocol::close_request(c.client_id, self.index, c.queue_count(), secret),
                0,
            );
        }
        c.create_resources(|| self.create_resources(id))
    }

    fn create_resources(&self, id: &HandlerId) -> Result {
        let c = self.ctrl();
        let dev = id.device();
        if c.pd.get().is_none() {
            let _ = c.pd.set(Pd::new(dev)?);
        }
        let pd = c.pd.get().ok_or(EINVAL)?;
        let polling = if self.role == Role::AsyncRead {
            Polling::Softirq
        } else {
            Polling::Direct
        };
        if self
            .cq
            .set(Cq::new(dev, DEPTH * 2, u32::from(self.index), polling)?)
            .is_err()
        {
            return Err(EBUSY);
        }
        let cq = self.cq.get().ok_or(EINVAL)?;
        // The QP is destroyed before its queue is freed, so the queue may
        // be its event context.
        id.create_qp(
            pd,
            cq,
            DEPTH,
            qp_event,
            self as *const Queue as *const c_void,
        )?;
        let data = protocol::connect_request(c.client_id, self.index, c.queue_count(), c.session());
        id.connect(&data, READ_DEPTH)
    }

    fn on_event(&self, id: HandlerId, ev: Event) {
        let c = self.ctrl();
        match ev.kind() {
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_ADDR_RESOLVED => {
                if let Err(e) = id.resolve_route(RESOLVE_TIMEOUT_MS) {
                    self.finish(Err(e));
                }
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_ROUTE_RESOLVED => {
                if let Err(e) = self.start_connect(&id) {
                    pr_err!(
                        "queue {}: cannot set up the connection ({:?})\n",
                        self.index,
                        e
                    );
                    self.finish(Err(e));
                }
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_ESTABLISHED => {
                let r =
                    match protocol::parse_accept(ev.private_data(), u64::from(verbs::PAGE_BYTES)) {
                        Ok(region) => c.learn_region(region),
                        Err(why) => {
                            pr_err!(
                                "queue {}: refusing the accept of server {}: {}\n",
                                self.index,
                                c.server,
                                why
                            );
                            Err(errno::protocol())
                        }
                    };
                self.finish(r);
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_REJECTED
                if self.closing_session.load(Ordering::Acquire)
                    && protocol::reject_code(id.reject_data(&ev))
                        == Some(protocol::SESSION_CLOSED) =>
            {
                self.finish(Ok(()));
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_REJECTED => {
                let status = ev.status();
                let code = protocol::reject_code(id.reject_data(&ev));
                match protocol::reject_reason(id.reject_data(&ev)) {
                    Some(why) => pr_err!("server {} rejected queue {}: {}\n", c.server, self.index, why),
                    None => pr_err!(
                        "server {} refused the connection ({}): is farmem-server running on that port?\n",
                        c.server,
                        id.reject_msg(status)
                    ),
                }
                if matches!(code, Some(protocol::SESSION_GONE | protocol::BAD_SECRET)) {
                    // No later attempt can succeed: the server freed the
                    // region (or will never take this secret from here).
                    c.session_refused();
                }
                self.finish(Err(errno::conn_refused()));
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_ADDR_ERROR => {
                pr_err!(
                    "cannot resolve {} from {} (status {}): check sip, cip and the RDMA link\n",
                    c.server,
                    c.client,
                    ev.status()
                );
                self.finish(Err(errno::host_unreachable()));
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_ROUTE_ERROR => {
                pr_err!("no route to {} (status {})\n", c.server, ev.status());
                self.finish(Err(errno::net_unreachable()));
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_UNREACHABLE
            | bindings::rdma_cm_event_type_RDMA_CM_EVENT_CONNECT_ERROR => {
                pr_err!("server {} unreachable (status {})\n", c.server, ev.status());
                self.finish(Err(errno::host_unreachable()));
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_DEVICE_REMOVAL => {
                // A connect in progress fails; a connected controller
                // releases the device's resources now (see `device_removed`).
                self.finish(Err(ENODEV));
                c.device_removed();
            }
            bindings::rdma_cm_event_type_RDMA_CM_EVENT_DISCONNECTED
            | bindings::rdma_cm_event_type_RDMA_CM_EVENT_ADDR_CHANGE => {
                // Silent when unload disconnected on purpose.
                c.mark_lost("connection lost");
            }
            _ => {}
        }
    }

    /// The RDMA reads this queue may have outstanding at once. Only under
    /// the controller's teardown lock, which keeps the QP alive.
    pub(crate) fn read_depth(&self) -> Result<u8> {
        self.id.get().ok_or_else(errno::not_connected)?.read_depth()
    }

    fn qp(&self) -> Result<*mut bindings::ib_qp> {
        self.id
            .get()
            .and_then(|id| id.qp())
            .ok_or(errno::not_connected())
    }

    fn device(&self) -> Result<*mut bindings::ib_device> {
        self.id
            .get()
            .map(|id| id.device())
            .ok_or(errno::not_connected())
    }

    /// Writes `page` to, or reads it from, remote `addr`, and waits for the
    /// transfer by polling this queue's CQ. The caller was admitted by
    /// `Ctrl::enter`, so the queue's resources stay until this returns.
    pub(crate) fn transfer_sync(&self, remote_addr: u64, page: PageRef, write: bool) -> Result {
        let c = self.ctrl();
        let qp = self.qp()?;
        let cq = self.cq.get().ok_or(errno::not_connected())?;
        let pd = c.pd.get().ok_or(errno::not_connected())?;
        let _guard = self.op_lock.lock();
        if !c.is_live() {
            // Lost (and maybe flushed) while we waited for the queue.
            return Err(EIO);
        }
        let dma = DmaMapping::new(self.device()?, page, write)?;
        let t = PageTransfer {
            dma: &dma,
            lkey: pd.local_dma_lkey(),
            remote_addr,
            rkey: c.rkey(),
            write,
        };
        // SAFETY: live QP; no `ib_cqe`, so the completion is reaped below.
        if let Err(e) = unsafe { verbs::post(qp, &t, core::ptr::null_mut()) } {
            // One request at a time on a live QP with room for `DEPTH`: a
            // refused post means the QP is broken, a loss like a failed
            // transfer (a load then waits for the reconnect, not EIO).
            c.mark_lost("posting an RDMA transfer failed");
            return Err(e);
        }
        // From here the device may read or write the page until the
        // request's completion is reaped: every return below is after
        // reaping it, and only then is `dma` dropped (unmapped) and the page
        // handed back. A request that does not complete in time is flushed
        // (moving the QP to the error state completes it with a flush
        // error), and we keep waiting for that completion.
        let start = verbs::now_ms();
        let mut flushed_at: Option<i64> = None;
        let mut warned = false;
        let mut spins: u32 = 0;
        loop {
            if let Some(status) = cq.poll_one() {
                if status == bindings::ib_wc_status_IB_WC_SUCCESS && flushed_at.is_none() {
                    c.note_progress();
                    return Ok(());
                }
                c.mark_lost("an RDMA transfer failed");
                return Err(EIO);
            }
            spins = spins.wrapping_add(1);
            if spins % 64 != 0 {
                core::hint::spin_loop();
                continue;
            }
            verbs::yield_cpu();
            let now = verbs::now_ms();
            match flushed_at {
                None if now - start > OP_TIMEOUT_MS => {
                    c.mark_lost("an RDMA transfer timed out");
                    // SAFETY: live QP.
                    unsafe { verbs::set_error(qp) };
                    flushed_at = Some(now);
                }
                Some(t0) if !warned && now - t0 > OP_TIMEOUT_MS => {
                    pr_err!(
                        "queue {}: still waiting for the device to flush a timed-out transfer\n",
                        self.index
                    );
                    warned = true;
                }
                _ => {}
            }
        }
    }

    /// Starts reading remote `addr` into the request's page; completes in
    /// softirq. On `Err` nothing was started.
    pub(crate) fn read_async(
        &self,
        remote_addr: u64,
        req: AsyncLoad,
    ) -> core::result::Result<(), (Error, AsyncLoad)> {
        let c = self.ctrl();
        let (qp, dev, lkey) = match (self.qp(), self.device(), c.pd.get()) {
            (Ok(qp), Ok(dev), Some(pd)) => (qp, dev, pd.local_dma_lkey()),
            _ => return Err((errno::not_connected(), req)),
        };
        if self.inflight.fetch_add(1, Ordering::AcqRel) >= ASYNC_LIMIT {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            return Err((EBUSY, req));
        }
        let unwind = |e: Error, req: AsyncLoad| {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            Err((e, req))
        };
        let dma = match DmaMapping::new(dev, req.page(), false) {
            Ok(dma) => dma,
            Err(e) => return unwind(e, req),
        };
        let ctx = AsyncRead {
            cqe: bindings::ib_cqe {
                done: Some(async_read_done),
            },
            queue: self,
            dma: Some(dma),
            page: req.page(),
            remote_addr,
            next: core::ptr::null_mut(),
        };
        let ctx = match KBox::new(ctx, GFP_NOWAIT | __GFP_NOWARN) {
            Ok(ctx) => KBox::into_raw(ctx),
            Err(_) => return unwind(ENOMEM, req),
        };
        // The completion may run as soon as the post is made: from here the
        // request belongs to `ctx`.
        let page = req.into_page();
        // SAFETY: `ctx` was just leaked and is only reclaimed by the
        // completion (after a successful post) or below (after a failed one).
        let posted = unsafe {
            match (*ctx).dma.as_ref() {
                Some(dma) => {
                    let t = PageTransfer {
                        dma,
                        lkey,
                        remote_addr,
                        rkey: c.rkey(),
                        write: false,
                    };
                    verbs::post(qp, &t, core::ptr::addr_of_mut!((*ctx).cqe))
                }
                None => Err(EINVAL),
            }
        };
        if let Err(e) = posted {
            // Never more than `ASYNC_LIMIT` of `DEPTH` outstanding: a
            // refused post means the QP is broken (the caller's fallback,
            // a synchronous load, then waits for the reconnect).
            c.mark_lost("posting an RDMA read failed");
            // SAFETY: the post failed, so no completion will reclaim `ctx`,
            // and the request was not completed.
            drop(unsafe { KBox::from_raw(ctx) });
            // SAFETY: as above; the request is taken back once.
            return unwind(e, unsafe { AsyncLoad::from_page(page) });
        }
        Ok(())
    }

    /// Parks a readahead read without starting it (the controller is
    /// reconnecting): no DMA mapping, no post. It is read once reconnected
    /// (or failed once the far memory is lost). On `Err` (no memory for the
    /// context) nothing was parked.
    pub(crate) fn park_read(
        &self,
        remote_addr: u64,
        req: AsyncLoad,
    ) -> core::result::Result<(), (Error, AsyncLoad)> {
        let ctx = AsyncRead {
            cqe: bindings::ib_cqe {
                done: Some(async_read_done),
            },
            queue: self,
            dma: None,
            page: req.page(),
            remote_addr,
            next: core::ptr::null_mut(),
        };
        let ctx = match KBox::new(ctx, GFP_NOWAIT | __GFP_NOWARN) {
            Ok(ctx) => ctx,
            Err(_) => return Err((ENOMEM, req)),
        };
        // The request's completion now belongs to the parked list.
        let _ = req.into_page();
        self.ctrl().park(ctx);
        Ok(())
    }

    /// Starts a disconnect (the server frees its side); moves the QP to the
    /// error state.
    pub(crate) fn disconnect(&self) {
        if let Some(id) = self.id.get() {
            id.disconnect();
        }
    }

    /// Moves the QP to the error state: its outstanding requests complete
    /// with flush errors, new ones are flushed.
    pub(crate) fn flush(&self) {
        if let Ok(qp) = self.qp() {
            // SAFETY: a live QP (it is destroyed only by `free_resources`,
            // which runs after every `flush`).
            unsafe { verbs::set_error(qp) };
        }
    }

    /// Waits until every request posted on the QP completed and its
    /// completion was processed (`ib_drain_qp`).
    ///
    /// # Safety
    ///
    /// No data-path call may be running or start on this queue.
    pub(crate) unsafe fn drain(&self) {
        let Ok(qp) = self.qp() else { return };
        // SAFETY: live QP; no one else polls its CQ (caller), and every
        // synchronous request was reaped by its caller before it returned.
        unsafe { verbs::drain(qp) };
        // Each readahead completion has run (the drain's marker completes
        // after them), and each decremented the count as its last access.
        let left = self.inflight.load(Ordering::Acquire);
        if left != 0 {
            pr_err!(
                "queue {}: {} reads unaccounted for after draining\n",
                self.index,
                left
            );
        }
    }

    /// Releases the queue's QP and CQ; the id stays.
    ///
    /// # Safety
    ///
    /// No data-path call may be running or start on this queue, the QP is
    /// drained (or was never used), and no handler creates resources any
    /// more.
    pub(crate) unsafe fn free_resources(&self) {
        if let Some(id) = self.id.get() {
            id.destroy_qp();
        }
        // SAFETY: exclusive by the caller's guarantee; the QP using the CQ
        // is gone.
        if let Some(cq) = unsafe { self.cq.take() } {
            cq.free();
        }
    }

    /// Takes the queue's CM id out of its slot, for the caller to destroy
    /// (not under the teardown lock: `rdma_destroy_id` waits for the id's
    /// running handler, which may take that lock).
    ///
    /// # Safety
    ///
    /// No reference from the slot may be alive or taken concurrently: the
    /// caller holds the controller's teardown lock (which every reader of
    /// the slot outside the data path and the connecting thread holds:
    /// `release`, `disconnect_lost`, `query_read_depth`), the data path is
    /// closed (the state is not `LIVE` and its users were waited for), and
    /// no connect runs on this queue: the caller holds `ids_lock`, under
    /// which every reconnect and unload's close run. The first connect
    /// (`Ctrl::connect`) does not take it; it is safe because nothing
    /// takes an id until it returned: its queues connect one after another
    /// on its thread, which calls `abort` (the only taker then) only after
    /// the last returned, and the worker, the removal work and unload run
    /// only on a controller that finished connecting.
    pub(crate) unsafe fn take_id(&self) -> Option<CmId> {
        // SAFETY: exclusive by the caller's guarantee.
        unsafe { self.id.take() }
    }
}

/// State of one asynchronous read, reached from its `ib_cqe`.
#[repr(C)]
pub(crate) struct AsyncRead {
    cqe: bindings::ib_cqe, // first: the completion hands us a pointer to it
    queue: *const Queue,
    /// Unmapped (taken) before the request is parked.
    dma: Option<DmaMapping>,
    /// The request's page; its completion is owed by this context.
    page: PageRef,
    remote_addr: u64,
    /// The next parked read (see [`Parked`]).
    next: *mut AsyncRead,
}

/// Readahead reads that failed while the controller reconnects: their
/// pages stay locked (a fault on them waits) until the controller reads
/// them again once reconnected, or fails them once the far memory is
/// lost. Completing them with an error instead would make the fault path
/// turn each into SIGBUS although the server still holds the page.
/// A lock-free stack: pushed from softirq, taken whole by `take_all`.
pub(crate) struct Parked(AtomicPtr<AsyncRead>);

/// A read taken off the parked list by [`Parked::take_all`]: it owes its
/// request's completion, done once by `into_request(...).complete()`, or
/// handed back with [`Parked::repark`].
pub(crate) struct ParkedRead(KBox<AsyncRead>);

impl ParkedRead {
    pub(crate) fn page(&self) -> PageRef {
        self.0.page
    }

    pub(crate) fn remote_addr(&self) -> u64 {
        self.0.remote_addr
    }

    /// Gives up the parked context and takes back its request, to complete.
    pub(crate) fn into_request(self) -> AsyncLoad {
        let page = self.0.page;
        drop(self.0);
        // SAFETY: only `take_all` makes a `ParkedRead`, from a context that
        // was parked owing its request's completion (its page came from
        // `into_page` in `read_async` or `park_read`, and the request was
        // not completed since); consuming it hands that over once.
        unsafe { AsyncLoad::from_page(page) }
    }
}

impl Parked {
    pub(crate) const fn new() -> Self {
        Self(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// Sequentially consistent, as the state changes and loads that pair
    /// with it (see `Ctrl::park`): either the pusher sees the new state, or
    /// the changer's `take_all` sees the read.
    pub(crate) fn push(&self, ctx: KBox<AsyncRead>) {
        let node = KBox::into_raw(ctx);
        let mut head = self.0.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is ours until the exchange below publishes it.
            unsafe { (*node).next = head };
            match self
                .0
                .compare_exchange_weak(head, node, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Parks again a read taken by `take_all`.
    pub(crate) fn repark(&self, r: ParkedRead) {
        self.push(r.0);
    }

    /// Takes every parked read; each request's completion is then owed by
    /// the caller, who either completes it (`ParkedRead::into_request`) or
    /// parks the read again (`repark`).
    pub(crate) fn take_all(&self, mut f: impl FnMut(ParkedRead)) {
        let mut node = self.0.swap(core::ptr::null_mut(), Ordering::SeqCst);
        while !node.is_null() {
            // SAFETY: every node was leaked by `push` and is taken once: the
            // swap above unlinked the whole list.
            let ctx = unsafe { KBox::from_raw(node) };
            node = ctx.next;
            f(ParkedRead(ctx));
        }
    }
}

unsafe extern "C" fn async_read_done(_cq: *mut bindings::ib_cq, wc: *mut bindings::ib_wc) {
    // SAFETY: `wr_cqe` is the first field of an `AsyncRead` leaked by
    // `read_async`; each completion is delivered once.
    let ctx = unsafe { KBox::from_raw((*wc).__bindgen_anon_1.wr_cqe as *mut AsyncRead) };
    // SAFETY: `wc` is valid during the callback.
    let status = unsafe { (*wc).status };
    // SAFETY: the queue outlives its requests: the teardown drains the QP
    // (which waits for this callback) before freeing anything.
    let q = unsafe { &*ctx.queue };
    let mut ctx = ctx;
    drop(ctx.dma.take()); // unmap before the page is handed back
    let page = ctx.page;
    let result = if status == bindings::ib_wc_status_IB_WC_SUCCESS {
        q.ctrl().note_progress();
        Ok(())
    } else {
        // A flush while live means the QP went to the error state on its
        // own (the port went down): a loss too. Once not live, the flushes
        // are our own and `mark_lost` does nothing more.
        q.ctrl()
            .mark_lost(if status == bindings::ib_wc_status_IB_WC_WR_FLUSH_ERR {
                "an RDMA read was flushed"
            } else {
                "an RDMA read failed"
            });
        Err(EIO)
    };
    if result.is_err() && q.ctrl().is_reconnecting() {
        // Read again once reconnected (or failed once lost): the request's
        // completion now belongs to the parked list.
        q.ctrl().park(ctx);
        q.inflight.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    drop(ctx);
    q.ctrl().count_load(result.is_ok());
    // SAFETY: `read_async` gave the request to this context, and this is
    // its only completion.
    unsafe { AsyncLoad::from_page(page) }.complete(result);
    q.inflight.fetch_sub(1, Ordering::AcqRel);
}

/// A QP error reported asynchronously (real devices report fatal QP errors
/// this way; Soft-RoCE reports them through completions): the far memory is
/// lost, and no request is posted to any queue after it.
unsafe extern "C" fn qp_event(ev: *mut bindings::ib_event, ctx: *mut c_void) {
    // SAFETY: the driver's event, valid during this call.
    if let Some(why) = unsafe { verbs::qp_event_error(ev) } {
        // SAFETY: the context is the QP's queue (`create_resources`), which
        // outlives the QP: the QP is destroyed before the queue is freed, and
        // no event is delivered after that.
        let q = unsafe { &*(ctx as *const Queue) };
        q.ctrl().mark_lost(why);
    }
}

unsafe extern "C" fn cm_handler(
    id: *mut bindings::rdma_cm_id,
    ev: *mut bindings::rdma_cm_event,
) -> c_int {
    // SAFETY: called by the CM with its live id and event.
    let (id, ev) = unsafe { (HandlerId::new(id), Event::new(ev)) };
    // SAFETY: the id's context is its queue, which outlives the id.
    let q = unsafe { &*(id.context() as *const Queue) };
    q.on_event(id, ev);
    // Never ask the CM to destroy the id: we always destroy our ids
    // ourselves (`Ctrl::device_removed` explains why).
    0
}
