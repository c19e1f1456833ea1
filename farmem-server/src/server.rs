//! The event loop: accept queues, hand each client its region, clean up
//! when clients go away, stop on SIGINT/SIGTERM.
//!
//! Nothing on the loop blocks: a new client's region is registered on a
//! blocking thread while the loop goes on serving other clients, timers and
//! signals; the client's joins wait for it (see `clients`).
//!
//! Clients that vanish without a word (power lost, network cut) are found
//! by keep-alive probes and by the errors the RDMA devices report on their
//! queue pairs (see `liveness`); after the grace period they are
//! disconnected and their regions freed.
//!
//! An RDMA device that goes away takes everything the server has on it:
//! the listener bound to it, its clients' queues and regions, lingering
//! sessions too; then the server lets librdmacm close the device (see
//! `verbs::Devices`), so that the removal, which waits for that with some
//! drivers, can finish. A `--bind` listener listens again once its address
//! can be bound.

use crate::budget;
use crate::liveness::{self, Answer, Dead, Liveness, Probe};
use crate::logging::{RateLimit, ShortId};
use crate::peer::Peer;
use crate::protocol::{self, AcceptReply, ConnectRequest, Status};
use crate::registry::{Admit, Expired, Limits, Registered, Registry};
use crate::system;
use crate::verbs::{
    AsyncEvent, AsyncEvents, AsyncTarget, CmEvent, CmId, Completion, Device, Devices, EventChannel,
    EventKind, GoneDevice, Region,
};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::task::{self, JoinError, JoinSet};
use tracing::{debug, error, info, warn};

/// Connect requests the CM queues for the listener.
const BACKLOG: i32 = 128;
/// Retrying to listen after the listener's device or address went away:
/// first after this long, doubling up to `RELISTEN_MAX`.
const RELISTEN_FIRST: Duration = Duration::from_secs(1);
const RELISTEN_MAX: Duration = Duration::from_secs(30);
/// How often the RDMA devices the server holds are checked for removal
/// (besides the RDMA CM's device removal events, which only ids bound to
/// the device get: a wildcard listener with lingering sessions gets none).
const DEVICE_POLL: Duration = Duration::from_secs(2);

/// Reject lines logged per window; the rest are counted.
const REJECT_LOG_BURST: u32 = 20;
const REJECT_LOG_WINDOW: Duration = Duration::from_secs(10);

/// While keep-alive probes are unanswered, their completion queues are
/// polled this often. A probe to a live client completes within
/// milliseconds; one to a dead client fails once the transport has given up
/// retrying (seconds).
const PROBE_POLL: Duration = Duration::from_millis(200);

pub struct Config {
    pub addr: SocketAddrV4,
    pub limits: Limits,
    /// Keep-alive probing and dead clients' release; None when it is off.
    pub liveness: Option<liveness::Config>,
}

/// Why the server stopped (its exit status: crate::exit and main.rs).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The RDMA CM cannot be opened: no RDMA device, or no rdma_ucm.
    #[error("cannot open the RDMA connection manager: {0} (is an RDMA device up and rdma_ucm loaded? try `rdma link`)")]
    NoRdma(io::Error),
    #[error("cannot set up the RDMA listener on {addr}: {source} (is an RDMA device up? try `rdma link`)")]
    Listen {
        addr: SocketAddrV4,
        source: io::Error,
    },
    #[error("RDMA event channel failed: {0}")]
    Events(io::Error),
}

/// A connected (accepted) queue.
struct Conn {
    id: CmId,
    client_id: u64,
    queue: u16,
    queue_count: u16,
    peer: Peer,
    region_mib: u64,
    /// The RDMA device (context) the connection is on.
    device: Option<usize>,
}

impl Conn {
    fn who(&self) -> String {
        who(self.client_id, &self.peer)
    }
}

fn who(client_id: u64, peer: &Peer) -> String {
    format!("client {} from {peer}", ShortId::of(client_id))
}

/// A join waiting for its client's region.
struct Join {
    id: CmId,
    queue_count: u16,
    /// The client's protocol version: the accept is sent in it.
    version: u16,
}

/// A finished registration, from its blocking thread.
struct Registration {
    client_id: u64,
    ticket: u64,
    /// The device it registers on, as `Device::key`.
    device: usize,
    result: io::Result<Region>,
    took: Duration,
}

/// The listening id. It is lost when its device goes away (only an id
/// bound to an address has a device: a wildcard listener is kept on every
/// device by the CM itself), and is made again, with backoff, until the
/// address can be bound again.
struct Listener {
    addr: SocketAddrV4,
    id: Option<CmId>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Listener {
    fn start(channel: &EventChannel, addr: SocketAddrV4) -> Result<Self, ServerError> {
        let id = channel
            .listen(addr, BACKLOG)
            .map_err(|source| ServerError::Listen { addr, source })?;
        Ok(Self {
            addr,
            id: Some(id),
            retry_at: None,
            backoff: RELISTEN_FIRST,
        })
    }

    fn is(&self, key: usize) -> bool {
        self.id.as_ref().is_some_and(|id| id.key() == key)
    }

    /// The device of a listener bound to an address (a wildcard listener
    /// has none).
    fn device(&self) -> Option<usize> {
        self.id.as_ref().and_then(|id| id.device()).map(|d| d.key())
    }

    /// Drops the listening id and schedules listening again after `after`.
    fn drop_and_retry(&mut self, now: Instant, after: Duration) {
        self.id = None;
        self.backoff = RELISTEN_FIRST;
        self.retry_at = Some(now + after);
    }

    /// Listens again if it is time to; true once it does.
    fn retry(&mut self, channel: &EventChannel, now: Instant) -> bool {
        match self.retry_at {
            Some(t) if t <= now => {}
            _ => return false,
        }
        match channel.listen(self.addr, BACKLOG) {
            Ok(id) => {
                info!(
                    "listening on port {} (address {}) again",
                    self.addr.port(),
                    self.addr.ip()
                );
                self.id = Some(id);
                self.retry_at = None;
                true
            }
            Err(e) => {
                warn!(
                    "cannot listen on {} yet: {e}; trying again in {} s",
                    self.addr,
                    self.backoff.as_secs()
                );
                self.retry_at = Some(now + self.backoff);
                self.backoff = next_backoff(self.backoff);
                false
            }
        }
    }
}

fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(RELISTEN_MAX)
}

