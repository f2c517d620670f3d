//! When a connection last moved bytes and how many (stamped by its socket
//! on every read and write, read by the server's full-server rule and its
//! access log), and the coarse clock those stamps use.
//!
//! The stamps need milliseconds, not nanoseconds, and are taken twice per
//! echo: reading the system clock each time cost two `clock_gettime` calls
//! per operation. The engine's epoch ticker (one thread, every 2 ms)
//! publishes the time instead, and a stamp is one atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::books::Direction;

/// When a connection last moved bytes, read by the full-server rule, and
/// the bytes it moved, read by the access log.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// [`coarse_millis`] at the last read or write.
    last: AtomicU64,
    /// Bytes the guest read from its client, and wrote to it.
    moved: [AtomicU64; 2],
}

/// The origin of the coarse clock.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The coarse clock's last published reading (milliseconds after
/// [`epoch`], plus one; 0 until the ticker first runs).
static COARSE_NOW: AtomicU64 = AtomicU64::new(0);

/// Publishes the time; called by the epoch ticker at every tick.
pub(crate) fn publish_coarse_time() {
    COARSE_NOW.store(precise_millis() + 1, Ordering::Relaxed);
}

fn precise_millis() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the process's clock origin, to within one epoch tick
/// (2 ms); read from the clock itself where no ticker runs (unit tests).
pub(crate) fn coarse_millis() -> u64 {
    match COARSE_NOW.load(Ordering::Relaxed) {
        0 => precise_millis(),
        published => published - 1,
    }
}

/// The instant a [`coarse_millis`] reading stands for.
pub(crate) fn coarse_instant(millis: u64) -> Instant {
    epoch() + Duration::from_millis(millis)
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
        self.last.store(coarse_millis(), Ordering::Relaxed);
    }

    /// Records that the connection moved `bytes` bytes `direction` now.
    pub(crate) fn moved(&self, direction: Direction, bytes: usize) {
        self.touch();
        self.moved[direction as usize].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The bytes moved so far: (read from the client, written to it).
    pub(crate) fn bytes(&self) -> (u64, u64) {
        let [read, written] = &self.moved;
        (
            read.load(Ordering::Relaxed),
            written.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// How long since the connection last moved bytes.
    pub(crate) fn idle_for(&self) -> Duration {
        Duration::from_millis(coarse_millis().saturating_sub(self.last()))
    }
}
