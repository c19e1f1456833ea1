//! The server's registry of clients: which clients are connected, with how
//! many queues, and their regions, within the server's limits: a memory
//! budget, a number of clients, a number of clients per peer address, and a
//! deadline by which a client's queues must all have joined. Pure bookkeeping, generic over the region
//! type `R` and the type `W` of a join waiting to be accepted, so it is
//! unit-tested without an RDMA device.
//!
//! A new client's region is registered off the event loop (pinning and
//! zeroing gigabytes takes seconds): until it is ready the client is
//! *registering*, and its joins wait; other clients are served meanwhile.
//!
//! A client id travels in clear text, so it is not enough to join a
//! client's queue (and get its region's rkey and a queue pair in its
//! protection domain): a client is created only by its queue 0, every later
//! queue must come from the same peer (address and GID) as queue 0, and
//! once all its queues have joined the client takes no new ones, even if
//! one drops.
//!
//! Reconnects (protocol version 2): each client gets a random session
//! secret, sent in every accept. When the last queue of a complete
//! version-2 client goes, its region is kept for `linger` (the client may
//! be riding through an outage); a queue presenting the client's id, the
//! secret and the reconnect flag from the client's first address is
//! re-attached to that region, replacing the queue's old connection if
//! the server still holds it. A stolen id without the secret is refused,
//! and so is the secret from another address.

use crate::budget::Budget;
use crate::peer::Peer;
use crate::protocol::{ConnectRequest, Status};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the server allows.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of each client's region.
    pub region_size: u64,
    /// Bytes all regions together may take.
    pub budget: u64,
    pub max_clients: usize,
    pub max_per_peer: usize,
    /// Time from a client's region being ready until all its queues must
    /// have joined.
    pub join_deadline: Duration,
    /// How long a version-2 client's region is kept after its last queue
    /// went, for it to reconnect; zero frees it at once.
    pub linger: Duration,
}

enum State<R, W> {
    /// The region is being registered (registration `ticket`); these
    /// joins wait for it.
    Registering {
        ticket: u64,
        waiting: Vec<(u16, W)>,
    },
    Ready {
        region: R,
    },
}

struct Client<R, W> {
    peer: Peer,
    /// Queues now joined (waiting or connected), by index.
    queues: Vec<bool>,
    live: usize,
    /// Queues that ever joined, by index; all of them makes the client
    /// complete.
    joined: Vec<bool>,
    joined_count: usize,
    /// While the region is ready and the client is not complete: when it
    /// must be.
    deadline: Option<Instant>,
    state: State<R, W>,
    /// Protocol version of its queue 0; version 1 cannot reconnect.
    version: u16,
    /// The session secret a reconnect must present.
    secret: u64,
    /// Since when it has had no queue while its region is kept.
    detached: Option<Instant>,
}

impl<R, W> Client<R, W> {
    fn is_complete(&self) -> bool {
        self.joined_count == self.joined.len()
    }
}

/// What to do with an admitted join.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit<'a, R, W> {
    /// A new client: register a region for it, then report the result to
    /// [`Registry::registered`] with this ticket. The join waits.
    Register { ticket: u64 },
    /// The client's region is being registered; the join waits for it.
    Wait,
    /// Accept the join with the client's region.
    Accept(W, &'a R),
    /// A reconnect with the right secret: accept the join with the
    /// client's region. With `replaced`, the server still held a
    /// connection for this queue: drop it (and ignore its later events)
    /// without releasing the queue.
    Reattach {
        join: W,
        region: &'a R,
        replaced: bool,
    },
}

/// The outcome of a registration, for its waiting joins.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered<'a, R, W> {
    /// Accept these joins with the region.
    Ready {
        region: &'a R,
        waiting: Vec<(u16, W)>,
    },
    /// The registration failed and the client is gone: reject these joins.
    Failed { peer: Peer, waiting: Vec<(u16, W)> },
    /// No client waits for this registration; the region, if any, is the
    /// caller's to free.
    Stale(Option<R>),
}

/// A client removed by the server (it stopped answering); its region is
/// the caller's to free once the client's queue pairs are gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Evicted<R> {
    pub peer: Peer,
    pub queue_count: u16,
    pub region: R,
}

/// A client whose queues did not all join in time; its region is the
/// caller's to free once the client's queue pairs are gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired<R> {
    pub client_id: u64,
    /// The client had all its queues and lost them, and did not
    /// reconnect within the linger time.
    pub lingered: bool,
    pub peer: Peer,
    pub joined: usize,
    pub queue_count: u16,
    pub region: R,
}

/// The clients the server serves (connected, registering, or lingering
/// for a reconnect), by client id, and what they take of the limits.
pub struct Registry<R, W> {
    limits: Limits,
    budget: Budget,
    /// Bytes charged for regions still being registered (not yet pinned).
    registering: u64,
    next_ticket: u64,
    by_id: HashMap<u64, Client<R, W>>,
    per_peer: HashMap<Peer, usize>,
}

