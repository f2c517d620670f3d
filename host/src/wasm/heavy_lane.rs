//! Fairness between guests that compute and guests that talk.
//!
//! Every guest is interrupted at each epoch tick and yields (once its poll
//! has run for 200 µs; a heavy one at every tick), so none holds a
//! worker thread. That alone still lets 20 spinning guests take turns on
//! every worker, and an honest request then waits behind them (its p99
//! rose from milliseconds to half a second). So a guest that has computed
//! for [`HEAVY_AFTER`] without waiting for its client is *heavy*: each of its
//! next slices first takes a permit of the heavy lane, which has one permit
//! fewer than the runtime has workers. Heavy guests share those permits
//! slice by slice; the remaining worker is always free for the others. A
//! heavy guest gives its permit back at every tick and whenever it waits
//! for its client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// CPU time without waiting after which a guest counts as heavy. Honest
/// requests compute far less between two reads.
pub(crate) const HEAVY_AFTER: Duration = Duration::from_millis(10);

/// The process's heavy lane: one permit fewer than there are cores (and so
/// runtime workers), at least one.
fn lane() -> Arc<Semaphore> {
    static LANE: OnceLock<Arc<Semaphore>> = OnceLock::new();
    Arc::clone(LANE.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        Arc::new(Semaphore::new(workers.saturating_sub(1).max(1)))
    }))
}

/// The heavy-lane permit an instance holds for its current slice, if any.
#[derive(Debug, Default, Clone)]
pub(crate) struct LaneSlot(Arc<LaneHold>);

/// The permit, and whether there is one: a guest that waits gives its
/// permit back every time (several times per request), and only a heavy
/// guest ever holds one, so the flag spares the others the lock.
#[derive(Debug, Default)]
struct LaneHold {
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    held: AtomicBool,
}

impl LaneSlot {
    /// Gives the permit back (a tick ended, or the guest waits).
    pub(crate) fn release(&self) {
        if !self.0.held.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut permit) = self.0.permit.lock() {
            permit.take();
            self.0.held.store(false, Ordering::Release);
        }
    }

    /// Releases the current permit and returns the future that waits for
    /// the next one: the guest's next slice starts once it resolves.
    ///
    /// It always yields to the scheduler first: a permit nobody else wants
    /// is ready at once, and without the yield a lone heavy guest would
    /// run slice after slice without the worker ever serving anyone else —
    /// on a one-core server (one worker, a lane of one permit) honest
    /// requests waited up to its whole `--max-cpu` (p50 485 ms with 20
    /// spinning guests; 71 ms with the yield, bench/RESULTS.md).
    pub(crate) fn next_slice(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        self.release();
        let slot = self.clone();
        Box::pin(async move {
            tokio::task::yield_now().await;
            if let Ok(permit) = lane().acquire_owned().await
                && let Ok(mut held) = slot.0.permit.lock()
            {
                *held = Some(permit);
                slot.0.held.store(true, Ordering::Release);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slice_holds_a_permit_until_released() {
        let slot = LaneSlot::default();
        let before = lane().available_permits();
        slot.next_slice().await;
        assert_eq!(lane().available_permits(), before - 1);
        slot.release();
        assert_eq!(lane().available_permits(), before);
    }
}
