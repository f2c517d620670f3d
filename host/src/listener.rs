//! Listening sockets, one kind per transport, and their accept loops.
//!
//! Binding happens before serving starts, so every bad address shows at
//! start. In the loops, a permit from the connection semaphore is taken
//! *before* `accept` / `recv_from`, so at the connection limit the listener
//! stops accepting (the kernel's backlog or receive buffer holds new clients)
//! instead of accepting and dropping.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{UdpSocket, UnixDatagram};

use crate::cli::ListenAddr;
use crate::error::ListenError;
use crate::request::{DatagramReply, Request, unix_path};
use crate::server::Server;

/// Socket settings shared by every listener of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenOptions {
    /// Pending connections the kernel queues for a stream listener while
    /// all connection permits are taken.
    pub backlog: i32,
    /// Whether accepted TCP connections set `TCP_NODELAY` (send small writes
    /// at once instead of waiting to coalesce them).
    pub tcp_nodelay: bool,
    /// Whether TCP and UDP sockets set `SO_REUSEADDR` (a restarted server
    /// need not wait out TIME_WAIT).
    pub reuse_addr: bool,
    /// `SO_RCVBUF` for listening sockets, in bytes; `None` keeps the OS
    /// default.
    pub recv_buffer: Option<usize>,
    /// The largest datagram served; a longer one is dropped and logged.
    pub max_datagram: usize,
    /// How long a guest's `read` waits for a silent client before it
    /// fails with `timed-out`; `None` waits forever.
    pub idle_timeout: Option<Duration>,
    /// Permissions for Unix socket files (e.g. `0o660`); `None` keeps what
    /// the umask gives.
    pub unix_mode: Option<u32>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            backlog: 1024,
            tcp_nodelay: true,
            reuse_addr: true,
            recv_buffer: None,
            max_datagram: MAX_UDP_PAYLOAD,
            idle_timeout: None,
            unix_mode: None,
        }
    }
}

/// The largest payload of a UDP datagram over IPv4 (65,535 minus the IP and
/// UDP headers).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// What to listen on, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenSpec {
    /// `--tcp [HOST:]PORT`
    Tcp(ListenAddr),
    /// `--udp [HOST:]PORT`
    Udp(ListenAddr),
    /// `--unix PATH`
    Unix(PathBuf),
    /// `--unix-dgram PATH`
    UnixDatagram(PathBuf),
    /// `--listen-fd N`, or a socket passed by systemd socket activation.
    Fd(i32),
}

/// A bound listening socket of any transport.
#[derive(Debug)]
pub struct Listener {
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
    UnixDatagram(Arc<UnixDatagram>),
}

