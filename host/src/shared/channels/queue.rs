//! A subscriber's bounded queue: full, it loses its oldest message and
//! counts the loss, so a slow reader never grows host memory. When the
//! service's total is full, the service's *largest* queue loses its oldest
//! message — not the queue being pushed to — so subscriptions that never
//! read cannot starve an honest subscriber of another topic.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use tokio::sync::Notify;

use super::super::limits::StateLimits;
use super::super::observer::StateObserver;

/// Who published a message: an instance's id, or [`FOREIGN`].
pub(crate) type PublisherId = u64;

/// A message from outside this process (another host, `redis-cli`).
pub(crate) const FOREIGN: PublisherId = 0;

/// The messages waiting for one subscriber.
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<Waiting>,
    /// Woken at every message.
    arrived: Notify,
    /// Whether a message from another publisher than the owner arrived
    /// while the owner waited (renews its CPU budget, as client input does).
    foreign: AtomicBool,
    owner: PublisherId,
    limits: StateLimits,
    /// Payload bytes queued here (the same as `state.bytes`, readable
    /// without the lock when the service looks for its largest queue).
    queued: AtomicUsize,
    /// Every queue of the service, and their bytes together, against
    /// `limits.queue_total_bytes`.
    service: Arc<ServiceQueues>,
    observer: Arc<dyn StateObserver>,
}

/// The queues of one service, and the payload bytes they hold together.
#[derive(Debug, Default)]
pub(crate) struct ServiceQueues {
    bytes: AtomicUsize,
    /// Every subscription's queue (those dropped are pruned as met).
    queues: Mutex<Vec<Weak<Queue>>>,
}

impl ServiceQueues {
    /// Counts `queue` among the service's.
    pub(super) fn add(&self, queue: &Arc<Queue>) {
        if let Ok(mut queues) = self.queues.lock() {
            queues.retain(|queue| queue.strong_count() > 0);
            queues.push(Arc::downgrade(queue));
        }
    }

    /// Payload bytes queued for the service's subscribers now.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The service's largest queue loses its oldest message; `false` when
    /// every queue is empty.
    fn evict_from_largest(&self) -> bool {
        let largest = match self.queues.lock() {
            Ok(queues) => queues
                .iter()
                .filter_map(Weak::upgrade)
                .max_by_key(|queue| queue.queued.load(Ordering::Relaxed)),
            Err(_) => None,
        };
        largest.is_some_and(|queue| queue.lose_oldest())
    }
}

#[derive(Debug, Default)]
struct Waiting {
    messages: VecDeque<Bytes>,
    bytes: usize,
    /// Messages lost since the last one read.
    lost: u64,
}

impl Queue {
    pub(super) fn new(
        owner: PublisherId,
        limits: StateLimits,
        service: Arc<ServiceQueues>,
        observer: Arc<dyn StateObserver>,
    ) -> Self {
        Self {
            state: Mutex::new(Waiting::default()),
            arrived: Notify::new(),
            foreign: AtomicBool::new(false),
            owner,
            limits,
            queued: AtomicUsize::new(0),
            service,
            observer,
        }
    }

    /// Whether `more` bytes would take the service past its total.
    fn service_full(&self, more: usize) -> bool {
        self.service.bytes.load(Ordering::Relaxed) + more > self.limits.queue_total_bytes
    }

    /// Loses the oldest message, counted; `false` when there is none.
    fn lose_oldest(&self) -> bool {
        let mut waiting = self.lock();
        let Some(oldest) = waiting.messages.pop_front() else {
            return false;
        };
        self.took_out(&mut waiting, oldest.len());
        waiting.lost += 1;
        self.observer.lost();
        true
    }

