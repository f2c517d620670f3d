//! The relay of a handed-off connection (`request.hand-off`, contract
//! 0.2.2): once the handler has returned and its instance is gone, the
//! host copies bytes between the client and the upstream the handler chose,
//! in both directions at once, inside the request's own task.
//!
//! Each direction reads what its source has into the worker thread's
//! scratch buffer and writes it straight on; only what the destination does
//! not take at once is kept (at most one read, [`CHUNK`]), so a relayed
//! connection holds no buffer while its bytes flow freely and none while it
//! is idle. An end of stream is passed on as a half-close; a reset or any
//! other error ends the relay (both sockets close). The relay also ends
//! when nothing has moved either way for the idle timeout.
//!
//! Both directions are one hand-written future over the sockets'
//! readiness (`poll_read_ready`, `poll_write_ready`: one waker slot per
//! socket and direction, no waiter list): a wake-up costs two readiness
//! checks, not a future per wait.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use super::activity::coarse_millis;
use super::books::Direction;
use super::connection::Connection;
use super::held_upstream::HeldUpstream;
use super::io_failure::IoFailure;
use super::socket_io::with_scratch;
use super::state::UpstreamTally;

/// The most one read moves: HAProxy's default buffer size.
const CHUNK: usize = 16 * 1024;

/// The largest message the relay holds to send when the worker idles
/// (see `outbox`): small request/response messages, whose peer's wake-up
/// costs more than the copy. A larger read, bulk data, goes at once, so a
/// relay to a peer that does not read keeps one read at most.
pub(crate) const RELAY_HOLD_MAX: usize = 2 * 1024;

/// Reads a direction makes in a row before it lets its neighbours run.
const MOVES_PER_TURN: u32 = 32;

/// Upstream bytes counted locally before the shared counters are told.
const REPORT_EVERY: u64 = 64 * 1024;

/// How a relay ended when it did not end cleanly.
#[derive(Debug)]
pub(crate) enum RelayEnd {
    /// Nothing moved either way for the idle timeout.
    Idle(Duration),
    /// A socket failed (a reset, mostly); `upstream` says which side.
    Failed { upstream: bool, error: String },
}

/// The upstream's byte counts, told to the shared counters per
/// [`REPORT_EVERY`] and at the end. Only the relay's task touches them:
/// plain loads and stores, no read-modify-write.
struct Tally<'a> {
    shared: &'a dyn UpstreamTally,
    unreported: [AtomicU64; 2],
}

impl Tally<'_> {
    fn count(&self, direction: Direction, bytes: usize) {
        let slot = &self.unreported[direction as usize];
        let total = slot.load(Ordering::Relaxed) + bytes as u64;
        if total >= REPORT_EVERY {
            self.shared.bytes(direction, total);
            slot.store(0, Ordering::Relaxed);
        } else {
            slot.store(total, Ordering::Relaxed);
        }
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        for direction in [Direction::In, Direction::Out] {
            let bytes = self.unreported[direction as usize].load(Ordering::Relaxed);
            if bytes > 0 {
                self.shared.bytes(direction, bytes);
            }
        }
    }
}

