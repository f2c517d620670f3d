//! The host side of the `request` resource: one accepted connection, lent to
//! the guest for the duration of `handle`.
//!
//! The guest sees the methods of `wasmserve:handler/types.request`; each one
//! lands here as an async host function, so a guest waiting in `read`
//! suspends its fiber and occupies no thread.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmtime::component::Resource;

use crate::bindings::{HostRequest, RequestError, Transport, TypesHost};
use crate::state::InstanceState;

/// The most bytes one `read` call returns, whatever the guest asks for; it
/// bounds the host memory one read can allocate on the guest's behalf.
pub const MAX_READ: usize = 64 * 1024;

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
}

/// The socket behind a [`Request`], per transport.
#[derive(Debug)]
enum RequestIo {
    /// An accepted TCP connection.
    Tcp(TcpStream),
}

impl Request {
    /// Wraps an accepted TCP connection.
    pub fn tcp(stream: TcpStream) -> Self {
        let peer_addr = stream
            .peer_addr()
            .map(|addr| addr.to_string())
            .unwrap_or_default();
        let local_addr = stream
            .local_addr()
            .map(|addr| addr.to_string())
            .unwrap_or_default();
        Self {
            io: RequestIo::Tcp(stream),
            peer_addr,
            local_addr,
        }
    }

    /// The peer's address as the guest sees it.
    pub fn peer_addr(&self) -> &str {
        &self.peer_addr
    }

    /// The transport this request arrived on.
    pub fn transport(&self) -> Transport {
        match self.io {
            RequestIo::Tcp(_) => Transport::Tcp,
        }
    }

    /// Closes the request gracefully once the guest is done with it: the
    /// write side is shut down at once (the peer sees end of stream after the
    /// last byte written), then a background task drains what the peer still
    /// sends for a short while before the socket is closed.
    fn close(self) {
        match self.io {
            RequestIo::Tcp(stream) => {
                tokio::spawn(linger(stream));
            }
        }
    }

    async fn read(&mut self, max: u32) -> Result<Vec<u8>, RequestError> {
        let max = usize::try_from(max).unwrap_or(MAX_READ).clamp(1, MAX_READ);
        let mut buf = Vec::with_capacity(max);
        let read = match &mut self.io {
            RequestIo::Tcp(stream) => stream.read_buf(&mut buf).await,
        };
        read.map(|_| buf).map_err(request_error)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), RequestError> {
        let written = match &mut self.io {
            RequestIo::Tcp(stream) => stream.write_all(bytes).await,
        };
        written.map_err(request_error)
    }

    async fn shutdown_write(&mut self) -> Result<(), RequestError> {
        let shut = match &mut self.io {
            RequestIo::Tcp(stream) => stream.shutdown().await,
        };
        shut.map_err(request_error)
    }
}

/// Shuts down the write side, then discards input until the peer closes, the
/// timeout passes, or [`LINGER_MAX_BYTES`] were read (like Apache's lingering
/// close). Closing with unread input would send a reset instead of a FIN.
async fn linger<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
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

impl TypesHost for InstanceState {}

impl HostRequest for InstanceState {
    async fn read(
        &mut self,
        this: Resource<Request>,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, RequestError>> {
        Ok(self.table.get_mut(&this)?.read(max).await)
    }

    async fn write(
        &mut self,
        this: Resource<Request>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), RequestError>> {
        Ok(self.table.get_mut(&this)?.write(&bytes).await)
    }

    async fn shutdown_write(
        &mut self,
        this: Resource<Request>,
    ) -> wasmtime::Result<Result<(), RequestError>> {
        Ok(self.table.get_mut(&this)?.shutdown_write().await)
    }

    async fn peer_addr(&mut self, this: Resource<Request>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.peer_addr.clone())
    }

    async fn local_addr(&mut self, this: Resource<Request>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.local_addr.clone())
    }

    async fn transport(&mut self, this: Resource<Request>) -> wasmtime::Result<Transport> {
        Ok(self.table.get(&this)?.transport())
    }

    async fn drop(&mut self, this: Resource<Request>) -> wasmtime::Result<()> {
        self.table.delete(this)?.close();
        Ok(())
    }
}
