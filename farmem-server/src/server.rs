//! The event loop: accept queues, hand each client its region, clean up
//! when clients go away, stop on SIGINT/SIGTERM.
//!
//! Nothing on the loop blocks: a new client's region is registered on a
//! blocking thread while the loop goes on serving other clients, timers and
//! signals; the client's joins wait for it (see `clients`).

use crate::budget;
use crate::clients::{Admit, Clients, Expired, Limits, Registered};
use crate::logging::{RateLimit, ShortId};
use crate::peer::Peer;
use crate::protocol::{self, AcceptReply, ConnectRequest, Status};
use crate::system;
use crate::verbs::{CmEvent, CmId, EventChannel, EventKind, Region};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::task::{self, JoinError, JoinSet};
use tracing::{debug, error, info, warn};

/// Connect requests the CM queues for the listener.
const BACKLOG: i32 = 128;
/// Retrying to listen after the listener's device or address went away:
/// first after this long, doubling up to `RELISTEN_MAX`.
const RELISTEN_FIRST: Duration = Duration::from_secs(1);
const RELISTEN_MAX: Duration = Duration::from_secs(30);

/// Reject lines logged per window; the rest are counted.
const REJECT_LOG_BURST: u32 = 20;
const REJECT_LOG_WINDOW: Duration = Duration::from_secs(10);

pub struct Config {
    pub addr: SocketAddrV4,
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
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
    initiator_depth: u8,
}

/// A finished registration, from its blocking thread.
struct Registration {
    client_id: u64,
    ticket: u64,
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

    /// Drops the listening id and schedules listening again after `after`.
    fn drop_and_retry(&mut self, now: Instant, after: Duration) {
        self.id = None;
        self.backoff = RELISTEN_FIRST;
        self.retry_at = Some(now + after);
    }

    fn retry(&mut self, channel: &EventChannel, now: Instant) {
        match self.retry_at {
            Some(t) if t <= now => {}
            _ => return,
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
            }
            Err(e) => {
                warn!(
                    "cannot listen on {} yet: {e}; trying again in {} s",
                    self.addr,
                    self.backoff.as_secs()
                );
                self.retry_at = Some(now + self.backoff);
                self.backoff = next_backoff(self.backoff);
            }
        }
    }
}

fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(RELISTEN_MAX)
}

struct Server {
    listener: Listener,
    reject_log: RateLimit,
    /// Registrations running on blocking threads, and whose they are.
    jobs: JoinSet<Registration>,
    job_owner: HashMap<task::Id, (u64, u64)>,
    // Field order is drop order: connections (QPs) before regions (PDs).
    conns: HashMap<usize, Conn>,
    clients: Clients<Region, Join>,
}

pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let channel = EventChannel::new().map_err(ServerError::Events)?;
    let listener = Listener::start(&channel, cfg.addr)?;
    // SAFETY: the channel's descriptor stays open until `channel` is dropped,
    // which happens after `fd` below.
    let fd = unsafe { AsyncFd::register(channel.fd()) }
        .map_err(|e| ServerError::Events(io::Error::other(e.to_string())))?;
    let l = cfg.limits;
    info!(
        "listening on port {} (address {}): {} MiB per client, memory budget {} MiB, at most {} clients, {} per address, {} s to join all queues",
        cfg.addr.port(),
        cfg.addr.ip(),
        l.region_size >> 20,
        l.budget >> 20,
        l.max_clients,
        l.max_per_peer,
        l.join_deadline.as_secs()
    );

    let mut server = Server {
        listener,
        reject_log: RateLimit::new(REJECT_LOG_BURST, REJECT_LOG_WINDOW),
        jobs: JoinSet::new(),
        job_owner: HashMap::new(),
        conns: HashMap::new(),
        clients: Clients::new(cfg.limits),
    };
    tokio::pin!(shutdown);
    let result = loop {
        let wake = [
            server.reject_log.flush_at(),
            server.clients.next_deadline(),
            server.listener.retry_at,
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
                let depth = ev.initiator_depth();
                let id = ev.take_conn_id();
                drop(ev); // ack before acting on (or destroying) the new id
                if let Some(id) = id {
                    self.connect_request(id, &data, depth);
                }
            }
            EventKind::Established => {
                if let Some(c) = self.conns.get(&ev.id_key()) {
                    info!(
                        "{}: queue {}/{} connected ({} MiB region)",
                        c.who(),
                        c.queue + 1,
                        c.queue_count,
                        c.region_mib
                    );
                }
            }
            EventKind::Disconnected => {
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
            EventKind::DeviceRemoval | EventKind::Other(_) => {
                let name = ev.name();
                let key = ev.id_key();
                drop(ev);
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

    fn connect_request(&mut self, id: CmId, data: &[u8], initiator_depth: u8) {
        let peer = id.peer();
        let req = match ConnectRequest::decode(data) {
            Ok(r) => r,
            Err(status) => return self.reject(id, status, &peer, None),
        };
        let size = self.clients.limits().region_size;
        // Only a new client's queue 0 needs the device (and memory now).
        let device = id.device();
        let join = Join {
            id,
            queue_count: req.queue_count,
            initiator_depth,
        };
        let admitted = self.clients.admit(&req, peer, join, |unpinned| {
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
            Ok(Admit::Accept(join, region)) => {
                let reply = reply(region);
                let id = accept(
                    &mut self.conns,
                    join,
                    req.client_id,
                    req.queue,
                    peer,
                    region,
                    &reply,
                );
                if let Some(id) = id {
                    self.accept_failed(id, req.client_id, req.queue, &peer);
                } else if self.clients.is_complete(req.client_id) {
                    info!(
                        "{}: all {} queues joined; the client takes no new ones",
                        who(req.client_id, &peer),
                        req.queue_count
                    );
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
                    );
                    return;
                };
                let client_id = req.client_id;
                let handle = self.jobs.spawn_blocking(move || {
                    let started = Instant::now();
                    let result = Region::new(&device, size as usize);
                    Registration {
                        client_id,
                        ticket,
                        result,
                        took: started.elapsed(),
                    }
                });
                self.job_owner.insert(handle.id(), (client_id, ticket));
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
        match done {
            Ok((task, r)) => {
                self.job_owner.remove(&task);
                self.registration_finished(r.client_id, r.ticket, r.result, r.took, serve);
            }
            Err(e) => {
                let Some((client_id, ticket)) = self.job_owner.remove(&e.id()) else {
                    error!("a region registration failed: {e}");
                    return;
                };
                let err = io::Error::other(format!("registration thread failed: {e}"));
                self.registration_finished(client_id, ticket, Err(err), Duration::ZERO, serve);
            }
        }
    }

    fn registration_finished(
        &mut self,
        client_id: u64,
        ticket: u64,
        result: io::Result<Region>,
        took: Duration,
        serve: bool,
    ) {
        let size = self.clients.limits().region_size;
        let (region, err) = match result {
            Ok(r) if serve => (Some(r), None),
            Ok(_) => (None, Some("the server is shutting down".to_string())),
            Err(e) => (None, Some(e.to_string())),
        };
        let (used, budget) = (self.clients.used(), self.clients.limits().budget);
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
                let reply = reply(region);
                let mut failed = Vec::new();
                for (queue, join) in waiting {
                    let peer = join.id.peer();
                    if let Some(id) = accept(
                        &mut self.conns,
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
            }
            Registered::Failed { peer, waiting } => {
                let why = err.unwrap_or_default();
                if serve {
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
        self.listener.retry(channel, now);
        for e in self.clients.expire(now) {
            self.expired(e);
        }
        if let Some(n) = self.reject_log.flush(now) {
            self.log_suppressed(n);
        }
    }

    /// Disconnects the queues of a client that did not join them all in
    /// time, then frees its region.
    fn expired(&mut self, e: Expired<Region>) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.client_id == e.client_id)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(c) = self.conns.remove(&k) {
                c.id.disconnect();
                drop(c); // the QP goes before the region's PD
            }
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
        drop(c); // destroys the QP before the region's PD can go
        self.release(client_id, queue, &peer);
    }

    fn release(&mut self, client_id: u64, queue: u16, peer: &Peer) {
        if let Some(region) = self.clients.release(client_id, queue) {
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

fn reply(region: &Region) -> AcceptReply {
    AcceptReply {
        addr: region.iova(),
        rkey: region.rkey(),
        size: region.size(),
    }
}

/// Accepts `join` as queue `queue` of a client with `region` and records
/// the connection; on failure logs it and hands the id back.
fn accept(
    conns: &mut HashMap<usize, Conn>,
    join: Join,
    client_id: u64,
    queue: u16,
    peer: Peer,
    region: &Region,
    reply: &AcceptReply,
) -> Option<CmId> {
    // Allow the client as many outstanding RDMA reads as it asks for.
    let depth = join.initiator_depth.max(1);
    if let Err(e) = join.id.accept(region, &reply.encode(), depth) {
        error!(
            "{}: queue {}/{}: accept failed: {e}; rejecting it",
            who(client_id, &peer),
            queue + 1,
            join.queue_count
        );
        return Some(join.id);
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
