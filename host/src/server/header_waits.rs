//! Connections still reading their PROXY protocol header. Each holds a
//! place in the service's waiting room, as any accepted request does, but
//! none can keep it: when the room is full, the connection that has waited
//! longest for its header — and at least [`HEADER_GRACE`] — is closed
//! first. A balancer sends the header at once, in the connection's first
//! segment, so the oldest is the likeliest to be withholding it (a
//! connection accepted a moment ago has not had its turn to read yet); connections that never finish their header (from
//! inside the trusted network, or from clients of a balancer that sends it
//! only with their first data) cannot keep honest clients behind the same
//! balancer waiting.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// How long a connection may take to send its header before, on a full
/// service, it may be closed to make room.
pub(super) const HEADER_GRACE: Duration = Duration::from_millis(500);

/// Every header read in flight, oldest first.
#[derive(Debug, Default)]
pub(super) struct HeaderWaits {
    /// By arrival number: the first entry waited longest.
    waiting: Mutex<BTreeMap<u64, (Instant, CancellationToken)>>,
    /// The next arrival number.
    next: AtomicU64,
}

impl HeaderWaits {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, (Instant, CancellationToken)>> {
        // A panic while holding the lock leaves a plain map behind: go on.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection that starts reading its header; it stays
    /// registered until the returned guard drops.
    pub(super) fn enter(self: &Arc<Self>) -> HeaderWait {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        self.lock().insert(id, (Instant::now(), evicted.clone()));
        HeaderWait {
            id,
            evicted,
            waits: Arc::clone(self),
        }
    }

    /// Closes the connection that has waited longest for its header, if
    /// it has waited at least `grace`; whether there was one.
    pub(super) fn evict_oldest(&self, grace: Duration) -> bool {
        let mut waiting = self.lock();
        let Some(mut oldest) = waiting.first_entry() else {
            return false;
        };
        if oldest.get().0.elapsed() < grace {
            return false;
        }
        oldest.get_mut().1.cancel();
        oldest.remove();
        true
    }

    /// How many connections are reading their header.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// One connection's header read, registered in [`HeaderWaits`].
#[derive(Debug)]
pub(super) struct HeaderWait {
    id: u64,
    evicted: CancellationToken,
    waits: Arc<HeaderWaits>,
}

impl HeaderWait {
    /// Resolves when the connection is closed to make room.
    pub(super) fn evicted(&self) -> WaitForCancellationFuture<'_> {
        self.evicted.cancelled()
    }
}

impl Drop for HeaderWait {
    fn drop(&mut self) {
        self.waits.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_wait_is_evicted_first_and_a_finished_one_leaves() {
        let waits = Arc::new(HeaderWaits::default());
        let first = waits.enter();
        let second = waits.enter();
        let third = waits.enter();
        drop(second);
        assert_eq!(waits.len(), 2);
        // Not before they have had their grace.
        assert!(!waits.evict_oldest(Duration::from_secs(60)));
        assert!(waits.evict_oldest(Duration::ZERO));
        assert!(first.evicted.is_cancelled());
        assert!(!third.evicted.is_cancelled());
        drop(first);
        assert!(waits.evict_oldest(Duration::ZERO));
        assert!(third.evicted.is_cancelled());
        drop(third);
        assert!(!waits.evict_oldest(Duration::ZERO));
        assert_eq!(waits.len(), 0);
    }
}
