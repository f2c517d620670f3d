//! The socket behind a request, shared by everything the guest reads and
//! writes it through: the `request` resource's own methods, its pollables,
//! and the `wasi:io/streams` pair `request.streams` hands out.
//!
//! Every operation here is non-blocking (`try_read`, `try_write`) or a pure
//! readiness wait (`read_ready`, `write_ready`) that holds no buffer, so a
//! guest waiting for a silent client costs no host memory. The books are
//! kept here too, whichever path the bytes took: bytes counted, the idle
//! clock, and the CPU budget renewed when input arrives after a wait.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::net::SendFlags;
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::activity::{Activity, coarse_instant, coarse_millis};
use super::books::{Direction, RequestBooks};
use super::datagram::{Datagram, ReplyRefused};
use super::io_failure::{IoFailure, io_failure};
use super::limits::ReadTimeouts;
use super::socket_io::{read_draining, read_scratch, send_now, shutdown_write, with_scratch};
use crate::net::DatagramReply;

/// The most bytes one read returns, whatever the guest asks for; it bounds
/// the host memory one read can allocate on the guest's behalf, and holds
/// any UDP datagram.
pub(crate) const MAX_READ: usize = 64 * 1024;

/// One accepted connection or received datagram.
#[derive(Debug)]
pub(crate) struct Connection {
    socket: Socket,
    /// How long the client may send nothing before reads fail `timed-out`.
    timeouts: ReadTimeouts,
    /// Whether the client has sent anything (until then the first-byte
    /// timeout applies).
    got_input: AtomicBool,
    /// When the client last sent something (or the request began), on the
    /// coarse clock.
    last_input: AtomicU64,
    /// The idle timeout's timer, made at the first wait (see
    /// [`Connection::poll_idle`]).
    idle_timer: Mutex<Option<std::pin::Pin<Box<tokio::time::Sleep>>>>,
    /// Whether the last readiness wait found nothing and had to wait for
    /// the client: the bytes that end it renew the CPU budget.
    waited: AtomicBool,
    /// Stamped whenever bytes move, for the server's full-server rule.
    activity: Arc<Activity>,
    /// The serving instance's books, attached when the instance takes it.
    books: OnceLock<Arc<RequestBooks>>,
    /// For a TLS connection's plaintext end: cancelled when the client
    /// resets the TCP connection behind the relay.
    peer_reset: Option<CancellationToken>,
    /// Whether the socket's read readiness is known to be real: tokio
    /// reports a socket it has just registered readable until a read (or
    /// a peek) says otherwise.
    primed: AtomicBool,
    /// Small writes held back until the worker idles (see `outbox`).
    outbox: super::outbox::Outbox,
}

/// The socket, per transport.
#[derive(Debug)]
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    Datagram(Datagram),
}

impl Connection {
    pub(crate) fn tcp(stream: TcpStream, timeouts: ReadTimeouts, activity: Arc<Activity>) -> Self {
        Self::new(Socket::Tcp(stream), timeouts, activity)
    }

    pub(crate) fn unix(
        stream: UnixStream,
        timeouts: ReadTimeouts,
        activity: Arc<Activity>,
    ) -> Self {
        Self::new(Socket::Unix(stream), timeouts, activity)
    }

    /// A datagram never waits for input, so it has no idle timeout.
    pub(crate) fn datagram(
        payload: Vec<u8>,
        reply: DatagramReply,
        activity: Arc<Activity>,
    ) -> Self {
        Self::new(
            Socket::Datagram(Datagram::new(payload, reply)),
            ReadTimeouts::default(),
            activity,
        )
    }

    fn new(socket: Socket, timeouts: ReadTimeouts, activity: Arc<Activity>) -> Self {
        Self {
            socket,
            timeouts,
            got_input: AtomicBool::new(false),
            last_input: AtomicU64::new(coarse_millis()),
            idle_timer: Mutex::new(None),
            waited: AtomicBool::new(false),
            activity,
            books: OnceLock::new(),
            peer_reset: None,
            primed: AtomicBool::new(false),
            outbox: super::outbox::Outbox::default(),
        }
    }

