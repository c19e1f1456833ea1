//! Which clients are still there. The RDMA CM tells the server about a
//! client that disconnects, but not about one that loses power or is cut
//! off the network: its queues just go quiet, and the server uses one-sided
//! RDMA (it never hears from a client that is not talking to it). So the
//! server asks: every keep-alive interval it posts a zero-length RDMA WRITE
//! (a *probe*) on one connected queue of each client whose queues have all
//! joined. A probe that completes means the client's RDMA device answered;
//! one that fails (the transport gave up retrying, the queue pair broke),
//! or an error the device reports on a queue, marks that queue failed, and
//! the next probe goes to another queue. A client with no answered probe
//! for the grace period is dead: the server disconnects it and frees its
//! region.
//!
//! Pure bookkeeping, generic over the key `K` of a queue (a connection),
//! so it is unit-tested without an RDMA device. The server posts the
//! probes this hands out and reports what became of them.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Probes of one client unanswered at once, at most. A probe normally
/// completes (or fails) well within one interval, so this is only reached
/// when the transport does not time out (a queue pair without a
/// retransmission timeout never fails a probe to a dead peer).
pub const MAX_IN_FLIGHT: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Time between two probes of a client.
    pub interval: Duration,
    /// Time without an answered probe after which a client is dead.
    pub grace: Duration,
}

/// A probe to post: a zero-length RDMA WRITE on `queue`, whose completion
/// is reported with `wr_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe<K> {
    pub client_id: u64,
    pub queue: K,
    pub wr_id: u64,
}

/// What a completion told.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<K> {
    /// The client answered on this queue.
    Alive { client_id: u64, queue: K },
    /// The probe on this queue failed; the queue is marked failed and not
    /// probed again.
    Failed { client_id: u64, queue: K },
    /// A probe nobody waits for any more (its queue or client is gone).
    Stale,
}

/// A client that has not answered for the grace period; it is no longer
/// watched.
#[derive(Debug, PartialEq, Eq)]
pub struct Dead {
    pub client_id: u64,
    /// Time since the client last answered (or since it was watched).
    pub silent_for: Duration,
    /// The last failure seen on one of its queues, if any.
    pub last_failure: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QueueState {
    Idle,
    /// A probe is posted and not yet answered.
    Probing {
        wr_id: u64,
    },
    Failed,
}

struct Queue<K> {
    key: K,
    state: QueueState,
}

struct Watch<K> {
    /// Established queues, in the order they were established.
    queues: Vec<Queue<K>>,
    /// Where the next probe's search for an idle queue starts.
    cursor: usize,
    /// Whether all the client's queues have joined: only then is it probed
    /// and can it be declared dead (until then its join deadline applies).
    complete: bool,
    /// When the client last showed it was there: an answered probe, a
    /// queue established, or its last queue joining.
    last_alive: Instant,
    next_probe: Instant,
    last_failure: Option<String>,
}

impl<K: Copy + Eq> Watch<K> {
    fn in_flight(&self) -> usize {
        self.queues
            .iter()
            .filter(|q| matches!(q.state, QueueState::Probing { .. }))
            .count()
    }

    fn queue_mut(&mut self, key: K) -> Option<&mut Queue<K>> {
        self.queues.iter_mut().find(|q| q.key == key)
    }

    /// The next idle queue from the cursor on, round robin.
    fn next_idle(&mut self) -> Option<usize> {
        let n = self.queues.len();
        let i = (0..n)
            .map(|k| (self.cursor + k) % n)
            .find(|&i| self.queues[i].state == QueueState::Idle)?;
        self.cursor = (i + 1) % n;
        Some(i)
    }
}

pub struct Liveness<K> {
    cfg: Config,
    by_client: HashMap<u64, Watch<K>>,
    /// Posted probes, by work request id.
    probes: HashMap<u64, (u64, K)>,
    next_wr_id: u64,
}

impl<K: Copy + Eq + Hash> Liveness<K> {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            by_client: HashMap::new(),
            probes: HashMap::new(),
            next_wr_id: 1,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn watch(&mut self, client_id: u64, now: Instant) -> &mut Watch<K> {
        let interval = self.cfg.interval;
        self.by_client.entry(client_id).or_insert_with(|| Watch {
            queues: Vec::new(),
            cursor: 0,
            complete: false,
            last_alive: now,
            next_probe: now + interval,
            last_failure: None,
        })
    }

