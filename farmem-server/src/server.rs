//! The event loop: accept queues, hand each client its region, clean up
//! when clients go away, stop on SIGINT/SIGTERM.

use crate::budget;
use crate::clients::{Clients, Expired, Limits};
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
use tracing::{debug, error, info, warn};

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
        format!("client {} from {}", ShortId::of(self.client_id), self.peer)
    }
}

struct Server {
    reject_log: RateLimit,
    // Field order is drop order: connections (QPs) before regions (PDs).
    conns: HashMap<usize, Conn>,
    clients: Clients<Region>,
}

pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let channel = EventChannel::new().map_err(ServerError::Events)?;
    let listener = channel
        .listen(cfg.addr, 128)
        .map_err(|source| ServerError::Listen {
            addr: cfg.addr,
            source,
        })?;
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
        reject_log: RateLimit::new(REJECT_LOG_BURST, REJECT_LOG_WINDOW),
        conns: HashMap::new(),
        clients: Clients::new(cfg.limits),
    };
    tokio::pin!(shutdown);
    let result = loop {
        let wake = [server.reject_log.flush_at(), server.clients.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = sleep_until(wake), if wake.is_some() => server.tick(),
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
    for c in server.conns.values() {
        c.id.disconnect();
    }
    drop(server);
    drop(listener);
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
            EventKind::Other(_) => {
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
        let who = format!("client {} from {peer}", ShortId::of(req.client_id));
        let admitted = self.clients.admit(&req, peer, Instant::now(), || {
            new_region(&id, &who, size, req.queue_count)
        });
        let region = match admitted {
            Ok(r) => r,
            Err(status) => return self.reject(id, status, &peer, Some(&req)),
        };
        let region_mib = region.size() >> 20;
        let reply = AcceptReply {
            addr: region.iova(),
            rkey: region.rkey(),
            size: region.size(),
        };
        // Allow the client as many outstanding RDMA reads as it asks for.
        if let Err(e) = id.accept(region, &reply.encode(), initiator_depth.max(1)) {
            error!(
                "{who}: queue {}/{}: accept failed: {e}; rejecting it",
                req.queue + 1,
                req.queue_count
            );
            // The client learns why instead of waiting for its timeout. (If
            // the kernel's part of the accept failed, it has already sent a
            // reject without a reason, and this one is a no-op.)
            id.reject(&protocol::encode_reject(Status::AcceptFailed));
            drop(id);
            self.release(req.client_id, req.queue, &peer);
            return;
        }
        self.conns.insert(
            id.key(),
            Conn {
                id,
                client_id: req.client_id,
                queue: req.queue,
                queue_count: req.queue_count,
                peer,
                region_mib,
            },
        );
        if self.clients.is_complete(req.client_id) {
            info!(
                "{who}: all {} queues joined; the client takes no new ones",
                req.queue_count
            );
        }
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
    /// lines left out.
    fn tick(&mut self) {
        let now = Instant::now();
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
            "client {} from {}: only {} of {} queues joined within {} s; disconnected, freed {} MiB region",
            ShortId::of(e.client_id),
            e.peer,
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
            info!(
                "client {} from {peer}: all queues gone, freed {} MiB region ({} of {} MiB in use)",
                ShortId::of(client_id),
                region.size() >> 20,
                self.clients.used() >> 20,
                self.clients.limits().budget >> 20
            );
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

/// Registers a client's region, or logs why not. Registration pins the
/// whole region, so a region that does not fit in the memory available now
/// (keeping the reserve) is refused up front rather than letting the OOM
/// killer end the server and every client with it.
fn new_region(id: &CmId, who: &str, size: u64, queues: u16) -> Option<Region> {
    match system::meminfo() {
        Ok(m) if !budget::fits_now(size, &m, 0) => {
            error!(
                "{who}: a {} MiB region does not fit ({} MiB available, {} MiB kept in reserve)",
                size >> 20,
                m.available >> 20,
                budget::reserve(m.total) >> 20
            );
            return None;
        }
        Ok(_) => {}
        Err(e) => warn!("{who}: cannot check the memory available: {e}"),
    }
    match Region::new(id, size as usize) {
        Ok(r) => {
            info!(
                "{who}: registered {} MiB region ({queues} queues)",
                size >> 20
            );
            Some(r)
        }
        Err(e) => {
            error!("{who}: cannot register {} MiB: {e}", size >> 20);
            None
        }
    }
}