/// A device's asynchronous events, read while connections use the device.
struct Watcher {
    device: usize,
    events: AsyncEvents,
    fd: AsyncFd<RawFd>,
    conns: usize,
}

/// What reading the devices' events gave.
enum DeviceEvent {
    Event(AsyncEvent),
    /// Reading this device's events failed: it is no longer watched.
    Failed(usize, io::Error),
}

/// The devices whose asynchronous events are read: each one from its first
/// connection until its last is gone (the device context is only valid
/// while some connection on it exists).
#[derive(Default)]
struct Watchers(Vec<Watcher>);

impl Watchers {
    /// A connection on `device` is made.
    fn hold(&mut self, device: &Device) {
        let key = device.key();
        if let Some(w) = self.0.iter_mut().find(|w| w.device == key) {
            w.conns += 1;
            return;
        }
        let watched = AsyncEvents::new(device).and_then(|events| {
            // SAFETY: the descriptor belongs to the device context, which
            // stays open while a connection on the device exists; the
            // watcher (and this AsyncFd) goes before the device's last
            // connection (`release`, and the Server's field order).
            let fd = unsafe { register_readable(events.fd()) }?;
            Ok((events, fd))
        });
        match watched {
            Ok((events, fd)) => self.0.push(Watcher {
                device: key,
                events,
                fd,
                conns: 1,
            }),
            Err(e) => warn!(
                "cannot read the RDMA device's asynchronous events ({e}); queue pair errors are found by keep-alives only"
            ),
        }
    }

    /// A connection on `device` is about to go: the device's last
    /// connection ends its watch.
    fn release(&mut self, device: Option<usize>) {
        let Some(key) = device else {
            return;
        };
        if let Some(i) = self.0.iter().position(|w| w.device == key) {
            self.0[i].conns -= 1;
            if self.0[i].conns == 0 {
                self.0.swap_remove(i);
            }
        }
    }

    fn stop(&mut self, device: usize) {
        self.0.retain(|w| w.device != device);
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Waits for events on any watched device and returns all of them, each
    /// already acknowledged.
    async fn next(&self) -> Vec<DeviceEvent> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Vec<DeviceEvent>> {
        let mut out = Vec::new();
        for w in &self.0 {
            // Until the descriptor is not ready: that registers the wakeup.
            loop {
                let mut guard = match w.fd.poll_read_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(g)) => g,
                    Poll::Ready(Err(e)) => {
                        out.push(DeviceEvent::Failed(w.device, e));
                        break;
                    }
                };
                match drain(&w.events, &mut out) {
                    Ok(()) => guard.clear_ready(),
                    Err(e) => {
                        out.push(DeviceEvent::Failed(w.device, e));
                        break;
                    }
                }
            }
        }
        if out.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(out)
        }
    }
}

/// Registers a descriptor the caller keeps open, for readability only.
///
/// # Safety
///
/// `fd` must stay open, as the same file, until the returned AsyncFd is
/// dropped.
unsafe fn register_readable(fd: RawFd) -> io::Result<AsyncFd<RawFd>> {
    // SAFETY: upheld by the caller.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Reads every pending event of a device.
fn drain(events: &AsyncEvents, out: &mut Vec<DeviceEvent>) -> io::Result<()> {
    while let Some(ev) = events.next_event()? {
        out.push(DeviceEvent::Event(ev));
    }
    Ok(())
}

struct Server {
    listener: Listener,
    reject_log: RateLimit,
    /// Registrations running on blocking threads, and whose they are
    /// (client, ticket, device).
    jobs: JoinSet<Registration>,
    job_owner: HashMap<task::Id, (u64, u64, usize)>,
    liveness: Option<Liveness<usize>>,
    /// When to poll the CQs of unanswered probes next.
    poll_at: Option<Instant>,
    /// Removed devices the server has freed everything on (but for
    /// registrations still running there), by key, with their names:
    /// released (`Devices::resync`) once no registration runs there.
    removed: HashMap<usize, String>,
    /// A device the server does not hold yet has an id of ours on it.
    resync: bool,
    /// When to check the held devices for removal next.
    devices_at: Instant,
    // Field order is drop order: device watches before the connections
    // that keep their devices open, connections (QPs) before regions (PDs),
    // and the devices last.
    watchers: Watchers,
    conns: HashMap<usize, Conn>,
    clients: Registry<Region, Join>,
    devices: Devices,
}

pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let channel = EventChannel::new().map_err(ServerError::NoRdma)?;
    let listener = Listener::start(&channel, cfg.addr)?;
    // SAFETY: the channel's descriptor stays open until `channel` is dropped,
    // which happens after `fd` below.
    let fd = unsafe { AsyncFd::register(channel.fd()) }
        .map_err(|e| ServerError::Events(io::Error::other(e.to_string())))?;
    let l = cfg.limits;
    let keepalive = match cfg.liveness {
        Some(k) => format!(
            "keep-alive every {} s, a client silent for {} s is dead",
            k.interval.as_secs(),
            k.grace.as_secs()
        ),
        None => "keep-alives off".to_string(),
    };
    info!(
        "listening on port {} (address {}): {} MiB per client, memory budget {} MiB, at most {} clients, {} per address, {} s to join all queues, {keepalive}, {} s to reconnect",
        cfg.addr.port(),
        cfg.addr.ip(),
        l.region_size >> 20,
        l.budget >> 20,
        l.max_clients,
        l.max_per_peer,
        l.join_deadline.as_secs(),
        l.linger.as_secs()
    );

    let mut server = Server {
        listener,
        reject_log: RateLimit::new(REJECT_LOG_BURST, REJECT_LOG_WINDOW),
        jobs: JoinSet::new(),
        job_owner: HashMap::new(),
        liveness: cfg.liveness.map(Liveness::new),
        poll_at: None,
        removed: HashMap::new(),
        resync: false,
        devices_at: Instant::now() + DEVICE_POLL,
        watchers: Watchers::default(),
        conns: HashMap::new(),
        clients: Registry::new(cfg.limits),
        devices: Devices::hold(),
    };
    tokio::pin!(shutdown);
    let result = loop {
        let wake = [
            server.reject_log.flush_at(),
            server.clients.next_deadline(),
            server.listener.retry_at,
            server.liveness.as_ref().and_then(|l| l.next_deadline()),
            server.poll_at,
            Some(server.devices_at),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = sleep_until(wake), if wake.is_some() => server.tick(&channel),
            Some(done) = server.jobs.join_next_with_id(), if !server.jobs.is_empty() => {
                server.registration_done(done, true);
            }
            events = server.watchers.next(), if !server.watchers.is_empty() => {
                server.device_events(events);
            }
            ready = fd.readable() => {
                let mut guard = match ready {
                    Ok(g) => g,
                    Err(e) => break Err(ServerError::Events(e)),
                };
                loop {
                    match channel.next_event() {
                        Ok(Some(ev)) => server.handle(ev),
                        Ok(None) => break,
                        Err(e) => {
                            error!("reading RDMA CM event: {e}");
                            break;
                        }
                    }
                }
                guard.clear_ready();
            }
        }
    };
    info!(
        "shutting down: {} client(s), {} queue(s) connected",
        server.clients.len(),
        server.conns.len()
    );
    // A registration still running uses its device through the ids of the
    // joins waiting for it: let it finish, then refuse those joins.
    if !server.jobs.is_empty() {
        info!(
            "waiting for {} region registration(s) to finish",
            server.jobs.len()
        );
    }
    while let Some(done) = server.jobs.join_next_with_id().await {
        server.registration_done(done, false);
    }
    for c in server.conns.values() {
        c.id.disconnect();
    }
    drop(server); // its ids, the listener's too, before the channel
    drop(fd);
    drop(channel);
    result
}

