//! Waiting on a [`Connection`]: its readiness to read (with the idle
//! timeout, and made real before a first wait) and to write, as futures
//! for the guest's pollables and as polls for the relay, and the TCP
//! client's reset.

use std::sync::atomic::Ordering;
use std::task::Poll;

use tokio::time::Instant;

use super::{Connection, Socket};

impl Connection {
    /// Waits until `try_read` would return something: bytes, end of stream,
    /// an error, or the idle timeout. Holds no buffer meanwhile.
    pub(crate) async fn read_ready(&self) {
        self.prime();
        let mut first = true;
        std::future::poll_fn(|cx| {
            self.poll_held(cx);
            let ready = match &self.socket {
                Socket::Tcp(stream) => stream.poll_read_ready(cx).map(drop),
                Socket::Unix(stream) => stream.poll_read_ready(cx).map(drop),
                Socket::Datagram(_) => Poll::Ready(()),
            };
            if ready.is_ready() {
                return ready;
            }
            if first {
                self.waited.store(true, Ordering::Relaxed);
                first = false;
            }
            self.poll_idle(cx)
        })
        .await;
    }

    /// A read was tried: from now on the read readiness is the socket's.
    pub(super) fn read_tried(&self) {
        if !self.primed.load(Ordering::Relaxed) {
            self.primed.store(true, Ordering::Relaxed);
        }
    }

    /// Makes the read readiness real before a first wait (one peek, once
    /// per connection, and only when the guest waits before it reads): a
    /// peek that finds nothing clears tokio's assumed readiness.
    fn prime(&self) {
        if self.primed.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut byte = [std::mem::MaybeUninit::uninit(); 1];
        let _ = match &self.socket {
            Socket::Tcp(stream) => stream.try_io(tokio::io::Interest::READABLE, || {
                socket2::SockRef::from(stream).peek(&mut byte)
            }),
            Socket::Unix(stream) => stream.try_io(tokio::io::Interest::READABLE, || {
                socket2::SockRef::from(stream).peek(&mut byte)
            }),
            Socket::Datagram(_) => Ok(0),
        };
    }

    /// Ready once the client has sent nothing for the idle timeout.
    ///
    /// One timer per connection, not one per wait: it is set for the idle
    /// deadline as it stood when the timer was made, and when it fires
    /// early (the client sent something since), it is reset to the
    /// current deadline. A busy connection touches the timer wheel once per
    /// idle period instead of at every read.
    fn poll_idle(&self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let Some(deadline) = self.idle_deadline() else {
            return Poll::Pending;
        };
        let Ok(mut slot) = self.idle_timer.lock() else {
            return Poll::Pending;
        };
        let timer = slot.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if deadline <= Instant::now() {
                return Poll::Ready(());
            }
            timer.as_mut().reset(deadline);
        }
    }

    /// Waits until `try_write` would take bytes (or fail).
    pub(crate) async fn write_ready(&self) {
        let _ = match &self.socket {
            Socket::Tcp(stream) => stream.writable().await,
            Socket::Unix(stream) => stream.writable().await,
            Socket::Datagram(datagram) => datagram.reply.writable().await,
        };
    }

    /// Polls the stream's readiness to read (`write`: to write), with no
    /// idle timeout; a datagram is always ready.
    pub(crate) fn poll_ready(&self, cx: &mut std::task::Context<'_>, write: bool) -> Poll<()> {
        let ready = match (&self.socket, write) {
            (Socket::Tcp(stream), false) => stream.poll_read_ready(cx),
            (Socket::Tcp(stream), true) => stream.poll_write_ready(cx),
            (Socket::Unix(stream), false) => stream.poll_read_ready(cx),
            (Socket::Unix(stream), true) => stream.poll_write_ready(cx),
            (Socket::Datagram(_), _) => return Poll::Ready(()),
        };
        ready.map(drop)
    }

    /// Waits until the socket is readable, with no idle timeout.
    pub(crate) async fn wait_readable(&self) {
        let _ = match &self.socket {
            Socket::Tcp(stream) => stream.readable().await,
            Socket::Unix(stream) => stream.readable().await,
            Socket::Datagram(_) => Ok(()),
        };
    }

    /// Resolves once the TCP client has reset the connection (the socket
    /// reports an error; for TLS, the relay's token says so), and never for
    /// a datagram, a Unix stream, or a client that only closed its side: a
    /// half-close, until a write to a client that has gone draws the reset.
    pub(crate) async fn reset_by_peer(&self) {
        if let Some(token) = &self.peer_reset {
            return token.cancelled().await;
        }
        if let Socket::Tcp(stream) = &self.socket
            && stream.ready(tokio::io::Interest::ERROR).await.is_ok()
        {
            return;
        }
        std::future::pending().await
    }
}
