//! Which clients are connected, with how many queues, and their regions,
//! within the server's limits: a memory budget, a number of clients, a
//! number of clients per peer address, and a deadline by which a client's
//! queues must all have joined. Pure bookkeeping, generic over the region
//! type so it is unit-tested without an RDMA device.
//!
//! A client id travels in clear text, so it is not enough to join a
//! client's queue (and get its region's rkey and a queue pair in its
//! protection domain): a client is created only by its queue 0, every later
//! queue must come from the same peer (address and GID) as queue 0, and
//! once all its queues have joined the client takes no new ones, even if
//! one drops.

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
    /// Time from a client's first queue until all its queues must have
    /// joined.
    pub join_deadline: Duration,
}

struct Client<R> {
    peer: Peer,
    /// Queues now connected, by index.
    queues: Vec<bool>,
    live: usize,
    /// Queues that ever joined, by index; all of them makes the client
    /// complete.
    joined: Vec<bool>,
    joined_count: usize,
    /// Until the client is complete: when it must be.
    deadline: Option<Instant>,
    region: R,
}

/// A client whose queues did not all join in time; its region is the
/// caller's to free once the client's queue pairs are gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired<R> {
    pub client_id: u64,
    pub peer: Peer,
    pub joined: usize,
    pub queue_count: u16,
    pub region: R,
}

pub struct Clients<R> {
    limits: Limits,
    budget: Budget,
    by_id: HashMap<u64, Client<R>>,
    per_peer: HashMap<Peer, usize>,
}