impl Listener {
    /// Binds what `spec` names, with `options`.
    pub async fn bind(spec: &ListenSpec, options: &ListenOptions) -> Result<Self, ListenError> {
        match spec {
            ListenSpec::Tcp(addr) => {
                let resolved = addr.resolve().await?;
                let socket = inet_socket(resolved, Type::STREAM, options)
                    .and_then(|socket| {
                        socket.listen(options.backlog)?;
                        Ok(socket)
                    })
                    .map_err(|source| bind_error("tcp", &resolved.to_string(), source))?;
                Self::adopt(socket, None, None)
                    .map_err(|source| bind_error("tcp", &resolved.to_string(), source))
            }
            ListenSpec::Udp(addr) => {
                let resolved = addr.resolve().await?;
                let socket = inet_socket(resolved, Type::DGRAM, options)
                    .map_err(|source| bind_error("udp", &resolved.to_string(), source))?;
                Self::adopt(socket, None, None)
                    .map_err(|source| bind_error("udp", &resolved.to_string(), source))
            }
            ListenSpec::Unix(path) => bind_unix(path, Type::STREAM, options),
            ListenSpec::UnixDatagram(path) => bind_unix(path, Type::DGRAM, options),
            ListenSpec::Fd(fd) => crate::inherited::adopt_fd(*fd, options),
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
                (ListenerSocket::UnixDatagram(Arc::new(datagram)), path)
            }
        };
        Ok(Self {
            socket,
            local_addr,
            inherited_fd,
            socket_file,
        })
    }

    /// The transport's name in the `listening` line: `tcp`, `udp`, `unix`
    /// or `unix-dgram` (as the flags are named).
    pub fn transport(&self) -> &'static str {
        match self.socket {
            ListenerSocket::Tcp(_) => "tcp",
            ListenerSocket::Udp(_) => "udp",
            ListenerSocket::Unix(_) => "unix",
            ListenerSocket::UnixDatagram(_) => "unix-dgram",
        }
    }

    /// The bound address: `127.0.0.1:8100`, `[::1]:8100` or a socket path.
    pub fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// Accepts connections or receives datagrams until shutdown, serving
    /// each in its own task.
    /// Accepts connections or receives datagrams, serving each in its own
    /// task, until the server stops accepting; then hands the (still bound)
    /// listener back, so a reconfigured service can keep it.
    pub(crate) async fn run(self, server: Arc<Server>) -> Self {
        let options = server.listen_options.clone();
        let mut backoff = Backoff::default();
        let mut datagram_buf = Vec::new();
        loop {
            let Some(admission) = server.admit().await else {
                return self;
            };
            let received = tokio::select! {
                received = self.next_request(&options, &mut datagram_buf) => Some(received),
                _ = server.shutdown.accepting_stopped() => None,
            };
            let Some(received) = received else {
                return self;
            };
            match received {
                Ok(Some(request)) => {
                    backoff.reset();
                    server.spawn_request(request, admission);
                }
                // A datagram that was dropped (too large): nothing to serve.
                Ok(None) => {}
                Err(err) => {
                    // Out of file descriptors, a connection reset before
                    // accept, ...: keep the listener and try again.
                    let wait = backoff.next();
                    tracing::error!(
                        cause = %err,
                        retry_in = ?wait,
                        listener = %self,
                        "accept failed"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Waits for the next connection or datagram.
    async fn next_request(
        &self,
        options: &ListenOptions,
        datagram_buf: &mut Vec<u8>,
    ) -> std::io::Result<Option<Request>> {
        match &self.socket {
            ListenerSocket::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                if options.tcp_nodelay
                    && let Err(err) = stream.set_nodelay(true)
                {
                    tracing::debug!(cause = %err, "cannot set TCP_NODELAY");
                }
                Ok(Some(Request::tcp(stream, options.idle_timeout)))
            }
            ListenerSocket::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok(Some(Request::unix(stream, options.idle_timeout)))
            }
            ListenerSocket::Udp(socket) => {
                // One byte more than served, to notice a datagram too long.
                datagram_buf.resize(options.max_datagram + 1, 0);
                let (len, peer) = socket.recv_from(datagram_buf).await?;
                let reply = DatagramReply::Udp {
                    socket: Arc::clone(socket),
                    peer,
                };
                Ok(self.datagram(datagram_buf, len, options, reply))
            }
            ListenerSocket::UnixDatagram(socket) => {
                datagram_buf.resize(options.max_datagram + 1, 0);
                let (len, peer) = socket.recv_from(datagram_buf).await?;
                let reply = DatagramReply::Unix {
                    socket: Arc::clone(socket),
                    peer: peer.as_pathname().map(Path::to_owned),
                };
                Ok(self.datagram(datagram_buf, len, options, reply))
            }
        }
    }

    fn datagram(
        &self,
        buf: &[u8],
        len: usize,
        options: &ListenOptions,
        reply: DatagramReply,
    ) -> Option<Request> {
        if len > options.max_datagram {
            tracing::warn!(
                listener = %self,
                max_datagram = options.max_datagram,
                "datagram dropped: longer than --max-datagram"
            );
            return None;
        }
        Some(Request::datagram(
            buf[..len].to_vec(),
            reply,
            self.local_addr.clone(),
        ))
    }
}

/// `tcp 127.0.0.1:8100`, `unix /run/echo.sock`: the transport and address.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.transport(), self.local_addr)
    }
}

