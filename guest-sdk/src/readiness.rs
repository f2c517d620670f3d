//! Contract 0.2's non-blocking side of the blocking [`Request`]: reads and
//! writes that never wait, the request's readiness as WASI pollables, and
//! the connection as WASI streams — for handlers that drive
//! `wasip2::io::poll::poll` themselves (async handlers use [`crate::aio`]).

use wasip2::io::poll::Pollable;
use wasip2::io::streams::{InputStream, OutputStream};

use crate::{Error, Request};

impl Request {
    /// Receives what has arrived, up to `max` bytes, without waiting:
    /// `None` when nothing has arrived yet (wait on
    /// [`Request::subscribe_readable`]), an empty vector at end of stream.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// match request.try_recv(4096)? {
    ///     None => {} // nothing yet: do something else, or poll
    ///     Some(bytes) if bytes.is_empty() => return Ok(()), // the client closed
    ///     Some(bytes) => request.sendall(&bytes)?,
    /// }
    /// # Ok(()) }
    /// ```
    pub fn try_recv(&self, max: usize) -> Result<Option<Vec<u8>>, Error> {
        if let Some(bytes) = self.pending.take(max) {
            return Ok(Some(bytes));
        }
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        self.inner.try_read(max).map_err(Error::from)
    }

    /// Sends what the socket takes now of `bytes` (at most 64 KiB) without
    /// waiting, and returns how many bytes that was: 0 while the client is
    /// not reading (wait on [`Request::subscribe_writable`]).
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let sent = request.try_send(b"progress: 50%\n")?;
    /// # Ok(()) }
    /// ```
    pub fn try_send(&self, bytes: &[u8]) -> Result<usize, Error> {
        let sent = self.inner.try_write(bytes).map_err(Error::from)?;
        Ok(usize::try_from(sent).unwrap_or(usize::MAX))
    }

    /// A WASI pollable, ready when [`Request::try_recv`] would return
    /// something; pass it to `wasip2::io::poll::poll` beside timers and
    /// other pollables.
    ///
    /// ```no_run
    /// use wasmserve_sdk::wasip2::{clocks::monotonic_clock, io::poll};
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let readable = request.subscribe_readable();
    /// let second = monotonic_clock::subscribe_duration(1_000_000_000);
    /// if poll::poll(&[&readable, &second]).contains(&1) {
    ///     request.sendall(b"still there?\n")?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe_readable(&self) -> Pollable {
        self.inner.subscribe_readable()
    }

    /// A WASI pollable, ready when [`Request::try_send`] would take bytes.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) {
    /// request.subscribe_writable().block();
    /// # }
    /// ```
    pub fn subscribe_writable(&self) -> Pollable {
        self.inner.subscribe_writable()
    }

    /// The connection as a standard WASI stream pair (once per request), for
    /// what the `wasip2` crate's streams do: `blocking_splice` copies from
    /// one to the other inside the host, without the bytes passing through
    /// the handler's memory. The request stays usable beside them; on a
    /// datagram transport the input yields the payload and each output
    /// write is one datagram back.
    ///
    /// ```no_run
    /// use wasmserve_sdk::wasip2::io::streams::StreamError;
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let (input, output) = request.streams()?;
    /// // Echo: each chunk goes from the client back to it, host-side.
    /// while let Ok(_) = output.blocking_splice(&input, 64 * 1024) {}
    /// # Ok(()) }
    /// ```
    pub fn streams(&self) -> Result<(InputStream, OutputStream), Error> {
        self.inner.streams().map_err(Error::from)
    }
}