impl<R> Clients<R> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            budget: Budget::new(limits.budget),
            by_id: HashMap::new(),
            per_peer: HashMap::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Admits queue `req.queue` of client `req.client_id` from `peer`. The
    /// client's first queue charges the budget and creates its region with
    /// `make_region`; later queues share it.
    pub fn admit(
        &mut self,
        req: &ConnectRequest,
        peer: Peer,
        now: Instant,
        make_region: impl FnOnce() -> Option<R>,
    ) -> Result<&R, Status> {
        let q = usize::from(req.queue);
        if let Some(c) = self.by_id.get(&req.client_id) {
            if c.peer != peer {
                return Err(Status::PeerMismatch);
            }
            if c.joined_count == c.joined.len() {
                return Err(Status::ClientClosed);
            }
            if c.queues.len() != usize::from(req.queue_count) {
                return Err(Status::QueueCountMismatch);
            }
            if c.queues[q] {
                return Err(Status::DuplicateQueue);
            }
        } else {
            if req.queue != 0 {
                return Err(Status::UnknownClient);
            }
            self.check_new(peer)?;
            let size = self.limits.region_size;
            if !self.budget.try_charge(size) {
                return Err(Status::OverBudget);
            }
            let Some(region) = make_region() else {
                self.budget.refund(size);
                return Err(Status::NoMemory);
            };
            let n = usize::from(req.queue_count);
            *self.per_peer.entry(peer).or_default() += 1;
            self.by_id.insert(
                req.client_id,
                Client {
                    peer,
                    queues: vec![false; n],
                    live: 0,
                    joined: vec![false; n],
                    joined_count: 0,
                    deadline: Some(now + self.limits.join_deadline),
                    region,
                },
            );
        }
        let c = self.by_id.get_mut(&req.client_id).ok_or(Status::NoMemory)?;
        c.queues[q] = true;
        c.live += 1;
        if !c.joined[q] {
            c.joined[q] = true;
            c.joined_count += 1;
            if c.joined_count == c.joined.len() {
                c.deadline = None;
            }
        }
        Ok(&c.region)
    }

    /// The limits on the number of clients, checked before a new client
    /// costs anything.
    fn check_new(&self, peer: Peer) -> Result<(), Status> {
        if self.by_id.len() >= self.limits.max_clients {
            return Err(Status::TooManyClients);
        }
        if self.per_peer.get(&peer).copied().unwrap_or(0) >= self.limits.max_per_peer {
            return Err(Status::TooManyFromPeer);
        }
        Ok(())
    }

    /// Marks a queue gone. Returns the client's region once its last queue
    /// is gone, for the caller to free.
    pub fn release(&mut self, client_id: u64, queue: u16) -> Option<R> {
        let c = self.by_id.get_mut(&client_id)?;
        let slot = c.queues.get_mut(usize::from(queue))?;
        if !*slot {
            return None;
        }
        *slot = false;
        c.live -= 1;
        if c.live > 0 {
            return None;
        }
        self.remove(client_id)
    }

    fn remove(&mut self, client_id: u64) -> Option<R> {
        let c = self.by_id.remove(&client_id)?;
        self.budget.refund(self.limits.region_size);
        if let Some(n) = self.per_peer.get_mut(&c.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&c.peer);
            }
        }
        Some(c.region)
    }

    /// Removes every client whose deadline has passed with queues still
    /// missing.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired<R>> {
        let due: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for client_id in due {
            let Some(c) = self.by_id.get(&client_id) else {
                continue;
            };
            let (peer, joined, queue_count) = (c.peer, c.joined_count, c.queues.len() as u16);
            if let Some(region) = self.remove(client_id) {
                out.push(Expired {
                    client_id,
                    peer,
                    joined,
                    queue_count,
                    region,
                });
            }
        }
        out
    }

    /// The earliest deadline of a client still missing queues.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_id.values().filter_map(|c| c.deadline).min()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether every queue of the client has joined (it takes no more).
    pub fn is_complete(&self, client_id: u64) -> bool {
        self.by_id
            .get(&client_id)
            .is_some_and(|c| c.joined_count == c.joined.len())
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

    fn limits() -> Limits {
        Limits {
            region_size: SIZE,
            budget: 4 * SIZE,
            max_clients: 8,
            max_per_peer: 8,
            join_deadline: Duration::from_secs(60),
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
            queue,
            queue_count,
            client_id,
        }
    }

    #[test]
    fn region_made_once_and_freed_with_last_queue() {
        let mut c = Clients::new(limits());
        let now = Instant::now();
        let mut made = 0;
        for q in 0..3 {
            let r = c.admit(&req(7, q, 3), peer(2), now, || {
                made += 1;
                Some(format!("region{made}"))
            });
            assert_eq!(r, Ok(&"region1".to_string()));
        }
        assert_eq!(made, 1);
        assert_eq!(c.used(), SIZE);
        assert_eq!(c.release(7, 0), None);
        assert_eq!(c.release(7, 0), None, "double release is ignored");
        assert_eq!(c.release(7, 2), None);
        assert_eq!(c.release(7, 1), Some("region1".to_string()));
        assert!(c.is_empty());
        assert_eq!(c.used(), 0);
    }

    #[test]
    fn clients_get_separate_regions() {
        let mut c = Clients::new(limits());
        let now = Instant::now();
        assert_eq!(c.admit(&req(1, 0, 1), peer(2), now, || Some(1)), Ok(&1));
        assert_eq!(c.admit(&req(2, 0, 1), peer(2), now, || Some(2)), Ok(&2));
        assert_eq!(c.len(), 2);
        assert_eq!(c.release(1, 0), Some(1));
        assert_eq!(c.live_queues(2), 1);
    }

    #[test]
    fn rejects_inconsistent_queues() {
        let mut c = Clients::new(limits());
        let now = Instant::now();
        assert!(c.admit(&req(1, 0, 2), peer(2), now, || Some(())).is_ok());
        assert_eq!(
            c.admit(&req(1, 0, 2), peer(2), now, || Some(())),
            Err(Status::DuplicateQueue)
        );
        assert_eq!(
            c.admit(&req(1, 1, 3), peer(2), now, || Some(())),
            Err(Status::QueueCountMismatch)
        );
        assert_eq!(
            c.admit(&req(9, 0, 1), peer(2), now, || None::<()>),
            Err(Status::NoMemory)
        );
        assert_eq!(c.len(), 1, "a failed region leaves no client behind");
        assert_eq!(c.used(), SIZE, "and no charge");
    }

    #[test]
    fn a_flood_never_passes_the_budget() {
        let mut c = Clients::new(Limits {
            max_clients: 1000,
            max_per_peer: 1000,
            ..limits()
        });
        let now = Instant::now();
        let mut made = 0;
        let mut refused = 0;
        for id in 0..100u64 {
            match c.admit(&req(id, 0, 6), peer((id % 7) as u8), now, || {
                made += 1;
                Some(id)
            }) {
                Ok(_) => {}
                Err(s) => {
                    assert_eq!(s, Status::OverBudget);
                    refused += 1;
                }
            }
            assert!(c.used() <= 4 * SIZE);
        }
        assert_eq!(
            (made, refused),
            (4, 96),
            "regions are made only within the budget"
        );
        // Freeing one makes room for exactly one more.
        assert_eq!(c.release(0, 0), Some(0));
        assert!(c.admit(&req(500, 0, 1), peer(1), now, || Some(500)).is_ok());
        assert_eq!(
            c.admit(&req(501, 0, 1), peer(1), now, || Some(501)),
            Err(Status::OverBudget)
        );
    }

    #[test]
    fn client_and_per_peer_limits() {
        let mut c = Clients::new(Limits {
            budget: 100 * SIZE,
            max_clients: 3,
            max_per_peer: 2,
            ..limits()
        });
        let now = Instant::now();
        assert!(c.admit(&req(1, 0, 1), peer(2), now, || Some(1)).is_ok());
        assert!(c.admit(&req(2, 0, 1), peer(2), now, || Some(2)).is_ok());
        let mut called = false;
        assert_eq!(
            c.admit(&req(3, 0, 1), peer(2), now, || {
                called = true;
                Some(3)
            }),
            Err(Status::TooManyFromPeer)
        );
        assert!(!called, "a refused client costs no region");
        assert!(c.admit(&req(3, 0, 1), peer(3), now, || Some(3)).is_ok());
        assert_eq!(
            c.admit(&req(4, 0, 1), peer(4), now, || Some(4)),
            Err(Status::TooManyClients)
        );
        // The same peer with another GID is another source.
        let other_gid = Peer {
            gid: [9; 16],
            ..peer(2)
        };
        assert_eq!(c.release(1, 0), Some(1));
        assert!(c.admit(&req(5, 0, 1), other_gid, now, || Some(5)).is_ok());
        assert_eq!(c.len(), 3);
        assert_eq!(c.used(), 3 * SIZE);
    }

    #[test]
    fn half_open_clients_expire_at_their_deadline() {
        let mut c = Clients::new(limits());
        let t0 = Instant::now();
        let dl = limits().join_deadline;
        assert!(c.admit(&req(1, 0, 6), peer(2), t0, || Some(1)).is_ok());
        assert!(c
            .admit(
                &req(2, 0, 2),
                peer(2),
                t0 + Duration::from_secs(5),
                || Some(2)
            )
            .is_ok());
        assert_eq!(c.next_deadline(), Some(t0 + dl));
        // Client 2 completes: no deadline any more.
        assert!(c
            .admit(
                &req(2, 1, 2),
                peer(2),
                t0 + Duration::from_secs(6),
                || Some(0)
            )
            .is_ok());
        assert_eq!(c.expire(t0 + dl - Duration::from_millis(1)), vec![]);
        let gone = c.expire(t0 + dl);
        assert_eq!(
            gone,
            vec![Expired {
                client_id: 1,
                peer: peer(2),
                joined: 1,
                queue_count: 6,
                region: 1
            }]
        );
        assert_eq!(c.next_deadline(), None);
        assert_eq!(c.expire(t0 + 10 * dl), vec![]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.used(), SIZE, "the expired region is no longer charged");
        // Late queues of the expired client find nothing; a late release
        // of its queue is ignored.
        assert_eq!(c.release(1, 0), None);
    }

    #[test]
    fn later_queues_must_come_from_the_first_queues_peer() {
        let mut c = Clients::new(limits());
        let t0 = Instant::now();
        assert!(c.admit(&req(1, 0, 3), peer(2), t0, || Some(1)).is_ok());
        // Another address presenting the id, for a free queue index.
        assert_eq!(
            c.admit(&req(1, 1, 3), peer(3), t0, || Some(9)),
            Err(Status::PeerMismatch)
        );
        // The same IP address with another GID is another peer.
        let other_gid = Peer {
            gid: [7; 16],
            ..peer(2)
        };
        assert_eq!(
            c.admit(&req(1, 1, 3), other_gid, t0, || Some(9)),
            Err(Status::PeerMismatch)
        );
        // The peer is checked first: the impostor learns nothing about the
        // client's queues.
        assert_eq!(
            c.admit(&req(1, 0, 5), peer(3), t0, || Some(9)),
            Err(Status::PeerMismatch)
        );
        assert!(c.admit(&req(1, 1, 3), peer(2), t0, || Some(9)).is_ok());
        assert_eq!(c.live_queues(1), 2);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_client_is_created_by_its_queue_0_only() {
        let mut c = Clients::new(limits());
        let t0 = Instant::now();
        let mut called = false;
        assert_eq!(
            c.admit(&req(1, 2, 3), peer(2), t0, || {
                called = true;
                Some(1)
            }),
            Err(Status::UnknownClient)
        );
        assert!(!called);
        assert!(c.is_empty());
        assert_eq!(c.used(), 0);
    }

    #[test]
    fn a_complete_client_takes_no_new_joins() {
        let mut c = Clients::new(limits());
        let t0 = Instant::now();
        for q in 0..3 {
            assert!(c.admit(&req(1, q, 3), peer(2), t0, || Some(1)).is_ok());
        }
        // Duplicate or not, from its own address or not: closed.
        assert_eq!(
            c.admit(&req(1, 1, 3), peer(2), t0, || Some(1)),
            Err(Status::ClientClosed)
        );
        assert_eq!(c.release(1, 1), None);
        assert_eq!(
            c.admit(&req(1, 1, 3), peer(2), t0, || Some(1)),
            Err(Status::ClientClosed),
            "a dropped queue of a complete client cannot be taken over"
        );
        assert_eq!(
            c.admit(&req(1, 1, 3), peer(3), t0, || Some(1)),
            Err(Status::PeerMismatch)
        );
        assert_eq!(c.live_queues(1), 2);
    }

    #[test]
    fn an_incomplete_client_may_rejoin_a_dropped_queue_in_time() {
        let mut c = Clients::new(limits());
        let t0 = Instant::now();
        assert!(c.admit(&req(1, 0, 3), peer(2), t0, || Some(1)).is_ok());
        assert!(c.admit(&req(1, 1, 3), peer(2), t0, || Some(1)).is_ok());
        assert_eq!(c.release(1, 1), None);
        assert!(c.admit(&req(1, 1, 3), peer(2), t0, || Some(1)).is_ok());
        assert!(c.admit(&req(1, 2, 3), peer(2), t0, || Some(1)).is_ok());
        assert_eq!(c.next_deadline(), None);
        assert!(c.is_complete(1));
    }

    #[test]
    fn a_complete_client_keeps_its_region_when_a_queue_drops() {
        let mut c = Clients::new(limits());
        let t0 = Instant::now();
        for q in 0..2 {
            assert!(c.admit(&req(1, q, 2), peer(2), t0, || Some(1)).is_ok());
        }
        assert_eq!(c.release(1, 0), None);
        assert_eq!(c.expire(t0 + Duration::from_secs(3600)), vec![]);
        assert_eq!(c.live_queues(1), 1);
    }
}
