//! Listening sockets of every transport: binding them (before serving
//! starts, so every bad address shows at start) and taking the next
//! connection or datagram off them. The accept loops, with admission and
//! backoff, are the server's (`server::accept`).

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{UdpSocket, UnixDatagram};

use super::addr::{ListenSpec, Transport};
use super::datagram::{DatagramReply, Incoming, ReceivedDatagram, unix_path};
use super::unix_file::{SocketFile, bind_unix};
use crate::error::ListenError;

/// Socket settings shared by every listener of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenOptions {
    /// Pending connections the kernel queues for a stream listener while
    /// all connection permits are taken.
    pub(crate) backlog: i32,
    /// Whether accepted TCP connections set `TCP_NODELAY` (send small writes
    /// at once instead of waiting to coalesce them).
    pub(crate) tcp_nodelay: bool,
    /// Whether TCP and UDP sockets set `SO_REUSEADDR` (a restarted server
    /// need not wait out TIME_WAIT).
    pub(crate) reuse_addr: bool,
    /// `SO_RCVBUF` for listening sockets, in bytes; `None` keeps the OS
    /// default.
    pub(crate) recv_buffer: Option<usize>,
    /// The largest datagram served; a longer one is dropped and logged.
    pub(crate) max_datagram: usize,
    /// Permissions for Unix socket files (e.g. `0o660`); `None` keeps what
    /// the umask gives.
    pub(crate) unix_mode: Option<u32>,
    /// The owner (uid) to give Unix socket files; `None` keeps ours.
    pub(crate) unix_owner: Option<u32>,
    /// The group (gid) to give Unix socket files; `None` keeps ours.
    pub(crate) unix_group: Option<u32>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            backlog: 1024,
            tcp_nodelay: true,
            reuse_addr: true,
            recv_buffer: None,
            max_datagram: MAX_UDP_PAYLOAD,
            unix_mode: None,
            unix_owner: None,
            unix_group: None,
        }
    }
}

/// The largest payload of a UDP datagram over IPv4 (65,535 minus the IP and
/// UDP headers).
pub(crate) const MAX_UDP_PAYLOAD: usize = 65_507;

/// A bound listening socket of any transport.
#[derive(Debug)]
pub(crate) struct Listener {
    /// The socket.
    socket: ListenerSocket,
    /// The bound address, for the `listening` line and for `local-addr`.
    local_addr: String,
    /// The inherited descriptor this listener was adopted from, if any.
    inherited_fd: Option<i32>,
    /// The socket file this process created, removed when the listener
    /// is dropped (Unix transports only).
    #[expect(dead_code, reason = "held only for its Drop, which removes the file")]
    socket_file: Option<SocketFile>,
}

/// The socket of a [`Listener`], per transport.
#[derive(Debug)]
enum ListenerSocket {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
    Udp(Arc<UdpSocket>),
    UnixDgram(Arc<UnixDatagram>),
    /// One connection handed over already connected: served once.
    Connection {
        transport: Transport,
        taken: std::sync::Mutex<Option<Incoming>>,
    },
}

impl Listener {
    /// Binds what `spec` names, with `options`: one listener per address a
    /// host name resolves to (`localhost` may be both 127.0.0.1 and ::1),
    /// one for anything else.
    pub(crate) async fn bind(
        spec: &ListenSpec,
        options: &ListenOptions,
    ) -> Result<Vec<Self>, ListenError> {
        match spec {
            ListenSpec::Tcp(addr) | ListenSpec::Udp(addr) => {
                let transport = spec.transport().unwrap_or(Transport::Tcp);
                let mut listeners = Vec::new();
                for resolved in addr.resolve().await? {
                    listeners.push(bind_inet(transport, resolved, options)?);
                }
                Ok(listeners)
            }
            ListenSpec::Unix(path) => Ok(vec![bind_unix(path, Transport::Unix, options)?]),
            ListenSpec::UnixDgram(path) => {
                Ok(vec![bind_unix(path, Transport::UnixDgram, options)?])
            }
            ListenSpec::Fd(fd) => Ok(vec![super::inherited::adopt_fd(*fd, options)?]),
        }
    }

