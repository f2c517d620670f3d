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

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::activity::coarse_millis;
use super::books::Direction;
use super::connection::Connection;
use super::io_failure::IoFailure;
use super::socket_io::{read_draining, with_scratch};
use super::state::UpstreamTally;

/// The most one read moves: HAProxy's default buffer size.
const CHUNK: usize = 16 * 1024;

/// How a relay ended when it did not end cleanly.
#[derive(Debug)]
pub(crate) enum RelayEnd {
    /// Nothing moved either way for the idle timeout.
    Idle(Duration),
    /// A socket failed (a reset, mostly); `upstream` says which side.
    Failed { upstream: bool, error: String },
}

/// One side of the relay.
#[derive(Clone, Copy)]
enum Side<'a> {
    Client(&'a Connection),
    Upstream(&'a TcpStream, &'a dyn UpstreamTally),
}

impl Side<'_> {
    fn is_upstream(self) -> bool {
        matches!(self, Side::Upstream(..))
    }

    /// Reads what is there: `None` when nothing is, 0 at end of stream.
    fn read(self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self {
            Side::Client(conn) => conn.read_now(buf).map_err(failure_to_io),
            Side::Upstream(stream, tally) => match read_draining(stream, buf) {
                Ok(len) => {
                    tally.bytes(Direction::In, len as u64);
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
            Side::Client(conn) => conn.write_now(bytes).map_err(failure_to_io),
            Side::Upstream(stream, tally) => match stream.try_write(bytes) {
                Ok(len) => {
                    tally.bytes(Direction::Out, len as u64);
                    Ok(Some(len))
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(err) => Err(err),
            },
        }
    }

    async fn readable(self) {
        match self {
            Side::Client(conn) => conn.wait_readable().await,
            Side::Upstream(stream, _) => {
                let _ = stream.readable().await;
            }
        }
    }

    async fn writable(self) {
        match self {
            Side::Client(conn) => conn.write_ready().await,
            Side::Upstream(stream, _) => {
                let _ = stream.writable().await;
            }
        }
    }

    /// Passes an end of stream on: the peer reads the end after the last
    /// byte written.
    fn shutdown_write(self) -> io::Result<()> {
        match self {
            Side::Client(conn) => conn.shutdown_write().map_err(failure_to_io),
            Side::Upstream(stream, _) => {
                match socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write) {
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(()),
                    shut => shut,
                }
            }
        }
    }
}

fn failure_to_io(failure: IoFailure) -> io::Error {
    match failure {
        IoFailure::Closed => io::ErrorKind::ConnectionReset.into(),
        IoFailure::TimedOut => io::ErrorKind::TimedOut.into(),
        IoFailure::Other(message) => io::Error::other(message),
    }
}

/// Relays between `client` and `upstream` until both directions have
/// ended, one failed, or nothing moved for `idle`; `first` goes to the
/// upstream before the client's bytes.
pub(crate) async fn relay(
    client: &Connection,
    upstream: &TcpStream,
    tally: &Arc<dyn UpstreamTally>,
    first: Vec<u8>,
    idle: Option<Duration>,
) -> Result<(), RelayEnd> {
    let (client_side, upstream_side) = (Side::Client(client), Side::Upstream(upstream, &**tally));
    let both = async {
        tokio::try_join!(
            pump(client_side, upstream_side, first),
            pump(upstream_side, client_side, Vec::new()),
        )
        .map(drop)
    };
    tokio::select! {
        biased;
        ended = both => ended,
        idle = idle_watch(client, idle) => Err(RelayEnd::Idle(idle)),
    }
}

/// Copies `from` → `to` until `from` ends (passed on as a half-close).
async fn pump(from: Side<'_>, to: Side<'_>, mut pending: Vec<u8>) -> Result<(), RelayEnd> {
    loop {
        // What the destination did not take yet goes first.
        while !pending.is_empty() {
            match to.write(&pending).map_err(failed(to.is_upstream()))? {
                Some(written) => drop(pending.drain(..written.min(pending.len()))),
                None => to.writable().await,
            }
        }
        // A read goes straight on from the thread's scratch buffer; only
        // the part the destination does not take is kept.
        let step = with_scratch(CHUNK, |buf| -> Result<Step, RelayEnd> {
            let len = match from.read(buf).map_err(failed(from.is_upstream()))? {
                None => return Ok(Step::Wait),
                Some(0) => return Ok(Step::End),
                Some(len) => len,
            };
            let read = buf.get(..len).unwrap_or_default();
            let written = to
                .write(read)
                .map_err(failed(to.is_upstream()))?
                .unwrap_or(0);
            pending.extend_from_slice(read.get(written..).unwrap_or_default());
            Ok(Step::Moved)
        })?;
        match step {
            Step::Wait => from.readable().await,
            Step::End => return to.shutdown_write().map_err(failed(to.is_upstream())),
            // A busy connection yields to its neighbours now and then.
            Step::Moved => tokio::task::consume_budget().await,
        }
    }
}

/// The relay's end when a socket failed; `upstream` says which.
fn failed(upstream: bool) -> impl Fn(io::Error) -> RelayEnd {
    move |err| RelayEnd::Failed {
        upstream,
        error: err.to_string(),
    }
}

/// What one read-and-write step did.
enum Step {
    Wait,
    End,
    Moved,
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