    /// Books `len` bytes taken out of this queue.
    fn took_out(&self, waiting: &mut Waiting, len: usize) {
        waiting.bytes -= len;
        self.queued.fetch_sub(len, Ordering::Relaxed);
        self.service.bytes.fetch_sub(len, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `payload`: room is made in the service's largest queues
    /// first (this one or another), then this queue loses its own oldest
    /// messages while over its own limits.
    pub(super) fn push(&self, publisher: PublisherId, payload: Bytes) {
        while self.service_full(payload.len()) && self.service.evict_from_largest() {}
        {
            let mut waiting = self.lock();
            while waiting.messages.len() >= self.limits.queue_messages
                || (!waiting.messages.is_empty()
                    && waiting.bytes + payload.len() > self.limits.queue_bytes)
            {
                let Some(oldest) = waiting.messages.pop_front() else {
                    break;
                };
                self.took_out(&mut waiting, oldest.len());
                waiting.lost += 1;
                self.observer.lost();
            }
            if self.service_full(payload.len()) {
                // Even alone it does not fit: this subscriber loses it.
                waiting.lost += 1;
                self.observer.lost();
                return;
            }
            waiting.bytes += payload.len();
            self.queued.fetch_add(payload.len(), Ordering::Relaxed);
            self.service
                .bytes
                .fetch_add(payload.len(), Ordering::Relaxed);
            waiting.messages.push_back(payload);
        }
        if publisher != self.owner {
            self.foreign.store(true, Ordering::Relaxed);
        }
        self.observer.delivered();
        self.arrived.notify_waiters();
    }

    /// The oldest message and how many were lost before it.
    pub(super) fn pop(&self) -> Option<(Bytes, u64)> {
        let mut waiting = self.lock();
        let payload = waiting.messages.pop_front()?;
        self.took_out(&mut waiting, payload.len());
        Some((payload, std::mem::take(&mut waiting.lost)))
    }

    /// Waits until a message is queued. Returns whether it had to wait and
    /// another publisher's message ended the wait.
    pub(super) async fn ready(&self) -> bool {
        let mut waited = false;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if !self.lock().messages.is_empty() {
                return waited && self.foreign.swap(false, Ordering::Relaxed);
            }
            if !waited {
                self.foreign.store(false, Ordering::Relaxed);
                waited = true;
            }
            arrived.await;
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let left = self.lock().bytes;
        self.service.bytes.fetch_sub(left, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::observer::Unobserved;

    fn queue(service: &Arc<ServiceQueues>, limits: StateLimits) -> Arc<Queue> {
        let queue = Arc::new(Queue::new(
            1,
            limits,
            Arc::clone(service),
            Arc::new(Unobserved),
        ));
        service.add(&queue);
        queue
    }

    #[test]
    fn a_full_service_takes_room_from_its_largest_queue_not_the_newcomer() {
        let limits = StateLimits {
            queue_total_bytes: 4 * 100,
            ..StateLimits::default()
        };
        let service = Arc::new(ServiceQueues::default());
        let hoarder = queue(&service, limits);
        let honest = queue(&service, limits);
        // The hoarder never reads and fills the service's total.
        for _ in 0..4 {
            hoarder.push(2, Bytes::from(vec![b'h'; 100]));
        }
        // A message for the honest subscriber still arrives, and is not
        // counted as lost; the hoarder loses its oldest instead.
        honest.push(2, Bytes::from(vec![b'm'; 100]));
        assert_eq!(
            honest.pop().map(|(payload, lost)| (payload.len(), lost)),
            Some((100, 0))
        );
        let mut hoarded = 0;
        let mut lost = 0;
        while let Some((_, before)) = hoarder.pop() {
            hoarded += 1;
            lost += before;
        }
        assert_eq!((hoarded, lost), (3, 1));
    }

    #[test]
    fn the_service_total_is_never_passed_and_comes_back_when_queues_go() {
        let limits = StateLimits {
            queue_total_bytes: 1000,
            ..StateLimits::default()
        };
        let service = Arc::new(ServiceQueues::default());
        let queues: Vec<Arc<Queue>> = (0..8).map(|_| queue(&service, limits)).collect();
        for round in 0..50 {
            queues[round % queues.len()].push(2, Bytes::from(vec![0; 90]));
            assert!(service.bytes.load(Ordering::Relaxed) <= 1000);
        }
        drop(queues);
        assert_eq!(service.bytes.load(Ordering::Relaxed), 0);
    }
}
