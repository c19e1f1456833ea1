//! Which clients are connected, with how many queues, and their regions.
//! Pure bookkeeping, generic over the region type so it is unit-tested
//! without an RDMA device.

use crate::protocol::{ConnectRequest, Status};
use std::collections::HashMap;

struct Client<R> {
    queues: Vec<bool>,
    live: usize,
    region: R,
}

pub struct Clients<R> {
    by_id: HashMap<u64, Client<R>>,
}

impl<R> Default for Clients<R> {
    fn default() -> Self {
        Self {
            by_id: HashMap::new(),
        }
    }
}

impl<R> Clients<R> {
    /// Admits queue `req.queue` of client `req.client_id`. The client's first
    /// queue creates its region with `make_region`; later queues share it.
    pub fn admit(
        &mut self,
        req: &ConnectRequest,
        make_region: impl FnOnce() -> Option<R>,
    ) -> Result<&R, Status> {
        let q = usize::from(req.queue);
        if let Some(c) = self.by_id.get(&req.client_id) {
            if c.queues.len() != usize::from(req.queue_count) {
                return Err(Status::QueueCountMismatch);
            }
            if c.queues[q] {
                return Err(Status::DuplicateQueue);
            }
        } else {
            let region = make_region().ok_or(Status::NoMemory)?;
            let queues = vec![false; usize::from(req.queue_count)];
            self.by_id.insert(
                req.client_id,
                Client {
                    queues,
                    live: 0,
                    region,
                },
            );
        }
        let c = self.by_id.get_mut(&req.client_id).ok_or(Status::NoMemory)?;
        c.queues[q] = true;
        c.live += 1;
        Ok(&c.region)
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
        self.by_id.remove(&client_id).map(|c| c.region)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::VERSION;

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
        let mut c = Clients::default();
        let mut made = 0;
        for q in 0..3 {
            let r = c.admit(&req(7, q, 3), || {
                made += 1;
                Some(format!("region{made}"))
            });
            assert_eq!(r, Ok(&"region1".to_string()));
        }
        assert_eq!(made, 1);
        assert_eq!(c.release(7, 0), None);
        assert_eq!(c.release(7, 0), None, "double release is ignored");
        assert_eq!(c.release(7, 2), None);
        assert_eq!(c.release(7, 1), Some("region1".to_string()));
        assert!(c.is_empty());
    }

    #[test]
    fn clients_get_separate_regions() {
        let mut c = Clients::default();
        assert_eq!(c.admit(&req(1, 0, 1), || Some(1)), Ok(&1));
        assert_eq!(c.admit(&req(2, 0, 1), || Some(2)), Ok(&2));
        assert_eq!(c.len(), 2);
        assert_eq!(c.release(1, 0), Some(1));
        assert_eq!(c.live_queues(2), 1);
    }

    #[test]
    fn rejects_inconsistent_queues() {
        let mut c = Clients::default();
        assert!(c.admit(&req(1, 0, 2), || Some(())).is_ok());
        assert_eq!(
            c.admit(&req(1, 0, 2), || Some(())),
            Err(Status::DuplicateQueue)
        );
        assert_eq!(
            c.admit(&req(1, 1, 3), || Some(())),
            Err(Status::QueueCountMismatch)
        );
        assert_eq!(c.admit(&req(9, 0, 1), || None::<()>), Err(Status::NoMemory));
        assert_eq!(c.len(), 1, "a failed region leaves no client behind");
    }
}
