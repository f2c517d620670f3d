//! Async handlers: wait on several things at once.
//!
//! An async handler is an `async fn` that takes an [`aio::Request`](Request)
//! and is exported with [`export_async_handler!`](crate::export_async_handler).
//! Its reads and writes are futures, as are WASI timers ([`Timer`],
//! [`FutureExt::timeout`]), so they can be raced: "a line from the client,
//! or the timer" is one [`or`] of two futures. Underneath, one `wasi:io/poll`
//! call waits for whatever the futures wait on; the time spent there is not
//! CPU time for `--max-cpu`.
//!
//! The executor is the Bytecode Alliance's [`wstd`], re-exported here:
//! maintained beside wasmtime, built on WASI 0.2's own `poll`, and the one
//! whose timers, streams and (later) sockets the request's futures compose
//! with.
//!
//! A greeting with a deadline, the race of a read and a timer:
//!
//! ```no_run
//! use wasmserve_sdk::aio::{Duration, FutureExt, Request};
//!
//! async fn handle(request: Request) -> Result<(), wasmserve_sdk::Error> {
//!     request.sendall(b"name? ").await?;
//!     match request.read_line().timeout(Duration::from_secs(5)).await {
//!         Ok(name) => request.sendall(format!("hello {}\n", name?.trim()).as_bytes()).await,
//!         Err(_) => request.sendall(b"too slow, bye\n").await,
//!     }
//! }
//!
//! wasmserve_sdk::export_async_handler!(handle);
//! # fn main() {}
//! ```

use std::io;

pub use futures_lite::future::{or, race};
pub use wstd::future::FutureExt;
pub use wstd::io::{AsyncInputStream, AsyncOutputStream};
pub use wstd::time::{Duration, Instant, Timer};

use crate::pending::Pending;
use crate::{Error, Transport, wit};

/// One request, served asynchronously: a connection on a stream
/// transport, or a datagram. Its methods take `&self`, so one request is
/// read by one future while another writes to it. Dropping it closes the
/// connection.
///
/// ```no_run
/// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
/// loop {
///     let line = request.read_line().await?;
///     if line.is_empty() {
///         return Ok(()); // the client closed
///     }
///     request.sendall(line.to_uppercase().as_bytes()).await?;
/// }
/// # Ok(()) }
/// ```
pub struct Request {
    /// The connection's input, a WASI stream the executor waits on.
    input: AsyncInputStream,
    /// The connection's output.
    output: AsyncOutputStream,
    /// The host's request handle; dropped last, after the streams.
    inner: wit::Request,
    /// Bytes received but not consumed yet (by [`Request::read_line`]).
    pending: Pending,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("peer_addr", &self.peer_addr())
            .finish_non_exhaustive()
    }
}

impl Request {
    /// The most bytes one [`Request::recv`] returns, whatever is asked.
    pub const MAX_RECV: usize = 64 * 1024;

    /// Takes the host's request as streams.
    pub(crate) fn new(inner: wit::Request) -> Result<Self, Error> {
        let (input, output) = inner.streams()?;
        Ok(Self {
            input: AsyncInputStream::new(input),
            output: AsyncOutputStream::new(output),
            inner,
            pending: Pending::default(),
        })
    }

    /// Receives up to `max` bytes once some arrive, like asyncio's
    /// `reader.read(n)`. An empty vector means end of stream: the client
    /// closed its side, or a datagram's payload was read already.
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let data = request.recv(4096).await?;
    /// if data.is_empty() {
    ///     return Ok(()); // the client is done
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn recv(&self, max: usize) -> Result<Vec<u8>, Error> {
        match self.pending.take(max) {
            Some(bytes) => Ok(bytes),
            None => self.recv_from_host(max).await,
        }
    }