impl Listener {
    /// The `listening` line printed once the listener is bound.
    pub fn listening_line(&self, handler: &str) -> String {
        match self.inherited_fd {
            Some(fd) => format!("listening {self} handler={handler} fd={fd}"),
            None => format!("listening {self} handler={handler}"),
        }
    }
}

/// A TCP or UDP socket bound to `addr` with `options` applied.
fn inet_socket(addr: SocketAddr, kind: Type, options: &ListenOptions) -> std::io::Result<Socket> {
    let protocol = if kind == Type::STREAM {
        Protocol::TCP
    } else {
        Protocol::UDP
    };
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    socket.set_reuse_address(options.reuse_addr)?;
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

/// Binds a Unix socket at `path`. A stale socket file (nobody listens on
/// it) is replaced; a live socket, or any other kind of file, is refused.
fn bind_unix(path: &Path, kind: Type, options: &ListenOptions) -> Result<Listener, ListenError> {
    let transport = if kind == Type::STREAM {
        "unix"
    } else {
        "unix-dgram"
    };
    let shown = path.display().to_string();
    remove_stale_socket(path, transport)?;
    let bound = (|| {
        let socket = Socket::new(Domain::UNIX, kind, None)?;
        if let Some(size) = options.recv_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        socket.bind(&SockAddr::unix(path)?)?;
        // From here on the file is ours: remove it if anything below fails.
        let socket_file = SocketFile::created_at(path)?;
        if let Some(mode) = options.unix_mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        if kind == Type::STREAM {
            socket.listen(options.backlog)?;
        }
        Listener::adopt(socket, None, Some(socket_file))
    })();
    bound.map_err(|source| bind_error(transport, &shown, source))
}

/// Removes `path` if it is a socket file nobody listens on.
fn remove_stale_socket(path: &Path, transport: &'static str) -> Result<(), ListenError> {
    let shown = path.display().to_string();
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(bind_error(transport, &shown, source)),
    };
    if !metadata.file_type().is_socket() {
        return Err(ListenError::NotASocket { path: shown });
    }
    // A connect that is refused means no process has the socket open.
    let probe = std::os::unix::net::UnixStream::connect(path)
        .map(drop)
        .or_else(|err| match err.raw_os_error() {
            // A datagram socket answers a stream connect with EPROTOTYPE.
            Some(code) if code == PROTOCOL_WRONG_TYPE => {
                std::os::unix::net::UnixDatagram::unbound()?.connect(path)
            }
            _ => Err(err),
        });
    match probe {
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %shown, "replacing stale socket file");
            std::fs::remove_file(path).map_err(|source| bind_error(transport, &shown, source))
        }
        _ => Err(ListenError::SocketInUse { path: shown }),
    }
}

/// `EPROTOTYPE` on Linux: a stream connect to a datagram socket.
const PROTOCOL_WRONG_TYPE: i32 = 91;

/// A socket file this process created; removed on drop if it is still the
/// same file (another server may have replaced it since).
#[derive(Debug)]
pub(crate) struct SocketFile {
    /// Where the file is.
    path: PathBuf,
    /// Its device and inode when it was created, to recognise it later.
    identity: (u64, u64),
}

impl SocketFile {
    fn created_at(path: &Path) -> std::io::Result<Self> {
        let metadata = std::fs::symlink_metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            identity: (metadata.dev(), metadata.ino()),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let same_file = std::fs::symlink_metadata(&self.path)
            .map(|metadata| (metadata.dev(), metadata.ino()) == self.identity)
            .unwrap_or(false);
        if same_file && let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), cause = %err, "cannot remove socket file");
        }
    }
}

/// Doubling wait between failed accepts: 5 ms up to 1 s.
#[derive(Debug, Default)]
struct Backoff {
    /// The wait before the next retry, or `None` after a success.
    current: Option<Duration>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn next(&mut self) -> Duration {
        let wait = self
            .current
            .map_or(Self::FIRST, |wait| (wait * 2).min(Self::MAX));
        self.current = Some(wait);
        wait
    }

    fn reset(&mut self) {
        self.current = None;
    }
}