    /// Queue `queue` of the client is established (it may be probed).
    pub fn established(&mut self, client_id: u64, queue: K, now: Instant) {
        let w = self.watch(client_id, now);
        w.last_alive = w.last_alive.max(now);
        if w.queue_mut(queue).is_none() {
            w.queues.push(Queue {
                key: queue,
                state: QueueState::Idle,
            });
        }
    }

    /// All the client's queues have joined: from now on it is probed, and
    /// declared dead when it stops answering.
    pub fn complete(&mut self, client_id: u64, now: Instant) {
        let interval = self.cfg.interval;
        let w = self.watch(client_id, now);
        if !w.complete {
            w.complete = true;
            w.last_alive = w.last_alive.max(now);
            w.next_probe = now + interval;
        }
    }

    /// The probes to post now: one per complete client whose interval is
    /// over, on its next idle queue, unless it has `MAX_IN_FLIGHT` probes
    /// unanswered or no idle queue.
    pub fn due(&mut self, now: Instant) -> Vec<Probe<K>> {
        let mut out = Vec::new();
        for (&client_id, w) in &mut self.by_client {
            if !w.complete || w.next_probe > now {
                continue;
            }
            w.next_probe = now + self.cfg.interval;
            if w.in_flight() >= MAX_IN_FLIGHT {
                continue;
            }
            let Some(i) = w.next_idle() else {
                continue;
            };
            let wr_id = self.next_wr_id;
            self.next_wr_id += 1;
            let q = &mut w.queues[i];
            q.state = QueueState::Probing { wr_id };
            self.probes.insert(wr_id, (client_id, q.key));
            out.push(Probe {
                client_id,
                queue: q.key,
                wr_id,
            });
        }
        out
    }

    /// Reports the completion of probe `wr_id`: `Ok` if it succeeded, or
    /// why it failed (also for a probe that could not be posted).
    pub fn completed(&mut self, wr_id: u64, result: Result<(), String>, now: Instant) -> Answer<K> {
        let Some((client_id, queue)) = self.probes.remove(&wr_id) else {
            return Answer::Stale;
        };
        let Some(w) = self.by_client.get_mut(&client_id) else {
            return Answer::Stale;
        };
        let Some(q) = w.queue_mut(queue) else {
            return Answer::Stale;
        };
        if q.state != (QueueState::Probing { wr_id }) {
            return Answer::Stale;
        }
        match result {
            Ok(()) => {
                q.state = QueueState::Idle;
                w.last_alive = w.last_alive.max(now);
                w.last_failure = None;
                Answer::Alive { client_id, queue }
            }
            Err(why) => {
                q.state = QueueState::Failed;
                w.last_failure = Some(why);
                Answer::Failed { client_id, queue }
            }
        }
    }

    /// The device reported an error on `queue`: it is failed (a probe on
    /// it, if any, is no longer waited for). Returns its client, if the
    /// queue is watched and was not failed already.
    pub fn queue_failed(&mut self, queue: K, why: String) -> Option<u64> {
        let (&client_id, w) = self
            .by_client
            .iter_mut()
            .find(|(_, w)| w.queues.iter().any(|q| q.key == queue))?;
        let q = w.queue_mut(queue)?;
        let was = q.state;
        if was == QueueState::Failed {
            return None;
        }
        q.state = QueueState::Failed;
        if let QueueState::Probing { wr_id } = was {
            self.probes.remove(&wr_id);
        }
        w.last_failure = Some(why);
        Some(client_id)
    }

    /// Whether `queue` is watched and has not failed.
    pub fn is_usable(&self, queue: K) -> bool {
        self.by_client.values().any(|w| {
            w.queues
                .iter()
                .any(|q| q.key == queue && q.state != QueueState::Failed)
        })
    }

