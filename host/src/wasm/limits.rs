//! What one request may use, and how each limit is enforced.
//!
//! - Memory: [`MemoryLimiter`] refuses `memory.grow` past the limit and
//!   remembers that it did, so the trap that usually follows is reported as
//!   "out of memory" rather than a bare `unreachable`.
//! - CPU: [`CpuMeter`] adds up the time the request's future spends being
//!   polled (guest code and synchronous host code; not time spent waiting
//!   for the client) since a read of the guest last had to wait for its
//!   client. The engine's epoch ticker interrupts running guests
//!   every tick; the epoch callback then ends a guest over budget, or yields
//!   to the tokio scheduler so one busy guest cannot starve the others.
//! - Lifetime and idleness are plain timeouts around the call and around
//!   each read (see `request.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use super::heavy_lane::LaneSlot;
use super::meter_clock::MeterClock;
use super::outbox::{LONG_POLL, send_listed, send_listed_if_old};

/// How long a read waits for a silent client unless configured: finite, so
/// that clients that connect and say nothing cannot hold slots for ever.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a read waits for a client that has sent nothing at all yet,
/// unless configured (nginx's `client_header_timeout`, HAProxy's short
/// client timeouts): a connection that opens and stays silent holds its
/// slot this long, not the whole idle timeout. Handlers that speak first
/// are not affected while they write.
pub(crate) const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request whose client reset the connection may go on (to
/// finish what it was doing) before it is ended and everything it holds
/// (its instance, upstreams, subscriptions) is dropped.
pub(crate) const DEFAULT_HANGUP_GRACE: Duration = Duration::from_secs(5);

/// The limits every request of a server runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// The most linear memory one instance may grow to, in bytes.
    pub(crate) max_memory_bytes: usize,
    /// The CPU time one request may use (guest execution, its start-up
    /// code, and synchronous host work on its behalf) without waiting for
    /// its client: the count restarts only when a `read` had to wait, so a
    /// connection whose guest keeps waiting for its client lives on, while
    /// a guest that computes (or writes, or reads what is there already)
    /// without ever waiting is ended.
    pub(crate) max_cpu: Duration,
    /// How long one request may last from start to end; `None` is no limit.
    pub(crate) max_lifetime: Option<Duration>,
    /// How long a guest's `read` waits for a silent client before it fails
    /// with `timed-out`; `None` waits forever.
    pub(crate) idle_timeout: Option<Duration>,
    /// The same for a client that has sent no byte yet (the shorter of the
    /// two applies then); `None`: only the idle timeout.
    pub(crate) first_byte_timeout: Option<Duration>,
    /// How long a request goes on after its TCP client reset the
    /// connection; its reads and writes fail `closed` meanwhile.
    pub(crate) hangup_grace: Duration,
}

impl ConnectionLimits {
    /// How long a connection's reads wait for its client.
    pub(crate) fn read_timeouts(&self) -> ReadTimeouts {
        ReadTimeouts {
            idle: self.idle_timeout,
            first_byte: self.first_byte_timeout,
        }
    }
}

/// How long a connection's reads wait for a silent client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReadTimeouts {
    /// Since the client last sent something; `None`: forever.
    pub(crate) idle: Option<Duration>,
    /// Since the connection began, while the client has sent nothing.
    pub(crate) first_byte: Option<Duration>,
}

impl ReadTimeouts {
    /// The timeout in force: the first-byte one (if shorter) until the
    /// client has sent something.
    pub(crate) fn in_force(&self, got_input: bool) -> Option<Duration> {
        match (got_input, self.first_byte) {
            (false, Some(first)) => Some(self.idle.map_or(first, |idle| idle.min(first))),
            _ => self.idle,
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 64 * 1024 * 1024,
            max_cpu: Duration::from_secs(1),
            max_lifetime: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            first_byte_timeout: Some(DEFAULT_FIRST_BYTE_TIMEOUT),
            hangup_grace: DEFAULT_HANGUP_GRACE,
        }
    }
}

/// A `ResourceLimiter` that caps linear memory and remembers a refusal.
#[derive(Debug, Clone)]
pub(crate) struct MemoryLimiter {
    /// The cap, in bytes.
    max_bytes: usize,
    /// Whether a `memory.grow` was refused.
    refused: bool,
}

impl MemoryLimiter {
    /// A limiter that refuses growth past `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            refused: false,
        }
    }

    /// Forgets an earlier refusal (a reused instance serves a new request).
    pub(crate) fn reset(&mut self) {
        self.refused = false;
    }

    /// Whether the guest asked for more memory than allowed.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pooling allocator's slot size.
        Ok(true)
    }
}

