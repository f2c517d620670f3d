//! The slots of a service (`--max-connections`: requests served at once)
//! and the order in which waiting requests get them.
//!
//! Not first come, first served: when a slot frees, it goes to the waiting
//! request whose source holds the fewest slots now (the oldest such
//! request on a tie). A source that holds hundreds of slots and queues
//! hundreds more cannot keep a newcomer from another address behind its
//! queue: the newcomer gets the next slot that frees, and the full-server
//! rule (`sources.rs`) frees one for it as it arrives. Requests without a
//! source address (Unix sockets, datagrams) count as one source.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// The slots of one service.
#[derive(Debug)]
pub(super) struct Slots {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Slots nobody holds.
    free: usize,
    /// Slots held, per source (absent: none).
    held: HashMap<Option<IpAddr>, usize>,
    /// Waiting requests, per source, oldest first, with the arrival number
    /// that breaks ties between sources.
    waiting: HashMap<Option<IpAddr>, VecDeque<Waiter>>,
    /// The next arrival number.
    arrivals: u64,
}

#[derive(Debug)]
struct Waiter {
    arrival: u64,
    give: oneshot::Sender<SlotPermit>,
}

/// A held slot; dropping it frees the slot for the next waiting request.
#[derive(Debug)]
pub(super) struct SlotPermit {
    slots: Arc<Slots>,
    source: Option<IpAddr>,
    /// Whether dropping it frees a slot (a permit that could not be handed
    /// to a waiter that had gone is disarmed: its slot is passed on).
    armed: bool,
}

/// A slot taken at once, or a place in the queue for one.
#[derive(Debug)]
pub(super) enum Slot {
    /// Free when the request arrived.
    Taken(SlotPermit),
    /// Waiting; resolves when a slot is handed to this request.
    Queued(oneshot::Receiver<SlotPermit>),
}

impl Slots {
    /// `count` slots, all free.
    pub(super) fn new(count: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(SlotState {
                free: count,
                ..SlotState::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a request from `source`: at once when one is free and
    /// nobody waits, else a place in the queue.
    pub(super) fn acquire(self: &Arc<Self>, source: Option<IpAddr>) -> Slot {
        let mut state = self.lock();
        if state.free > 0 && state.waiting.is_empty() {
            state.free -= 1;
            *state.held.entry(source).or_default() += 1;
            return Slot::Taken(SlotPermit {
                slots: Arc::clone(self),
                source,
                armed: true,
            });
        }
        let (give, take) = oneshot::channel();
        let arrival = state.arrivals;
        state.arrivals += 1;
        state
            .waiting
            .entry(source)
            .or_default()
            .push_back(Waiter { arrival, give });
        Slot::Queued(take)
    }

    /// Requests waiting for a slot (those whose client left included,
    /// until a slot would have gone to them).
    pub(super) fn waiting(&self) -> usize {
        self.lock().waiting.values().map(VecDeque::len).sum()
    }

    /// Frees a slot `source` held: it goes to the next waiting request, or
    /// back to the free ones.
    fn release(self: &Arc<Self>, source: Option<IpAddr>) {
        let mut returning = source;
        loop {
            let next = {
                let mut state = self.lock();
                state.unhold(returning);
                match state.next_waiter() {
                    Some((source, give)) => {
                        *state.held.entry(source).or_default() += 1;
                        Some((source, give))
                    }
                    None => {
                        state.free += 1;
                        None
                    }
                }
            };
            let Some((source, give)) = next else {
                return;
            };
            let permit = SlotPermit {
                slots: Arc::clone(self),
                source,
                armed: true,
            };
            // Sent outside the lock: a permit that comes back (its request
            // went away meanwhile) is passed on to the next one.
            match give.send(permit) {
                Ok(()) => return,
                Err(mut unwanted) => {
                    unwanted.armed = false;
                    returning = unwanted.source;
                }
            }
        }
    }
}

impl SlotState {
    fn unhold(&mut self, source: Option<IpAddr>) {
        if let Some(held) = self.held.get_mut(&source) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(&source);
            }
        }
    }

    /// The waiting request to serve next: of the source holding the fewest
    /// slots, the oldest; requests whose client has gone are skipped.
    fn next_waiter(&mut self) -> Option<(Option<IpAddr>, oneshot::Sender<SlotPermit>)> {
        loop {
            let source = self
                .waiting
                .iter()
                .filter_map(|(source, queue)| Some((*source, queue.front()?.arrival)))
                .min_by_key(|(source, arrival)| {
                    (self.held.get(source).copied().unwrap_or(0), *arrival)
                })
                .map(|(source, _)| source)?;
            let queue = self.waiting.get_mut(&source)?;
            let waiter = queue.pop_front();
            if queue.is_empty() {
                self.waiting.remove(&source);
            }
            match waiter {
                Some(waiter) if !waiter.give.is_closed() => return Some((source, waiter.give)),
                _ => continue,
            }
        }
    }
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        if self.armed {
            self.slots.release(self.source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, last]))
    }

    fn taken(slot: Slot) -> SlotPermit {
        match slot {
            Slot::Taken(permit) => permit,
            Slot::Queued(_) => panic!("expected a free slot"),
        }
    }

    fn queued(slot: Slot) -> oneshot::Receiver<SlotPermit> {
        match slot {
            Slot::Queued(take) => take,
            Slot::Taken(_) => panic!("expected to wait"),
        }
    }

    #[test]
    fn a_freed_slot_goes_to_the_source_holding_fewest_not_the_oldest_waiter() {
        let slots = Slots::new(2);
        let busy_a = taken(slots.acquire(ip(1)));
        let _busy_b = taken(slots.acquire(ip(1)));
        let mut busy_queued = queued(slots.acquire(ip(1)));
        let mut newcomer = queued(slots.acquire(ip(9)));
        assert_eq!(slots.waiting(), 2);
        drop(busy_a);
        let served = newcomer.try_recv();
        assert!(served.is_ok(), "the newcomer is served first");
        assert!(busy_queued.try_recv().is_err());
        drop(served);
        assert!(busy_queued.try_recv().is_ok(), "then the busy source");
    }

    #[test]
    fn equal_sources_are_served_in_arrival_order_and_gone_waiters_skipped() {
        let slots = Slots::new(1);
        let first = taken(slots.acquire(ip(1)));
        let gone = queued(slots.acquire(ip(2)));
        let mut second = queued(slots.acquire(ip(3)));
        let mut third = queued(slots.acquire(ip(4)));
        drop(gone);
        drop(first);
        let second_permit = second.try_recv().expect("second is next");
        assert!(third.try_recv().is_err());
        drop(second_permit);
        let third_permit = third.try_recv().expect("then third");
        drop(third_permit);
        assert!(matches!(slots.acquire(ip(5)), Slot::Taken(_)));
    }

    #[test]
    fn a_permit_whose_request_left_is_passed_on() {
        let slots = Slots::new(1);
        let first = taken(slots.acquire(None));
        let left = queued(slots.acquire(None));
        let mut next = queued(slots.acquire(None));
        // `left` goes after its slot was handed over (not yet received).
        drop(first);
        drop(left);
        assert!(next.try_recv().is_ok());
    }
}