    /// The queue is gone (disconnected): it is no longer probed.
    pub fn remove_queue(&mut self, queue: K) {
        for w in self.by_client.values_mut() {
            if let Some(i) = w.queues.iter().position(|q| q.key == queue) {
                if let QueueState::Probing { wr_id } = w.queues[i].state {
                    self.probes.remove(&wr_id);
                }
                w.queues.remove(i);
                if w.cursor > i {
                    w.cursor -= 1;
                }
                if w.cursor >= w.queues.len() {
                    w.cursor = 0;
                }
                return;
            }
        }
    }

    /// The client is gone: it is no longer watched.
    pub fn forget(&mut self, client_id: u64) {
        if self.by_client.remove(&client_id).is_some() {
            self.probes.retain(|_, (c, _)| *c != client_id);
        }
    }

    /// Removes and returns every complete client that has not answered for
    /// the grace period.
    pub fn dead(&mut self, now: Instant) -> Vec<Dead> {
        let grace = self.cfg.grace;
        let due: Vec<u64> = self
            .by_client
            .iter()
            .filter(|(_, w)| w.complete && now.saturating_duration_since(w.last_alive) >= grace)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for client_id in due {
            if let Some(w) = self.by_client.remove(&client_id) {
                self.probes.retain(|_, (c, _)| *c != client_id);
                out.push(Dead {
                    client_id,
                    silent_for: now.saturating_duration_since(w.last_alive),
                    last_failure: w.last_failure,
                });
            }
        }
        out
    }

    /// Clients with probes unanswered: their completion queues need
    /// polling.
    pub fn probing(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.probes.values().map(|(c, _)| *c).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The next time something is due: a probe, or a client's grace
    /// running out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_client
            .values()
            .filter(|w| w.complete)
            .map(|w| w.next_probe.min(w.last_alive + self.cfg.grace))
            .min()
    }

    pub fn is_watched(&self, client_id: u64) -> bool {
        self.by_client.contains_key(&client_id)
    }

    /// Whether the client is watched as complete (probed).
    pub fn is_complete(&self, client_id: u64) -> bool {
        self.by_client.get(&client_id).is_some_and(|w| w.complete)
    }

    /// Whether any probe is unanswered.
    pub fn is_probing(&self) -> bool {
        !self.probes.is_empty()
    }

