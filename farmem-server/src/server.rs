//! The event loop: accept queues, hand each client its region, clean up
//! when clients go away, stop on SIGINT/SIGTERM.

use crate::clients::Clients;
use crate::protocol::{self, AcceptReply, ConnectRequest, Status};
use crate::verbs::{CmEvent, CmId, EventChannel, EventKind, Region};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddrV4;
use tokio::io::unix::AsyncFd;

pub struct Config {
    pub addr: SocketAddrV4,
    /// Bytes of far memory per client.
    pub region_size: u64,
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
}

struct Server {
    region_size: u64,
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
    println!("listening on port {}", cfg.addr.port());

    let mut server = Server {
        region_size: cfg.region_size,
        conns: HashMap::new(),
        clients: Clients::default(),
    };
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
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
                            eprintln!("error: reading RDMA CM event: {e}");
                            break;
                        }
                    }
                }
                guard.clear_ready();
            }
        }
    };
    println!(
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
                    println!(
                        "client {:016x}: queue {}/{} connected",
                        c.client_id,
                        c.queue + 1,
                        c.queue_count
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
                if self.conns.contains_key(&key) {
                    println!("connection event {name}: dropping the queue");
                    self.disconnected(key);
                }
            }
        }
    }

    fn connect_request(&mut self, id: CmId, data: &[u8], initiator_depth: u8) {
        let req = match ConnectRequest::decode(data) {
            Ok(r) => r,
            Err(status) => return reject(id, status, "unknown client"),
        };
        let size = self.region_size;
        let client_id = req.client_id;
        let admitted = self
            .clients
            .admit(&req, || new_region(&id, client_id, size, req.queue_count));
        let region = match admitted {
            Ok(r) => r,
            Err(status) => return reject(id, status, &format!("client {:016x}", req.client_id)),
        };
        let reply = AcceptReply {
            addr: region.addr(),
            rkey: region.rkey(),
            size: region.size(),
        };
        // Allow the client as many outstanding RDMA reads as it asks for.
        if let Err(e) = id.accept(region, &reply.encode(), initiator_depth.max(1)) {
            eprintln!("error: client {:016x}: accept failed: {e}", req.client_id);
            drop(id);
            self.release(req.client_id, req.queue);
            return;
        }
        self.conns.insert(
            id.key(),
            Conn {
                id,
                client_id: req.client_id,
                queue: req.queue,
                queue_count: req.queue_count,
            },
        );
    }

    fn disconnected(&mut self, key: usize) {
        let Some(c) = self.conns.remove(&key) else {
            return;
        };
        c.id.disconnect();
        println!(
            "client {:016x}: queue {}/{} disconnected",
            c.client_id,
            c.queue + 1,
            c.queue_count
        );
        let (client_id, queue) = (c.client_id, c.queue);
        drop(c); // destroys the QP before the region's PD can go
        self.release(client_id, queue);
    }

    fn release(&mut self, client_id: u64, queue: u16) {
        if let Some(region) = self.clients.release(client_id, queue) {
            println!(
                "client {client_id:016x}: all queues gone, freed {} MiB region",
                region.size() >> 20
            );
        }
    }
}

/// Memory kept free beside the regions, for the server and the kernel.
const RESERVE: u64 = 64 << 20;

/// MemAvailable from /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// Registers a client's region, or logs why not. Registration pins the
/// whole region, so a region that does not fit is refused up front rather
/// than letting the OOM killer end the server and every client with it.
fn new_region(id: &CmId, client_id: u64, size: u64, queues: u16) -> Option<Region> {
    if let Some(avail) = available_memory() {
        if avail < size + RESERVE {
            eprintln!(
                "error: client {client_id:016x}: a {} MiB region does not fit ({} MiB available)",
                size >> 20,
                avail >> 20
            );
            return None;
        }
    }
    match Region::new(id, size as usize) {
        Ok(r) => {
            println!(
                "client {client_id:016x}: registered {} MiB region ({queues} queues)",
                size >> 20
            );
            Some(r)
        }
        Err(e) => {
            eprintln!(
                "error: client {client_id:016x}: cannot register {} MiB: {e}",
                size >> 20
            );
            None
        }
    }
}

fn reject(id: CmId, status: Status, who: &str) {
    println!("rejected connection from {who}: {}", status.reason());
    id.reject(&protocol::encode_reject(status));
}