/// One side of the relay.
#[derive(Clone, Copy)]
enum Side<'a> {
    Client(&'a Arc<Connection>),
    Upstream(&'a Arc<HeldUpstream>, &'a Tally<'a>),
}

impl Side<'_> {
    fn is_upstream(self) -> bool {
        matches!(self, Side::Upstream(..))
    }

    /// Reads what is there: `None` when nothing is, 0 at end of stream.
    fn read(self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self {
            Side::Client(conn) => conn.read_now(buf).map_err(failure_to_io),
            Side::Upstream(upstream, tally) => match upstream.read(buf) {
                Ok(len) => {
                    tally.count(Direction::In, len);
                    Ok(Some(len))
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(err) => Err(err),
            },
        }
    }

    /// Writes what the socket takes now: `None` when it takes nothing.
    fn write(self, bytes: &[u8]) -> io::Result<Option<usize>> {
        match self {
            Side::Client(conn) if bytes.len() <= RELAY_HOLD_MAX => {
                conn.hold_or_write(bytes).map_err(failure_to_io)
            }
            Side::Client(conn) => conn.write_now(bytes).map_err(failure_to_io),
            Side::Upstream(upstream, tally) => match upstream.write(bytes) {
                Ok(len) => {
                    tally.count(Direction::Out, len);
                    Ok(Some(len))
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(err) => Err(err),
            },
        }
    }

    /// Polls readiness to read (`write`: to write).
    fn poll_ready(self, cx: &mut Context<'_>, write: bool) -> Poll<()> {
        match (self, write) {
            (Side::Client(conn), write) => conn.poll_ready(cx, write),
            (Side::Upstream(upstream, _), false) => upstream.stream().poll_read_ready(cx).map(drop),
            (Side::Upstream(upstream, _), true) => upstream.stream().poll_write_ready(cx).map(drop),
        }
    }

    /// Passes an end of stream on once every byte before it is sent (a
    /// client's held replies first): `false` while some are still held.
    fn shutdown_write(self) -> io::Result<bool> {
        match self {
            Side::Client(conn) => {
                if !conn.send_held().map_err(failure_to_io)? {
                    return Ok(false);
                }
                conn.shutdown_write().map_err(failure_to_io)?;
            }
            Side::Upstream(upstream, _) => return upstream.shutdown_write(),
        }
        Ok(true)
    }
}

fn failure_to_io(failure: IoFailure) -> io::Error {
    match failure {
        IoFailure::Closed => io::ErrorKind::ConnectionReset.into(),
        IoFailure::TimedOut => io::ErrorKind::TimedOut.into(),
        IoFailure::Other(message) => io::Error::other(message),
    }
}

/// The relay's end when a socket failed; `upstream` says which.
fn failed(upstream: bool) -> impl Fn(io::Error) -> RelayEnd {
    move |err| RelayEnd::Failed {
        upstream,
        error: err.to_string(),
    }
}

/// Relays between `client` and `upstream` until both directions have
/// ended, one failed, or nothing moved for `idle`; `first` goes to the
/// upstream before the client's bytes.
pub(crate) async fn relay(
    client: &Arc<Connection>,
    upstream: &Arc<HeldUpstream>,
    tally: &Arc<dyn UpstreamTally>,
    first: Vec<u8>,
    idle: Option<Duration>,
) -> Result<(), RelayEnd> {
    let tally = Tally {
        shared: &**tally,
        unreported: Default::default(),
    };
    let (client_side, upstream_side) = (Side::Client(client), Side::Upstream(upstream, &tally));
    let mut up = Pump::new(client_side, upstream_side, first);
    let mut down = Pump::new(upstream_side, client_side, Vec::new());
    let both = std::future::poll_fn(|cx| {
        // What either side holds and could not send goes as it can.
        client.poll_held(cx);
        upstream.poll_held(cx);
        for pump in [&mut up, &mut down] {
            if let Poll::Ready(Err(end)) = pump.poll(cx) {
                return Poll::Ready(Err(end));
            }
        }
        match up.done && down.done {
            true => Poll::Ready(Ok(())),
            false => Poll::Pending,
        }
    });
    tokio::select! {
        biased;
        ended = both => ended,
        idle = idle_watch(client, idle) => Err(RelayEnd::Idle(idle)),
    }
}

/// One direction: `from` → `to`.
struct Pump<'a> {
    from: Side<'a>,
    to: Side<'a>,
    /// What `to` did not take yet (at most one read).
    pending: Vec<u8>,
    /// `from` ended; the end is passed on once `to` has every byte.
    ending: bool,
    /// `from` ended and the end was passed on.
    done: bool,
}

impl<'a> Pump<'a> {
    fn new(from: Side<'a>, to: Side<'a>, pending: Vec<u8>) -> Self {
        Self {
            from,
            to,
            pending,
            ending: false,
            done: false,
        }
    }

    /// Moves what it can; `Ready(Ok)` once `from` ended and the end was
    /// passed on, `Pending` while it waits for a socket (or yields).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RelayEnd>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        let (from, to) = (self.from, self.to);
        for _ in 0..MOVES_PER_TURN {
            if self.ending {
                if to.shutdown_write().map_err(failed(to.is_upstream()))? {
                    self.done = true;
                    return Poll::Ready(Ok(()));
                }
                if to.poll_ready(cx, true).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            // What the destination did not take yet goes first.
            if !self.pending.is_empty() {
                if to.poll_ready(cx, true).is_pending() {
                    return Poll::Pending;
                }
                let written = to.write(&self.pending).map_err(failed(to.is_upstream()))?;
                let taken = written.unwrap_or(0).min(self.pending.len());
                self.pending.drain(..taken);
                continue;
            }
            // A read goes straight on from the thread's scratch buffer;
            // only the part the destination does not take is kept.
            let pending = &mut self.pending;
            let read = with_scratch(CHUNK, |buf| -> Result<Option<usize>, RelayEnd> {
                let Some(len) = from.read(buf).map_err(failed(from.is_upstream()))? else {
                    return Ok(None);
                };
                let read = buf.get(..len).unwrap_or_default();
                if len > 0 {
                    let written = to.write(read).map_err(failed(to.is_upstream()))?;
                    pending.extend_from_slice(read.get(written.unwrap_or(0)..).unwrap_or_default());
                }
                Ok(Some(len))
            })?;
            match read {
                None if from.poll_ready(cx, false).is_pending() => return Poll::Pending,
                None => {}
                Some(0) => self.ending = true,
                Some(_) => {}
            }
        }
        // A busy direction lets the worker's other tasks run, and sends
        // the replies they hold (a busy worker does not park).
        super::outbox::send_listed();
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Resolves once nothing has moved either way for `idle` (never without
/// one). Every relayed byte passes the client's socket, whose activity
/// stamp is the relay's.
async fn idle_watch(client: &Connection, idle: Option<Duration>) -> Duration {
    let Some(idle) = idle else {
        return std::future::pending().await;
    };
    let limit = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    loop {
        let quiet = coarse_millis().saturating_sub(client.activity().last());
        if quiet >= limit {
            return idle;
        }
        tokio::time::sleep(Duration::from_millis(limit - quiet)).await;
    }
}
