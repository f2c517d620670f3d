//! Admission: a service takes a request while its waiting room has a place
//! (and, when the room is full, the source with the most requests waiting
//! gives one up, so accepting never stops behind an attacker's queue);
//! each request then waits for a slot, which goes to the source holding the
//! fewest (`slots.rs`), the full-server rule making room for a newcomer as
//! it arrives; a source over its cap is refused at once.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::OwnedSemaphorePermit;

use super::Server;
use super::gate::{Refusal, source_key};
use super::header_waits::HEADER_GRACE;
use super::slots::{Slot, SlotPermit};

/// What a listener holds for one request it took: its place in the
/// service's waiting room (accepted, waiting for a slot) and, with
/// `--max-requests`, its share of the budget.
#[derive(Debug)]
pub(super) struct Admission {
    /// Returned to the waiting room once the request has a slot.
    pub(super) pending: OwnedSemaphorePermit,
    /// The request's budget permit, used up once the request arrives.
    pub(super) budget: Option<OwnedSemaphorePermit>,
}

/// The most characters of a refusal's cause that reach the log.
const MAX_CAUSE_CHARS: usize = 256;

impl Server {
    /// Waits until a listener may take one more request: a place in the
    /// service's waiting room and, with `--max-requests`, budget left.
    /// When the room is full, the connection that has waited longest for
    /// its PROXY header, or else the source with the most requests waiting,
    /// gives one up first, so that a newcomer in the listen backlog is
    /// taken within moments. `None` once accepting stops.
    pub(super) async fn admit(&self) -> Option<Admission> {
        let wait = async {
            let pending = match Arc::clone(&self.waiting_room).try_acquire_owned() {
                Ok(pending) => pending,
                Err(_) => {
                    // A connection still withholding its PROXY header goes
                    // first; else the busiest source's oldest waiting one.
                    if !self.header_waits.evict_oldest(HEADER_GRACE) {
                        self.sources.shed_waiting();
                    }
                    // While the room stays full, header reads that were
                    // too young to close become old enough. One wait
                    // throughout, so it keeps its place in the queue.
                    let acquire = Arc::clone(&self.waiting_room).acquire_owned();
                    tokio::pin!(acquire);
                    loop {
                        tokio::select! {
                            pending = &mut acquire => break pending.ok()?,
                            () = tokio::time::sleep(HEADER_GRACE) => {
                                self.header_waits.evict_oldest(HEADER_GRACE);
                            }
                        }
                    }
                }
            };
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

    /// Takes this request's slot, or its place in the queue for one, now,
    /// while the listener's loop runs. On a full server the full-server
    /// rule is asked to make room for `source` at once: the slot it frees
    /// goes to the waiting request whose source holds the fewest.
    pub(super) fn queue_for_slot(&self, source: Option<IpAddr>) -> Slot {
        let slot = self.slots.acquire(source.map(source_key));
        if let Slot::Queued(_) = slot {
            self.metrics.waited.inc();
            if let Some(source) = source {
                self.sources.make_room_for(source);
            }
        }
        slot
    }

    /// The slot `slot` holds or waits for. `None` once the service stops
    /// accepting (the request is closed unserved).
    pub(super) async fn wait_for_slot(&self, slot: Slot) -> Option<SlotPermit> {
        let queued = match slot {
            Slot::Taken(slot) => return Some(slot),
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
            // A cause may quote what a client sent (a malformed PROXY
            // header): escaped and cut, so it stays one line.
            let cause = cause
                .map(|cause| {
                    format!(
                        ": {}",
                        crate::wasm::sanitize(&cause.to_string(), MAX_CAUSE_CHARS)
                    )
                })
                .unwrap_or_default();
            let what = match refusal {
                Refusal::Evicted | Refusal::Shed => "connection closed to make room",
                _ => "connection refused",
            };
            tracing::warn!(
                %source,
                reason = refusal.as_str(),
                "{what}: {}{cause} (further refusals this second are counted, not logged)",
                refusal.explain()
            );
        }
    }
}