impl Server {
    fn handle(&mut self, ev: CmEvent) {
        match ev.kind() {
            EventKind::ConnectRequest => {
                let data = ev.private_data().to_vec();
                let id = ev.take_conn_id();
                drop(ev); // ack before acting on (or destroying) the new id
                if let Some(id) = id {
                    self.connect_request(id, &data);
                }
            }
            EventKind::Established => {
                let key = ev.id_key();
                if let Some(c) = self.conns.get(&key) {
                    // The read depth as the QP has it: what the client's
                    // readahead can keep in flight on this queue.
                    let depth = match c.id.read_depth() {
                        Ok(d) => d.to_string(),
                        Err(e) => format!("unknown ({e})"),
                    };
                    info!(
                        "{}: queue {}/{} connected ({} MiB region, read depth {depth})",
                        c.who(),
                        c.queue + 1,
                        c.queue_count,
                        c.region_mib
                    );
                    if let Some(l) = &mut self.liveness {
                        l.established(c.client_id, key, Instant::now());
                    }
                }
            }
            EventKind::Disconnected | EventKind::TimewaitExit => {
                let key = ev.id_key();
                drop(ev);
                self.disconnected(key);
            }
            EventKind::DeviceRemoval | EventKind::AddrChange if self.listener.is(ev.id_key()) => {
                let removal = ev.kind() == EventKind::DeviceRemoval;
                drop(ev); // acked before its id is destroyed
                let now = Instant::now();
                if removal {
                    warn!(
                        "the RDMA device of the listener on {} is being removed; listening again once the address can be bound",
                        self.listener.addr
                    );
                    self.listener.drop_and_retry(now, RELISTEN_FIRST);
                    // Everything else of ours on the device goes too.
                    self.check_devices();
                } else {
                    warn!(
                        "the address of the listener on {} changed; listening on it again",
                        self.listener.addr
                    );
                    self.listener.drop_and_retry(now, Duration::ZERO);
                }
            }
            EventKind::AddrChange => {
                // A hint (bonding failover, say): the connection goes on.
                if let Some(c) = self.conns.get(&ev.id_key()) {
                    info!(
                        "{}: queue {}/{}: address change on its device",
                        c.who(),
                        c.queue + 1,
                        c.queue_count
                    );
                }
            }
            // (The events of outgoing connections, which the server
            // does not make, are taken as any other.)
            EventKind::DeviceRemoval
            | EventKind::AddrResolved
            | EventKind::RouteResolved
            | EventKind::Rejected
            | EventKind::Other(_) => {
                let name = ev.name();
                let key = ev.id_key();
                let removal = ev.kind() == EventKind::DeviceRemoval;
                drop(ev);
                if removal {
                    // Frees everything of ours on the device (this queue
                    // too) once libibverbs no longer lists it, which it
                    // does not from the removal's start on.
                    self.check_devices();
                }
                match self.conns.get(&key) {
                    Some(c) => {
                        warn!(
                            "{}: queue {}/{}: {name}; dropping the queue",
                            c.who(),
                            c.queue + 1,
                            c.queue_count
                        );
                        self.disconnected(key);
                    }
                    None => debug!("RDMA CM event {name} for no connection"),
                }
            }
        }
    }

