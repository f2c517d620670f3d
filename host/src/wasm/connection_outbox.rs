//! A connection's held replies (see [`crate::wasm::outbox`]): its small
//! writes wait in its outbox until the worker idles, and every direct
//! write, read wait and close sends them first.

use std::sync::{Arc, Weak};
use std::task::Context;

use super::super::outbox::HeldSend;
use super::{Connection, IoFailure, Socket, io_failure};

impl HeldSend for Connection {
    fn send_listed(&self) {
        self.outbox
            .send_listed_by(|| matches!(self.send_held(), Ok(true)));
    }
}

impl Connection {
    /// Holds `bytes` to send when the thread idles, booked as sent; false
    /// when they must be written now (not a stream, or see
    /// [`super::super::outbox::Outbox::hold`]).
    pub(super) fn hold(self: &Arc<Self>, bytes: &[u8]) -> bool {
        let held = self.is_stream()
            && self.outbox.hold(bytes, || {
                let weak: Weak<dyn HeldSend> = Arc::downgrade(self) as Weak<Connection>;
                weak
            });
        if held {
            self.sent(bytes.len());
        }
        held
    }

    /// Sends what the outbox holds, as much as the socket takes now:
    /// `Ok(true)` once nothing is held.
    pub(crate) fn send_held(&self) -> Result<bool, IoFailure> {
        self.outbox
            .send(|bytes| match &self.socket {
                Socket::Tcp(stream) => stream.try_write(bytes),
                Socket::Unix(stream) => stream.try_write(bytes),
                Socket::Datagram(_) => Ok(bytes.len()),
            })
            .map_err(|err| self.failed(io_failure(err)))
    }

    /// Waits until nothing is held (a client that reads slowly).
    pub(crate) async fn flush(&self) -> Result<(), IoFailure> {
        while !self.send_held()? {
            self.write_ready().await;
        }
        Ok(())
    }

    /// Part of every read wait: a stalled outbox is sent as the socket
    /// takes it; otherwise the waiting task is noted, to be woken should
    /// the thread's send stall.
    pub(crate) fn poll_held(&self, cx: &mut Context<'_>) {
        self.outbox.poll_held(
            cx,
            |cx| self.poll_ready(cx, true).is_ready(),
            || !matches!(self.send_held(), Ok(false)),
        );
    }
}

/// A connection dropped without a close (its instance trapped or was cut)
/// still sends what it held, if the socket takes it now.
impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.send_held();
    }
}