    /// The queue probe `wr_id` was posted on, while it is unanswered.
    pub fn probe_queue(&self, wr_id: u64) -> Option<K> {
        self.probes.get(&wr_id).map(|(_, q)| *q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(5);
    const GRACE: Duration = Duration::from_secs(30);

    fn live() -> Liveness<u32> {
        Liveness::new(Config {
            interval: INTERVAL,
            grace: GRACE,
        })
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    /// A complete client 7 with queues 70, 71, 72 established at t0.
    fn client7(l: &mut Liveness<u32>, t0: Instant) {
        for q in [70, 71, 72] {
            l.established(7, q, t0);
        }
        l.complete(7, t0);
    }

    #[test]
    fn an_answering_client_is_never_dead() {
        let mut l = live();
        let t0 = Instant::now();
        client7(&mut l, t0);
        assert_eq!(l.next_deadline(), Some(secs(t0, 5)));
        assert_eq!(l.due(secs(t0, 4)), vec![], "not before the interval");
        let mut queues = Vec::new();
        for round in 1..=20u64 {
            let now = secs(t0, 5 * round);
            let p = l.due(now);
            assert_eq!(p.len(), 1, "one probe per round");
            queues.push(p[0].queue);
            assert_eq!(l.probing(), vec![7]);
            assert!(l.is_probing());
            assert_eq!(l.probe_queue(p[0].wr_id), Some(p[0].queue));
            assert_eq!(
                l.completed(p[0].wr_id, Ok(()), now),
                Answer::Alive {
                    client_id: 7,
                    queue: p[0].queue
                }
            );
            assert_eq!(l.dead(now + Duration::from_secs(4)), vec![]);
        }
        assert_eq!(&queues[..6], [70, 71, 72, 70, 71, 72], "round robin");
        assert!(l.probing().is_empty());
        assert!(!l.is_probing());
        assert!(l.is_complete(7));
        assert!(l.is_watched(7));
    }

    #[test]
    fn a_silent_client_dies_after_the_grace_period() {
        let mut l = live();
        let t0 = Instant::now();
        client7(&mut l, t0);
        // Probes are posted and never answered (a transport that does not
        // time out): at most MAX_IN_FLIGHT of them, on different queues.
        let mut posted = Vec::new();
        for s in (5..30).step_by(5) {
            posted.extend(l.due(secs(t0, s)));
            assert_eq!(l.dead(secs(t0, s)), vec![]);
        }
        assert_eq!(posted.len(), 3);
        let mut qs: Vec<u32> = posted.iter().map(|p| p.queue).collect();
        qs.sort_unstable();
        assert_eq!(qs, [70, 71, 72]);
        assert_eq!(l.next_deadline(), Some(secs(t0, 30)));
        assert_eq!(l.dead(secs(t0, 30) - Duration::from_millis(1)), vec![]);
        assert_eq!(
            l.dead(secs(t0, 30)),
            vec![Dead {
                client_id: 7,
                silent_for: GRACE,
                last_failure: None
            }]
        );
        assert!(!l.is_watched(7));
        assert!(l.probing().is_empty());
        assert_eq!(l.next_deadline(), None);
        // A late completion of one of its probes is stale.
        assert_eq!(
            l.completed(posted[0].wr_id, Ok(()), secs(t0, 31)),
            Answer::Stale
        );
    }

    #[test]
    fn failed_queues_are_skipped_and_the_last_failure_is_kept() {
        let mut l = live();
        let t0 = Instant::now();
        client7(&mut l, t0);
        let p = l.due(secs(t0, 5));
        assert_eq!(p[0].queue, 70);
        assert_eq!(
            l.completed(p[0].wr_id, Err("retry exceeded".into()), secs(t0, 7)),
            Answer::Failed {
                client_id: 7,
                queue: 70
            }
        );
        assert!(!l.is_usable(70));
        assert!(l.is_usable(71));
        // The next probes use the other queues only.
        let p = l.due(secs(t0, 10));
        assert_eq!(p[0].queue, 71);
        assert!(matches!(
            l.completed(p[0].wr_id, Ok(()), secs(t0, 10)),
            Answer::Alive { .. }
        ));
        // The device reports an error on 72: skipped too.
        assert_eq!(l.queue_failed(72, "QP fatal".into()), Some(7));
        assert_eq!(l.queue_failed(72, "again".into()), None, "once");
        for s in [15, 20] {
            let p = l.due(secs(t0, s));
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].queue, 71);
            assert!(matches!(
                l.completed(p[0].wr_id, Ok(()), secs(t0, s)),
                Answer::Alive { .. }
            ));
        }
        // 71 fails too: nothing left to probe; the client dies 30 s after
        // its last answer (at 20 s), with the last failure as the reason.
        let p = l.due(secs(t0, 25));
        assert!(matches!(
            l.completed(p[0].wr_id, Err("flushed".into()), secs(t0, 27)),
            Answer::Failed { queue: 71, .. }
        ));
        assert_eq!(l.due(secs(t0, 30)), vec![]);
        assert_eq!(l.dead(secs(t0, 49)), vec![]);
        assert_eq!(
            l.dead(secs(t0, 50)),
            vec![Dead {
                client_id: 7,
                silent_for: GRACE,
                last_failure: Some("flushed".into())
            }]
        );
    }

    #[test]
    fn an_answer_clears_the_last_failure() {
        let mut l = live();
        let t0 = Instant::now();
        client7(&mut l, t0);
        assert_eq!(l.queue_failed(70, "QP fatal".into()), Some(7));
        let p = l.due(secs(t0, 5));
        assert_eq!(p[0].queue, 71);
        l.completed(p[0].wr_id, Ok(()), secs(t0, 5));
        let d = l.dead(secs(t0, 35));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].last_failure, None);
    }

