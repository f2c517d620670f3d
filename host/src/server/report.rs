//! What a service reports when it stops: requests served, drained and cut,
//! and failures per cause.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wasm::FailureCause;

/// What happened to the requests that were in flight at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DrainReport {
    /// Requests served in all.
    pub(crate) served: u64,
    /// Requests in flight when the server stopped accepting.
    pub(crate) in_flight: usize,
    /// Of those, how many were cut because the drain timed out.
    pub(crate) cut: u64,
    /// Requests that ended badly, per cause (in [`FailureCause::ALL`] order).
    pub(crate) failures: [u64; FailureCause::ALL.len()],
}

impl DrainReport {
    /// `trap=1 out_of_memory=2`: the non-zero failure counts, for the log.
    pub(crate) fn failure_summary(&self) -> String {
        let counts: Vec<String> = FailureCause::ALL
            .iter()
            .zip(self.failures)
            .filter(|(_, count)| *count > 0)
            .map(|(cause, count)| format!("{cause}={count}"))
            .collect();
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(" ")
        }
    }
}

/// Requests that ended badly, counted per cause.
#[derive(Debug, Default)]
pub(crate) struct FailureCounts {
    /// One counter per cause, in [`FailureCause::ALL`] order.
    counts: [AtomicU64; FailureCause::ALL.len()],
}

impl FailureCounts {
    fn index(cause: FailureCause) -> usize {
        FailureCause::ALL
            .iter()
            .position(|known| *known == cause)
            .unwrap_or_default()
    }

    /// Counts one failure.
    pub(crate) fn record(&self, cause: FailureCause) {
        self.counts[Self::index(cause)].fetch_add(1, Ordering::Relaxed);
    }

    /// How many failures of `cause` were counted.
    pub(crate) fn get(&self, cause: FailureCause) -> u64 {
        self.counts[Self::index(cause)].load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> [u64; FailureCause::ALL.len()] {
        FailureCause::ALL.map(|cause| self.get(cause))
    }
}