    /// Wraps a bound socket (already listening, for streams) in a tokio
    /// listener of the transport the socket itself reports.
    pub(crate) fn adopt(
        socket: Socket,
        inherited_fd: Option<i32>,
        socket_file: Option<SocketFile>,
    ) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let is_stream = socket.r#type()? == Type::STREAM;
        let local = socket.local_addr()?;
        let (socket, local_addr) = match (local.as_socket(), is_stream) {
            (Some(addr), true) => (
                ListenerSocket::Tcp(tokio::net::TcpListener::from_std(socket.into())?),
                addr.to_string(),
            ),
            (Some(addr), false) => (
                ListenerSocket::Udp(Arc::new(UdpSocket::from_std(socket.into())?)),
                addr.to_string(),
            ),
            (None, true) => {
                let listener = tokio::net::UnixListener::from_std(socket.into())?;
                let path = unix_path(&listener.local_addr()?).unwrap_or_default();
                (ListenerSocket::Unix(listener), path)
            }
            (None, false) => {
                let datagram = UnixDatagram::from_std(socket.into())?;
                let path = unix_path(&datagram.local_addr()?).unwrap_or_default();
                (ListenerSocket::UnixDgram(Arc::new(datagram)), path)
            }
        };
        Ok(Self {
            socket,
            local_addr,
            inherited_fd,
            socket_file,
        })
    }

    /// Wraps an inherited *connected* stream socket: a listener that
    /// yields that one connection, then nothing.
    pub(crate) fn connection(socket: Socket, fd: i32) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let (transport, incoming, local_addr) = match socket.local_addr()?.as_socket() {
            Some(addr) => {
                let stream = tokio::net::TcpStream::from_std(socket.into())?;
                let peer = stream.peer_addr()?;
                (
                    Transport::Tcp,
                    Incoming::Tcp(stream, peer),
                    addr.to_string(),
                )
            }
            None => {
                let stream = tokio::net::UnixStream::from_std(socket.into())?;
                let path = unix_path(&stream.local_addr()?).unwrap_or_default();
                (Transport::Unix, Incoming::Unix(stream), path)
            }
        };
        Ok(Self {
            socket: ListenerSocket::Connection {
                transport,
                taken: std::sync::Mutex::new(Some(incoming)),
            },
            local_addr,
            inherited_fd: Some(fd),
            socket_file: None,
        })
    }

    /// The transport this listener serves.
    pub(crate) fn transport(&self) -> Transport {
        match &self.socket {
            ListenerSocket::Tcp(_) => Transport::Tcp,
            ListenerSocket::Udp(_) => Transport::Udp,
            ListenerSocket::Unix(_) => Transport::Unix,
            ListenerSocket::UnixDgram(_) => Transport::UnixDgram,
            ListenerSocket::Connection { transport, .. } => *transport,
        }
    }

    /// The `listening` line printed once the listener is bound.
    pub(crate) fn listening_line(&self, handler: &str) -> String {
        match self.inherited_fd {
            Some(fd) => format!("listening {self} handler={handler} fd={fd}"),
            None => format!("listening {self} handler={handler}"),
        }
    }

    /// Waits for the next connection or datagram. `Ok(None)` is a datagram
    /// that was dropped (longer than [`ListenOptions::max_datagram`]).
    pub(crate) async fn next_incoming(
        &self,
        options: &ListenOptions,
        datagram_buf: &mut Vec<u8>,
    ) -> std::io::Result<Option<Incoming>> {
        match &self.socket {
            ListenerSocket::Tcp(listener) => {
                // TCP_NODELAY and keepalive come from the listener (see
                // `tune_tcp_listener`): no system call per connection.
                let (stream, peer) = listener.accept().await?;
                Ok(Some(Incoming::Tcp(stream, peer)))
            }
            ListenerSocket::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok(Some(Incoming::Unix(stream)))
            }
            ListenerSocket::Connection { taken, .. } => {
                let once = taken.lock().ok().and_then(|mut taken| taken.take());
                match once {
                    Some(incoming) => Ok(Some(incoming)),
                    None => std::future::pending().await,
                }
            }
            ListenerSocket::Udp(socket) => {
                // One byte more than served, to notice a datagram too long.
                datagram_buf.resize(options.max_datagram + 1, 0);
                let (len, peer) = socket.recv_from(datagram_buf).await?;
                let reply = DatagramReply::Udp {
                    socket: Arc::clone(socket),
                    peer,
                };
                Ok(self.datagram(&datagram_buf[..len], options, reply))
            }
            ListenerSocket::UnixDgram(socket) => {
                datagram_buf.resize(options.max_datagram + 1, 0);
                let (len, peer) = socket.recv_from(datagram_buf).await?;
                let reply = DatagramReply::Unix {
                    socket: Arc::clone(socket),
                    peer: peer.as_pathname().map(Path::to_owned),
                };
                Ok(self.datagram(&datagram_buf[..len], options, reply))
            }
        }
    }

    fn datagram(
        &self,
        payload: &[u8],
        options: &ListenOptions,
        reply: DatagramReply,
    ) -> Option<Incoming> {
        if payload.len() > options.max_datagram {
            tracing::warn!(
                listener = %self,
                max_datagram = options.max_datagram,
                "datagram dropped: longer than --max-datagram"
            );
            return None;
        }
        Some(Incoming::Datagram(ReceivedDatagram {
            payload: payload.to_vec(),
            reply,
            local_addr: self.local_addr.clone(),
        }))
    }
}

