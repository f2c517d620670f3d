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
    /// Whether the client closed or reset the connection (a stream read
    /// saw its end, or a read or write failed because it was gone).
    pub(super) client_gone: AtomicBool,
    /// Datagram replies refused (the first one is logged).
    pub(super) replies_refused: AtomicU64,
    /// Bytes read and written not yet passed on to the observer.
    unreported: [AtomicU64; 2],
}

/// Bytes counted locally before the observer (a service-wide counter that
/// every worker thread writes) is told: one shared atomic add per 64 KiB
/// instead of two per echo. What is left is reported when the books close.
const REPORT_EVERY: u64 = 64 * 1024;

/// Which way bytes went.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    /// From the client.
    In = 0,
    /// To the client.
    Out = 1,
}

impl RequestBooks {
    /// Fresh books: nothing used, nothing refused.
    pub(crate) fn new(observer: Arc<dyn RequestObserver>) -> Self {
        Self {
            cpu: Arc::new(CpuMeter::default()),
            observer,
            idle_timed_out: AtomicBool::new(false),
            client_gone: AtomicBool::new(false),
            replies_refused: AtomicU64::new(0),
            unreported: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Counts `bytes` moved `direction`.
    pub(crate) fn count(&self, direction: Direction, bytes: usize) {
        let slot = &self.unreported[direction as usize];
        let total = slot.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        if total >= REPORT_EVERY {
            self.report(direction, slot.swap(0, Ordering::Relaxed));
        }
    }

    /// Tells the observer every byte counted so far (the request ended).
    pub(crate) fn report_all(&self) {
        for direction in [Direction::In, Direction::Out] {
            let bytes = self.unreported[direction as usize].swap(0, Ordering::Relaxed);
            self.report(direction, bytes);
        }
    }

    fn report(&self, direction: Direction, bytes: u64) {
        if bytes == 0 {
            return;
        }
        match direction {
            Direction::In => self.observer.bytes_in(bytes),
            Direction::Out => self.observer.bytes_out(bytes),
        }
    }

    /// Whether a read failed because the client was idle too long.
    pub(crate) fn idle_timed_out(&self) -> bool {
        self.idle_timed_out.load(Ordering::Relaxed)
    }

    /// Whether the client closed or reset the connection.
    pub(crate) fn client_gone(&self) -> bool {
        self.client_gone.load(Ordering::Relaxed)
    }
}

impl Drop for RequestBooks {
    fn drop(&mut self) {
        self.report_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Counts what it is told.
    #[derive(Debug, Default)]
    struct Tally {
        bytes_in: AtomicU64,
        bytes_out: AtomicU64,
    }

    impl RequestObserver for Tally {
        fn bytes_in(&self, bytes: u64) {
            self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        }
        fn bytes_out(&self, bytes: u64) {
            self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
        fn instantiated(&self, _took: Duration) {}
        fn reply_refused(&self) {}
        fn replies_dropped(&self, _: u64) {}
        fn outbound(&self, _: crate::wasm::OutboundResult) {}
        fn outbound_datagrams(&self, _: u64, _: u64) {}
        fn upstream(&self, _: &str) -> Arc<dyn crate::wasm::UpstreamTally> {
            struct Nothing;
            impl crate::wasm::UpstreamTally for Nothing {
                fn bytes(&self, _: Direction, _: u64) {}
            }
            Arc::new(Nothing)
        }
    }

    #[test]
    fn bytes_reach_the_observer_per_64_kib_and_all_at_the_end() {
        let tally = Arc::new(Tally::default());
        let books = RequestBooks::new(Arc::clone(&tally) as Arc<dyn RequestObserver>);
        for _ in 0..10 {
            books.count(Direction::In, 100);
        }
        books.count(Direction::Out, 64);
        assert_eq!(tally.bytes_in.load(Ordering::Relaxed), 0, "held back");
        books.count(Direction::In, 70_000);
        assert_eq!(
            tally.bytes_in.load(Ordering::Relaxed),
            71_000,
            "past 64 KiB"
        );
        books.count(Direction::In, 5);
        books.report_all();
        assert_eq!(tally.bytes_in.load(Ordering::Relaxed), 71_005);
        assert_eq!(tally.bytes_out.load(Ordering::Relaxed), 64);
        books.count(Direction::Out, 36);
        drop(books);
        assert_eq!(
            tally.bytes_out.load(Ordering::Relaxed),
            100,
            "reported when dropped"
        );
    }
}
