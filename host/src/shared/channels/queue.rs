//! A subscriber's bounded queue: full, it loses its oldest message and
//! counts the loss, so a slow reader never grows host memory. When the
//! service's total is full, the service's *largest* queue loses its oldest
//! message — not the queue being pushed to — so subscriptions that never
//! read cannot starve an honest subscriber of another topic.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use tokio::sync::Notify;

use super::super::limits::StateLimits;
use super::super::observer::StateObserver;
use super::{ChannelError, SubscriptionScope};

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
    members: Mutex<Members>,
}

/// A service's subscriptions: their queues and how many each owner holds.
#[derive(Debug, Default)]
struct Members {
    /// Every subscription's queue (those dropped are pruned as met).
    queues: Vec<Weak<Queue>>,
    /// Subscriptions per owner (an instance: one request), for
    /// [`StateLimits::subscriptions_per_request`].
    per_owner: HashMap<PublisherId, usize>,
    /// Subscriptions alive, for [`StateLimits::subscriptions`].
    alive: usize,
}

impl ServiceQueues {
    fn members(&self) -> MutexGuard<'_, Members> {
        // A panic while holding the lock leaves plain counts behind: go on.
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Books one more subscription for `owner` within `limits`; the queue
    /// made for it gives it back when it drops.
    pub(super) fn reserve(
        &self,
        owner: PublisherId,
        limits: &StateLimits,
    ) -> Result<(), ChannelError> {
        let mut members = self.members();
        if members.alive >= limits.subscriptions {
            return Err(ChannelError::TooManySubscriptions {
                max: limits.subscriptions,
                scope: SubscriptionScope::Service,
            });
        }
        let held = members.per_owner.entry(owner).or_default();
        if *held >= limits.subscriptions_per_request {
            return Err(ChannelError::TooManySubscriptions {
                max: limits.subscriptions_per_request,
                scope: SubscriptionScope::Request,
            });
        }
        *held += 1;
        members.alive += 1;
        Ok(())
    }

    /// Gives back a subscription [`ServiceQueues::reserve`] booked.
    fn release(&self, owner: PublisherId) {
        let mut members = self.members();
        members.alive = members.alive.saturating_sub(1);
        if let Some(held) = members.per_owner.get_mut(&owner) {
            *held -= 1;
            if *held == 0 {
                members.per_owner.remove(&owner);
            }
        }
    }

    /// Counts `queue` among the service's.
    pub(super) fn add(&self, queue: &Arc<Queue>) {
        let mut members = self.members();
        members.queues.retain(|queue| queue.strong_count() > 0);
        members.queues.push(Arc::downgrade(queue));
    }

    /// Payload bytes queued for the service's subscribers now.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The service's largest queue loses its oldest message; `false` when
    /// every queue is empty.
    fn evict_from_largest(&self) -> bool {
        // Collected first and compared with the lock released: a queue
        // whose subscription went meanwhile drops here, and its drop takes
        // the lock (`release`).
        let queues: Vec<Arc<Queue>> = self
            .members()
            .queues
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let largest = queues
            .iter()
            .max_by_key(|queue| queue.queued.load(Ordering::Relaxed))
            .cloned();
        drop(queues);
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
        drop(waiting);
        // Its subscriber learns of the loss now, even if nothing follows.
        self.arrived.notify_waiters();
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
                // Even alone it does not fit: this subscriber loses it, and
                // is woken to learn so.
                waiting.lost += 1;
                self.observer.lost();
                drop(waiting);
                self.arrived.notify_waiters();
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

    /// The oldest message and how many were lost before it; when the
    /// queue is empty but messages were lost, an empty payload that tells
    /// only of them (a loss-only delivery), so no loss waits for a later
    /// message to be known.
    pub(super) fn pop(&self) -> Option<(Bytes, u64)> {
        let mut waiting = self.lock();
        let Some(payload) = waiting.messages.pop_front() else {
            let lost = std::mem::take(&mut waiting.lost);
            return (lost > 0).then(|| (Bytes::new(), lost));
        };
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
            if self.has_news() {
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

impl Queue {
    /// Whether [`Queue::pop`] has something to return.
    fn has_news(&self) -> bool {
        let waiting = self.lock();
        !waiting.messages.is_empty() || waiting.lost > 0
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let left = self.lock().bytes;
        self.service.bytes.fetch_sub(left, Ordering::Relaxed);
        self.service.release(self.owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::observer::Unobserved;

    fn queue(service: &Arc<ServiceQueues>, limits: StateLimits) -> Arc<Queue> {
        assert_eq!(service.reserve(1, &limits), Ok(()));
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

    #[tokio::test]
    async fn a_subscriber_emptied_by_the_service_total_learns_of_its_loss_at_once() {
        let limits = StateLimits {
            queue_total_bytes: 100,
            ..StateLimits::default()
        };
        let service = Arc::new(ServiceQueues::default());
        let victim = queue(&service, limits);
        let other = queue(&service, limits);
        victim.push(2, Bytes::from(vec![b'v'; 100]));
        // Another subscriber's message takes the victim's only one.
        other.push(2, Bytes::from(vec![b'o'; 100]));
        // The victim is ready, and reads a loss-only message.
        tokio::time::timeout(std::time::Duration::from_secs(1), victim.ready())
            .await
            .expect("the victim is woken");
        assert_eq!(victim.pop(), Some((Bytes::new(), 1)));
        assert_eq!(victim.pop(), None);
        assert_eq!(
            other.pop().map(|(payload, lost)| (payload.len(), lost)),
            Some((100, 0))
        );
    }

    #[test]
    fn subscriptions_are_capped_per_owner_and_per_service_and_given_back() {
        let limits = StateLimits {
            subscriptions_per_request: 2,
            subscriptions: 3,
            ..StateLimits::default()
        };
        let service = Arc::new(ServiceQueues::default());
        let make = |owner| -> Result<Arc<Queue>, ChannelError> {
            service.reserve(owner, &limits)?;
            Ok(Arc::new(Queue::new(
                owner,
                limits,
                Arc::clone(&service),
                Arc::new(Unobserved),
            )))
        };
        let first = make(1);
        let second = make(1);
        assert!(first.is_ok() && second.is_ok());
        assert!(matches!(
            make(1),
            Err(ChannelError::TooManySubscriptions {
                max: 2,
                scope: SubscriptionScope::Request
            })
        ));
        let third = make(2);
        assert!(third.is_ok());
        assert!(matches!(
            make(3),
            Err(ChannelError::TooManySubscriptions {
                max: 3,
                scope: SubscriptionScope::Service
            })
        ));
        drop(first);
        assert!(make(3).is_ok());
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