    fn connect_request(&mut self, id: CmId, data: &[u8]) {
        self.track(id.device().map(|d| d.key()));
        let peer = id.peer();
        let req = match ConnectRequest::decode(data) {
            Ok(r) => r,
            Err(status) => return self.reject(id, status, &peer, None),
        };
        if req.close {
            return self.close_session(id, &req, peer);
        }
        // Lingering sessions that would keep a new client out go first.
        for e in self.clients.make_room(&req, peer) {
            self.evicted_lingering(e, &req, &peer);
        }
        let size = self.clients.limits().region_size;
        // Only a new client's queue 0 needs the device (and memory now).
        let device = id.device();
        let join = Join {
            id,
            queue_count: req.queue_count,
            version: req.version,
        };
        // An existing client's session secret, for the accepts below (only
        // existing clients are accepted or re-attached here); a new
        // client's is drawn only once the limits admitted it.
        let secret = self.clients.secret(req.client_id).unwrap_or(0);
        let client_id = req.client_id;
        let new_secret = || {
            system::random_u64().map_err(|e| {
                error!(
                    "{}: cannot draw a session secret: {e}",
                    who(client_id, &peer)
                );
                Status::NoMemory
            })
        };
        let admitted = self
            .clients
            .admit(&req, peer, join, new_secret, |unpinned| {
                fits_now(&req, &peer, size, unpinned)
            });
        match admitted {
            Err((status, join)) => self.reject(join.id, status, &peer, Some(&req)),
            Ok(Admit::Wait) => debug!(
                "{}: queue {}/{} waits for the region",
                who(req.client_id, &peer),
                req.queue + 1,
                req.queue_count
            ),
            Ok(Admit::Reattach {
                join,
                region,
                replaced,
            }) => {
                if replaced {
                    // The server still held this queue's old connection
                    // (it had not noticed the outage): drop it without
                    // releasing the queue; its late events find no conn.
                    let old: Vec<usize> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| c.client_id == req.client_id && c.queue == req.queue)
                        .map(|(k, _)| *k)
                        .collect();
                    for k in old {
                        if let Some(c) = self.conns.remove(&k) {
                            if let Some(l) = &mut self.liveness {
                                l.remove_queue(k);
                            }
                            self.watchers.release(c.device);
                            c.id.disconnect();
                            drop(c);
                        }
                    }
                }
                info!(
                    "{}: queue {}/{} re-attached to its region ({} MiB) with its session secret{}",
                    who(req.client_id, &peer),
                    req.queue + 1,
                    req.queue_count,
                    region.size() >> 20,
                    if replaced {
                        ", replacing its old connection"
                    } else {
                        ""
                    }
                );
                let reply = reply(region, secret);
                let id = accept(
                    &mut self.conns,
                    &mut self.watchers,
                    join,
                    req.client_id,
                    req.queue,
                    peer,
                    region,
                    &reply,
                );
                if let Some(id) = id {
                    self.accept_failed(id, req.client_id, req.queue, &peer);
                } else {
                    self.check_complete(req.client_id, &peer, req.queue_count);
                }
            }
            Ok(Admit::Accept(join, region)) => {
                let reply = reply(region, secret);
                let id = accept(
                    &mut self.conns,
                    &mut self.watchers,
                    join,
                    req.client_id,
                    req.queue,
                    peer,
                    region,
                    &reply,
                );
                if let Some(id) = id {
                    self.accept_failed(id, req.client_id, req.queue, &peer);
                } else {
                    self.check_complete(req.client_id, &peer, req.queue_count);
                }
            }
            Ok(Admit::Register { ticket }) => {
                let Some(device) = device else {
                    // Cannot happen for a connect request's id; undo.
                    error!(
                        "{}: connection has no RDMA device",
                        who(req.client_id, &peer)
                    );
                    self.registration_finished(
                        req.client_id,
                        ticket,
                        Err(io::Error::other("no device")),
                        Duration::ZERO,
                        true,
                        None,
                    );
                    return;
                };
                let client_id = req.client_id;
                let device_key = device.key();
                // A CQ entry per queue pair: a probe at a time on each.
                let cq_entries = i32::from(req.queue_count) + 1;
                let handle = self.jobs.spawn_blocking(move || {
                    let started = Instant::now();
                    let result = Region::new(&device, size as usize, cq_entries);
                    Registration {
                        client_id,
                        ticket,
                        device: device_key,
                        result,
                        took: started.elapsed(),
                    }
                });
                self.job_owner
                    .insert(handle.id(), (client_id, ticket, device_key));
                debug!(
                    "{}: registering a {} MiB region ({} queues)",
                    who(client_id, &peer),
                    size >> 20,
                    req.queue_count
                );
            }
        }
    }

    /// A registration thread is done (or died): accept or refuse the joins
    /// waiting for it. At shutdown (`serve` false) they are refused.
    fn registration_done(
        &mut self,
        done: Result<(task::Id, Registration), JoinError>,
        serve: bool,
    ) {
        let device = match done {
            Ok((task, r)) => {
                self.job_owner.remove(&task);
                let removed = self.removed.get(&r.device).cloned();
                self.registration_finished(r.client_id, r.ticket, r.result, r.took, serve, removed);
                r.device
            }
            Err(e) => {
                let Some((client_id, ticket, device)) = self.job_owner.remove(&e.id()) else {
                    error!("a region registration failed: {e}");
                    return;
                };
                let err = io::Error::other(format!("registration thread failed: {e}"));
                let removed = self.removed.get(&device).cloned();
                self.registration_finished(
                    client_id,
                    ticket,
                    Err(err),
                    Duration::ZERO,
                    serve,
                    removed,
                );
                device
            }
        };
        if self.removed.contains_key(&device) {
            // The last registration on a removed device lets it go.
            self.check_devices();
        }
    }

    /// A registration is done: the client's waiting joins are accepted,
    /// or refused when it failed, the server is shutting down (`serve`
    /// false) or the device was removed meanwhile (`removed`: its name).
    fn registration_finished(
        &mut self,
        client_id: u64,
        ticket: u64,
        result: io::Result<Region>,
        took: Duration,
        serve: bool,
        removed: Option<String>,
    ) {
        let size = self.clients.limits().region_size;
        // A region registered on a device that went away meanwhile.
        let mut freed = None;
        let (region, err) = match result {
            Ok(r) if removed.is_some() => {
                freed = Some(r);
                (None, None)
            }
            Ok(r) if serve => (Some(r), None),
            Ok(_) => (None, Some("the server is shutting down".to_string())),
            Err(e) => (None, Some(e.to_string())),
        };
        let (used, budget) = (self.clients.used(), self.clients.limits().budget);
        let secret = self.clients.secret(client_id).unwrap_or_default();
        match self
            .clients
            .registered(client_id, ticket, region, Instant::now())
        {
            Registered::Ready { region, waiting } => {
                let peer = waiting.first().map(|(_, j)| j.id.peer()).unwrap_or(Peer {
                    ip: None,
                    gid: [0; 16],
                });
                info!(
                    "{}: registered {} MiB region in {:.1} s ({} queues; {} of {} MiB in use)",
                    who(client_id, &peer),
                    region.size() >> 20,
                    took.as_secs_f64(),
                    waiting.first().map_or(0, |(_, j)| j.queue_count),
                    used >> 20,
                    budget >> 20
                );
                let reply = reply(region, secret);
                let queue_count = waiting.first().map_or(0, |(_, j)| j.queue_count);
                let mut failed = Vec::new();
                for (queue, join) in waiting {
                    let peer = join.id.peer();
                    if let Some(id) = accept(
                        &mut self.conns,
                        &mut self.watchers,
                        join,
                        client_id,
                        queue,
                        peer,
                        region,
                        &reply,
                    ) {
                        failed.push((id, queue, peer));
                    }
                }
                for (id, queue, peer) in failed {
                    self.accept_failed(id, client_id, queue, &peer);
                }
                self.check_complete(client_id, &peer, queue_count);
            }
            Registered::Failed { peer, waiting } => {
                let why = err.unwrap_or_default();
                if let Some(name) = &removed {
                    let what = match &freed {
                        Some(r) => format!("freed {} MiB region", r.size() >> 20),
                        None => format!("its registration failed ({why})"),
                    };
                    warn!(
                        "{}: {what}: its RDMA device {name} was removed while the region was being registered; refused its queues ({} of {} MiB in use)",
                        who(client_id, &peer),
                        self.clients.used() >> 20,
                        self.clients.limits().budget >> 20
                    );
                } else if serve {
                    error!(
                        "{}: cannot register {} MiB: {why}",
                        who(client_id, &peer),
                        size >> 20
                    );
                } else {
                    info!("{}: refused: {why}", who(client_id, &peer));
                }
                for (_, join) in waiting {
                    join.id.reject(&protocol::encode_reject(Status::NoMemory));
                }
                drop(freed); // after the joins' ids
            }
            Registered::Stale(region) => {
                debug!(
                    "client {}: registration {ticket} no longer awaited",
                    ShortId::of(client_id)
                );
                drop(region);
            }
        }
    }

    /// A queue whose accept failed: the client learns why instead of
    /// waiting for its timeout (if the kernel's part of the accept failed,
    /// it has already sent a reject without a reason, and this one is a
    /// no-op). Then the queue is released.
    fn accept_failed(&mut self, id: CmId, client_id: u64, queue: u16, peer: &Peer) {
        id.reject(&protocol::encode_reject(Status::AcceptFailed));
        drop(id);
        self.release(client_id, queue, peer);
    }

    /// Refuses a connection with a reason the client logs, and logs it at
    /// a bounded rate (a flood of bad requests must not flood the log).
    fn reject(&mut self, id: CmId, status: Status, peer: &Peer, req: Option<&ConnectRequest>) {
        id.reject(&protocol::encode_reject(status));
        drop(id);
        let v = self.reject_log.event(Instant::now());
        if let Some(n) = v.suppressed_before {
            self.log_suppressed(n);
        }
        if !v.log {
            return;
        }
        match req {
            Some(r) => warn!(
                "rejected connection from {peer} (client {}, queue {}/{}): {}",
                ShortId::of(r.client_id),
                r.queue + 1,
                r.queue_count,
                status.reason()
            ),
            None => warn!("rejected connection from {peer}: {}", status.reason()),
        }
    }

    fn log_suppressed(&self, n: u64) {
        warn!(
            "{n} more rejected connection(s) not logged (at most {REJECT_LOG_BURST} lines per {} s)",
            self.reject_log.window().as_secs()
        );
    }

    /// Timed work: clients past their join deadline, the count of reject
    /// lines left out, listening again.
    fn tick(&mut self, channel: &EventChannel) {
        let now = Instant::now();
        if self.listener.retry(channel, now) {
            self.track(self.listener.device());
        }
        if self.devices_at <= now {
            self.devices_at = now + DEVICE_POLL;
            self.check_devices();
        }
        for e in self.clients.expire(now) {
            self.expired(e);
        }
        self.keepalive(now);
        if let Some(n) = self.reject_log.flush(now) {
            self.log_suppressed(n);
        }
    }

    /// Says so once a client has all its queues: from then on it takes no
    /// new ones, and keep-alives watch it.
    fn check_complete(&mut self, client_id: u64, peer: &Peer, queue_count: u16) {
        if !self.clients.is_complete(client_id) {
            return;
        }
        if let Some(l) = &mut self.liveness {
            if l.is_complete(client_id) {
                return;
            }
            l.complete(client_id, Instant::now());
        }
        info!(
            "{}: all {queue_count} queues joined; the client takes no new ones",
            who(client_id, peer),
        );
    }

    /// Keep-alive work: take the answers to the probes, release the clients
    /// that stopped answering, post the probes that are due.
    fn keepalive(&mut self, now: Instant) {
        if self.liveness.is_none() {
            return;
        }
        self.poll_probes(now);
        let dead = self
            .liveness
            .as_mut()
            .map(|l| l.dead(now))
            .unwrap_or_default();
        for d in dead {
            self.declare_dead(d);
        }
        let due = self
            .liveness
            .as_mut()
            .map(|l| l.due(now))
            .unwrap_or_default();
        for p in due {
            self.post_probe(p, now);
        }
        let probing = self.liveness.as_ref().is_some_and(|l| l.is_probing());
        self.poll_at = probing.then(|| now + PROBE_POLL);
    }

    fn post_probe(&mut self, p: Probe<usize>, now: Instant) {
        let Some(c) = self.conns.get(&p.queue) else {
            return;
        };
        let Err(e) = c.id.post_probe(p.wr_id) else {
            return;
        };
        let why = format!("keep-alive could not be posted: {e}");
        self.probe_done(p.wr_id, Err(why), now);
    }

    /// Polls the CQs of the clients with unanswered probes.
    fn poll_probes(&mut self, now: Instant) {
        let Some(l) = &self.liveness else {
            return;
        };
        let mut done = Vec::new();
        for client_id in l.probing() {
            let Some(region) = self.clients.region(client_id) else {
                continue;
            };
            if let Err(e) = region.poll(&mut done) {
                error!(
                    "client {}: reading its completion queue: {e}",
                    ShortId::of(client_id)
                );
            }
        }
        for Completion { wr_id, result } in done {
            let result = result.map_err(|e| format!("keep-alive failed: {e}"));
            self.probe_done(wr_id, result, now);
        }
    }

    /// A probe is answered, or failed: a failed queue is disconnected.
    fn probe_done(&mut self, wr_id: u64, result: Result<(), String>, now: Instant) {
        let Some(l) = &mut self.liveness else {
            return;
        };
        // The reason kept for the client's last word names the queue.
        let queue = l.probe_queue(wr_id).and_then(|k| self.conns.get(&k));
        let result = result.map_err(|why| match queue {
            Some(c) => format!("queue {}/{}: {why}", c.queue + 1, c.queue_count),
            None => why,
        });
        let why = result.clone().err();
        match l.completed(wr_id, result, now) {
            Answer::Alive { queue, .. } => {
                if let Some(c) = self.conns.get(&queue) {
                    debug!(
                        "{}: queue {}/{} answered the keep-alive",
                        c.who(),
                        c.queue + 1,
                        c.queue_count
                    );
                }
            }
            Answer::Failed { queue, .. } => {
                self.queue_broken(queue, why.as_deref().unwrap_or("keep-alive failed"));
            }
            Answer::Stale => {}
        }
    }

    /// A queue whose QP broke (a failed probe, an error the device
    /// reported): it is disconnected, so the client hears of it rather
    /// than timing out on it; its region stays while other queues live.
    fn queue_broken(&mut self, key: usize, why: &str) {
        let Some(c) = self.conns.get(&key) else {
            return;
        };
        warn!("{}: {why}; disconnecting the queue", c.who());
        c.id.disconnect();
    }

    /// A close request: ends the client's session, disconnecting its
    /// queues and freeing its region at once, and answers with a reject of
    /// status "session closed" (or the reason it was refused).
    fn close_session(&mut self, id: CmId, req: &ConnectRequest, peer: Peer) {
        let e = match self.clients.close(req, peer) {
            Ok(e) => e,
            Err(status) => return self.reject(id, status, &peer, Some(req)),
        };
        id.reject(&protocol::encode_reject(Status::SessionClosed));
        drop(id);
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.client_id == req.client_id)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(c) = self.conns.remove(&k) {
                if let Some(l) = &mut self.liveness {
                    l.remove_queue(k);
                }
                self.watchers.release(c.device);
                c.id.disconnect();
                drop(c); // the QP goes before the region's PD
            }
        }
        if let Some(l) = &mut self.liveness {
            l.forget(req.client_id);
        }
        let size = e.region.size();
        drop(e.region);
        info!(
            "{}: closed its session; freed {} MiB region ({} of {} MiB in use)",
            who(req.client_id, &peer),
            size >> 20,
            self.clients.used() >> 20,
            self.clients.limits().budget >> 20
        );
    }

    /// Disconnects every queue of a client that stopped answering and
    /// frees its region.
    fn declare_dead(&mut self, d: Dead) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.client_id == d.client_id)
            .map(|(k, _)| *k)
            .collect();
        let queues = keys.len();
        for k in keys {
            if let Some(c) = self.conns.remove(&k) {
                self.watchers.release(c.device);
                c.id.disconnect();
                drop(c); // the QP goes before the region's PD
            }
        }
        let last_error = d
            .last_failure
            .as_ref()
            .map(|f| format!(" (last error: {f})"))
            .unwrap_or_default();
        let e = match self.clients.detach(d.client_id, Instant::now()) {
            None => return,
            Some(Ok((peer, queue_count))) => {
                if let Some(l) = &mut self.liveness {
                    l.forget(d.client_id);
                }
                warn!(
                    "{}: declared dead: no keep-alive answered for {} s{last_error}; disconnected {queues} of {queue_count} queues, keeping its region for {} s for a reconnect",
                    who(d.client_id, &peer),
                    d.silent_for.as_secs(),
                    self.clients.limits().linger.as_secs()
                );
                return;
            }
            Some(Err(e)) => e,
        };
        let last = d
            .last_failure
            .map(|f| format!(" (last error: {f})"))
            .unwrap_or_default();
        let size = e.region.size();
        drop(e.region);
        warn!(
            "{}: declared dead: no keep-alive answered for {} s{last}; disconnected {queues} of {} queues, freed {} MiB region ({} of {} MiB in use)",
            who(d.client_id, &e.peer),
            d.silent_for.as_secs(),
            e.queue_count,
            size >> 20,
            self.clients.used() >> 20,
            self.clients.limits().budget >> 20
        );
    }

    /// Events the RDMA devices reported.
    fn device_events(&mut self, events: Vec<DeviceEvent>) {
        for e in events {
            match e {
                DeviceEvent::Event(ev) => self.device_event(ev),
                DeviceEvent::Failed(device, err) => {
                    warn!(
                        "reading an RDMA device's asynchronous events failed ({err}); no longer reading them"
                    );
                    self.watchers.stop(device);
                }
            }
        }
    }

    fn device_event(&mut self, ev: AsyncEvent) {
        let name = ev.name();
        match ev.target {
            AsyncTarget::Qp(qp) => {
                let key = self
                    .conns
                    .iter()
                    .find(|(_, c)| c.id.qp_key() == Some(qp))
                    .map(|(k, _)| *k);
                let Some(key) = key else {
                    debug!("RDMA device event \"{name}\" for no connection");
                    return;
                };
                if !ev.breaks_qp() {
                    if let Some(c) = self.conns.get(&key) {
                        debug!(
                            "{}: queue {}/{}: {name}",
                            c.who(),
                            c.queue + 1,
                            c.queue_count
                        );
                    }
                    return;
                }
                let why = match self.conns.get(&key) {
                    Some(c) => format!(
                        "queue {}/{}: the RDMA device reported \"{name}\"",
                        c.queue + 1,
                        c.queue_count
                    ),
                    None => return,
                };
                if let Some(l) = &mut self.liveness {
                    l.queue_failed(key, why.clone());
                }
                self.queue_broken(key, &why);
            }
            AsyncTarget::Cq(cq) => match self.clients.find_region(|r| r.cq_key() == cq) {
                Some((client_id, peer)) => error!(
                    "{}: the RDMA device reported \"{name}\" on the client's completion queue; its keep-alives can no longer be answered",
                    who(client_id, &peer)
                ),
                None => debug!("RDMA device event \"{name}\" for no client"),
            },
            AsyncTarget::Port(port) => {
                if ev.code == 10 {
                    warn!("RDMA device port {port}: {name}");
                } else {
                    info!("RDMA device port {port}: {name}");
                }
            }
            AsyncTarget::Device => error!(
                "the RDMA device reported \"{name}\": its clients will stop answering keep-alives"
            ),
            AsyncTarget::Other => debug!("RDMA device event \"{name}\""),
        }
    }

    /// Disconnects whatever queues of a removed client are left (none for
    /// a lingering one) and forgets its keep-alives: its region may go.
    fn drop_queues(&mut self, client_id: u64) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.client_id == client_id)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(c) = self.conns.remove(&k) {
                self.watchers.release(c.device);
                c.id.disconnect();
                drop(c); // the QP goes before the region's PD
            }
        }
        if let Some(l) = &mut self.liveness {
            l.forget(client_id);
        }
    }

    /// Frees the region of a lingering session removed to let a new
    /// client in (`Registry::make_room`).
    fn evicted_lingering(&mut self, e: Expired<Region>, req: &ConnectRequest, peer: &Peer) {
        self.drop_queues(e.client_id);
        let size = e.region.size();
        drop(e.region);
        warn!(
            "{}: lingering session (no queue, kept for a reconnect) removed to make room for new client {} from {peer}; freed {} MiB region ({} of {} MiB in use); a reconnect will find the session gone",
            who(e.client_id, &e.peer),
            ShortId::of(req.client_id),
            size >> 20,
            self.clients.used() >> 20,
            self.clients.limits().budget >> 20
        );
    }

    /// Disconnects the queues of a client that did not join them all in
    /// time, then frees its region.
    fn expired(&mut self, e: Expired<Region>) {
        self.drop_queues(e.client_id);
        if e.lingered {
            let size = e.region.size();
            drop(e.region);
            warn!(
                "{}: did not reconnect within {} s; freed {} MiB region ({} of {} MiB in use)",
                who(e.client_id, &e.peer),
                self.clients.limits().linger.as_secs(),
                size >> 20,
                self.clients.used() >> 20,
                self.clients.limits().budget >> 20
            );
            return;
        }
        warn!(
            "{}: only {} of {} queues joined within {} s; disconnected, freed {} MiB region",
            who(e.client_id, &e.peer),
            e.joined,
            e.queue_count,
            self.clients.limits().join_deadline.as_secs(),
            e.region.size() >> 20
        );
        drop(e.region);
    }

    /// An id of ours is on `device`: a device the server does not hold
    /// yet is held from now on, so that its removal is seen.
    fn track(&mut self, device: Option<usize>) {
        let Some(key) = device else {
            return;
        };
        if !self.devices.holds(key) && !self.removed.contains_key(&key) {
            self.resync = true;
            self.check_devices();
        }
    }

    /// Frees everything of ours on the devices that went away, then lets
    /// librdmacm close them (once no registration runs there), and holds
    /// any device that came.
    fn check_devices(&mut self) {
        match self.devices.gone() {
            Ok(gone) => {
                for g in gone {
                    if !self.removed.contains_key(&g.key) {
                        self.remove_device(g);
                    }
                }
            }
            Err(e) => debug!("cannot list the RDMA devices: {e}"),
        }
        if self.removed.is_empty() && !self.resync {
            return;
        }
        let registering = self
            .job_owner
            .values()
            .any(|(_, _, d)| self.removed.contains_key(d));
        if registering {
            return; // after the registration (registration_done)
        }
        let released: Vec<usize> = self.removed.keys().copied().collect();
        for (key, result) in self.devices.resync(&released) {
            let name = self.removed.get(&key).map_or("?", |n| n.as_str());
            match result {
                Ok(()) => info!(
                    "closed librdmacm's context of the removed RDMA device {name} (no RDMA device is left, and librdmacm keeps the last one open)"
                ),
                Err(e) => error!(
                    "cannot close librdmacm's context of the removed RDMA device {name}: {e}; its removal waits for the server to exit"
                ),
            }
        }
        for (_, name) in self.removed.drain() {
            info!("RDMA device {name} released: the server holds nothing on it");
        }
        self.resync = false;
    }

    /// A device went away: drops the listener bound to it and every queue
    /// on it, and frees the regions on it, of connected clients and of
    /// lingering sessions alike. Regions still being registered there are
    /// freed when their registration is done.
    fn remove_device(&mut self, g: GoneDevice) {
        let key = g.key;
        let listener = self.listener.device() == Some(key);
        if listener {
            warn!(
                "the RDMA device of the listener on {} is being removed; listening again once the address can be bound",
                self.listener.addr
            );
            self.listener.drop_and_retry(Instant::now(), RELISTEN_FIRST);
        }
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.device == Some(key))
            .map(|(k, _)| *k)
            .collect();
        let queues = keys.len();
        for k in keys {
            if let Some(c) = self.conns.remove(&k) {
                if let Some(l) = &mut self.liveness {
                    l.remove_queue(k);
                }
                self.watchers.release(c.device);
                drop(c); // the QP goes before the region's PD
            }
        }
        self.watchers.stop(key);
        let gone = self.clients.remove_regions(|r| r.device_key() == key);
        let regions = gone.len();
        let mut bytes = 0;
        for e in gone {
            if let Some(l) = &mut self.liveness {
                l.forget(e.client_id);
            }
            let size = e.region.size();
            bytes += size;
            drop(e.region);
            warn!(
                "{}: freed {} MiB region: its RDMA device {} was removed ({}; {} of {} MiB in use); a reconnect will find the session gone",
                who(e.client_id, &e.peer),
                size >> 20,
                g.name,
                if e.lingered {
                    "a lingering session"
                } else {
                    "a connected client"
                },
                self.clients.used() >> 20,
                self.clients.limits().budget >> 20
            );
        }
        let registering = self
            .job_owner
            .values()
            .filter(|(_, _, d)| *d == key)
            .count();
        let pending = match registering {
            0 => String::new(),
            n => format!("; {n} region(s) being registered there are freed once registered"),
        };
        warn!(
            "the RDMA device {} was removed: {}closed {queues} queue(s), freed {regions} region(s) ({} MiB){pending}",
            g.name,
            if listener { "closed the listener, " } else { "" },
            bytes >> 20
        );
        self.removed.insert(key, g.name);
    }

    fn disconnected(&mut self, key: usize) {
        let Some(c) = self.conns.remove(&key) else {
            return;
        };
        c.id.disconnect();
        info!(
            "{}: queue {}/{} disconnected ({} MiB region)",
            c.who(),
            c.queue + 1,
            c.queue_count,
            c.region_mib
        );
        let (client_id, queue, peer) = (c.client_id, c.queue, c.peer);
        if let Some(l) = &mut self.liveness {
            l.remove_queue(key);
        }
        self.watchers.release(c.device);
        drop(c); // destroys the QP before the region's PD can go
        self.release(client_id, queue, &peer);
    }

    fn release(&mut self, client_id: u64, queue: u16, peer: &Peer) {
        let was_detached = self.clients.is_detached(client_id);
        let region = self.clients.release(client_id, queue, Instant::now());
        if region.is_none() && !was_detached && self.clients.is_detached(client_id) {
            if let Some(l) = &mut self.liveness {
                l.forget(client_id);
            }
            info!(
                "{}: all queues gone; keeping its region for {} s for a reconnect",
                who(client_id, peer),
                self.clients.limits().linger.as_secs()
            );
        }
        if let Some(region) = region {
            if let Some(l) = &mut self.liveness {
                l.forget(client_id);
            }
            let size = region.size();
            drop(region);
            info!(
                "{}: all queues gone, freed {} MiB region ({} of {} MiB in use)",
                who(client_id, peer),
                size >> 20,
                self.clients.used() >> 20,
                self.clients.limits().budget >> 20
            );
        }
    }
}

