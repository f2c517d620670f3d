//! The relay's upstream socket with an outbox (see [`super::outbox`]): the
//! client's small messages wait until the worker idles and go to the
//! upstream together, so one wake-up of the upstream serves many.

use std::io;
use std::sync::{Arc, Weak};
use std::task::Context;

use rustix::net::SendFlags;
use tokio::net::TcpStream;

use super::outbox::{HeldSend, Outbox};
use super::relay::RELAY_HOLD_MAX;
use super::socket_io::{read_draining, send_now, shutdown_write};

/// A relayed upstream connection and the bytes held for it.
pub(crate) struct HeldUpstream {
    stream: TcpStream,
    outbox: Outbox,
}

impl HeldSend for HeldUpstream {
    fn send_listed(&self) {
        // What is left, the relay's task (woken) sends as the socket takes
        // it (`poll_held`).
        self.outbox
            .send_listed_by(|| matches!(self.send_held(), Ok(true)));
    }
}

impl HeldUpstream {
    pub(crate) fn new(stream: TcpStream) -> Arc<Self> {
        Arc::new(Self {
            stream,
            outbox: Outbox::default(),
        })
    }

    /// Reads what is there (see [`read_draining`]).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        read_draining(&self.stream, buf)
    }

    /// Holds all of `bytes` (a small message), or writes what the socket takes now after
    /// what is held; `WouldBlock` when it takes nothing.
    pub(crate) fn write(self: &Arc<Self>, bytes: &[u8]) -> io::Result<usize> {
        let held = bytes.len() <= RELAY_HOLD_MAX
            && self.outbox.hold(bytes, || {
                let weak: Weak<dyn HeldSend> = Arc::downgrade(self) as Weak<HeldUpstream>;
                weak
            });
        if held {
            return Ok(bytes.len());
        }
        if !self.send_held()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        send_now(&self.stream, bytes, SendFlags::empty())
    }

    /// Sends what is held, as much as the socket takes now: `Ok(true)`
    /// once nothing is.
    pub(crate) fn send_held(&self) -> io::Result<bool> {
        self.outbox
            .send(|bytes| send_now(&self.stream, bytes, SendFlags::empty()))
    }

    /// Passes an end of stream on once nothing is held: `false` while
    /// something still is.
    pub(crate) fn shutdown_write(&self) -> io::Result<bool> {
        if !self.send_held()? {
            return Ok(false);
        }
        shutdown_write(&self.stream)?;
        Ok(true)
    }

    /// The socket, for readiness.
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Part of the relay's every poll: a stalled outbox is sent as the
    /// socket takes it; otherwise the relay's task is noted, to be woken
    /// should the thread's send stall.
    pub(crate) fn poll_held(&self, cx: &mut Context<'_>) {
        self.outbox.poll_held(
            cx,
            |cx| self.stream.poll_write_ready(cx).is_ready(),
            || !matches!(self.send_held(), Ok(false)),
        );
    }
}

/// Dropped with bytes held (the relay ended on the other side): they go if
/// the socket takes them now.
impl Drop for HeldUpstream {
    fn drop(&mut self) {
        let _ = self.send_held();
    }
}
