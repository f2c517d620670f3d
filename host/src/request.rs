//! The host side of the `request` resource: one accepted connection, lent to
//! the guest for the duration of `handle`.
//!
//! The guest sees the methods of `wasmserve:handler/types.request`; each one
//! lands here as an async host function, so a guest waiting in `read`
//! suspends its fiber and occupies no thread.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmtime::component::Resource;

use crate::bindings::{HostRequest, RequestError, Transport, TypesHost};
use crate::state::InstanceState;

/// The most bytes one `read` call returns, whatever the guest asks for; it
/// bounds the host memory one read can allocate on the guest's behalf.
pub const MAX_READ: usize = 64 * 1024;

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
        let mut request = self.table.delete(this)?;
        // Send FIN after everything written so far; errors only mean the
        // peer is gone already.
        let _ = request.shutdown_write().await;
        Ok(())
    }
}
