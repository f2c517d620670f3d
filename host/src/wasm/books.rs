//! What an instance counts while it serves one request. The store and the
//! request's socket share one [`RequestBooks`], so the counts are the same
//! whichever path bytes took: `read`/`write`, `try-read`/`try-write`, or
//! the request's WASI streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::limits::CpuMeter;
use super::state::RequestObserver;

/// What an instance keeps count of while it serves one request, shared
/// between its store and the request's socket.
#[derive(Debug)]
pub(crate) struct RequestBooks {
    /// The CPU time the request has used since its client last made it wait.
    pub(crate) cpu: Arc<CpuMeter>,
    /// Told of bytes moved and replies refused.
    pub(crate) observer: Arc<dyn RequestObserver>,
    /// Whether a read failed because the client was idle too long.
    pub(super) idle_timed_out: AtomicBool,
    /// Datagram replies refused (the first one is logged).
    pub(super) replies_refused: AtomicU64,
}

impl RequestBooks {
    /// Fresh books: nothing used, nothing refused.
    pub(crate) fn new(observer: Arc<dyn RequestObserver>) -> Self {
        Self {
            cpu: Arc::new(CpuMeter::default()),
            observer,
            idle_timed_out: AtomicBool::new(false),
            replies_refused: AtomicU64::new(0),
        }
    }

    /// Whether a read failed because the client was idle too long.
    pub(crate) fn idle_timed_out(&self) -> bool {
        self.idle_timed_out.load(Ordering::Relaxed)
    }
}
