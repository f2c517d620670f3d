//! A connection's held replies (see [`crate::wasm::outbox`]): its small
//! writes wait in its outbox until the worker idles, and every direct
//! write, read wait and close sends them first. A datagram's replies are
//! held by the datagram itself (`datagram.rs`).

use std::io;
use std::sync::{Arc, Weak};
use std::task::Context;

use rustix::net::SendFlags;

use super::super::datagram::{Held, ReplyRefused};
use super::super::outbox::{self, HeldSend};
use super::super::socket_io::send_now;
use super::{Connection, IoFailure, Socket, io_failure};

impl HeldSend for Connection {
    fn send_listed(&self) {
        match &self.socket {
            Socket::Datagram(_) => self.send_held_replies(),
            _ => self
                .outbox
                .send_listed_by(|| matches!(self.send_held(), Ok(true))),
        }
    }
}

impl Connection {
    /// Holds `bytes` to send when the thread idles, booked as sent; false
    /// when they must be written now (see
    /// [`super::super::outbox::Outbox::hold`] and `Datagram::hold_reply`).
    /// A datagram reply over the reply budget is refused.
    pub(super) fn hold(self: &Arc<Self>, bytes: &[u8]) -> Result<bool, IoFailure> {
        let held = match &self.socket {
            Socket::Datagram(datagram) => match datagram.hold_reply(bytes) {
                Ok(Held::First) => {
                    outbox::list_until_sent(Arc::clone(self) as Arc<dyn HeldSend>);
                    true
                }
                Ok(Held::Behind) => true,
                Ok(Held::No) => false,
                Err(err) => return Err(self.write_failed(err)),
            },
            _ => self.outbox.hold(bytes, || {
                let weak: Weak<dyn HeldSend> = Arc::downgrade(self) as Weak<Connection>;
                weak
            }),
        };
        if held {
            self.sent(bytes.len());
        }
        Ok(held)
    }

    /// A failed write's failure: a refused datagram reply is booked and
    /// logged, anything else is an I/O failure.
    pub(super) fn write_failed(&self, err: io::Error) -> IoFailure {
        match err.downcast::<ReplyRefused>() {
            Ok(refused) => self.refused(&refused),
            Err(err) => self.failed(io_failure(err)),
        }
    }

    /// Sends a datagram's held replies; those the socket does not take are
    /// counted as dropped.
    pub(super) fn send_held_replies(&self) {
        let Socket::Datagram(datagram) = &self.socket else {
            return;
        };
        let dropped = datagram.send_held();
        if dropped > 0
            && let Some(books) = self.books.get()
        {
            books.observer.replies_dropped(dropped as u64);
        }
    }

    /// Sends what the outbox holds, as much as the socket takes now:
    /// `Ok(true)` once nothing is held.
    pub(crate) fn send_held(&self) -> Result<bool, IoFailure> {
        self.send_held_with(SendFlags::empty())
    }

    /// `send_held`, with `flags` for a TCP socket's `send`.
    fn send_held_with(&self, flags: SendFlags) -> Result<bool, IoFailure> {
        self.outbox
            .send(|bytes| match &self.socket {
                Socket::Tcp(stream) => send_now(stream, bytes, flags),
                Socket::Unix(stream) => send_now(stream, bytes, SendFlags::empty()),
                Socket::Datagram(_) => Ok(bytes.len()),
            })
            .map_err(|err| self.failed(io_failure(err)))
    }

    /// Waits until nothing is held (a client that reads slowly).
    pub(crate) async fn flush(&self) -> Result<(), IoFailure> {
        self.flush_with(SendFlags::empty()).await
    }

    /// `flush` just before the write side shuts: TCP is told more follows
    /// (`MSG_MORE`), so the last bytes wait in the socket for the end of
    /// stream and both go out in one segment (a greeting and its FIN: one
    /// packet and one wake-up of the client instead of two).
    pub(crate) async fn flush_for_shutdown(&self) -> Result<(), IoFailure> {
        self.flush_with(SendFlags::MORE).await
    }

    /// `flush`, with `flags` for a TCP socket's `send`.
    async fn flush_with(&self, flags: SendFlags) -> Result<(), IoFailure> {
        while !self.send_held_with(flags)? {
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
        self.send_held_replies();
    }
}