    /// The same connection, whose client's reset `token` reports (a TLS
    /// connection's plaintext end, behind the host's relay).
    pub(crate) fn reset_by(mut self, token: CancellationToken) -> Self {
        self.peer_reset = Some(token);
        self
    }

    /// When the connection last moved bytes, either way.
    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Attaches the serving instance's books (once).
    pub(crate) fn attach(&self, books: Arc<RequestBooks>) {
        let _ = self.books.set(books);
    }

    /// When reads fail `timed-out` if the client still sends nothing.
    fn idle_deadline(&self) -> Option<Instant> {
        let last = coarse_instant(self.last_input.load(Ordering::Relaxed));
        let got_input = self.got_input.load(Ordering::Relaxed);
        self.timeouts
            .in_force(got_input)
            .map(|idle| Instant::from_std(last) + idle)
    }

    /// Reads what is there, up to `max` bytes, without waiting: `None` when
    /// nothing has arrived, an empty vector at end of stream.
    pub(crate) fn try_read(&self, max: usize) -> Result<Option<Vec<u8>>, IoFailure> {
        self.read_tried();
        let max = max.clamp(1, MAX_READ);
        let read = match &self.socket {
            Socket::Tcp(stream) => read_scratch(max, |buf| read_draining(stream, buf)),
            Socket::Unix(stream) => read_scratch(max, |buf| read_draining(stream, buf)),
            Socket::Datagram(datagram) => datagram.read(max),
        };
        match read {
            Ok(bytes) => {
                if bytes.is_empty() && !matches!(self.socket, Socket::Datagram(_)) {
                    self.client_gone();
                }
                self.received(bytes.len());
                Ok(Some(bytes))
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                // The coarse clock: a read that finds nothing happens once
                // per exchange, and a clock read each was 0.6 % of an echo.
                let now = Instant::from_std(coarse_instant(coarse_millis()));
                if self.idle_deadline().is_some_and(|at| at <= now) {
                    if let Some(books) = self.books.get() {
                        books.idle_timed_out.store(true, Ordering::Relaxed);
                    }
                    return Err(IoFailure::TimedOut);
                }
                Ok(None)
            }
            Err(err) => Err(self.failed(io_failure(err))),
        }
    }

