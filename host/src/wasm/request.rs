//! The host side of the `request` resource: one accepted connection, or one
//! received datagram, lent to the guest for the duration of `handle`.
//!
//! The guest sees the methods of `wasmserve:handler/types.request`; each one
//! lands as an async host function (`request_host.rs`; `write` in
//! `write.rs`), so a guest waiting in `read` suspends its fiber and occupies
//! no thread. This file is the socket side.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::activity::Activity;
use super::bindings::RequestError;
use crate::net::{DatagramReply, Incoming, ReceivedDatagram, Transport, unix_path};

/// The most bytes one `read` call returns, whatever the guest asks for; it
/// bounds the host memory one read can allocate on the guest's behalf, and
/// holds any UDP datagram.
const MAX_READ: usize = 64 * 1024;

/// A closing socket's lingering close, awaited by the request's task.
pub(crate) type Lingering = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// After a handler returns, how long the host keeps reading (and discarding)
/// what the client still sends, so that closing a socket with unread input
/// does not reset the connection and destroy the reply in flight.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// The most unread input a lingering close discards before giving up.
const LINGER_MAX_BYTES: usize = 256 * 1024;

/// One request, as the host holds it: the socket and what the guest may ask
/// about it.
#[derive(Debug)]
pub struct Request {
    /// The socket the guest reads from and writes to.
    io: RequestIo,
    /// The peer's address, formatted once for `peer-addr`.
    peer_addr: String,
    /// The local address, formatted once for `local-addr`.
    local_addr: String,
    /// How long a `read` may wait for the peer before it fails with
    /// `timed-out`; `None` waits forever.
    idle_timeout: Option<Duration>,
    /// Stamped whenever bytes move, for the server's full-server rule.
    activity: Arc<Activity>,
}

/// The socket behind a [`Request`], per transport.
#[derive(Debug)]
enum RequestIo {
    /// An accepted TCP connection.
    Tcp(TcpStream),
    /// An accepted Unix-domain stream connection.
    Unix(UnixStream),
    /// One received datagram and the way to answer it.
    Datagram(Datagram),
}

/// A received datagram: its payload, read once, and where replies go.
#[derive(Debug)]
struct Datagram {
    /// The payload; `read` hands it out, then reports end of stream.
    payload: Vec<u8>,
    /// How much of `payload` the guest has read.
    read_pos: usize,
    /// The socket and address replies are sent to.
    reply: DatagramReply,
    /// Replies sent so far, and their bytes (see [`Datagram::may_reply`]).
    replied: (usize, usize),
}

/// Why a [`Request::write`] failed; either way the guest sees the error.
#[derive(Debug)]
pub(super) enum WriteFailure {
    /// The socket failed (closed, reset, ...).
    Io(RequestError),
    /// The datagram's reply budget refused it (counted and logged).
    ReplyRefused(RequestError),
}

/// Datagrams one received datagram may be answered with.
pub(crate) const MAX_REPLIES: usize = 8;
/// Reply bytes allowed per byte received; with [`REPLY_FLOOR`], this bounds
/// how much a spoofed sender can make a handler send to its victim.
pub(crate) const REPLY_FACTOR: usize = 10;
/// Reply bytes always allowed, whatever was received (a short request may
/// get a longer answer: `whoami`, `daytime`).
pub(crate) const REPLY_FLOOR: usize = 1024;

impl Datagram {
    /// Whether one more reply of `len` bytes fits the reply budget: at most
    /// [`MAX_REPLIES`] datagrams and `max(REPLY_FACTOR × received,
    /// REPLY_FLOOR)` bytes in all. UDP's sender address can be forged, so an
    /// unbounded handler would be an amplifier aimed at anyone.
    fn may_reply(&self, len: usize) -> bool {
        let (count, bytes) = self.replied;
        let allowed = self
            .payload
            .len()
            .saturating_mul(REPLY_FACTOR)
            .max(REPLY_FLOOR);
        count < MAX_REPLIES && bytes.saturating_add(len) <= allowed
    }
}