    async fn recv_from_host(&self, max: usize) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0; max.clamp(1, Self::MAX_RECV)];
        let n = self.input.read(&mut buf).await.map_err(Error::from_io)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Receives one line, up to and including its `\n`; at end of stream
    /// what is left, then `""`. Cancel-safe: a line half received when a
    /// race drops this future is kept for the next call.
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let command = request.read_line().await?;
    /// # Ok(()) }
    /// ```
    pub async fn read_line(&self) -> Result<String, Error> {
        loop {
            if let Some(line) = self.pending.line() {
                return Ok(line);
            }
            let more = self.recv_from_host(Self::MAX_RECV).await?;
            if more.is_empty() {
                return Ok(self.pending.rest());
            }
            self.pending.push(&more);
        }
    }

    /// Sends every byte of `bytes` and waits until the host has sent them.
    /// On a datagram transport, each call is one datagram back (at most 64
    /// KiB).
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.sendall(b"hello\n").await?;
    /// # Ok(()) }
    /// ```
    pub async fn sendall(&self, bytes: &[u8]) -> Result<(), Error> {
        self.output.write_all(bytes).await.map_err(Error::from_io)?;
        self.output.flush().await.map_err(Error::from_io)
    }

    /// Receives exactly `n` bytes; fails with [`Error::Closed`] if the
    /// client closes first. As the blocking [`crate::Request::read_exact`].
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let header = request.read_exact(4).await?;
    /// # Ok(()) }
    /// ```
    pub async fn read_exact(&self, n: usize) -> Result<Vec<u8>, Error> {
        let mut data = Vec::with_capacity(n.min(Self::MAX_RECV));
        while data.len() < n {
            let more = self.recv(n - data.len()).await?;
            if more.is_empty() {
                return Err(Error::Closed);
            }
            data.extend_from_slice(&more);
        }
        Ok(data)
    }

    /// Everything the client sends until it stops: for a datagram, its
    /// payload. As the blocking [`crate::Request::payload`].
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let question = request.payload().await?;
    /// request.reply(&question).await?;
    /// # Ok(()) }
    /// ```
    pub async fn payload(&self) -> Result<Vec<u8>, Error> {
        let mut data = Vec::new();
        loop {
            let more = self.recv(Self::MAX_RECV).await?;
            if more.is_empty() {
                return Ok(data);
            }
            data.extend_from_slice(&more);
        }
    }

    /// Answers the client: on a datagram transport one datagram back to
    /// the sender, on a connection the same as [`Request::sendall`]. As the
    /// blocking [`crate::Request::reply`].
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.reply(b"pong").await?;
    /// # Ok(()) }
    /// ```
    pub async fn reply(&self, bytes: &[u8]) -> Result<(), Error> {
        self.sendall(bytes).await
    }

    /// Copies everything the client sends back to it until it closes,
    /// inside the host (`splice`): the bytes never enter the handler's
    /// memory. Returns how many bytes were copied.
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.echo().await?;
    /// # Ok(()) }
    /// ```
    pub async fn echo(&self) -> Result<u64, Error> {
        self.input
            .copy_to(&self.output)
            .await
            .map_err(Error::from_io)
    }

    /// The connection's input as a WASI async stream, for what the methods
    /// above do not cover (e.g. `copy_to` another stream).
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> std::io::Result<()> {
    /// let mut buf = [0u8; 512];
    /// let n = request.input().read(&mut buf).await?;
    /// # Ok(()) }
    /// ```
    pub fn input(&self) -> &AsyncInputStream {
        &self.input
    }

    /// The connection's output as a WASI async stream.
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> std::io::Result<()> {
    /// request.output().write_all(b"raw\n").await?;
    /// request.output().flush().await?;
    /// # Ok(()) }
    /// ```
    pub fn output(&self) -> &AsyncOutputStream {
        &self.output
    }

    /// Shuts down the sending half once what was sent has gone: the client
    /// reads end of stream while this handler can still receive.
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.sendall(b"bye\n").await?;
    /// request.shutdown_write()?;
    /// # Ok(()) }
    /// ```
    pub fn shutdown_write(&self) -> Result<(), Error> {
        self.inner.shutdown_write().map_err(Error::from)
    }

    /// The client's address, as [`crate::Request::peer_addr`].
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::aio::Request) {
    /// println!("connection from {}", request.peer_addr());
    /// # }
    /// ```
    pub fn peer_addr(&self) -> String {
        self.inner.peer_addr()
    }

    /// The local address, as [`crate::Request::local_addr`].
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::aio::Request) {
    /// let local = request.local_addr();
    /// # }
    /// ```
    pub fn local_addr(&self) -> String {
        self.inner.local_addr()
    }

    /// The transport the request arrived on.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::aio::Request) {
    /// let datagram = request.transport().is_datagram();
    /// # }
    /// ```
    pub fn transport(&self) -> Transport {
        self.inner.transport().into()
    }

    /// What TLS negotiated, as [`crate::Request::tls`].
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::aio::Request) {
    /// let alpn = request.tls().and_then(|tls| tls.alpn);
    /// # }
    /// ```
    pub fn tls(&self) -> Option<crate::TlsInfo> {
        self.inner.tls().map(Into::into)
    }

    /// Hands the connection to `upstream`, as [`crate::Request::hand_off`]:
    /// the relay starts once `handle` returns `Ok`.
    ///
    /// ```no_run
    /// # async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.hand_off("127.0.0.1:6379", b"")?;
    /// Ok(())
    /// # }
    /// ```
    pub fn hand_off(&self, upstream: &str, first: &[u8]) -> Result<(), crate::HandOffError> {
        crate::hand_off::hand_off(&self.inner, &self.pending, upstream, first)
    }
}

impl Error {
    /// The SDK's error for what a WASI stream reported.
    fn from_io(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Error::Closed,
            _ if err.to_string().contains("--idle-timeout") => Error::TimedOut,
            _ => Error::Other(err.to_string()),
        }
    }
}

/// Exports an `async fn` as the component's `handle`, run to completion on
/// wstd's executor: the async twin of [`export_handler!`](crate::export_handler).
///
/// The function takes an [`aio::Request`](Request) and returns `()` or a
/// `Result` (see [`HandlerResult`](crate::HandlerResult)).
///
/// ```no_run
/// async fn handle(request: wasmserve_sdk::aio::Request) -> Result<(), wasmserve_sdk::Error> {
///     request.echo().await.map(drop)
/// }
///
/// wasmserve_sdk::export_async_handler!(handle);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_async_handler {
    ($handle:path) => {
        $crate::__export_with!($handle, $crate::__private::run_async);
    };
}

/// Runs the user's async handler on wstd's executor (used by
/// [`export_async_handler!`](crate::export_async_handler); not public API).
#[doc(hidden)]
pub fn run_async<R, F>(
    handle: impl FnOnce(Request) -> F,
    request: wit::Request,
) -> Result<(), String>
where
    R: crate::HandlerResult,
    F: std::future::Future<Output = R>,
{
    let request = Request::new(request).map_err(|err| err.to_string())?;
    wstd::runtime::block_on(handle(request)).into_handler_result()
}
