// SPDX-License-Identifier: GPL-2.0

//! The connection to one far memory server: three queues per CPU, the
//! shared protection domain, the remote region, and whether it still works.

use crate::backend::{AsyncLoad, Counters};
use crate::errno;
use crate::once_slot::OnceSlot;
use crate::page::PageRef;
use crate::protocol::{self, Region};
use crate::queue::{AsyncRead, Parked, Queue, Role, CONNECT_TIMEOUT_MS, ROLES};
use crate::verbs::CmId;
use crate::verbs::{self, Endpoint, Pd, PAGE_BYTES};
use crate::work::{Work, WorkItem};
use core::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// [`Ctrl::state`]: swap operations are served.
const LIVE: u8 = 0;
/// Module unload (or a failed connect) is disconnecting on purpose.
const CLOSING: u8 = 1;
/// The server, the connection or the RDMA device is gone: stores go to the
/// swap device and pages held remotely read as errors (SIGBUS).
const LOST: u8 = 2;
/// A transfer failed or a connection was lost, and `reconnect_work` is
/// connecting every queue again (for up to `reconnect_timeout_s`): stores
/// go to the swap device, loads wait (uninterruptibly), readahead reads
/// failed are parked. Leaves to `LIVE` (reconnected), `LOST` (timeout,
/// device removal, the server refusing the session) or `CLOSING` (unload).
const RECONNECTING: u8 = 3;
/// First wait between reconnect attempts; doubles up to the next.
const RECONNECT_DELAY_MS: i64 = 500;
const RECONNECT_MAX_DELAY_MS: i64 = 4000;
/// How long unload waits for the server to acknowledge a close.
const CLOSE_TIMEOUT_MS: u32 = 3000;
/// Pause between rounds of re-reading parked reads that failed while live.
const PARKED_RETRY_MS: u32 = 10;
/// How long parked reads may keep failing while live with no loss reported
/// (so not the link, which a reconnect handles: a DMA mapping that keeps
/// failing), before those that fail are failed. Long enough to ride out a
/// transient shortage of DMA mapping space (IOMMU or swiotlb) under memory
/// pressure; short against the hung-task timeout (120 s), since a fault on
/// such a page waits on its lock meanwhile; and it bounds the log to one
/// line per 10 s.
const PARKED_GIVE_UP_MS: i64 = 10_000;

/// Who tears down the RDMA resources, and how far it got.
#[derive(Default)]
struct Teardown {
    /// Every queue connected and the controller is in use.
    ready: bool,
    /// The device went away before `ready`: the connect fails.
    removed_early: bool,
    /// Unload (or a failed connect) owns the teardown.
    closing: bool,
    /// QPs, CQs and the PD are freed (the ids may still exist).
    released: bool,
    /// The reconnect worker released the resources and is destroying the
    /// old ids: a late handler of one of them creates nothing (it would
    /// leak, and the next attempt's queue would find its CQ taken).
    rebuilding: bool,
}

#[pin_data]
pub(crate) struct Ctrl {
    pub(crate) server: Endpoint,
    pub(crate) client: Endpoint,
    pub(crate) client_id: u64,
    nq: u32,
    /// `reconnect_timeout_s=`: how long a lost connection is retried
    /// before the far memory is declared lost; 0: never retried.
    pub(crate) reconnect_timeout_s: u32,
    /// `nq * 3`, at most [`protocol::MAX_QUEUES`].
    queue_count: u16,
    /// Built before the controller is complete (each holds a pointer to
    /// it) and never changed, so the controller is only ever shared.
    queues: KVec<Pin<KBox<Queue>>>,
    pub(crate) pd: OnceSlot<Pd>,
    region: OnceSlot<Region>,
    /// RDMA reads each read queue may have outstanding, as negotiated;
    /// set once every queue is connected (unset if a queue cannot tell).
    read_depth: OnceSlot<u8>,
    /// One bit per remote slot that holds a page, for the statistics.
    held: OnceSlot<KVVec<AtomicU64>>,
    /// `LIVE`, `RECONNECTING`, `CLOSING` or `LOST`: `LIVE` and
    /// `RECONNECTING` alternate; `CLOSING` and `LOST` are final.
    state: AtomicU8,
    /// `Teardown::ready`, readable without the lock.
    ready: AtomicBool,
    /// A queue was lost while reconnecting: the attempt fails.
    retry: AtomicBool,
    /// When the first failure after the last successful transfer happened
    /// (`verbs::now_ms`): `reconnect_timeout_s` counts from there, so
    /// reconnects that succeed but carry no transfer do not restart it.
    reconnect_since: AtomicU64,
    /// A transfer succeeded since `reconnect_since` was set.
    progress: AtomicBool,
    /// Bumped by every `mark_lost`: a load whose transfer failed retries
    /// if a loss was reported meanwhile.
    losses: AtomicU32,
    /// Readahead reads that failed or were made while reconnecting.
    parked: Parked,
    /// Reads the parked reads again once live (see [`Ctrl::resume_parked`]).
    #[pin]
    parked_work: Work,
    /// Serialises destroying the ids and creating new ones (reconnect,
    /// device removal, unload).
    #[pin]
    ids_lock: Mutex<()>,
    /// Tears the connection down and connects it again (see
    /// [`Ctrl::reconnect`]).
    #[pin]
    reconnect_work: Work,
    /// Swap operations between [`Ctrl::enter`] and the end of their use of
    /// a queue. The teardown waits for none before freeing resources.
    users: AtomicU32,
    /// Serialises resource creation (connect), device removal and unload.
    #[pin]
    teardown: Mutex<Teardown>,
    /// Destroys the CM ids after the device was removed (see
    /// [`Ctrl::device_removed`]).
    #[pin]
    removal_work: Work,
    /// Disconnects every queue once the far memory is declared lost (see
    /// [`Ctrl::disconnect_lost`]).
    #[pin]
    loss_work: Work,
    pub(crate) counters: Counters,
    /// Slots set in `held`.
    pub(crate) pages: AtomicU64,
}