    /// Reads what a stream has into `buf` without waiting, booked as
    /// `try_read`'s reads are (no idle timeout: the caller keeps its own):
    /// `None` when nothing has arrived, 0 at end of stream.
    pub(crate) fn read_now(&self, buf: &mut [u8]) -> Result<Option<usize>, IoFailure> {
        self.read_tried();
        let read = match &self.socket {
            Socket::Tcp(stream) => read_draining(stream, buf),
            Socket::Unix(stream) => read_draining(stream, buf),
            Socket::Datagram(_) => Ok(0),
        };
        match read {
            Ok(len) => {
                self.received(len);
                Ok(Some(len))
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(self.failed(io_failure(err))),
        }
    }

    /// Notes that the client closed or reset the connection.
    fn client_gone(&self) {
        if let Some(books) = self.books.get() {
            books.client_gone.store(true, Ordering::Relaxed);
        }
    }

    /// `failure`, noted in the books when it means the client is gone.
    fn failed(&self, failure: IoFailure) -> IoFailure {
        if failure == IoFailure::Closed && !matches!(self.socket, Socket::Datagram(_)) {
            self.client_gone();
        }
        failure
    }

    /// Books `len` bytes received: counted, the clocks stamped, and the CPU
    /// budget renewed when the client had made the guest wait for them.
    fn received(&self, len: usize) {
        let waited = self.waited.swap(false, Ordering::Relaxed);
        if len == 0 && !waited {
            return;
        }
        self.last_input.store(coarse_millis(), Ordering::Relaxed);
        if len > 0 {
            self.got_input.store(true, Ordering::Relaxed);
        }
        self.activity.moved(Direction::In, len);
        if let Some(books) = self.books.get() {
            books.count(Direction::In, len);
            // Only a wait for the client renews the budget: input buffered
            // already, or a timer the guest set, never does.
            if waited {
                books.cpu.restart();
            }
        }
    }

    /// Reads up to `max` bytes, waiting for the client if nothing is there.
    /// An empty vector means end of stream.
    pub(crate) async fn read(&self, max: usize) -> Result<Vec<u8>, IoFailure> {
        loop {
            if let Some(bytes) = self.try_read(max)? {
                return Ok(bytes);
            }
            self.read_ready().await;
        }
    }

    /// Writes what the socket takes now, without waiting, and returns how
    /// many bytes that was (0 when the client is not reading). A datagram
    /// is all sent as one, within the reply budget, or not at all.
    pub(crate) fn try_write(&self, bytes: &[u8]) -> Result<usize, IoFailure> {
        Ok(self.write_now(bytes)?.unwrap_or(0))
    }

    /// Holds all of `bytes` to send when the worker idles, or writes what
    /// the socket takes now (see `write_now`).
    pub(crate) fn hold_or_write(
        self: &Arc<Self>,
        bytes: &[u8],
    ) -> Result<Option<usize>, IoFailure> {
        if self.hold(bytes)? {
            return Ok(Some(bytes.len()));
        }
        self.write_now(bytes)
    }

    /// Like `try_write`, with `None` when the socket would block.
    pub(crate) fn write_now(&self, bytes: &[u8]) -> Result<Option<usize>, IoFailure> {
        // What is held goes first.
        if !self.send_held()? {
            return Ok(None);
        }
        let written = match &self.socket {
            Socket::Tcp(stream) => send_now(stream, bytes, SendFlags::empty()),
            Socket::Unix(stream) => send_now(stream, bytes, SendFlags::empty()),
            Socket::Datagram(datagram) => {
                // Its held replies go first.
                self.send_held_replies();
                datagram.try_reply(bytes)
            }
        };
        match written {
            Ok(written) => {
                self.sent(written);
                Ok(Some(written))
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(self.write_failed(err)),
        }
    }

    /// Books a refused reply: counted, logged once per request.
    fn refused(&self, refused: &ReplyRefused) -> IoFailure {
        if let Some(books) = self.books.get() {
            books.observer.reply_refused();
            // Logged once per request: a guest retrying in a loop must not
            // turn the refusal into a log flood.
            if books.replies_refused.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!("datagram reply refused: over the reply budget");
            }
        }
        IoFailure::Other(refused.to_string())
    }

    fn sent(&self, len: usize) {
        self.activity.moved(Direction::Out, len);
        if let Some(books) = self.books.get() {
            books.count(Direction::Out, len);
        }
    }

    /// Writes all of `bytes` (a datagram: as one), waiting for the client
    /// as needed; a small write on a stream, or a small UDP reply, is held,
    /// to be sent when the worker idles (see `outbox`).
    pub(crate) async fn write_all(self: &Arc<Self>, mut bytes: &[u8]) -> Result<(), IoFailure> {
        if self.hold(bytes)? {
            return Ok(());
        }
        loop {
            match self.write_now(bytes)? {
                Some(written) if written >= bytes.len() || !self.is_stream() => return Ok(()),
                Some(written) => bytes = bytes.get(written..).unwrap_or_default(),
                None => self.write_ready().await,
            }
        }
    }

    /// Shuts the write side down: the peer reads end of stream.
    pub(crate) fn shutdown_write(&self) -> Result<(), IoFailure> {
        let shut = match &self.socket {
            Socket::Tcp(stream) => shutdown_write(stream),
            Socket::Unix(stream) => shutdown_write(stream),
            Socket::Datagram(_) => Ok(()),
        };
        shut.map_err(io_failure)
    }

    /// Reads and discards what is there, up to `max` bytes, without
    /// booking it (a lingering close): `None` when nothing is there, 0 at
    /// end of stream.
    pub(crate) fn drain(&self, max: usize) -> io::Result<Option<usize>> {
        let read = match &self.socket {
            Socket::Tcp(stream) => with_scratch(max, |buf| stream.try_read(buf)),
            Socket::Unix(stream) => with_scratch(max, |buf| stream.try_read(buf)),
            Socket::Datagram(_) => Ok(0),
        };
        match read {
            Ok(len) => Ok(Some(len)),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Whether this is a stream connection (and so closes lingering).
    pub(crate) fn is_stream(&self) -> bool {
        !matches!(self.socket, Socket::Datagram(_))
    }
}

#[path = "connection_readiness.rs"]
mod readiness;

#[path = "connection_outbox.rs"]
mod held;

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