impl<R, W> Registry<R, W> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            budget: Budget::new(limits.budget),
            registering: 0,
            next_ticket: 1,
            by_id: HashMap::new(),
            per_peer: HashMap::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Admits queue `req.queue` of client `req.client_id` from `peer`;
    /// `join` is what waits, or is handed back to be accepted. A new
    /// client is charged to the budget, then `fits` is asked whether its
    /// region fits in memory now, given the bytes of registrations still
    /// running; it gets its session secret from `new_secret` (random,
    /// drawn by the caller), which is called for a new client only, after
    /// the limits admitted it. On refusal the join comes back with the
    /// status to reject it with.
    pub fn admit(
        &mut self,
        req: &ConnectRequest,
        peer: Peer,
        join: W,
        new_secret: impl FnOnce() -> Result<u64, Status>,
        fits: impl FnOnce(u64) -> bool,
    ) -> Result<Admit<'_, R, W>, (Status, W)> {
        let q = usize::from(req.queue);
        if req.reconnect {
            return self.reattach(req, peer, join);
        }
        if !self.by_id.contains_key(&req.client_id) {
            return match self.new_client(req, peer, new_secret, fits) {
                Ok(ticket) => {
                    if let Some(c) = self.by_id.get_mut(&req.client_id) {
                        c.state = State::Registering {
                            ticket,
                            waiting: vec![(req.queue, join)],
                        };
                    }
                    Ok(Admit::Register { ticket })
                }
                Err(s) => Err((s, join)),
            };
        }
        let Some(c) = self.by_id.get_mut(&req.client_id) else {
            return Err((Status::UnknownClient, join));
        };
        if c.peer != peer {
            return Err((Status::PeerMismatch, join));
        }
        if c.is_complete() {
            return Err((Status::ClientClosed, join));
        }
        if c.queues.len() != usize::from(req.queue_count) {
            return Err((Status::QueueCountMismatch, join));
        }
        if c.queues[q] {
            return Err((Status::DuplicateQueue, join));
        }
        c.queues[q] = true;
        c.live += 1;
        if !c.joined[q] {
            c.joined[q] = true;
            c.joined_count += 1;
            if c.is_complete() {
                c.deadline = None;
            }
        }
        match &mut c.state {
            State::Registering { waiting, .. } => {
                waiting.push((req.queue, join));
                Ok(Admit::Wait)
            }
            State::Ready { region } => Ok(Admit::Accept(join, region)),
        }
    }

    /// A reconnect: re-attaches queue `req.queue` to the client's region
    /// if the secret and the peer match.
    fn reattach(
        &mut self,
        req: &ConnectRequest,
        peer: Peer,
        join: W,
    ) -> Result<Admit<'_, R, W>, (Status, W)> {
        let Some(c) = self.by_id.get_mut(&req.client_id) else {
            return Err((Status::SessionGone, join));
        };
        if c.version < crate::protocol::VERSION || c.secret != req.secret || c.peer != peer {
            return Err((Status::BadSecret, join));
        }
        if c.queues.len() != usize::from(req.queue_count) {
            return Err((Status::QueueCountMismatch, join));
        }
        let State::Ready { region } = &c.state else {
            return Err((Status::SessionGone, join));
        };
        let q = usize::from(req.queue);
        let replaced = c.queues[q];
        if !replaced {
            c.queues[q] = true;
            c.live += 1;
        }
        c.detached = None;
        Ok(Admit::Reattach {
            join,
            region,
            replaced,
        })
    }

    /// A close: ends the session of `req.client_id` if the secret and the
    /// peer match, removing the client whatever its queues; its region is
    /// the caller's to free once the client's queue pairs are gone.
    pub fn close(&mut self, req: &ConnectRequest, peer: Peer) -> Result<Evicted<R>, Status> {
        let c = self.by_id.get(&req.client_id).ok_or(Status::SessionGone)?;
        if c.version < crate::protocol::VERSION || c.secret != req.secret || c.peer != peer {
            return Err(Status::BadSecret);
        }
        self.evict(req.client_id).ok_or(Status::SessionGone)
    }

    /// The client's session secret.
    pub fn secret(&self, client_id: u64) -> Option<u64> {
        self.by_id.get(&client_id).map(|c| c.secret)
    }

    /// Whether the client's region is kept for a reconnect with no queue
    /// connected.
    pub fn is_detached(&self, client_id: u64) -> bool {
        self.by_id
            .get(&client_id)
            .is_some_and(|c| c.detached.is_some())
    }

    /// Before a new client (queue 0 of an unknown id, not a reconnect or a
    /// close) is admitted: if the budget, the number of clients or the
    /// clients from `peer` would refuse it, removes lingering sessions
    /// (every queue gone, region kept for a reconnect) until they do not,
    /// those from `peer` first, then the longest detached. A lingering
    /// session is not a live client: keeping its region must not refuse
    /// a rebooted client or a new one for the whole linger time. Returns
    /// the sessions removed (no queue pair uses their regions); their
    /// reconnects get "session gone". Removes nothing if no removal would
    /// let the client in.
    pub fn make_room(&mut self, req: &ConnectRequest, peer: Peer) -> Vec<Expired<R>> {
        let mut out = Vec::new();
        if req.reconnect || req.close || req.queue != 0 || self.by_id.contains_key(&req.client_id) {
            return out;
        }
        let size = self.limits.region_size;
        let fits_budget = |c: &Self, freed: u64| {
            c.budget
                .used()
                .saturating_sub(freed)
                .checked_add(size)
                .is_some_and(|n| n <= c.budget.limit())
        };
        // Which lingering sessions to remove, in order, before removing any:
        // none if even all of them would not make room.
        let mut lingering: Vec<(bool, Instant, u64)> = self
            .by_id
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Ready { .. }))
            .filter_map(|(id, c)| c.detached.map(|t| (c.peer != peer, t, *id)))
            .collect();
        // Same peer first (`false` sorts first), then the oldest.
        lingering.sort_unstable();
        let from_peer = self.per_peer.get(&peer).copied().unwrap_or(0);
        let (mut clients, mut peer_clients, mut freed) = (self.by_id.len(), from_peer, 0u64);
        let mut chosen = Vec::new();
        for &(other_peer, _, id) in &lingering {
            let room = clients < self.limits.max_clients
                && peer_clients < self.limits.max_per_peer
                && fits_budget(self, freed);
            if room {
                break;
            }
            if peer_clients >= self.limits.max_per_peer && other_peer {
                // Only a session from this peer frees a per-peer slot, and
                // those came first.
                break;
            }
            chosen.push(id);
            clients -= 1;
            freed += size;
            if !other_peer {
                peer_clients -= 1;
            }
        }
        let room = clients < self.limits.max_clients
            && peer_clients < self.limits.max_per_peer
            && fits_budget(self, freed);
        if !room {
            return out;
        }
        for client_id in chosen {
            let Some(c) = self.remove(client_id) else {
                continue;
            };
            let (joined, queue_count) = (c.joined_count, c.queues.len() as u16);
            if let State::Ready { region } = c.state {
                out.push(Expired {
                    client_id,
                    lingered: true,
                    peer: c.peer,
                    joined,
                    queue_count,
                    region,
                });
            }
        }
        out
    }

    /// Creates a registering client for queue 0 of `req`, within the
    /// limits; returns its registration ticket.
    fn new_client(
        &mut self,
        req: &ConnectRequest,
        peer: Peer,
        new_secret: impl FnOnce() -> Result<u64, Status>,
        fits: impl FnOnce(u64) -> bool,
    ) -> Result<u64, Status> {
        if req.queue != 0 {
            return Err(Status::UnknownClient);
        }
        if self.by_id.len() >= self.limits.max_clients {
            return Err(Status::TooManyClients);
        }
        if self.per_peer.get(&peer).copied().unwrap_or(0) >= self.limits.max_per_peer {
            return Err(Status::TooManyFromPeer);
        }
        let secret = new_secret()?;
        let size = self.limits.region_size;
        if !self.budget.try_charge(size) {
            return Err(Status::OverBudget);
        }
        if !fits(self.registering) {
            self.budget.refund(size);
            return Err(Status::NoMemory);
        }
        self.registering += size;
        *self.per_peer.entry(peer).or_default() += 1;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let n = usize::from(req.queue_count);
        let mut c = Client {
            peer,
            queues: vec![false; n],
            live: 1,
            joined: vec![false; n],
            joined_count: 1,
            deadline: None,
            state: State::Registering {
                ticket,
                waiting: Vec::new(),
            },
            version: req.version,
            secret,
            detached: None,
        };
        c.queues[0] = true;
        c.joined[0] = true;
        self.by_id.insert(req.client_id, c);
        Ok(ticket)
    }

    /// Reports the registration `ticket` of a client: its region, or None
    /// if it could not be registered. Starts the client's join deadline.
    pub fn registered(
        &mut self,
        client_id: u64,
        ticket: u64,
        region: Option<R>,
        now: Instant,
    ) -> Registered<'_, R, W> {
        let current = matches!(
            self.by_id.get(&client_id).map(|c| &c.state),
            Some(State::Registering { ticket: t, .. }) if *t == ticket
        );
        if !current {
            return Registered::Stale(region);
        }
        self.registering = self.registering.saturating_sub(self.limits.region_size);
        let Some(region) = region else {
            let Some(c) = self.remove(client_id) else {
                return Registered::Stale(None);
            };
            let waiting = match c.state {
                State::Registering { waiting, .. } => waiting,
                State::Ready { .. } => Vec::new(),
            };
            return Registered::Failed {
                peer: c.peer,
                waiting,
            };
        };
        let deadline = now + self.limits.join_deadline;
        let Some(c) = self.by_id.get_mut(&client_id) else {
            return Registered::Stale(Some(region));
        };
        if !c.is_complete() {
            c.deadline = Some(deadline);
        }
        let waiting = match std::mem::replace(&mut c.state, State::Ready { region }) {
            State::Registering { waiting, .. } => waiting,
            State::Ready { .. } => Vec::new(),
        };
        match &c.state {
            State::Ready { region } => Registered::Ready { region, waiting },
            State::Registering { .. } => Registered::Stale(None),
        }
    }

    /// Marks a connected queue gone. Returns the client's region once its
    /// last queue is gone, for the caller to free, unless the region is
    /// kept for a reconnect (a complete version-2 client, a non-zero
    /// linger time): then the client is detached from `now` on.
    pub fn release(&mut self, client_id: u64, queue: u16, now: Instant) -> Option<R> {
        let linger = self.limits.linger;
        let c = self.by_id.get_mut(&client_id)?;
        if !matches!(c.state, State::Ready { .. }) {
            return None;
        }
        let slot = c.queues.get_mut(usize::from(queue))?;
        if !*slot {
            return None;
        }
        *slot = false;
        c.live -= 1;
        if c.live > 0 {
            return None;
        }
        if c.version >= crate::protocol::VERSION && !linger.is_zero() && c.is_complete() {
            c.detached = Some(now);
            return None;
        }
        match self.remove(client_id)?.state {
            State::Ready { region } => Some(region),
            State::Registering { .. } => None,
        }
    }

    fn remove(&mut self, client_id: u64) -> Option<Client<R, W>> {
        let c = self.by_id.remove(&client_id)?;
        self.budget.refund(self.limits.region_size);
        if let Some(n) = self.per_peer.get_mut(&c.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&c.peer);
            }
        }
        Some(c)
    }

    /// Removes every client whose deadline has passed with queues still
    /// missing, and every detached client whose linger time is over.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired<R>> {
        let linger = self.limits.linger;
        let due: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(_, c)| {
                c.deadline.is_some_and(|d| d <= now)
                    || c.detached.is_some_and(|d| d + linger <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        self.remove_all(due)
    }

    /// Removes a client whose region is ready, whatever its queues, and
    /// refunds its region to the budget.
    pub fn evict(&mut self, client_id: u64) -> Option<Evicted<R>> {
        if !matches!(self.by_id.get(&client_id)?.state, State::Ready { .. }) {
            return None;
        }
        let c = self.remove(client_id)?;
        let queue_count = c.queues.len() as u16;
        match c.state {
            State::Ready { region } => Some(Evicted {
                peer: c.peer,
                queue_count,
                region,
            }),
            State::Registering { .. } => None,
        }
    }

    /// Removes every client whose ready region matches `pred` (its RDMA
    /// device went away), whatever its queues, lingering sessions too;
    /// their regions are the caller's to free once their queue pairs are
    /// gone. `lingered` tells a lingering session; a reconnect will find
    /// the session gone.
    pub fn remove_regions(&mut self, pred: impl Fn(&R) -> bool) -> Vec<Expired<R>> {
        let ids: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(_, c)| matches!(&c.state, State::Ready { region } if pred(region)))
            .map(|(id, _)| *id)
            .collect();
        self.remove_all(ids)
    }

    /// Removes these clients and returns those whose region was ready,
    /// for the caller to free.
    fn remove_all(&mut self, ids: Vec<u64>) -> Vec<Expired<R>> {
        let mut out = Vec::new();
        for client_id in ids {
            let Some(c) = self.remove(client_id) else {
                continue;
            };
            let (joined, queue_count) = (c.joined_count, c.queues.len() as u16);
            let lingered = c.detached.is_some();
            if let State::Ready { region } = c.state {
                out.push(Expired {
                    client_id,
                    lingered,
                    peer: c.peer,
                    joined,
                    queue_count,
                    region,
                });
            }
        }
        out
    }

    /// A client that stopped answering: a complete version-2 client
    /// (with a non-zero linger time) loses its queues but keeps its
    /// region for a reconnect (`Ok`, with its peer and queue count);
    /// any other ready client is removed as by [`Registry::evict`] (`Err`).
    pub fn detach(
        &mut self,
        client_id: u64,
        now: Instant,
    ) -> Option<Result<(Peer, u16), Evicted<R>>> {
        let linger = self.limits.linger;
        let c = self.by_id.get_mut(&client_id)?;
        if !matches!(c.state, State::Ready { .. }) {
            return None;
        }
        if c.version >= crate::protocol::VERSION && !linger.is_zero() && c.is_complete() {
            c.queues.iter_mut().for_each(|q| *q = false);
            c.live = 0;
            c.detached.get_or_insert(now);
            return Some(Ok((c.peer, c.queues.len() as u16)));
        }
        self.evict(client_id).map(Err)
    }

    /// The client's region, once it is ready.
    pub fn region(&self, client_id: u64) -> Option<&R> {
        match &self.by_id.get(&client_id)?.state {
            State::Ready { region } => Some(region),
            State::Registering { .. } => None,
        }
    }

    /// The client (id and peer) whose ready region matches `pred`.
    pub fn find_region(&self, pred: impl Fn(&R) -> bool) -> Option<(u64, Peer)> {
        self.by_id.iter().find_map(|(id, c)| match &c.state {
            State::Ready { region } if pred(region) => Some((*id, c.peer)),
            _ => None,
        })
    }

    /// The earliest deadline of a client still missing queues.
    pub fn next_deadline(&self) -> Option<Instant> {
        let linger = self.limits.linger;
        self.by_id
            .values()
            .filter_map(|c| match (c.deadline, c.detached) {
                (Some(d), Some(t)) => Some(d.min(t + linger)),
                (d, t) => d.or(t.map(|t| t + linger)),
            })
            .min()
    }

    /// Whether every queue of the client has joined (it takes no more).
    pub fn is_complete(&self, client_id: u64) -> bool {
        self.by_id.get(&client_id).is_some_and(|c| c.is_complete())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn live_queues(&self, client_id: u64) -> usize {
        self.by_id.get(&client_id).map_or(0, |c| c.live)
    }

    /// Bytes charged to the budget.
    pub fn used(&self) -> u64 {
        self.budget.used()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::VERSION;
    use std::net::{IpAddr, Ipv4Addr};

    const SIZE: u64 = 256 << 20;
    type Table = Registry<String, u16>;

    fn limits() -> Limits {
        Limits {
            region_size: SIZE,
            budget: 4 * SIZE,
            max_clients: 8,
            max_per_peer: 8,
            join_deadline: Duration::from_secs(60),
            linger: Duration::ZERO,
        }
    }

    fn peer(last: u8) -> Peer {
        Peer {
            ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))),
            gid: [last; 16],
        }
    }

    fn req(client_id: u64, queue: u16, queue_count: u16) -> ConnectRequest {
        ConnectRequest {
            version: VERSION,
            reconnect: false,
            close: false,
            secret: 0,
            queue,
            queue_count,
            client_id,
        }
    }

    /// What became of a join, with the region's name when accepted.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Register(u64),
        Wait,
        Accept(String),
        Refused(Status),
    }

    fn join(c: &mut Table, id: u64, q: u16, n: u16, p: Peer) -> Got {
        match c.admit(&req(id, q, n), p, q, || Ok(0x5ec0_0000 + id), |_| true) {
            Ok(Admit::Register { ticket }) => Got::Register(ticket),
            Ok(Admit::Wait) => Got::Wait,
            Ok(Admit::Accept(w, r)) => {
                assert_eq!(w, q, "the join comes back");
                Got::Accept(r.clone())
            }
            Ok(Admit::Reattach { .. }) => panic!("a first connect is never re-attached"),
            Err((s, w)) => {
                assert_eq!(w, q, "the join comes back");
                Got::Refused(s)
            }
        }
    }

    /// Joins queue 0 of a new client and completes its registration.
    fn connect(c: &mut Table, id: u64, n: u16, p: Peer, t: Instant) -> Got {
        match join(c, id, 0, n, p) {
            Got::Register(ticket) => match c.registered(id, ticket, Some(format!("r{id}")), t) {
                Registered::Ready { region, waiting } => {
                    assert_eq!(waiting, vec![(0, 0)]);
                    Got::Accept(region.clone())
                }
                other => panic!("registration of {id}: {other:?}"),
            },
            other => other,
        }
    }

    impl Table {
        fn release_now(&mut self, id: u64, q: u16) -> Option<String> {
            self.release(id, q, Instant::now())
        }
    }

    fn reconnect(
        c: &mut Table,
        id: u64,
        q: u16,
        n: u16,
        p: Peer,
        secret: u64,
    ) -> Result<bool, Status> {
        let r = ConnectRequest {
            reconnect: true,
            secret,
            ..req(id, q, n)
        };
        let no_secret = || -> Result<u64, Status> { panic!("a reconnect draws no secret") };
        match c.admit(&r, p, q, no_secret, |_| {
            panic!("a reconnect registers nothing")
        }) {
            Ok(Admit::Reattach {
                join,
                region,
                replaced,
            }) => {
                assert_eq!(join, q);
                assert_eq!(region, &format!("r{id}"));
                Ok(replaced)
            }
            Ok(_) => panic!("a reconnect is re-attached or refused"),
            Err((s, w)) => {
                assert_eq!(w, q);
                Err(s)
            }
        }
    }

    fn lingering() -> Limits {
        Limits {
            linger: Duration::from_secs(30),
            ..limits()
        }
    }

    #[test]
    fn a_complete_client_lingers_and_is_reattached_with_its_secret() {
        let mut c = Table::new(lingering());
        let t = Instant::now();
        assert_eq!(connect(&mut c, 7, 2, peer(2), t), Got::Accept("r7".into()));
        assert_eq!(join(&mut c, 7, 1, 2, peer(2)), Got::Accept("r7".into()));
        let secret = c.secret(7).unwrap();
        assert_eq!(secret, 0x5ec0_0007);
        // Every queue goes: the region is kept, still charged.
        assert_eq!(c.release(7, 0, t), None);
        assert_eq!(c.release(7, 1, t), None);
        assert!(c.is_detached(7));
        assert_eq!(c.used(), SIZE);
        assert_eq!(c.next_deadline(), Some(t + Duration::from_secs(30)));
        // A plain join with the stolen id is refused (all queues were in);
        // a reconnect without the secret or from another address too.
        assert_eq!(
            join(&mut c, 7, 0, 2, peer(2)),
            Got::Refused(Status::ClientClosed)
        );
        assert_eq!(
            reconnect(&mut c, 7, 0, 2, peer(2), secret ^ 1),
            Err(Status::BadSecret)
        );
        assert_eq!(
            reconnect(&mut c, 7, 0, 2, peer(3), secret),
            Err(Status::BadSecret)
        );
        assert_eq!(
            reconnect(&mut c, 8, 0, 2, peer(2), secret),
            Err(Status::SessionGone)
        );
        // The right secret from the same address re-attaches every queue.
        assert_eq!(reconnect(&mut c, 7, 0, 2, peer(2), secret), Ok(false));
        assert!(!c.is_detached(7));
        assert_eq!(reconnect(&mut c, 7, 1, 2, peer(2), secret), Ok(false));
        assert_eq!(c.live_queues(7), 2);
        assert!(
            c.expire(t + Duration::from_secs(60)).is_empty(),
            "re-attached: not expired"
        );
        // Lost again, and not back within the linger time: freed.
        let t2 = t + Duration::from_secs(100);
        assert_eq!(c.release(7, 0, t2), None);
        assert_eq!(c.release(7, 1, t2), None);
        assert!(c.expire(t2 + Duration::from_secs(29)).is_empty());
        let e = c.expire(t2 + Duration::from_secs(30));
        assert_eq!(e.len(), 1);
        assert!(e[0].lingered);
        assert_eq!(e[0].region, "r7");
        assert!(c.is_empty());
        assert_eq!(c.used(), 0);
        assert_eq!(
            reconnect(&mut c, 7, 0, 2, peer(2), secret),
            Err(Status::SessionGone)
        );
    }

    /// A complete one-queue client of `p` whose queue went at `t`: its
    /// region lingers for a reconnect.
    fn linger(c: &mut Table, id: u64, p: Peer, t: Instant) {
        assert_eq!(connect(c, id, 1, p, t), Got::Accept(format!("r{id}")));
        assert_eq!(c.release(id, 0, t), None);
        assert!(c.is_detached(id));
    }

    /// Makes room for new client `id` from `p`, then joins its queue 0.
    fn make_room_and_join(c: &mut Table, id: u64, p: Peer) -> (Vec<u64>, Got) {
        let evicted = c
            .make_room(&req(id, 0, 1), p)
            .into_iter()
            .map(|e| {
                assert!(e.lingered);
                assert_eq!(e.region, format!("r{}", e.client_id));
                e.client_id
            })
            .collect();
        (evicted, join(c, id, 0, 1, p))
    }

    #[test]
    fn evicting_a_lingering_session_frees_room_for_a_new_client() {
        let mut c = Table::new(lingering());
        let t = Instant::now();
        // The budget (4 regions) is full of lingering sessions.
        for id in 1..=4 {
            linger(&mut c, id, peer(id as u8), t + Duration::from_secs(id));
        }
        assert_eq!(c.used(), 4 * SIZE);
        // Without making room the new client is refused.
        assert_eq!(
            join(&mut c, 9, 0, 1, peer(9)),
            Got::Refused(Status::OverBudget)
        );
        // The oldest lingering session goes, and only it.
        let (evicted, got) = make_room_and_join(&mut c, 9, peer(9));
        assert_eq!(evicted, vec![1]);
        assert!(matches!(got, Got::Register(_)));
        assert_eq!(c.used(), 4 * SIZE);
        assert_eq!(c.len(), 4);
        // Nothing to do when the client fits, or is not a new client.
        assert!(c.make_room(&req(9, 1, 1), peer(9)).is_empty());
        assert!(c.make_room(&req(2, 0, 1), peer(2)).is_empty());
        // The same for the client limit.
        let mut c = Table::new(Limits {
            max_clients: 2,
            budget: 100 * SIZE,
            ..lingering()
        });
        linger(&mut c, 1, peer(1), t);
        linger(&mut c, 2, peer(2), t + Duration::from_secs(1));
        assert_eq!(
            join(&mut c, 9, 0, 1, peer(9)),
            Got::Refused(Status::TooManyClients)
        );
        let (evicted, got) = make_room_and_join(&mut c, 9, peer(9));
        assert_eq!(evicted, vec![1]);
        assert!(matches!(got, Got::Register(_)));
    }

    #[test]
    fn a_lingering_session_of_the_same_address_goes_first() {
        let mut c = Table::new(lingering());
        let t = Instant::now();
        // Older sessions of other peers, the newest from peer 5.
        linger(&mut c, 1, peer(2), t);
        linger(&mut c, 2, peer(3), t + Duration::from_secs(1));
        linger(&mut c, 3, peer(5), t + Duration::from_secs(2));
        linger(&mut c, 4, peer(5), t + Duration::from_secs(3));
        let (evicted, got) = make_room_and_join(&mut c, 9, peer(5));
        assert_eq!(evicted, vec![3], "peer 5's oldest, not the oldest of all");
        assert!(matches!(got, Got::Register(_)));
        // The per-address limit: only that address's sessions free a slot
        // (a churn of short clients from one address).
        let mut c = Table::new(Limits {
            max_per_peer: 2,
            budget: 100 * SIZE,
            ..lingering()
        });
        linger(&mut c, 1, peer(3), t);
        linger(&mut c, 2, peer(2), t + Duration::from_secs(1));
        linger(&mut c, 3, peer(2), t + Duration::from_secs(2));
        assert_eq!(
            join(&mut c, 9, 0, 1, peer(2)),
            Got::Refused(Status::TooManyFromPeer)
        );
        let (evicted, got) = make_room_and_join(&mut c, 9, peer(2));
        assert_eq!(evicted, vec![2]);
        assert!(matches!(got, Got::Register(_)));
        assert!(c.is_detached(1), "another address's session stays");
        assert!(c.is_detached(3));
    }

    #[test]
    fn a_connected_client_is_never_evicted() {
        let mut c = Table::new(Limits {
            max_per_peer: 2,
            ..lingering()
        });
        let t = Instant::now();
        // Live clients fill the budget; one of them has lost a queue only.
        assert_eq!(connect(&mut c, 1, 1, peer(2), t), Got::Accept("r1".into()));
        assert_eq!(connect(&mut c, 2, 1, peer(2), t), Got::Accept("r2".into()));
        assert_eq!(connect(&mut c, 3, 2, peer(3), t), Got::Accept("r3".into()));
        assert_eq!(join(&mut c, 3, 1, 2, peer(3)), Got::Accept("r3".into()));
        assert_eq!(c.release(3, 0, t), None);
        // A client still registering is not lingering either.
        assert!(matches!(join(&mut c, 4, 0, 1, peer(4)), Got::Register(_)));
        let (evicted, got) = make_room_and_join(&mut c, 9, peer(9));
        assert_eq!(evicted, Vec::<u64>::new());
        assert_eq!(got, Got::Refused(Status::OverBudget));
        // Per address: peer 2's two clients are connected.
        let (evicted, got) = make_room_and_join(&mut c, 9, peer(2));
        assert_eq!(evicted, Vec::<u64>::new());
        assert_eq!(got, Got::Refused(Status::TooManyFromPeer));
        // One lingering session elsewhere frees no slot of peer 2, and is
        // kept when removing it would not let the client in.
        assert_eq!(c.release(1, 0, t), None);
        assert!(c.is_detached(1));
        let mut c2 = Table::new(Limits {
            max_per_peer: 1,
            budget: 100 * SIZE,
            ..lingering()
        });
        linger(&mut c2, 1, peer(3), t);
        assert_eq!(connect(&mut c2, 2, 1, peer(2), t), Got::Accept("r2".into()));
        let (evicted, got) = make_room_and_join(&mut c2, 9, peer(2));
        assert_eq!(evicted, Vec::<u64>::new());
        assert_eq!(got, Got::Refused(Status::TooManyFromPeer));
        assert!(c2.is_detached(1));
        assert_eq!(c.live_queues(2), 1);
        assert_eq!(c.live_queues(3), 1);
    }

    #[test]
    fn a_removed_device_takes_its_live_and_lingering_clients_only() {
        let mut c = Table::new(lingering());
        let t = Instant::now();
        // Regions "r1" and "r2" are on the removed device, "r3" is not; a
        // client still registering has no region yet.
        linger(&mut c, 1, peer(2), t);
        assert_eq!(connect(&mut c, 2, 1, peer(3), t), Got::Accept("r2".into()));
        assert_eq!(connect(&mut c, 3, 1, peer(4), t), Got::Accept("r3".into()));
        assert!(matches!(join(&mut c, 4, 0, 1, peer(5)), Got::Register(_)));
        let mut gone = c.remove_regions(|r| r == "r1" || r == "r2");
        gone.sort_by_key(|e| e.client_id);
        let got: Vec<(u64, bool, &str)> = gone
            .iter()
            .map(|e| (e.client_id, e.lingered, e.region.as_str()))
            .collect();
        assert_eq!(got, [(1, true, "r1"), (2, false, "r2")]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.used(), 2 * SIZE, "refunded the two regions");
        assert_eq!(c.live_queues(3), 1);
        // Their sessions are gone.
        let secret = 0x5ec0_0001;
        assert_eq!(
            reconnect(&mut c, 1, 0, 1, peer(2), secret),
            Err(Status::SessionGone)
        );
        assert!(c.remove_regions(|r| r == "r1").is_empty());
    }

    #[test]
    fn a_reconnect_to_an_evicted_session_finds_it_gone() {
        let mut c = Table::new(Limits {
            budget: SIZE,
            ..lingering()
        });
        let t = Instant::now();
        linger(&mut c, 1, peer(2), t);
        let secret = c.secret(1).unwrap();
        let (evicted, got) = make_room_and_join(&mut c, 9, peer(3));
        assert_eq!(evicted, vec![1]);
        assert!(matches!(got, Got::Register(_)));
        assert_eq!(
            reconnect(&mut c, 1, 0, 1, peer(2), secret),
            Err(Status::SessionGone)
        );
        assert!(c.expire(t + Duration::from_secs(3600)).is_empty());
    }

    #[test]
    fn a_close_with_the_secret_frees_the_region_at_once() {
        let mut c = Table::new(lingering());
        let t = Instant::now();
        assert_eq!(connect(&mut c, 7, 1, peer(2), t), Got::Accept("r7".into()));
        let secret = c.secret(7).unwrap();
        let close = |s: u64| ConnectRequest {
            close: true,
            secret: s,
            ..req(7, 0, 1)
        };
        assert_eq!(
            c.close(&close(secret ^ 1), peer(2)).err(),
            Some(Status::BadSecret)
        );
        assert_eq!(
            c.close(&close(secret), peer(3)).err(),
            Some(Status::BadSecret)
        );
        // Detached (lingering) or not, the close frees it.
        assert_eq!(c.release(7, 0, t), None);
        assert!(c.is_detached(7));
        let e = c.close(&close(secret), peer(2)).unwrap();
        assert_eq!(e.region, "r7");
        assert!(c.is_empty());
        assert_eq!(c.used(), 0);
        assert_eq!(
            c.close(&close(secret), peer(2)).err(),
            Some(Status::SessionGone)
        );
    }

    #[test]
    fn a_reconnect_replaces_a_queue_the_server_still_holds() {
        let mut c = Table::new(lingering());
        let t = Instant::now();
        assert_eq!(connect(&mut c, 7, 2, peer(2), t), Got::Accept("r7".into()));
        assert_eq!(join(&mut c, 7, 1, 2, peer(2)), Got::Accept("r7".into()));
        let secret = c.secret(7).unwrap();
        // The server has not noticed the outage: both queues still live.
        assert_eq!(reconnect(&mut c, 7, 0, 2, peer(2), secret), Ok(true));
        assert_eq!(reconnect(&mut c, 7, 1, 2, peer(2), secret), Ok(true));
        assert_eq!(c.live_queues(7), 2);
        assert_eq!(
            reconnect(&mut c, 7, 1, 3, peer(2), secret),
            Err(Status::QueueCountMismatch)
        );
    }

    #[test]
    fn version_1_clients_and_incomplete_clients_do_not_linger() {
        let mut c = Table::new(lingering());
        let t = Instant::now();
        let v1 = ConnectRequest {
            version: crate::protocol::VERSION_1,
            ..req(9, 0, 1)
        };
        let Ok(Admit::Register { ticket }) = c.admit(&v1, peer(2), 0, || Ok(1), |_| true) else {
            panic!("v1 client refused");
        };
        assert!(matches!(
            c.registered(9, ticket, Some("r9".into()), t),
            Registered::Ready { .. }
        ));
        assert_eq!(c.release(9, 0, t), Some("r9".to_string()));
        assert_eq!(
            reconnect(&mut c, 9, 0, 1, peer(2), 1),
            Err(Status::SessionGone)
        );
        // A client whose queues never all joined is freed at once.
        assert_eq!(connect(&mut c, 7, 2, peer(2), t), Got::Accept("r7".into()));
        assert_eq!(c.release(7, 0, t), Some("r7".to_string()));
        assert!(c.is_empty());
    }

    #[test]
    fn region_made_once_and_freed_with_last_queue() {
        let mut c = Table::new(limits());
        let t = Instant::now();
        assert_eq!(connect(&mut c, 7, 3, peer(2), t), Got::Accept("r7".into()));
        for q in 1..3 {
            assert_eq!(join(&mut c, 7, q, 3, peer(2)), Got::Accept("r7".into()));
        }
        assert_eq!(c.used(), SIZE);
        assert_eq!(c.release_now(7, 0), None);
        assert_eq!(c.release_now(7, 0), None, "double release is ignored");
        assert_eq!(c.release_now(7, 2), None);
        assert_eq!(c.release_now(7, 1), Some("r7".to_string()));
        assert!(c.is_empty());
        assert_eq!(c.used(), 0);
    }

    #[test]
    fn clients_get_separate_regions() {
        let mut c = Table::new(limits());
        let t = Instant::now();
        assert_eq!(connect(&mut c, 1, 1, peer(2), t), Got::Accept("r1".into()));
        assert_eq!(connect(&mut c, 2, 1, peer(2), t), Got::Accept("r2".into()));
        assert_eq!(c.len(), 2);
        assert_eq!(c.release_now(1, 0), Some("r1".into()));
        assert_eq!(c.live_queues(2), 1);
    }

    #[test]
    fn rejects_inconsistent_queues() {
        let mut c = Table::new(limits());
        let t = Instant::now();
        assert!(matches!(connect(&mut c, 1, 2, peer(2), t), Got::Accept(_)));
        assert_eq!(
            join(&mut c, 1, 0, 2, peer(2)),
            Got::Refused(Status::DuplicateQueue)
        );
        assert_eq!(
            join(&mut c, 1, 1, 3, peer(2)),
            Got::Refused(Status::QueueCountMismatch)
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn joins_wait_while_the_region_registers_and_others_go_on() {
        let mut c = Table::new(limits());
        let t = Instant::now();
        let Got::Register(slow) = join(&mut c, 1, 0, 3, peer(2)) else {
            panic!("queue 0 registers");
        };
        // The same client's next queue waits; its duplicates are refused.
        assert_eq!(join(&mut c, 1, 1, 3, peer(2)), Got::Wait);
        assert_eq!(
            join(&mut c, 1, 1, 3, peer(2)),
            Got::Refused(Status::DuplicateQueue)
        );
        // Another client is served meanwhile.
        assert_eq!(connect(&mut c, 2, 1, peer(3), t), Got::Accept("r2".into()));
        // No deadline runs while registering.
        assert_eq!(c.next_deadline(), None);
        assert_eq!(c.expire(t + Duration::from_secs(3600)), vec![]);
        // A release of a queue that is only waiting is ignored.
        assert_eq!(c.release_now(1, 1), None);
        match c.registered(1, slow, Some("r1".into()), t) {
            Registered::Ready { region, waiting } => {
                assert_eq!(region, "r1");
                assert_eq!(waiting, vec![(0, 0), (1, 1)]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(join(&mut c, 1, 2, 3, peer(2)), Got::Accept("r1".into()));
        assert!(c.is_complete(1));
        assert_eq!(c.live_queues(1), 3);
    }

    #[test]
    fn a_failed_registration_leaves_nothing() {
        let mut c = Table::new(limits());
        let t = Instant::now();
        let Got::Register(ticket) = join(&mut c, 1, 0, 2, peer(2)) else {
            panic!();
        };
        assert_eq!(join(&mut c, 1, 1, 2, peer(2)), Got::Wait);
        assert_eq!(
            c.registered(1, ticket, None, t),
            Registered::Failed {
                peer: peer(2),
                waiting: vec![(0, 0), (1, 1)]
            }
        );
        assert!(c.is_empty());
        assert_eq!(c.used(), 0);
        // A stale report (a ticket no client waits for) hands the region back.
        assert_eq!(
            c.registered(1, ticket, Some("late".into()), t),
            Registered::Stale(Some("late".into()))
        );
        // The id can start over.
        assert!(matches!(join(&mut c, 1, 0, 2, peer(2)), Got::Register(t2) if t2 != ticket));
    }

    #[test]
    fn a_secret_is_drawn_only_for_an_admitted_new_client() {
        let mut c = Table::new(limits());
        let no_secret = || -> Result<u64, Status> { panic!("no secret may be drawn here") };
        // A later queue of an unknown client, and a reconnect of one.
        let r = c.admit(&req(5, 1, 2), peer(2), 1, no_secret, |_| true);
        assert!(matches!(r, Err((Status::UnknownClient, 1))));
        let reconnect = ConnectRequest {
            reconnect: true,
            secret: 9,
            ..req(5, 0, 2)
        };
        let r = c.admit(&reconnect, peer(2), 0, no_secret, |_| true);
        assert!(matches!(r, Err((Status::SessionGone, 0))));
        // A failure to draw one refuses the new client, charging nothing.
        let r = c.admit(
            &req(5, 0, 2),
            peer(2),
            0,
            || Err(Status::NoMemory),
            |_| true,
        );
        assert!(matches!(r, Err((Status::NoMemory, 0))));
        assert!(c.secret(5).is_none());
        let r = c.admit(&req(5, 0, 2), peer(2), 0, || Ok(42), |_| true);
        assert!(matches!(r, Ok(Admit::Register { .. })));
        assert_eq!(c.secret(5), Some(42));
    }

    #[test]
    fn registrations_in_flight_count_against_memory_now() {
        let mut c = Table::new(limits());
        let mut seen = Vec::new();
        for id in 0..3u64 {
            let r = c.admit(
                &req(id, 0, 1),
                peer(2),
                0,
                || Ok(1),
                |unpinned| {
                    seen.push(unpinned);
                    true
                },
            );
            assert!(matches!(r, Ok(Admit::Register { .. })));
        }
        assert_eq!(seen, vec![0, SIZE, 2 * SIZE]);
        assert_eq!(
            c.admit(&req(9, 0, 1), peer(2), 0, || Ok(1), |_| false),
            Err((Status::NoMemory, 0))
        );
        assert_eq!(c.len(), 3, "a region that does not fit leaves no client");
        assert_eq!(c.used(), 3 * SIZE, "and no charge");
    }

    #[test]
    fn a_flood_never_passes_the_budget() {
        let mut c = Table::new(Limits {
            max_clients: 1000,
            max_per_peer: 1000,
            ..limits()
        });
        let t = Instant::now();
        let (mut registering, mut refused) = (0, 0);
        for id in 0..100u64 {
            // Half of them register at once (still pending), half finish.
            let got = if id % 2 == 0 {
                join(&mut c, id, 0, 6, peer((id % 7) as u8))
            } else {
                connect(&mut c, id, 6, peer((id % 7) as u8), t)
            };
            match got {
                Got::Register(_) | Got::Accept(_) => registering += 1,
                Got::Refused(s) => {
                    assert_eq!(s, Status::OverBudget);
                    refused += 1;
                }
                Got::Wait => panic!("new ids never wait"),
            }
            assert!(c.used() <= 4 * SIZE);
        }
        assert_eq!((registering, refused), (4, 96));
        // Freeing one (id 1 registered and connected) makes room for one more.
        assert_eq!(c.release_now(1, 0), Some("r1".into()));
        assert!(matches!(
            connect(&mut c, 500, 1, peer(1), t),
            Got::Accept(_)
        ));
        assert_eq!(
            join(&mut c, 501, 0, 1, peer(1)),
            Got::Refused(Status::OverBudget)
        );
    }

    #[test]
    fn client_and_per_peer_limits() {
        let mut c = Table::new(Limits {
            budget: 100 * SIZE,
            max_clients: 3,
            max_per_peer: 2,
            ..limits()
        });
        let t = Instant::now();
        assert!(matches!(connect(&mut c, 1, 1, peer(2), t), Got::Accept(_)));
        assert!(matches!(join(&mut c, 2, 0, 1, peer(2)), Got::Register(_)));
        assert_eq!(
            join(&mut c, 3, 0, 1, peer(2)),
            Got::Refused(Status::TooManyFromPeer),
            "a client still registering counts"
        );
        assert_eq!(c.used(), 2 * SIZE, "a refused client costs nothing");
        assert!(matches!(connect(&mut c, 3, 1, peer(3), t), Got::Accept(_)));
        assert_eq!(
            join(&mut c, 4, 0, 1, peer(4)),
            Got::Refused(Status::TooManyClients)
        );
        // The same IP address with another GID is another source.
        let other_gid = Peer {
            gid: [9; 16],
            ..peer(2)
        };
        assert_eq!(c.release_now(1, 0), Some("r1".into()));
        assert!(matches!(
            connect(&mut c, 5, 1, other_gid, t),
            Got::Accept(_)
        ));
        assert_eq!(c.len(), 3);
        assert_eq!(c.used(), 3 * SIZE);
    }

    #[test]
    fn half_open_clients_expire_at_their_deadline() {
        let mut c = Table::new(limits());
        let t0 = Instant::now();
        let dl = limits().join_deadline;
        assert!(matches!(connect(&mut c, 1, 6, peer(2), t0), Got::Accept(_)));
        let t5 = t0 + Duration::from_secs(5);
        assert!(matches!(connect(&mut c, 2, 2, peer(2), t5), Got::Accept(_)));
        assert_eq!(c.next_deadline(), Some(t0 + dl));
        // Client 2 completes: no deadline any more.
        assert!(matches!(join(&mut c, 2, 1, 2, peer(2)), Got::Accept(_)));
        assert_eq!(c.next_deadline(), Some(t0 + dl));
        assert_eq!(c.expire(t0 + dl - Duration::from_millis(1)), vec![]);
        assert_eq!(
            c.expire(t0 + dl),
            vec![Expired {
                lingered: false,
                client_id: 1,
                peer: peer(2),
                joined: 1,
                queue_count: 6,
                region: "r1".to_string()
            }]
        );
        assert_eq!(c.next_deadline(), None);
        assert_eq!(c.expire(t0 + 10 * dl), vec![]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.used(), SIZE, "the expired region is no longer charged");
        // A late release of the expired client's queue is ignored, and its
        // late queues find no client.
        assert_eq!(c.release_now(1, 0), None);
        assert_eq!(
            join(&mut c, 1, 1, 6, peer(2)),
            Got::Refused(Status::UnknownClient)
        );
    }

    #[test]
    fn the_deadline_starts_when_the_region_is_ready() {
        let mut c = Table::new(limits());
        let t0 = Instant::now();
        let Got::Register(ticket) = join(&mut c, 1, 0, 2, peer(2)) else {
            panic!();
        };
        let ready = t0 + Duration::from_secs(30);
        assert!(matches!(
            c.registered(1, ticket, Some("r1".into()), ready),
            Registered::Ready { .. }
        ));
        assert_eq!(c.next_deadline(), Some(ready + limits().join_deadline));
    }

    #[test]
    fn later_queues_must_come_from_the_first_queues_peer() {
        let mut c = Table::new(limits());
        let t0 = Instant::now();
        assert!(matches!(connect(&mut c, 1, 3, peer(2), t0), Got::Accept(_)));
        // Another address presenting the id, for a free queue index.
        assert_eq!(
            join(&mut c, 1, 1, 3, peer(3)),
            Got::Refused(Status::PeerMismatch)
        );
        // The same IP address with another GID is another peer.
        let other_gid = Peer {
            gid: [7; 16],
            ..peer(2)
        };
        assert_eq!(
            join(&mut c, 1, 1, 3, other_gid),
            Got::Refused(Status::PeerMismatch)
        );
        // The peer is checked first: the impostor learns nothing about the
        // client's queues.
        assert_eq!(
            join(&mut c, 1, 0, 5, peer(3)),
            Got::Refused(Status::PeerMismatch)
        );
        assert_eq!(join(&mut c, 1, 1, 3, peer(2)), Got::Accept("r1".into()));
        assert_eq!(c.live_queues(1), 2);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_waiting_client_is_bound_too() {
        let mut c = Table::new(limits());
        assert!(matches!(join(&mut c, 1, 0, 2, peer(2)), Got::Register(_)));
        assert_eq!(
            join(&mut c, 1, 1, 2, peer(3)),
            Got::Refused(Status::PeerMismatch)
        );
    }

    #[test]
    fn a_client_is_created_by_its_queue_0_only() {
        let mut c = Table::new(limits());
        let mut called = false;
        let r = c.admit(
            &req(1, 2, 3),
            peer(2),
            2,
            || Ok(1),
            |_| {
                called = true;
                true
            },
        );
        assert_eq!(r, Err((Status::UnknownClient, 2)));
        assert!(!called);
        assert!(c.is_empty());
        assert_eq!(c.used(), 0);
    }

    #[test]
    fn a_complete_client_takes_no_new_joins() {
        let mut c = Table::new(limits());
        let t0 = Instant::now();
        assert!(matches!(connect(&mut c, 1, 3, peer(2), t0), Got::Accept(_)));
        for q in 1..3 {
            assert!(matches!(join(&mut c, 1, q, 3, peer(2)), Got::Accept(_)));
        }
        // Duplicate or not, from its own address or not: closed.
        assert_eq!(
            join(&mut c, 1, 1, 3, peer(2)),
            Got::Refused(Status::ClientClosed)
        );
        assert_eq!(c.release_now(1, 1), None);
        assert_eq!(
            join(&mut c, 1, 1, 3, peer(2)),
            Got::Refused(Status::ClientClosed),
            "a dropped queue of a complete client cannot be taken over"
        );
        assert_eq!(
            join(&mut c, 1, 1, 3, peer(3)),
            Got::Refused(Status::PeerMismatch)
        );
        assert_eq!(c.live_queues(1), 2);
    }

    #[test]
    fn an_incomplete_client_may_rejoin_a_dropped_queue_in_time() {
        let mut c = Table::new(limits());
        let t0 = Instant::now();
        assert!(matches!(connect(&mut c, 1, 3, peer(2), t0), Got::Accept(_)));
        assert!(matches!(join(&mut c, 1, 1, 3, peer(2)), Got::Accept(_)));
        assert_eq!(c.release_now(1, 1), None);
        assert!(matches!(join(&mut c, 1, 1, 3, peer(2)), Got::Accept(_)));
        assert!(matches!(join(&mut c, 1, 2, 3, peer(2)), Got::Accept(_)));
        assert_eq!(c.next_deadline(), None);
        assert!(c.is_complete(1));
    }

    #[test]
    fn an_evicted_client_is_gone_and_refunded() {
        let mut c = Table::new(limits());
        let t0 = Instant::now();
        assert!(matches!(connect(&mut c, 1, 2, peer(2), t0), Got::Accept(_)));
        assert!(matches!(join(&mut c, 1, 1, 2, peer(2)), Got::Accept(_)));
        assert!(matches!(connect(&mut c, 2, 1, peer(3), t0), Got::Accept(_)));
        assert_eq!(c.region(1), Some(&"r1".to_string()));
        assert_eq!(
            c.find_region(|r| r == "r2"),
            Some((2, peer(3))),
            "found by its region"
        );
        assert_eq!(c.find_region(|r| r == "r9"), None);
        assert_eq!(
            c.evict(1),
            Some(Evicted {
                peer: peer(2),
                queue_count: 2,
                region: "r1".to_string()
            })
        );
        assert_eq!(c.evict(1), None, "once");
        assert_eq!(c.region(1), None);
        assert_eq!(c.used(), SIZE);
        // Its queues' late disconnects are ignored; its id may start over.
        assert_eq!(c.release_now(1, 0), None);
        assert!(matches!(join(&mut c, 1, 0, 2, peer(2)), Got::Register(_)));
        // A client still registering is not evicted.
        assert_eq!(c.evict(1), None);
        assert_eq!(c.region(1), None);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_complete_client_keeps_its_region_when_a_queue_drops() {
        let mut c = Table::new(limits());
        let t0 = Instant::now();
        assert!(matches!(connect(&mut c, 1, 2, peer(2), t0), Got::Accept(_)));
        assert!(matches!(join(&mut c, 1, 1, 2, peer(2)), Got::Accept(_)));
        assert_eq!(c.release_now(1, 0), None);
        assert_eq!(c.expire(t0 + Duration::from_secs(3600)), vec![]);
        assert_eq!(c.live_queues(1), 1);
    }
}