    #[test]
    fn an_error_on_a_probing_queue_drops_its_probe() {
        let mut l = live();
        let t0 = Instant::now();
        client7(&mut l, t0);
        let p = l.due(secs(t0, 5));
        assert_eq!(l.queue_failed(p[0].queue, "QP fatal".into()), Some(7));
        assert!(l.probing().is_empty());
        // Its flush completion then arrives: stale, the reason is kept.
        assert_eq!(
            l.completed(p[0].wr_id, Err("flushed".into()), secs(t0, 6)),
            Answer::Stale
        );
        let d = l.dead(secs(t0, 30));
        assert_eq!(d[0].last_failure.as_deref(), Some("QP fatal"));
    }

    #[test]
    fn incomplete_clients_are_neither_probed_nor_declared_dead() {
        let mut l = live();
        let t0 = Instant::now();
        l.established(1, 10, t0);
        l.established(1, 11, t0);
        assert!(l.is_watched(1));
        assert!(!l.is_complete(1));
        assert_eq!(l.due(secs(t0, 100)), vec![]);
        assert_eq!(l.dead(secs(t0, 1000)), vec![]);
        assert_eq!(l.next_deadline(), None);
        // Completing it later starts the clock then.
        l.complete(1, secs(t0, 1000));
        assert_eq!(l.next_deadline(), Some(secs(t0, 1005)));
        assert_eq!(l.dead(secs(t0, 1029)), vec![]);
        assert_eq!(l.dead(secs(t0, 1030)).len(), 1);
    }

    #[test]
    fn a_complete_client_without_established_queues_dies() {
        // Its queues joined but never finished connecting: nothing to
        // probe, and no sign of life.
        let mut l = live();
        let t0 = Instant::now();
        l.complete(3, t0);
        assert_eq!(l.due(secs(t0, 5)), vec![]);
        assert_eq!(l.dead(secs(t0, 30)).len(), 1);
    }

    #[test]
    fn removed_queues_and_forgotten_clients() {
        let mut l = live();
        let t0 = Instant::now();
        client7(&mut l, t0);
        let p = l.due(secs(t0, 5));
        assert_eq!(p[0].queue, 70);
        l.remove_queue(70);
        assert!(l.probing().is_empty(), "its probe is no longer waited for");
        assert_eq!(l.completed(p[0].wr_id, Ok(()), secs(t0, 6)), Answer::Stale);
        assert!(!l.is_usable(70));
        let p = l.due(secs(t0, 10));
        assert_eq!(p[0].queue, 71, "the cursor stays on the next queue");
        l.remove_queue(71);
        l.remove_queue(72);
        l.remove_queue(99); // unknown: ignored
        assert_eq!(l.due(secs(t0, 15)), vec![]);
        // Another client is unaffected by forgetting this one.
        l.established(8, 80, secs(t0, 15));
        l.complete(8, secs(t0, 15));
        l.forget(7);
        assert!(!l.is_watched(7));
        assert!(l.is_watched(8));
        assert_eq!(l.dead(secs(t0, 44)), vec![]);
        assert_eq!(l.dead(secs(t0, 45)).len(), 1);
    }

    #[test]
    fn established_and_complete_are_signs_of_life() {
        let mut l = live();
        let t0 = Instant::now();
        l.established(7, 70, t0);
        l.established(7, 71, secs(t0, 20));
        l.complete(7, secs(t0, 25));
        assert_eq!(l.dead(secs(t0, 54)), vec![]);
        assert_eq!(l.dead(secs(t0, 55)).len(), 1);
    }

    #[test]
    fn wr_ids_are_unique_across_clients() {
        let mut l = live();
        let t0 = Instant::now();
        for c in 0..10u64 {
            l.established(c, c as u32, t0);
            l.complete(c, t0);
        }
        let p = l.due(secs(t0, 5));
        assert_eq!(p.len(), 10);
        let mut ids: Vec<u64> = p.iter().map(|p| p.wr_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 10);
        assert_eq!(l.probing().len(), 10);
    }
}