impl Request {
    /// Wraps what a listener received; a read waits at most `idle_timeout`
    /// for a silent client (`None`: forever); `activity` is stamped at
    /// every read and write.
    pub(crate) fn new(
        incoming: Incoming,
        idle_timeout: Option<Duration>,
        activity: Arc<Activity>,
    ) -> Self {
        match incoming {
            Incoming::Tcp(stream) => {
                let peer_addr = stream.peer_addr().map(|addr| addr.to_string());
                let local_addr = stream.local_addr().map(|addr| addr.to_string());
                Self {
                    io: RequestIo::Tcp(stream),
                    peer_addr: peer_addr.unwrap_or_default(),
                    local_addr: local_addr.unwrap_or_default(),
                    idle_timeout,
                    activity,
                }
            }
            // The peer address of a Unix connection is the client's bound
            // path, usually `""` (clients rarely bind).
            Incoming::Unix(stream) => {
                let peer_addr = stream.peer_addr().ok().and_then(|addr| unix_path(&addr));
                let local_addr = stream.local_addr().ok().and_then(|addr| unix_path(&addr));
                Self {
                    io: RequestIo::Unix(stream),
                    peer_addr: peer_addr.unwrap_or_default(),
                    local_addr: local_addr.unwrap_or_default(),
                    idle_timeout,
                    activity,
                }
            }
            Incoming::Datagram(ReceivedDatagram {
                payload,
                reply,
                local_addr,
            }) => Self {
                peer_addr: reply.peer_addr(),
                io: RequestIo::Datagram(Datagram {
                    payload,
                    read_pos: 0,
                    reply,
                    replied: (0, 0),
                }),
                local_addr,
                idle_timeout: None,
                activity,
            },
        }
    }

    /// The peer's address as the guest sees it.
    pub(crate) fn peer_addr(&self) -> &str {
        &self.peer_addr
    }

    /// The local address as the guest sees it.
    pub(crate) fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// Whether this request is one datagram (UDP or Unix datagram).
    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self.io, RequestIo::Datagram(_))
    }

    /// The transport this request arrived on.
    pub(crate) fn transport(&self) -> Transport {
        match &self.io {
            RequestIo::Tcp(_) => Transport::Tcp,
            RequestIo::Unix(_) => Transport::Unix,
            RequestIo::Datagram(datagram) => match datagram.reply {
                DatagramReply::Udp { .. } => Transport::Udp,
                DatagramReply::Unix { .. } => Transport::UnixDgram,
            },
        }
    }

    /// Closes the request gracefully once the guest is done with it: for a
    /// stream, the returned future shuts the write side down (the peer sees
    /// end of stream after the last byte written), then drains what the
    /// peer still sends for a short while before the socket closes. The
    /// request's task awaits it after the instance is gone, still holding
    /// the connection's permit: a lingering socket counts against
    /// `--max-connections` (and so the descriptor budget), and a shutdown
    /// cut closes it at once.
    pub(super) fn close(self) -> Option<Lingering> {
        match self.io {
            RequestIo::Tcp(stream) => Some(Box::pin(linger(stream))),
            RequestIo::Unix(stream) => Some(Box::pin(linger(stream))),
            RequestIo::Datagram(_) => None,
        }
    }

    /// Reads up to `max` bytes. The flag says whether the read had to wait
    /// for the client (it found nothing, then the client sent something or
    /// closed): only such a read renews the CPU budget.
    pub(super) async fn read(&mut self, max: u32) -> Result<(Vec<u8>, bool), RequestError> {
        let read = self.read_inner(max).await;
        if matches!(&read, Ok((bytes, _)) if !bytes.is_empty()) {
            self.activity.touch();
        }
        read
    }

    async fn read_inner(&mut self, max: u32) -> Result<(Vec<u8>, bool), RequestError> {
        let max = usize::try_from(max).unwrap_or(MAX_READ).clamp(1, MAX_READ);
        let idle_timeout = self.idle_timeout;
        match &mut self.io {
            RequestIo::Tcp(stream) => read_stream(&*stream, max, idle_timeout).await,
            RequestIo::Unix(stream) => read_stream(&*stream, max, idle_timeout).await,
            // A datagram's payload is there already: reading it never waits.
            RequestIo::Datagram(datagram) => {
                let rest = &datagram.payload[datagram.read_pos..];
                let chunk = rest[..rest.len().min(max)].to_vec();
                datagram.read_pos += chunk.len();
                Ok((chunk, false))
            }
        }
    }

    /// Writes all of `bytes`: to a stream, or as one datagram back to the
    /// sender, within the reply budget (see [`Datagram::may_reply`]).
    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<(), WriteFailure> {
        self.activity.touch();
        let written = match &mut self.io {
            RequestIo::Tcp(stream) => stream.write_all(bytes).await,
            RequestIo::Unix(stream) => stream.write_all(bytes).await,
            RequestIo::Datagram(datagram) => {
                if !datagram.may_reply(bytes.len()) {
                    return Err(WriteFailure::ReplyRefused(RequestError::Other(format!(
                        "reply refused: a datagram of {} bytes may be answered with at most {MAX_REPLIES} datagrams and {} bytes",
                        datagram.payload.len(),
                        datagram
                            .payload
                            .len()
                            .saturating_mul(REPLY_FACTOR)
                            .max(REPLY_FLOOR)
                    ))));
                }
                datagram.replied.0 += 1;
                datagram.replied.1 += bytes.len();
                datagram.reply.send(bytes).await
            }
        };
        written.map_err(|err| WriteFailure::Io(request_error(err)))
    }

    pub(super) async fn shutdown_write(&mut self) -> Result<(), RequestError> {
        let shut = match &mut self.io {
            RequestIo::Tcp(stream) => stream.shutdown().await,
            RequestIo::Unix(stream) => stream.shutdown().await,
            RequestIo::Datagram(_) => Ok(()),
        };
        shut.map_err(request_error)
    }
}

