//! What a listener hands the server: an accepted connection, or one received
//! datagram with the way back to its sender.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::{TcpStream, UdpSocket, UnixDatagram, UnixStream};

/// One request as it arrives on a listener, before any handler sees it.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// An accepted TCP connection, and its peer as `accept` returned it
    /// (asked of the socket again, it would cost a system call).
    Tcp(TcpStream, SocketAddr),
    /// An accepted Unix-domain stream connection.
    Unix(UnixStream),
    /// One datagram (UDP or Unix).
    Datagram(ReceivedDatagram),
    /// A TCP connection whose TLS the host terminated (boxed: it is the
    /// largest, and the rarest).
    Tls(Box<TlsConnection>),
}

/// A TLS connection after its handshake: the handler is served on `plain`,
/// the plaintext end of the host's relay.
#[derive(Debug)]
pub(crate) struct TlsConnection {
    /// The plaintext end.
    pub(crate) plain: UnixStream,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The listener's address.
    pub(crate) local: SocketAddr,
    /// What the handshake negotiated.
    pub(crate) info: super::TlsInfo,
    /// Cancelled when the client resets the connection (the relay sees it).
    pub(crate) reset: tokio_util::sync::CancellationToken,
}

/// A received datagram: its payload and where replies go.
#[derive(Debug)]
pub(crate) struct ReceivedDatagram {
    /// The payload, exactly as received.
    pub(crate) payload: Vec<u8>,
    /// The socket and sender replies go to.
    pub(crate) reply: DatagramReply,
    /// The listening socket's address, as the guest sees it.
    pub(crate) local_addr: String,
}

/// Where the replies to a datagram go: back to its sender, from the socket
/// it arrived on.
#[derive(Debug, Clone)]
pub(crate) enum DatagramReply {
    /// A UDP datagram from `peer`.
    Udp {
        /// The listening socket, shared by every datagram it received.
        socket: Arc<UdpSocket>,
        /// The sender.
        peer: SocketAddr,
    },
    /// A Unix datagram; `peer` is `None` when the sender is not bound to a
    /// path, and then replies are discarded.
    Unix {
        /// The listening socket, shared by every datagram it received.
        socket: Arc<UnixDatagram>,
        /// The sender's bound path, if any.
        peer: Option<PathBuf>,
    },
}

impl DatagramReply {
    /// The sender's IP address and port (`None` for a Unix sender).
    pub(crate) fn peer_socket_addr(&self) -> Option<SocketAddr> {
        match self {
            DatagramReply::Udp { peer, .. } => Some(*peer),
            DatagramReply::Unix { .. } => None,
        }
    }

    /// The sender's address as the guest sees it (`""` for an unbound Unix
    /// sender).
    pub(crate) fn peer_addr(&self) -> String {
        match self {
            DatagramReply::Udp { peer, .. } => super::socket_addr_text(peer),
            DatagramReply::Unix { peer, .. } => peer
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
        }
    }

    /// Sends one datagram back to the sender without waiting; fails with
    /// `WouldBlock` when the socket's send buffer is full (see
    /// [`DatagramReply::writable`]).
    pub(crate) fn try_send(&self, bytes: &[u8]) -> io::Result<()> {
        let sent = match self {
            DatagramReply::Udp { socket, peer } => socket.try_send_to(bytes, *peer)?,
            DatagramReply::Unix { socket, peer } => match peer {
                Some(path) => socket.try_send_to(bytes, path)?,
                None => {
                    tracing::debug!("reply discarded: the sender has no address");
                    bytes.len()
                }
            },
        };
        if sent == bytes.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "datagram truncated: sent {sent} of {} bytes",
                bytes.len()
            )))
        }
    }

    /// Waits until a reply could be sent without blocking.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            DatagramReply::Udp { socket, .. } => socket.writable().await,
            DatagramReply::Unix { socket, .. } => socket.writable().await,
        }
    }
}

/// The path of a Unix socket address, or `None` when it is unnamed.
pub(crate) fn unix_path(addr: &tokio::net::unix::SocketAddr) -> Option<String> {
    addr.as_pathname().map(|path| path.display().to_string())
}
