//! Listening sockets and their accept loops.
//!
//! A permit from the connection semaphore is taken *before* `accept`, so at
//! the connection limit the listener stops accepting (the kernel's backlog
//! holds new clients) instead of accepting and dropping.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::cli::ListenAddr;
use crate::error::ListenError;
use crate::request::Request;
use crate::server::Server;

/// Pending connections the kernel queues while all permits are taken.
pub const DEFAULT_BACKLOG: i32 = 1024;

/// A bound TCP listening socket.
#[derive(Debug)]
pub struct TcpListener {
    /// The socket, registered with the tokio reactor.
    listener: tokio::net::TcpListener,
    /// The address it is bound to (with the real port when 0 was asked).
    local_addr: SocketAddr,
}

impl TcpListener {
    /// Resolves `addr` and binds the first address it names, with
    /// `SO_REUSEADDR` (a restarted server need not wait out TIME_WAIT).
    pub async fn bind(addr: &ListenAddr) -> Result<Self, ListenError> {
        let resolved = addr.resolve().await?;
        let socket =
            bind_tcp_socket(resolved).map_err(|source| bind_error("tcp", resolved, source))?;
        let listener = tokio::net::TcpListener::from_std(socket.into())
            .map_err(|source| bind_error("tcp", resolved, source))?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| bind_error("tcp", resolved, source))?;
        Ok(Self {
            listener,
            local_addr,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accepts connections until shutdown, serving each in its own task.
    pub(crate) async fn run(self, server: Arc<Server>) {
        let mut backoff = Backoff::default();
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&server.permits).acquire_owned() => permit,
                _ = server.shutdown.accepting_stopped() => return,
            };
            let Ok(permit) = permit else { return };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = server.shutdown.accepting_stopped() => return,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => {
                    backoff.reset();
                    stream
                }
                Err(err) => {
                    // Out of file descriptors, a connection reset before
                    // accept, ...: keep the listener alive and try again.
                    let wait = backoff.next();
                    tracing::error!(cause = %err, retry_in = ?wait, listener = %self.local_addr, "accept failed");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(cause = %err, "cannot set TCP_NODELAY");
            }
            let request = Request::tcp(stream);
            let id = server.next_connection_id();
            let span = tracing::info_span!(
                "conn",
                id,
                peer = %request.peer_addr(),
                transport = "tcp",
                handler = server.handler.name()
            );
            let server_for_task = Arc::clone(&server);
            server.tasks.spawn(
                async move {
                    server_for_task.serve_request(request).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
    }
}

fn bind_tcp_socket(addr: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `[::]:8100` means IPv6 only; bind `0.0.0.0:8100` too for IPv4.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(DEFAULT_BACKLOG)?;
    Ok(socket)
}

fn bind_error(transport: &'static str, addr: SocketAddr, source: std::io::Error) -> ListenError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        ListenError::AddressInUse {
            transport,
            addr: addr.to_string(),
        }
    } else {
        ListenError::Bind {
            transport,
            addr: addr.to_string(),
            source,
        }
    }
}

/// Any bound listener; one variant per transport.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
}

impl Listener {
    /// Binds the listener `addr` names for TCP.
    pub async fn bind_tcp(addr: &ListenAddr) -> Result<Self, ListenError> {
        TcpListener::bind(addr).await.map(Listener::Tcp)
    }

    pub(crate) async fn run(self, server: Arc<Server>) {
        match self {
            Listener::Tcp(listener) => listener.run(server).await,
        }
    }
}

/// `tcp 127.0.0.1:8100`: the transport and the bound address.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp(listener) => write!(f, "tcp {}", listener.local_addr),
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

/// The semaphore all listeners of a server share.
pub(crate) fn connection_permits(max_connections: u32) -> Arc<Semaphore> {
    let permits = usize::try_from(max_connections)
        .unwrap_or(usize::MAX)
        .max(1);
    Arc::new(Semaphore::new(permits.min(Semaphore::MAX_PERMITS)))
}