/// A swap operation admitted by [`Ctrl::enter`].
struct User<'a>(&'a AtomicU32);

impl Drop for User<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Release);
    }
}

/// [`WorkItem`] ids of the controller's work items.
const REMOVAL_WORK: u8 = 0;
const LOSS_WORK: u8 = 1;
const RECONNECT_WORK: u8 = 2;
const PARKED_WORK: u8 = 3;

// SAFETY: `reconnect_work` is a `Work` field of `Ctrl`. It is queued by
// `mark_lost` only on a ready controller (after `connect` returned), which
// may be late (a CM handler, a QP event or a swap operation preempted after
// winning the change to `RECONNECTING`). `shutdown`, which runs before
// every drop of a ready controller, cancels it synchronously at its very
// end, after every possible caller of `mark_lost` is done (the data path
// waited for, the QPs drained and destroyed, the ids destroyed), and the
// work returns at once then (`closing`). `abort` runs only on a controller
// that never became ready.
unsafe impl WorkItem<RECONNECT_WORK> for Ctrl {
    const OFFSET: usize = core::mem::offset_of!(Ctrl, reconnect_work);
    fn run(&self) {
        self.reconnect();
    }
}

// SAFETY: `parked_work` is a `Work` field of `Ctrl`. It is queued only
// while the state is `LIVE` after a read was parked (so on a ready
// controller): by `park` (from a readahead completion or `load_async`'s
// `park_read`) and by the reconnect worker once `LIVE` again. The work
// never queues itself: it parks again with `Parked::repark`, which queues
// nothing, and loops while live. `shutdown` sets
// `CLOSING`, waits for the data path and drains every QP (no completion
// parks any more), cancels the reconnect work, and only then cancels this
// one synchronously (and again at its very end); nothing queues it after
// the state left `LIVE` for good. `abort` runs only on a controller that
// never became ready, which never parked.
unsafe impl WorkItem<PARKED_WORK> for Ctrl {
    const OFFSET: usize = core::mem::offset_of!(Ctrl, parked_work);
    fn run(&self) {
        self.resume_parked();
    }
}

// SAFETY: `removal_work` is a `Work` field of `Ctrl`. It is queued only by
// `device_removed` on a ready controller that is not closing, and
// `shutdown`, which runs before every drop of a ready controller, stops
// that and cancels it; a controller that never became ready (torn down by
// `abort`) never queued it.
unsafe impl WorkItem<REMOVAL_WORK> for Ctrl {
    const OFFSET: usize = core::mem::offset_of!(Ctrl, removal_work);
    fn run(&self) {
        let _ids = self.ids_lock.lock();
        self.destroy_ids();
    }
}

// SAFETY: `loss_work` is a `Work` field of `Ctrl`. It is queued by
// `declare_lost` after that won the change to `LOST`, which may be late:
// the caller (a CM handler, a QP event, a swap operation, the reconnect
// worker) can be preempted in between. Both ways a controller ends
// (`shutdown` before every drop of a ready one, `abort` for one whose
// connect failed) cancel it synchronously only after every possible caller
// is done: the data path drained and waited for (or never started), the
// QPs destroyed (no QP event), the ids destroyed (no CM handler), the
// reconnect work cancelled. So it is neither queued nor running when the
// controller is freed.
unsafe impl WorkItem<LOSS_WORK> for Ctrl {
    const OFFSET: usize = core::mem::offset_of!(Ctrl, loss_work);
    fn run(&self) {
        self.disconnect_lost();
    }
}

impl Ctrl {
    fn new_queues(nq: u32, ctrl: *const Ctrl) -> Result<KVec<Pin<KBox<Queue>>>> {
        let mut queues = KVec::with_capacity((nq * 3) as usize, GFP_KERNEL)?;
        for i in 0..nq * 3 {
            let q = KBox::pin_init(
                Queue::new(i as u16, ROLES[(i % 3) as usize], ctrl),
                GFP_KERNEL,
            )?;
            queues.push(q, GFP_KERNEL)?;
        }
        Ok(queues)
    }