fn reply(region: &Region, secret: u64) -> AcceptReply {
    AcceptReply {
        addr: region.iova(),
        rkey: region.rkey(),
        size: region.size(),
        secret,
    }
}

/// Accepts `join` as queue `queue` of a client with `region` and records
/// the connection; on failure logs it and hands the id back.
#[allow(clippy::too_many_arguments)]
fn accept(
    conns: &mut HashMap<usize, Conn>,
    watchers: &mut Watchers,
    join: Join,
    client_id: u64,
    queue: u16,
    peer: Peer,
    region: &Region,
    reply: &AcceptReply,
) -> Option<CmId> {
    if let Err(e) = join.id.accept(region, &reply.encode_for(join.version)) {
        error!(
            "{}: queue {}/{}: accept failed: {e}; rejecting it",
            who(client_id, &peer),
            queue + 1,
            join.queue_count
        );
        return Some(join.id);
    }
    let device = join.id.device();
    if let Some(d) = &device {
        watchers.hold(d);
    }
    conns.insert(
        join.id.key(),
        Conn {
            id: join.id,
            client_id,
            queue,
            queue_count: join.queue_count,
            peer,
            region_mib: region.size() >> 20,
            device: device.map(|d| d.key()),
        },
    );
    None
}

/// Whether a new client's region fits in the memory available now, given
/// `unpinned` bytes of registrations still running; logs why not. A region
/// that does not fit is refused up front rather than letting the OOM killer
/// end the server and every client with it.
fn fits_now(req: &ConnectRequest, peer: &Peer, size: u64, unpinned: u64) -> bool {
    match system::meminfo() {
        Ok(m) if !budget::fits_now(size, &m, unpinned) => {
            error!(
                "{}: a {} MiB region does not fit ({} MiB available, {} MiB being registered, {} MiB kept in reserve)",
                who(req.client_id, peer),
                size >> 20,
                m.available >> 20,
                unpinned >> 20,
                budget::reserve(m.total) >> 20
            );
            false
        }
        Ok(_) => true,
        Err(e) => {
            warn!(
                "{}: cannot check the memory available: {e}",
                who(req.client_id, peer)
            );
            true
        }
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relisten_backoff_doubles_to_a_cap() {
        let mut d = RELISTEN_FIRST;
        let mut seen = vec![d];
        for _ in 0..8 {
            d = next_backoff(d);
            seen.push(d);
        }
        assert_eq!(
            seen[..6].iter().map(|d| d.as_secs()).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 30]
        );
        assert!(seen.iter().all(|d| *d <= RELISTEN_MAX));
    }
}
