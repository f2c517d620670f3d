//! Admission: a listener takes a request only while it has room among its
//! pending ones; each request then queues for a slot in arrival order, the
//! full-server rule making room where it can; a source over its cap is
//! refused at once.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Server;
use super::gate::Refusal;

/// A request's place in the queue for a slot (see [`Server::queue_for_slot`]).
type SlotWait =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

/// A slot taken at once, or a place in the queue for one.
pub(super) enum Slot {
    /// Free when the request arrived (`None`: the semaphore was closed).
    Taken(Option<OwnedSemaphorePermit>),
    /// Waiting, in arrival order.
    Queued(SlotWait),
}

/// What a listener holds for one request it took: its place among the
/// listener's pending requests (accepted, waiting for a slot) and, with
/// `--max-requests`, its share of the budget.
#[derive(Debug)]
pub(super) struct Admission {
    /// Returned to the listener's semaphore once the request has a slot.
    pub(super) pending: OwnedSemaphorePermit,
    /// The request's budget permit, used up once the request arrives.
    pub(super) budget: Option<OwnedSemaphorePermit>,
}

impl Server {
    /// Waits until the listener may take one more request: room among its
    /// own pending requests (so no listener can hold a slot while it waits,
    /// nor starve another) and, with `--max-requests`, budget left. `None`
    /// once accepting stops.
    pub(super) async fn admit(&self, pending: &Arc<Semaphore>) -> Option<Admission> {
        let wait = async {
            let pending = Arc::clone(pending).acquire_owned().await.ok()?;
            let budget = match &self.budget {
                Some((budget, _)) => Some(Arc::clone(budget).acquire_owned().await.ok()?),
                None => None,
            };
            Some(Admission { pending, budget })
        };
        tokio::select! {
            admission = wait => admission,
            _ = self.shutdown.accepting_stopped() => None,
        }
    }

    /// Takes this request's place in the queue for a slot, now, while the
    /// listener's loop runs: requests get slots in the order they arrived.
    /// On a full server the full-server rule is asked to make room for
    /// `source` at once.
    pub(super) fn queue_for_slot(&self, source: Option<IpAddr>) -> Slot {
        // A free slot means nobody waits (tokio hands released permits to
        // waiters first): take it without queueing (or allocating).
        if let Ok(slot) = Arc::clone(&self.permits).try_acquire_owned() {
            return Slot::Taken(Some(slot));
        }
        let mut acquire: SlotWait = Box::pin(Arc::clone(&self.permits).acquire_owned());
        // One poll enqueues the waiter (tokio's semaphore is first come,
        // first served); the request's task polls it again with its own
        // waker, keeping its place.
        let mut cx = Context::from_waker(Waker::noop());
        match acquire.as_mut().poll(&mut cx) {
            Poll::Ready(slot) => Slot::Taken(slot.ok()),
            Poll::Pending => {
                self.metrics.waited.inc();
                if let Some(source) = source {
                    self.sources.make_room_for(source);
                }
                Slot::Queued(acquire)
            }
        }
    }

    /// The slot `slot` holds or waits for. `None` once the service stops
    /// accepting (the request is closed unserved).
    pub(super) async fn wait_for_slot(&self, slot: Slot) -> Option<OwnedSemaphorePermit> {
        let queued = match slot {
            Slot::Taken(slot) => return slot,
            Slot::Queued(queued) => queued,
        };
        tokio::select! {
            slot = queued => slot.ok(),
            _ = self.shutdown.accepting_stopped() => None,
        }
    }

    /// Closes a connection from `source` at once, for `refusal`. Counted
    /// per reason; logged at most once a second, so refusals cannot flood
    /// the log.
    pub(super) fn refuse(&self, source: IpAddr, refusal: Refusal) {
        self.refuse_with(source, refusal, None);
    }

    /// [`Server::refuse`], with the error that caused it for the log line.
    pub(super) fn refuse_with(
        &self,
        source: IpAddr,
        refusal: Refusal,
        cause: Option<&dyn std::fmt::Display>,
    ) {
        self.metrics.refused(refusal.as_str());
        let now = self.started.elapsed().as_secs();
        if self.refusal_logged.swap(now, Ordering::Relaxed) != now {
            let cause = cause.map(|cause| format!(": {cause}")).unwrap_or_default();
            tracing::warn!(
                %source,
                reason = refusal.as_str(),
                "connection refused: {}{cause} (further refusals this second are counted, not logged)",
                refusal.explain()
            );
        }
    }
}