/// `tcp 127.0.0.1:8100`, `unix /run/echo.sock`: the transport and address.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.transport(), self.local_addr)
    }
}

/// Binds a TCP (listening) or UDP socket to `addr` with `options`.
fn bind_inet(
    transport: Transport,
    addr: SocketAddr,
    options: &ListenOptions,
) -> Result<Listener, ListenError> {
    let bound = (|| {
        let socket = inet_socket(addr, transport, options)?;
        if transport == Transport::Tcp {
            socket.listen(options.backlog)?;
        }
        Listener::adopt(socket, None, None)
    })();
    bound.map_err(|source| bind_error(transport.as_str(), &addr.to_string(), source))
}

/// A TCP or UDP socket bound to `addr` with `options` applied.
fn inet_socket(
    addr: SocketAddr,
    transport: Transport,
    options: &ListenOptions,
) -> std::io::Result<Socket> {
    let (kind, protocol) = match transport {
        Transport::Tcp => (Type::STREAM, Protocol::TCP),
        _ => (Type::DGRAM, Protocol::UDP),
    };
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    socket.set_reuse_address(options.reuse_addr)?;
    if transport == Transport::Tcp {
        tune_tcp_listener(&socket, options)?;
    }
    if addr.is_ipv6() {
        // `[::]:8100` means IPv6 only; bind `0.0.0.0:8100` too for IPv4.
        socket.set_only_v6(true)?;
    }
    if let Some(size) = options.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// TCP keepalive on every connection: probes after this much silence in
/// both directions...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// ...this far apart...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// ...and this many unanswered end the connection (its waits fail, and
/// the request ends `--hangup-grace` later).
const KEEPALIVE_PROBES: u32 = 3;

/// Sets on a TCP listener what its connections inherit from it (Linux
/// copies these options to each accepted socket): `TCP_NODELAY` when
/// `options` ask for it, and keepalive probes, which find a client whose
/// machine went away and one that closed fully (its kernel answers the
/// probes until it forgets the connection, a minute on Linux, then resets
/// it) — so a request whose client is gone ends even while its handler
/// waits on something else.
pub(crate) fn tune_tcp_listener(socket: &Socket, options: &ListenOptions) -> std::io::Result<()> {
    if options.tcp_nodelay {
        socket.set_tcp_nodelay(true)?;
    }
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_PROBES),
    )
}

/// The error for a socket that could not be bound: "address in use" gets a
/// message of its own, with the fix.
pub(crate) fn bind_error(
    transport: &'static str,
    addr: &str,
    source: std::io::Error,
) -> ListenError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        ListenError::AddressInUse {
            transport,
            addr: addr.to_owned(),
        }
    } else {
        ListenError::Bind {
            transport,
            addr: addr.to_owned(),
            cause: source,
        }
    }
}