/// A connected stream socket that can wait for input without a buffer.
trait ReadinessStream {
    /// Waits until a read would not block (input, end of stream or error).
    async fn readable(&self) -> io::Result<()>;
    /// Reads what is there into `buf` without waiting.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
}

impl ReadinessStream for TcpStream {
    async fn readable(&self) -> io::Result<()> {
        TcpStream::readable(self).await
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::try_read(self, buf)
    }
}

impl ReadinessStream for UnixStream {
    async fn readable(&self) -> io::Result<()> {
        UnixStream::readable(self).await
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        UnixStream::try_read(self, buf)
    }
}

/// Reads up to `max` bytes, failing with `timed-out` after `idle_timeout`;
/// the flag says whether the read had to wait for the client.
///
/// What is there already (input, or an end of stream seen before) is
/// returned at once. Otherwise it waits for the socket to become readable
/// *before* taking a buffer, so a connection whose guest waits for a silent
/// client holds no read buffer (what an idle connection costs is the
/// instance alone).
async fn read_stream<S: ReadinessStream>(
    stream: &S,
    max: usize,
    idle_timeout: Option<Duration>,
) -> Result<(Vec<u8>, bool), RequestError> {
    match read_scratch(stream, max) {
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
        read => return read.map(|bytes| (bytes, false)).map_err(request_error),
    }
    let read = async {
        loop {
            stream.readable().await?;
            match read_scratch(stream, max) {
                // A spurious wake-up: the readiness was stale.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                read => return read,
            }
        }
    };
    let read = match idle_timeout {
        Some(limit) => match tokio::time::timeout(limit, read).await {
            Ok(read) => read,
            Err(_) => return Err(RequestError::TimedOut),
        },
        None => read.await,
    };
    read.map(|bytes| (bytes, true)).map_err(request_error)
}

thread_local! {
    /// Each worker thread's read buffer: a read lands here, then only the
    /// bytes received are copied out, so no request allocates (or holds)
    /// a [`MAX_READ`] buffer of its own.
    static READ_SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; MAX_READ]);
}

/// Reads what is there, up to `max` bytes, without waiting.
fn read_scratch<S: ReadinessStream>(stream: &S, max: usize) -> io::Result<Vec<u8>> {
    READ_SCRATCH.with_borrow_mut(|scratch| {
        let len = max.min(scratch.len());
        let read = stream.try_read(&mut scratch[..len])?;
        Ok(scratch[..read].to_vec())
    })
}

/// Shuts down the write side, then discards input until the peer closes, the
/// timeout passes, or [`LINGER_MAX_BYTES`] were read (like Apache's lingering
/// close). Closing with unread input would send a reset instead of a FIN.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut discarded = 0;
        let mut buf = [0u8; 4096];
        while discarded < LINGER_MAX_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIMEOUT, drain).await;
}

/// Maps an I/O error to the variant the guest can match on.
fn request_error(err: io::Error) -> RequestError {
    match err.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::WriteZero => RequestError::Closed,
        io::ErrorKind::TimedOut => RequestError::TimedOut,
        _ => RequestError::Other(err.to_string()),
    }
}
