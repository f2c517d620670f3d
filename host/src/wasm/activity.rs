//! When a connection last moved bytes: stamped by the `request` resource on
//! every read and write, read by the server's full-server rule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// When a connection last moved bytes, read by the full-server rule.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Milliseconds since [`epoch`], at the last read or write.
    last: AtomicU64,
}

/// The origin of [`Activity`] times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Activity {
    /// A clock stamped now.
    pub(crate) fn new() -> Arc<Self> {
        let activity = Arc::new(Self::default());
        activity.touch();
        activity
    }

    /// Records that the connection moved bytes now.
    pub(crate) fn touch(&self) {
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    pub(crate) fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}