/// The error an epoch callback returns to end a guest over its CPU budget.
#[derive(Debug, thiserror::Error)]
#[error("used more than {budget:?} of CPU time (--max-cpu)")]
pub(crate) struct CpuBudgetExceeded {
    /// The budget that was exceeded.
    pub(crate) budget: Duration,
}

/// CPU time used by one request: the sum of the durations of every poll of
/// its future, plus the poll in progress.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    /// When the meter was made; the other fields count from here.
    origin: MeterClock,
    /// Nanoseconds spent in finished polls.
    used: AtomicU64,
    /// When the poll in progress started (nanoseconds after `origin`, plus
    /// one), or 0 between polls.
    poll_started: AtomicU64,
}

impl Default for CpuMeter {
    fn default() -> Self {
        Self {
            origin: MeterClock::start(),
            used: AtomicU64::new(0),
            poll_started: AtomicU64::new(0),
        }
    }
}

impl CpuMeter {
    fn now(&self) -> u64 {
        self.origin.nanos()
    }

    /// The CPU time used so far, the poll in progress included.
    #[cfg(test)]
    pub(crate) fn used(&self) -> Duration {
        self.used_and_running().0
    }

    /// The CPU time used so far (the poll in progress included), and how
    /// long the poll in progress has run (zero between polls).
    pub(crate) fn used_and_running(&self) -> (Duration, Duration) {
        let started = self.poll_started.load(Ordering::Relaxed);
        let running = if started == 0 {
            0
        } else {
            self.now().saturating_sub(started - 1)
        };
        let used = self.used.load(Ordering::Relaxed).saturating_add(running);
        (Duration::from_nanos(used), Duration::from_nanos(running))
    }

    /// Starts counting from zero again (the poll in progress included).
    pub(crate) fn restart(&self) {
        self.used.store(0, Ordering::Relaxed);
        if self.poll_started.load(Ordering::Relaxed) != 0 {
            self.poll_started.store(self.now() + 1, Ordering::Relaxed);
        }
    }

    /// Wraps `future` so that the time spent polling it is counted here,
    /// and `lane`'s permit is given back whenever it waits.
    pub(crate) fn meter<F: Future>(self: &Arc<Self>, future: F, lane: LaneSlot) -> Metered<F> {
        Metered {
            inner: future,
            meter: Arc::clone(self),
            lane,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future whose polls are timed by a [`CpuMeter`], and which holds
    /// no heavy-lane permit while it waits.
    #[derive(Debug)]
    pub(crate) struct Metered<F> {
        #[pin]
        inner: F,
        meter: Arc<CpuMeter>,
        lane: LaneSlot,
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let meter = this.meter;
        let start = meter.now();
        meter.poll_started.store(start + 1, Ordering::Relaxed);
        let output = this.inner.poll(cx);
        meter.poll_started.store(0, Ordering::Relaxed);
        let took = meter.now().saturating_sub(start);
        meter.used.fetch_add(took, Ordering::Relaxed);
        // Replies held on this thread wait for a long poll no longer.
        if u128::from(took) >= LONG_POLL.as_nanos() {
            send_listed();
        } else {
            send_listed_if_old();
        }
        // Waiting — for the client, a timer, anything the guest polls — is
        // not computing: a heavy guest's lane permit goes back meanwhile.
        if output.is_pending() {
            this.lane.release();
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spins on the CPU for `time`.
    fn spin(time: Duration) {
        let start = std::time::Instant::now();
        while start.elapsed() < time {
            std::hint::spin_loop();
        }
    }

    #[tokio::test]
    async fn polls_count_and_waiting_does_not() {
        let meter = Arc::new(CpuMeter::default());
        let work = async {
            spin(Duration::from_millis(30));
            // Waiting (the future is pending) is not CPU.
            tokio::time::sleep(Duration::from_millis(200)).await;
            spin(Duration::from_millis(30));
        };
        meter.meter(work, LaneSlot::default()).await;
        let used = meter.used();
        assert!(used >= Duration::from_millis(60), "{used:?}");
        assert!(used < Duration::from_millis(200), "{used:?}");
    }

    #[tokio::test]
    async fn the_poll_in_progress_counts_and_restart_starts_over() {
        let meter = Arc::new(CpuMeter::default());
        let inner = Arc::clone(&meter);
        let work = async move {
            spin(Duration::from_millis(20));
            let during = inner.used();
            inner.restart();
            let after = inner.used();
            (during, after)
        };
        let (during, after) = meter.meter(work, LaneSlot::default()).await;
        assert!(during >= Duration::from_millis(20), "{during:?}");
        assert!(after < Duration::from_millis(5), "{after:?}");
    }
}
