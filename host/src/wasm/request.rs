//! The host side of the `request` resource: one accepted connection, or one
//! received datagram, lent to the guest for the duration of `handle`.
//!
//! The guest sees the methods of `wasmserve:handler/types.request` (0.1.1
//! or 0.2.0); each lands as an async host function (`request_host.rs`;
//! `write` and `try-write` in `write.rs`). The socket itself is a shared
//! [`Connection`], which the request's pollables and streams use too.

use std::sync::Arc;
use std::time::Duration;

use super::activity::Activity;
use super::connection::Connection;
use super::io_failure::IoFailure;
use super::limits::ReadTimeouts;
use crate::net::{
    DatagramReply, Incoming, ReceivedDatagram, TlsInfo, Transport, socket_addr_text, unix_path,
};

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
    /// The socket, shared with the request's pollables and streams.
    conn: Arc<Connection>,
    /// The peer's address, formatted once for `peer-addr`.
    peer_addr: String,
    /// The local address, formatted once for `local-addr`.
    local_addr: String,
    /// The transport it arrived on.
    transport: Transport,
    /// Whether the guest took the connection as streams already (once).
    streams_taken: bool,
    /// What TLS negotiated, when the host terminated TLS for it.
    tls: Option<TlsInfo>,
}

impl Request {
    /// Wraps what a listener received; the client may stay silent as long
    /// as `timeouts` say before reads fail; `activity` is stamped at every
    /// read and write.
    pub(crate) fn new(incoming: Incoming, timeouts: ReadTimeouts, activity: Arc<Activity>) -> Self {
        let mut tls = None;
        let (conn, peer_addr, local_addr, transport) = match incoming {
            Incoming::Tcp(stream, peer) => {
                let local = stream.local_addr().map(|addr| socket_addr_text(&addr));
                (
                    Connection::tcp(stream, timeouts, activity),
                    socket_addr_text(&peer),
                    local.unwrap_or_default(),
                    Transport::Tcp,
                )
            }
            Incoming::Tls(connection) => {
                tls = Some(connection.info);
                (
                    Connection::unix(connection.plain, timeouts, activity)
                        .reset_by(connection.reset),
                    socket_addr_text(&connection.peer),
                    socket_addr_text(&connection.local),
                    Transport::Tcp,
                )
            }
            // The peer address of a Unix connection is the client's bound
            // path, usually `""` (clients rarely bind).
            Incoming::Unix(stream) => {
                let peer = stream.peer_addr().ok().and_then(|addr| unix_path(&addr));
                let local = stream.local_addr().ok().and_then(|addr| unix_path(&addr));
                (
                    Connection::unix(stream, timeouts, activity),
                    peer.unwrap_or_default(),
                    local.unwrap_or_default(),
                    Transport::Unix,
                )
            }
            Incoming::Datagram(ReceivedDatagram {
                payload,
                reply,
                local_addr,
            }) => {
                let transport = match reply {
                    DatagramReply::Udp { .. } => Transport::Udp,
                    DatagramReply::Unix { .. } => Transport::UnixDgram,
                };
                let peer = reply.peer_addr();
                (
                    Connection::datagram(payload, reply, activity),
                    peer,
                    local_addr,
                    transport,
                )
            }
        };
        Self {
            conn: Arc::new(conn),
            peer_addr,
            local_addr,
            transport,
            streams_taken: false,
            tls,
        }
    }

    /// The shared socket.
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// Makes `peer` the peer's address the guest sees: the client a PROXY
    /// protocol header named, in place of the load balancer.
    pub(crate) fn set_peer_addr(&mut self, peer: std::net::SocketAddr) {
        self.peer_addr = socket_addr_text(&peer);
    }

    /// The peer's address as the guest sees it.
    pub(crate) fn peer_addr(&self) -> &str {
        &self.peer_addr
    }

    /// The same, for a log field (`%` formatting, no copy).
    pub(crate) fn peer_addr_text(&self) -> &String {
        &self.peer_addr
    }

    /// The local address as the guest sees it.
    pub(crate) fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// Whether this request is one datagram (UDP or Unix datagram).
    pub(crate) fn is_datagram(&self) -> bool {
        !self.conn.is_stream()
    }

    /// What TLS negotiated, when the host terminated TLS for it.
    pub(crate) fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The transport this request arrived on.
    pub(crate) fn transport(&self) -> Transport {
        self.transport
    }

    /// Marks the streams taken; fails the second time.
    pub(super) fn take_streams(&mut self) -> Result<Arc<Connection>, IoFailure> {
        if self.streams_taken {
            return Err(IoFailure::Other(
                "the request's streams were taken already: one pair per request".to_owned(),
            ));
        }
        self.streams_taken = true;
        Ok(Arc::clone(&self.conn))
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
        self.conn
            .is_stream()
            .then(|| Box::pin(linger(self.conn)) as Lingering)
    }
}

/// Shuts down the write side, then discards input until the peer closes, the
/// timeout passes, or [`LINGER_MAX_BYTES`] were read (like Apache's lingering
/// close). Closing with unread input would send a reset instead of a FIN.
async fn linger(conn: Arc<Connection>) {
    // What the guest's last writes left held goes out before the end of
    // stream, within the same bound as the drain below.
    match tokio::time::timeout(LINGER_TIMEOUT, conn.flush_for_shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) => return,
    }
    if conn.shutdown_write().is_err() {
        return;
    }
    let drain = async {
        let mut discarded = 0;
        while discarded < LINGER_MAX_BYTES {
            match conn.drain(4096) {
                Ok(Some(0)) | Err(_) => break,
                Ok(Some(n)) => discarded += n,
                Ok(None) => conn.wait_readable().await,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIMEOUT, drain).await;
}
