//! Contract 0.2's readiness and streams over a request's [`Connection`]:
//! the pollables `subscribe-readable` / `subscribe-writable` return, and the
//! standard `wasi:io/streams` pair `request.streams` hands out, so a guest
//! waits on its client, its timers and any other WASI pollable in one
//! `poll`, and `splice`s, `blocking-read`s and `check-write`s as it would a
//! `wasi:sockets` TCP stream.
//!
//! Nothing here holds more than one write's bytes: the output stream
//! accepts at most [`WRITE_PERMIT`] bytes while the socket is full, and
//! grants no more until they are sent.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::connection::Connection;
use super::io_failure::IoFailure;

/// The most bytes the output stream accepts in one `write` (what
/// `check-write` grants), as wasmtime's own streams do.
pub(crate) const WRITE_PERMIT: usize = 64 * 1024;

/// Ready when the request's socket takes bytes (`subscribe-writable`).
pub(crate) struct WriteReady(pub(crate) Arc<Connection>);

#[async_trait]
impl Pollable for WriteReady {
    async fn ready(&mut self) {
        self.0.write_ready().await;
    }
}

/// The request's input as a `wasi:io/streams.input-stream`; also the
/// pollable `subscribe-readable` returns (ready when the input is).
pub(crate) struct RequestInput(pub(crate) Arc<Connection>);

#[async_trait]
impl Pollable for RequestInput {
    async fn ready(&mut self) {
        self.0.read_ready().await;
    }
}

#[async_trait]
impl InputStream for RequestInput {
    /// Reads first and waits only when nothing is there (the default waits
    /// first): one readiness future fewer per chunk on a busy connection.
    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        loop {
            let bytes = self.read(size)?;
            if !bytes.is_empty() || size == 0 {
                return Ok(bytes);
            }
            self.0.read_ready().await;
        }
    }

    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        match self.0.try_read(size) {
            Ok(None) => Ok(Bytes::new()),
            Ok(Some(bytes)) if bytes.is_empty() => Err(StreamError::Closed),
            Ok(Some(bytes)) => Ok(Bytes::from(bytes)),
            Err(failure) => Err(stream_error(failure)),
        }
    }
}

/// The request's output as a `wasi:io/streams.output-stream`: a write goes
/// to the socket at once; what the socket does not take waits in
/// `pending` (one permit's worth at most) and is sent as the stream's
/// pollable is awaited (`blocking-flush`, `blocking-write-and-flush`,
/// `poll`).
pub(crate) struct RequestOutput {
    conn: Arc<Connection>,
    /// Bytes accepted but not sent yet; `check-write` grants nothing more
    /// until they are.
    pending: Bytes,
    /// A failure met while sending `pending`, reported by the next call.
    failed: Option<IoFailure>,
}

impl RequestOutput {
    pub(crate) fn new(conn: Arc<Connection>) -> Self {
        Self {
            conn,
            pending: Bytes::new(),
            failed: None,
        }
    }

    fn check_failed(&mut self) -> StreamResult<()> {
        match self.failed.take() {
            Some(failure) => Err(stream_error(failure)),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Pollable for RequestOutput {
    async fn ready(&mut self) {
        // A datagram is sent whole: pending holds one until it goes.
        while !self.pending.is_empty() && self.failed.is_none() {
            self.conn.write_ready().await;
            match self.conn.try_write(&self.pending) {
                Ok(0) => {}
                Ok(_) if !self.conn.is_stream() => self.pending.clear(),
                Ok(written) => {
                    let _ = self.pending.split_to(written.min(self.pending.len()));
                }
                Err(failure) => self.failed = Some(failure),
            }
        }
    }
}

#[async_trait]
impl OutputStream for RequestOutput {
    /// Grants at once when nothing is pending (the default waits on the
    /// pollable first): `blocking-splice` and `blocking-write-and-flush`
    /// then cost no readiness future when the socket keeps up.
    async fn write_ready(&mut self) -> StreamResult<usize> {
        loop {
            let permit = self.check_write()?;
            if permit > 0 {
                return Ok(permit);
            }
            self.ready().await;
        }
    }

    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.check_failed()?;
        if !self.pending.is_empty() || bytes.len() > WRITE_PERMIT {
            return Err(StreamError::trap(
                "write without a permit: call check-write (or wait on subscribe) first",
            ));
        }
        // An empty write is an empty datagram on a datagram transport.
        if bytes.is_empty() && self.conn.is_stream() {
            return Ok(());
        }
        match self.conn.try_write(&bytes) {
            Ok(written) if written >= bytes.len() => Ok(()),
            // A datagram the socket could not take yet is kept whole.
            Ok(_) if !self.conn.is_stream() => {
                self.pending = bytes;
                Ok(())
            }
            Ok(written) => {
                self.pending = bytes.slice(written..);
                Ok(())
            }
            Err(failure) => Err(stream_error(failure)),
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Bytes are sent as they are written; the pending rest goes as the
        // stream's pollable is awaited, and `check-write` grants nothing
        // until it has.
        self.check_failed()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.check_failed()?;
        Ok(if self.pending.is_empty() {
            WRITE_PERMIT
        } else {
            0
        })
    }
}

/// What a stream operation reports for a request failure.
fn stream_error(failure: IoFailure) -> StreamError {
    match failure {
        IoFailure::Closed => StreamError::Closed,
        other => StreamError::LastOperationFailed(wasmtime::Error::msg(other.to_string())),
    }
}
