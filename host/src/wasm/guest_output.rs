//! A guest's stdout and stderr, turned into host log lines.
//!
//! Handlers are sandboxed, so their standard output goes nowhere near the
//! host's terminal. Each complete line becomes one `tracing` event at target
//! `wasmserve::guest`, emitted inside the connection's span, so it carries the
//! connection id and peer like every other line of that connection. Lines
//! are escaped and cut (see `guest_text`), and rate-limited per request by
//! a [`LogBudget`] shared by its stdout and stderr.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::guest_text::{LogBudget, report_dropped, sanitize};

/// A guest line longer than this many bytes is logged in pieces of this
/// size, so a guest that never writes a newline cannot grow host memory.
const MAX_LINE: usize = 1024;

/// Which of the guest's two output streams a [`GuestOutput`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuestStream {
    /// The guest's standard output (logged at `info`).
    Stdout,
    /// The guest's standard error (logged at `warn`).
    Stderr,
}

impl GuestStream {
    fn name(self) -> &'static str {
        match self {
            GuestStream::Stdout => "stdout",
            GuestStream::Stderr => "stderr",
        }
    }
}

/// The `StdoutStream` given to a guest's WASI context for stdout or stderr.
#[derive(Debug, Clone)]
pub(crate) struct GuestOutput {
    /// Which stream this is, used as the `stream` field of each log line.
    stream: GuestStream,
    /// The request's log budget, shared with its other stream.
    budget: Arc<LogBudget>,
}

impl GuestOutput {
    /// Output that logs each line the guest writes to `stream`, within
    /// `budget`.
    pub(crate) fn new(stream: GuestStream, budget: Arc<LogBudget>) -> Self {
        Self { stream, budget }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLogger::new(self.stream, Arc::clone(&self.budget)))
    }

    // Overridden so that writes are logged synchronously inside the guest's
    // call (and so inside the connection span), instead of through the default
    // adapter, which hands bytes to a background task.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineLogger::new(self.stream, Arc::clone(&self.budget)))
    }
}

/// Collects bytes until a newline, then logs the line.
#[derive(Debug)]
struct LineLogger {
    /// Which stream the lines come from.
    stream: GuestStream,
    /// The incomplete line written so far (at most [`MAX_LINE`] bytes).
    pending: Vec<u8>,
    /// The request's log budget.
    budget: Arc<LogBudget>,
}

impl LineLogger {
    fn new(stream: GuestStream, budget: Arc<LogBudget>) -> Self {
        Self {
            stream,
            pending: Vec::new(),
            budget,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.pending.len();
            let take = bytes.len().min(room);
            match bytes[..take].iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.pending.extend_from_slice(&bytes[..newline]);
                    self.emit();
                    bytes = &bytes[newline + 1..];
                }
                None => {
                    self.pending.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.pending.len() == MAX_LINE {
                        self.emit();
                    }
                }
            }
        }
    }

    fn emit(&mut self) {
        let Ok(dropped) = self.budget.take() else {
            self.pending.clear();
            return;
        };
        report_dropped(dropped);
        let line = String::from_utf8_lossy(&self.pending);
        let line = sanitize(line.strip_suffix('\r').unwrap_or(&line), MAX_LINE);
        let stream = self.stream.name();
        match self.stream {
            GuestStream::Stdout => {
                tracing::info!(target: "wasmserve::guest", stream, "{line}")
            }
            GuestStream::Stderr => {
                tracing::warn!(target: "wasmserve::guest", stream, "{line}")
            }
        }
        self.pending.clear();
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLogger {
    async fn ready(&mut self) {}
}

impl OutputStream for LineLogger {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