    /// Connects `nq * 3` queues to `server`, one after another; any failure
    /// tears down what was connected. Bounded by the per-queue timeout.
    pub(crate) fn connect(
        server: Endpoint,
        client: Endpoint,
        nq: u32,
        reconnect_timeout_s: u32,
    ) -> Result<Pin<KBox<Self>>> {
        // Three queues per CPU, as many as the server takes (rdma.rs caps nq).
        let queue_count = nq
            .checked_mul(3)
            .filter(|&n| (1..=protocol::MAX_QUEUES).contains(&n))
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(EINVAL)?;
        // The queues get the controller's final address while it is being
        // initialised; nothing takes `&mut` to it afterwards.
        let ctrl = KBox::pin_init(
            try_pin_init!(&this in Ctrl {
                server,
                client,
                client_id: verbs::random_u64(),
                nq,
                reconnect_timeout_s,
                queue_count,
                queues: Self::new_queues(*nq, this.as_ptr())?,
                pd: OnceSlot::new(),
                region: OnceSlot::new(),
                read_depth: OnceSlot::new(),
                held: OnceSlot::new(),
                state: AtomicU8::new(LIVE),
                ready: AtomicBool::new(false),
                retry: AtomicBool::new(false),
                reconnect_since: AtomicU64::new(0),
                progress: AtomicBool::new(true),
                losses: AtomicU32::new(0),
                parked: Parked::new(),
                parked_work <- Work::new::<Ctrl, PARKED_WORK>(),
                ids_lock <- new_mutex!(()),
                reconnect_work <- Work::new::<Ctrl, RECONNECT_WORK>(),
                users: AtomicU32::new(0),
                teardown <- new_mutex!(Teardown::default()),
                removal_work <- Work::new::<Ctrl, REMOVAL_WORK>(),
                loss_work <- Work::new::<Ctrl, LOSS_WORK>(),
                counters: Counters::default(),
                pages: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )?;
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
        let result = result.and_then(|()| ctrl.alloc_held()).and_then(|()| {
            let mut t = ctrl.teardown.lock();
            if t.removed_early {
                pr_err!(
                    "the RDMA device was removed while connecting to {}\n",
                    server
                );
                return Err(ENODEV);
            }
            if !ctrl.is_live() {
                // A queue already in was lost (`mark_lost` said why): the
                // connect fails and `abort` disconnects every queue.
                return Err(errno::not_connected());
            }
            // Under the teardown lock: device removal cannot free a QP
            // while it is queried.
            if let Some(depth) = ctrl.query_read_depth() {
                let _ = ctrl.read_depth.set(depth);
            }
            t.ready = true;
            ctrl.ready.store(true, Release);
            Ok(())
        });
        if let Err(e) = result {
            ctrl.abort();
            return Err(e);
        }
        Ok(ctrl)
    }

    fn alloc_held(&self) -> Result {
        let words = self.nr_slots().div_ceil(64) as usize;
        // Bounded by the region size `parse_accept` allows; never a warning
        // the server could provoke.
        let mut v = KVVec::with_capacity(words, GFP_KERNEL | __GFP_NOWARN)?;
        for _ in 0..words {
            v.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        self.held.set(v).map_err(|_| EBUSY)
    }

    pub(crate) fn queue_count(&self) -> u16 {
        self.queue_count
    }

    /// Records the region from a queue's accept; every queue must get the same.
    /// (`protocol::parse_accept` checked its size and bounds.)
    pub(crate) fn learn_region(&self, r: Region) -> Result {
        if let Err(r) = self.region.set(r) {
            let first = self.region.get().copied().unwrap_or_default();
            if (first.addr, first.rkey, first.size, first.secret)
                != (r.addr, r.rkey, r.size, r.secret)
            {
                pr_err!(
                    "server {} gave this client two different regions\n",
                    self.server
                );
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

    /// A transfer failed or a connection was lost. With a reconnect
    /// timeout (and a controller that finished connecting), the first
    /// failure starts `reconnect_work` (`RECONNECTING`), and a failure
    /// while reconnecting fails the attempt in progress. Without one, every
    /// operation fails fast from the first failure on (`LOST`): stores go
    /// to the swap device, and pages held remotely read as errors
    /// (SIGBUS). Says nothing after a deliberate disconnect (unload):
    /// nothing is lost then.
    ///
    /// May run in any context (softirq, a CM handler, a QP event): the
    /// work is left to `reconnect_work` or `loss_work`.
    pub(crate) fn mark_lost(&self, why: &str) {
        self.losses.fetch_add(1, SeqCst);
        if !(self.reconnect_timeout_s > 0 && self.ready.load(Acquire)) {
            self.declare_lost(LIVE, why);
            return;
        }
        loop {
            match self
                .state
                .compare_exchange(LIVE, RECONNECTING, SeqCst, Relaxed)
            {
                Ok(_) => {
                    let now = verbs::now_ms();
                    // The timeout counts from the first failure after the
                    // last successful transfer.
                    if self.progress.swap(false, SeqCst) {
                        self.reconnect_since.store(now as u64, SeqCst);
                    }
                    let since = self.reconnect_since.load(SeqCst) as i64;
                    let left =
                        (since + i64::from(self.reconnect_timeout_s) * 1000 - now).max(0) / 1000;
                    pr_err!(
                        "connection to {} failed: {}; reconnecting to {} for up to {} s (new swap-outs go to the swap device, faults on pages held there wait)\n",
                        self.server,
                        why,
                        self.server,
                        left
                    );
                    self.reconnect_work.queue();
                    return;
                }
                Err(RECONNECTING) => {
                    // Fails the attempt in progress. If the worker went
                    // `LIVE` meanwhile (it reads `retry` after that change;
                    // both sides are sequentially consistent, so one sees
                    // the other), start over.
                    self.retry.store(true, SeqCst);
                    if self.state.load(SeqCst) != LIVE {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// A transfer completed: the reconnect timeout of the next outage
    /// counts from that outage. Reads first, so the hot path writes the
    /// shared flag only once per outage.
    pub(crate) fn note_progress(&self) {
        if !self.progress.load(Relaxed) {
            self.progress.store(true, Relaxed);
        }
    }

    /// The server refused a reconnect for good (the session is gone, or
    /// the secret is not taken from here): no later attempt can succeed.
    pub(crate) fn session_refused(&self) {
        self.declare_lost(
            RECONNECTING,
            "the server refused to re-attach this client's session",
        );
    }

    /// The far memory is lost for good (from `from`, `LIVE` or
    /// `RECONNECTING`): stores go to the swap device, and pages held
    /// remotely read as errors (SIGBUS).
    fn declare_lost(&self, from: u8, why: &str) {
        if self
            .state
            .compare_exchange(from, LOST, SeqCst, Relaxed)
            .is_ok()
        {
            pr_err!(
                "far memory server {}: {}; new swap-outs go to the swap device, pages held there are lost\n",
                self.server,
                why
            );
            self.loss_work.queue();
            self.fail_parked();
        }
    }

    pub(crate) fn is_reconnecting(&self) -> bool {
        self.state.load(SeqCst) == RECONNECTING
    }

    /// The session secret to present when connecting: only once the first
    /// connect is done (a reconnect).
    pub(crate) fn session(&self) -> Option<u64> {
        if self.ready.load(Acquire) {
            Some(self.region().secret)
        } else {
            None
        }
    }

    /// Parks a readahead read (failed, or not started, while
    /// reconnecting): its page stays locked until it is read again once
    /// live, or failed once the far memory is lost. If the state changed
    /// meanwhile, whoever changed it may already have taken the parked
    /// reads: hand them on again. Callable from any context; never starts
    /// a transfer itself.
    pub(crate) fn park(&self, ctx: KBox<AsyncRead>) {
        self.parked.push(ctx);
        self.after_park();
    }

    /// What a parked read needs after the state (read after the push, both
    /// sequentially consistent) is known.
    fn after_park(&self) {
        match self.state.load(SeqCst) {
            RECONNECTING => {}
            LIVE => self.parked_work.queue(),
            _ => self.fail_parked(),
        }
    }

    /// Fails every parked read (the far memory is lost, or unload). Any
    /// context; touches no queue.
    fn fail_parked(&self) {
        self.parked.take_all(|ctx| {
            self.count_load(false);
            ctx.into_request().complete(Err(EIO));
        });
    }

    /// `parked_work`: reads every parked read again, one by one, with a
    /// synchronous read under an admitted swap operation (the queue's
    /// resources stay meanwhile). On a failure the rest are parked again:
    /// while live they are retried after a pause, while reconnecting the
    /// worker queues this again once live, and once lost or closing they
    /// fail. A failure that reported a loss (a failed, timed-out or
    /// unpostable transfer) is a reconnect's business: the server holds
    /// the page. One that did not while the controller stays live (a DMA
    /// mapping that keeps failing) is retried for `PARKED_GIVE_UP_MS`;
    /// after that, with one log line, reads that fail are failed (their
    /// pages read as errors) until one succeeds again.
    fn resume_parked(&self) {
        // Since when reads failed while live with no loss reported.
        let mut failing_since: Option<i64> = None;
        let mut giving_up = false;
        loop {
            let losses = self.losses.load(SeqCst);
            let mut stopped = None;
            self.parked.take_all(|ctx| {
                if stopped.is_none() {
                    let r = self.enter().and_then(|_user| {
                        self.queue(Role::SyncRead)?.transfer_sync(
                            ctx.remote_addr(),
                            ctx.page(),
                            false,
                        )
                    });
                    match r {
                        Ok(()) => {
                            failing_since = None;
                            giving_up = false;
                            self.count_load(true);
                            ctx.into_request().complete(Ok(()));
                            return;
                        }
                        Err(_)
                            if giving_up
                                && self.is_live()
                                && self.losses.load(SeqCst) == losses =>
                        {
                            self.count_load(false);
                            ctx.into_request().complete(Err(EIO));
                            return;
                        }
                        Err(e) => stopped = Some(e),
                    }
                }
                self.parked.repark(ctx);
            });
            let Some(e) = stopped else {
                // Reads parked meanwhile queued this work again.
                return;
            };
            match self.state.load(SeqCst) {
                RECONNECTING => return,
                LIVE => {
                    let now = verbs::now_ms();
                    if self.losses.load(SeqCst) != losses {
                        // A loss (and maybe a whole reconnect) meanwhile.
                        failing_since = None;
                    } else {
                        let since = *failing_since.get_or_insert(now);
                        if !giving_up && now - since >= PARKED_GIVE_UP_MS {
                            giving_up = true;
                            pr_err!(
                                "re-reading parked readahead pages from {} has failed for {} s while connected ({:?}): failing those that fail (they read as errors)\n",
                                self.server,
                                PARKED_GIVE_UP_MS / 1000,
                                e
                            );
                        }
                    }
                    verbs::sleep_ms(PARKED_RETRY_MS);
                }
                _ => {
                    self.fail_parked();
                    return;
                }
            }
        }
    }

    /// Waits while the controller reconnects. Uninterruptibly: a task with
    /// a fatal signal (an OOM victim) that gave up would leave the page
    /// locked but not up to date, and every other mapper of it would get
    /// SIGBUS although the server still holds it.
    fn wait_reconnected(&self) {
        while self.is_reconnecting() {
            verbs::sleep_ms(20);
        }
    }

    /// The reconnect worker: tears the connection down and connects every
    /// queue again with the session secret, with a growing delay between
    /// attempts, until it works (`LIVE`), `reconnect_timeout_s` passes
    /// (`LOST`), or unload, device removal or the server's refusal ends it.
    fn reconnect(&self) {
        let since = self.reconnect_since.load(SeqCst) as i64;
        let deadline = since + i64::from(self.reconnect_timeout_s) * 1000;
        let mut delay = RECONNECT_DELAY_MS;
        let mut attempts = 0u32;
        loop {
            {
                let mut t = self.teardown.lock();
                if t.closing || t.released || !self.is_reconnecting() {
                    return;
                }
                // Checked before every attempt, not only between failed
                // ones: a path that carries the CM's traffic but no data
                // reconnects every time, and each first transfer fails
                // again without progress, so the deadline of the first
                // failure after the last successful transfer still holds.
                if verbs::now_ms() >= deadline {
                    self.declare_lost(
                        RECONNECTING,
                        "no reconnect within reconnect_timeout_s (none carried a transfer since the first failure)",
                    );
                    return;
                }
                // The swap operations admitted before the state changed
                // finish with flush errors; loads then wait.
                self.release(true);
                // Until the old ids are gone, their late handlers create
                // nothing.
                t.rebuilding = true;
            }
            let connected = {
                let _ids = self.ids_lock.lock();
                self.destroy_ids();
                {
                    let mut t = self.teardown.lock();
                    t.rebuilding = false;
                }
                self.retry.store(false, SeqCst);
                attempts += 1;
                self.queues.iter().try_for_each(|q| {
                    if !self.is_reconnecting() {
                        return Err(errno::not_connected());
                    }
                    q.as_ref().reconnect().inspect_err(|e| {
                        pr_info!("reconnect to {}: queue {}: {:?}\n", self.server, q.index, e);
                    })
                })
            };
            if connected.is_ok() && !self.retry.load(SeqCst) {
                let t = self.teardown.lock();
                if t.closing || t.released {
                    return;
                }
                if self
                    .state
                    .compare_exchange(RECONNECTING, LIVE, SeqCst, Relaxed)
                    .is_ok()
                {
                    pr_info!(
                        "reconnected to {} after {} ms ({} attempts): far memory in use again\n",
                        self.server,
                        verbs::now_ms() - since,
                        attempts
                    );
                    drop(t);
                    // A queue lost between the check above and the change
                    // to `LIVE` (its `mark_lost` saw `RECONNECTING`):
                    // start over (`mark_lost` may have done so already).
                    if self.retry.load(SeqCst) {
                        self.mark_lost("a queue was lost while reconnecting");
                    }
                    self.parked_work.queue();
                }
                return;
            }
            match connected {
                Err(e) => pr_info!(
                    "reconnect to {}: attempt {} failed ({:?}); next in {} ms\n",
                    self.server,
                    attempts,
                    e,
                    delay
                ),
                Ok(()) => pr_info!(
                    "reconnect to {}: attempt {}: a queue was lost again; next in {} ms\n",
                    self.server,
                    attempts,
                    delay
                ),
            }
            // Wait before the next attempt, watching for unload and the
            // deadline.
            let until = verbs::now_ms() + delay;
            delay = (delay * 2).min(RECONNECT_MAX_DELAY_MS);
            loop {
                let now = verbs::now_ms();
                if now >= deadline {
                    let lost = {
                        let t = self.teardown.lock();
                        !t.closing && !t.released
                    };
                    if lost {
                        self.declare_lost(RECONNECTING, "no reconnect within reconnect_timeout_s");
                    }
                    return;
                }
                if now >= until {
                    break;
                }
                {
                    let t = self.teardown.lock();
                    if t.closing || t.released || !self.is_reconnecting() {
                        return;
                    }
                }
                verbs::sleep_ms(100);
            }
        }
    }

    /// Once the far memory is lost, disconnects every queue and moves its QP
    /// to the error state, so the server sees the whole client go (and
    /// frees its region) even when only one queue failed, and no request
    /// reaches a queue that is still connected. The QPs, CQs and ids stay
    /// for unload (or the device removal) to free.
    fn disconnect_lost(&self) {
        let t = self.teardown.lock();
        // Unload and device removal disconnect (and free) everything
        // themselves; a connect that did not finish is torn down by `abort`.
        if !t.ready || t.closing || t.released {
            return;
        }
        for q in self.queues.iter() {
            q.disconnect();
            q.flush();
        }
        pr_info!("disconnected every queue from {}\n", self.server);
    }

    /// The fewest RDMA reads any read queue may have outstanding, as
    /// negotiated with the server; `None` if a queue could not tell.
    pub(crate) fn read_depth(&self) -> Option<u8> {
        self.read_depth.get().copied()
    }

    /// Asks every read queue's QP for its read depth (may sleep). The
    /// caller holds the teardown lock with the queues connected.
    fn query_read_depth(&self) -> Option<u8> {
        let mut depth = None;
        for q in self.queues.iter().filter(|q| q.role != Role::Write) {
            let d = q.read_depth().ok()?;
            depth = Some(depth.map_or(d, |m: u8| m.min(d)));
        }
        depth
    }

    pub(crate) fn is_live(&self) -> bool {
        self.state.load(Acquire) == LIVE
    }

    /// Admits a swap operation while the controller is live. Pairs with
    /// `wait_for_users`: either the teardown sees this operation counted,
    /// or the operation sees the state the teardown set (both sides use
    /// sequentially consistent accesses).
    fn enter(&self) -> Result<User<'_>> {
        self.users.fetch_add(1, SeqCst);
        let user = User(&self.users);
        if self.state.load(SeqCst) != LIVE {
            return Err(EIO);
        }
        Ok(user)
    }

    /// Waits until no admitted swap operation uses a queue any more. The
    /// state is no longer `LIVE` and the queues are flushed, so the ones
    /// running finish with their flush completions.
    fn wait_for_users(&self) {
        while self.users.load(SeqCst) != 0 {
            verbs::sleep_ms(1);
        }
    }

    fn queue(&self, role: Role) -> Result<&Queue> {
        // Migrating after reading the CPU is harmless: queues serialise
        // their own use.
        let cpu = verbs::this_cpu();
        let index = (cpu % self.nq) * 3 + role as u32;
        self.queues.get(index as usize).map(|q| &**q).ok_or(EINVAL)
    }

    /// The remote address of `slot`'s page: only ever inside the region,
    /// whatever the slot and the region the server gave.
    fn remote_addr(&self, slot: u64) -> Result<u64> {
        let r = self.region();
        let page = u64::from(PAGE_BYTES);
        slot.checked_mul(page)
            .filter(|off| off.checked_add(page).is_some_and(|end| end <= r.size))
            .and_then(|off| r.addr.checked_add(off))
            .ok_or(ENOSPC)
    }

    fn set_held(&self, slot: u64, held: bool) -> bool {
        let Some(bits) = self.held.get() else {
            return false;
        };
        let Some(w) = bits.get((slot / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (slot % 64);
        let old = if held {
            w.fetch_or(bit, Relaxed)
        } else {
            w.fetch_and(!bit, Relaxed)
        };
        (old & bit != 0) != held
    }

    pub(crate) fn store(&self, slot: u64, page: PageRef) -> Result {
        let r = self.enter().and_then(|_user| {
            let a = self.remote_addr(slot)?;
            self.queue(Role::Write)?.transfer_sync(a, page, true)
        });
        if r.is_ok() && self.set_held(slot, true) {
            self.pages.fetch_add(1, Relaxed);
        }
        self.counters.store(r.is_ok());
        r
    }

    /// Reads a page back (the faulting page). While the controller
    /// reconnects, waits uninterruptibly (see `wait_reconnected`) and reads
    /// again: a transfer that failed with the outage is retried, not
    /// reported. Fails only once the far memory is lost (or on unload).
    pub(crate) fn load(&self, slot: u64, page: PageRef) -> Result {
        let r = loop {
            self.wait_reconnected();
            let losses = self.losses.load(SeqCst);
            let r = self.enter().and_then(|_user| {
                let a = self.remote_addr(slot)?;
                self.queue(Role::SyncRead)?.transfer_sync(a, page, false)
            });
            if r.is_err() {
                // Retried while the outage lasts, and after a loss reported
                // since the attempt began (the reconnect may already be
                // done); not once lost or closing.
                match self.state.load(SeqCst) {
                    RECONNECTING => continue,
                    LIVE if self.losses.load(SeqCst) != losses => continue,
                    _ => {}
                }
            }
            break r;
        };
        self.count_load(r.is_ok());
        r
    }

    /// Starts a readahead read. While the controller reconnects it is
    /// parked, not started (no DMA mapping, no post): read once
    /// reconnected, failed once lost.
    pub(crate) fn load_async(
        &self,
        slot: u64,
        req: AsyncLoad,
    ) -> core::result::Result<(), (Error, AsyncLoad)> {
        let addr = match self.remote_addr(slot) {
            Ok(a) => a,
            Err(e) => return Err((e, req)),
        };
        let q = match self.queue(Role::AsyncRead) {
            Ok(q) => q,
            Err(e) => return Err((e, req)),
        };
        if self.is_reconnecting() {
            // `park` hands it on if the state changed meanwhile.
            return q.park_read(addr, req);
        }
        let _user = match self.enter() {
            Ok(u) => u,
            Err(e) => return Err((e, req)),
        };
        // The user stays admitted until the read is posted (or not): the
        // queue's resources stay meanwhile.
        q.read_async(addr, req)
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

    /// Runs `f`, which creates a queue's RDMA resources, unless a teardown
    /// started or the reconnect worker is destroying the old ids (a late
    /// handler of one of them): resources created then would never be
    /// freed.
    pub(crate) fn create_resources(&self, f: impl FnOnce() -> Result) -> Result {
        let t = self.teardown.lock();
        if t.closing || t.released || t.rebuilding {
            return Err(errno::not_connected());
        }
        f()
    }

    /// Called by the CM (from the thread removing the device) with
    /// `RDMA_CM_EVENT_DEVICE_REMOVAL` for each queue's id. rdma_cm waits
    /// until every id on the device is destroyed, and the device (with our
    /// PD, CQs, QPs and DMA mappings on it) is freed right after: so
    /// everything but the ids is released here, before the handler returns.
    ///
    /// The ids themselves are destroyed by `removal_work`, and the handler
    /// returns 0. rdma_destroy_id cannot be called from the handler of its
    /// own id (it waits for that handler), and handing the id back to the
    /// CM by returning non-zero would leave our pointer to it dangling
    /// while other contexts may still look at it (unload, the other queues'
    /// removal events), and let the handler's tail race with unload freeing
    /// the queue. Destroying every id ourselves keeps one rule: once
    /// rdma_destroy_id returned, no handler runs for that id, so the
    /// controller may be freed. The work item waits for nothing the removal
    /// thread holds (the teardown lock is never held while destroying an
    /// id), so the removal completes as soon as the work ran.
    pub(crate) fn device_removed(&self) {
        let mut t = self.teardown.lock();
        if !t.ready {
            // Still connecting: `connect` sees this and fails.
            t.removed_early = true;
            return;
        }
        if t.closing {
            // Unload releases everything and destroys the ids itself.
            return;
        }
        self.declare_lost(LIVE, "RDMA device removed");
        self.declare_lost(RECONNECTING, "RDMA device removed");
        if !t.released {
            t.released = true;
            self.release(true);
        }
        self.removal_work.queue();
    }

    /// Frees every QP, CQ and the PD, leaving the ids. With `drain`, first
    /// stops the data path: flushes every queue, waits for the swap
    /// operations in progress to finish, and drains every QP, so no
    /// request, completion or DMA mapping refers to the queues afterwards.
    /// Without it, nothing may ever have been posted. The caller holds the
    /// teardown lock (no resource is created meanwhile, and no id is taken
    /// out of its slot) with the state not `LIVE`.
    fn release(&self, drain: bool) {
        for q in self.queues.iter() {
            q.disconnect();
            q.flush();
        }
        if drain {
            self.wait_for_users();
            for q in self.queues.iter() {
                // SAFETY: the state is not `LIVE`, so no swap operation is
                // admitted any more, and the ones admitted before are done
                // (`wait_for_users`): nothing else polls or posts.
                unsafe { q.drain() };
            }
        }
        for q in self.queues.iter() {
            // SAFETY: drained (or never used), and no handler creates
            // resources meanwhile: the caller holds the teardown lock, and
            // afterwards `released` or `rebuilding` (the reconnect worker,
            // until the old ids are destroyed) makes `create_resources`
            // refuse; the worker's own new queues connect only after that.
            unsafe { q.free_resources() };
        }
        // SAFETY: every queue's QP is gone; no `get` of the PD is live (the
        // data path is closed, and every creator runs under the teardown
        // lock, held by the caller).
        if let Some(pd) = unsafe { self.pd.take() } {
            pd.free();
        }
    }

    /// Takes `q`'s id out of its slot under the teardown lock (so no
    /// `release`, `disconnect_lost` or read-depth query reads it
    /// meanwhile) and destroys it after dropping that lock:
    /// `rdma_destroy_id` waits for the id's running handler, which may
    /// take the teardown lock. The caller holds `ids_lock` and the data
    /// path is closed (state not `LIVE`, its users waited for).
    fn destroy_id(&self, q: &Queue) {
        let id: Option<CmId> = {
            let _t = self.teardown.lock();
            // SAFETY: under the teardown lock, with `ids_lock` held (no
            // connect runs on the queue) and the data path closed (caller).
            unsafe { q.take_id() }
        };
        if let Some(id) = id {
            // Destroys the id's QP first if a handler created one after the
            // last `release` (not after `rebuilding` or `released` is set).
            id.destroy();
        }
    }

    /// Destroys every queue's CM id that still exists. Waits for running
    /// event handlers; none runs afterwards. The caller holds `ids_lock`,
    /// after a `release` (the data path no longer reads the ids), and not
    /// from a CM handler.
    fn destroy_ids(&self) {
        for q in self.queues.iter() {
            self.destroy_id(q);
        }
    }

    /// Tears down a controller whose connect failed.
    fn abort(&self) {
        {
            let mut t = self.teardown.lock();
            t.closing = true;
            t.released = true;
            let _ = self.state.compare_exchange(LIVE, CLOSING, SeqCst, Relaxed);
        }
        // No swap operation ever ran, and handlers create no resource once
        // `closing` is set.
        {
            let _t = self.teardown.lock();
            self.release(false);
        }
        {
            let _ids = self.ids_lock.lock();
            self.destroy_ids();
        }
        // A loss during the connect may have queued it, as late as the last
        // CM handler or QP event; it does nothing now (`closing`).
        self.loss_work.cancel_sync();
    }

    /// Disconnects every queue and frees the RDMA resources (module unload).
    /// After a device removal only what is left (the ids, if the removal
    /// work has not run yet) is destroyed: the device's resources are gone.
    pub(crate) fn shutdown(&self) {
        // Whether the server may still hold the session: then it is told to
        // free the region now rather than keep it for a reconnect.
        let close;
        {
            let mut t = self.teardown.lock();
            // Not after a device removal (`released`): no device to send on.
            // Also after the reconnect timeout (`LOST`): the server may
            // still keep the region for its reconnect linger time.
            close = t.ready && !t.released;
            t.closing = true;
            // A deliberate disconnect: the DISCONNECTED events it causes are
            // not a loss.
            let _ = self.state.compare_exchange(LIVE, CLOSING, SeqCst, Relaxed);
            let _ = self
                .state
                .compare_exchange(RECONNECTING, CLOSING, SeqCst, Relaxed);
        }
        {
            // The reconnect worker destroys and creates ids under
            // `ids_lock` only: wait for the attempt in progress (it stops
            // at its next queue now that the state is `CLOSING`, within one
            // connect timeout) before `release` reads the ids. Lock order:
            // `ids_lock`, then `teardown`; nothing takes them the other way.
            let _ids = self.ids_lock.lock();
            let mut t = self.teardown.lock();
            if !t.released {
                t.released = true;
                self.release(true);
            }
        }
        // Sees `closing` at its next check, and creates nothing meanwhile.
        self.reconnect_work.cancel_sync();
        // Nothing parks any more (the data path and the QPs are drained) and
        // nothing queues this (the state is not `LIVE`): the reads still
        // parked fail now.
        self.parked_work.cancel_sync();
        self.fail_parked();
        // No removal queues it again now that `closing` is set.
        self.removal_work.cancel_sync();
        {
            let _ids = self.ids_lock.lock();
            self.destroy_ids();
            if close {
                if let Some(q) = self.queues.first() {
                    match q.as_ref().close_session(CLOSE_TIMEOUT_MS) {
                        Ok(()) => pr_info!("closed the session with {}: the server freed the region\n", self.server),
                        Err(e) => pr_info!(
                            "could not close the session with {} ({:?}): the server keeps the region until its reconnect linger time passes\n",
                            self.server,
                            e
                        ),
                    }
                    // Under `ids_lock`; not from a CM handler; the data
                    // path is closed.
                    self.destroy_id(q);
                }
            }
        }
        // The state left `LIVE` under the lock above, but a `mark_lost`
        // that won before may queue the loss work as late as its CM handler
        // (waited for by `destroy_ids`) or its swap operation (waited for by
        // `release`): cancel it only now. It does nothing now (`closing`).
        // The same holds for the reconnect work (queued by a `mark_lost`
        // that won the change to `RECONNECTING` before): it returns at
        // once (`closing`); and the parked work (the state never returns
        // to `LIVE`), which fails what is parked.
        self.reconnect_work.cancel_sync();
        self.parked_work.cancel_sync();
        self.loss_work.cancel_sync();
    }
}
