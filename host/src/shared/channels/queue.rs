//! A subscriber's bounded queue: full, it loses its oldest message and
//! counts the loss, so a slow reader never grows host memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Payload bytes queued for all of the service's subscribers, against
    /// `limits.queue_total_bytes`.
    service_bytes: Arc<AtomicUsize>,
    observer: Arc<dyn StateObserver>,
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
        service_bytes: Arc<AtomicUsize>,
        observer: Arc<dyn StateObserver>,
    ) -> Self {
        Self {
            state: Mutex::new(Waiting::default()),
            arrived: Notify::new(),
            foreign: AtomicBool::new(false),
            owner,
            limits,
            service_bytes,
            observer,
        }
    }

    /// Whether `more` bytes would take the service past its total.
    fn service_full(&self, more: usize) -> bool {
        self.service_bytes.load(Ordering::Relaxed) + more > self.limits.queue_total_bytes
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `payload`, losing the oldest messages while over the limits.
    pub(super) fn push(&self, publisher: PublisherId, payload: Bytes) {
        {
            let mut waiting = self.lock();
            while !waiting.messages.is_empty()
                && (waiting.messages.len() >= self.limits.queue_messages
                    || waiting.bytes + payload.len() > self.limits.queue_bytes
                    || self.service_full(payload.len()))
            {
                if let Some(oldest) = waiting.messages.pop_front() {
                    waiting.bytes -= oldest.len();
                    self.service_bytes
                        .fetch_sub(oldest.len(), Ordering::Relaxed);
                    waiting.lost += 1;
                    self.observer.lost();
                }
            }
            if self.service_full(payload.len()) {
                // Even alone it does not fit: this subscriber loses it.
                waiting.lost += 1;
                self.observer.lost();
                return;
            }
            waiting.bytes += payload.len();
            self.service_bytes
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
        waiting.bytes -= payload.len();
        self.service_bytes
            .fetch_sub(payload.len(), Ordering::Relaxed);
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
        self.service_bytes.fetch_sub(left, Ordering::Relaxed);
    }
}
