//! Replies held back until the worker thread has nothing else to run, then
//! sent together (redis-server's `beforeSleep`, HAProxy's event loop).
//!
//! A guest's small write on a stream connection is copied into the
//! connection's outbox and the connection is listed on the worker thread;
//! when the worker is about to sleep (tokio's `on_thread_park`), every
//! listed outbox is sent. On loopback and on a busy host this is what
//! makes the difference against native servers: each `send` to a client
//! that sleeps in `epoll_wait` wakes it (an inter-processor interrupt, a
//! hypervisor exit on a VM), and replies sent in one burst find it awake.
//! Measured (bench/RESULTS.md): 64-connection TCP echo −12 % CPU per echo,
//! kvstore GET and SET +30 %.
//!
//! Bounds:
//! - an outbox holds at most [`HOLD_MAX`] bytes; a larger write, or one to
//!   an outbox that could not be sent, goes to the socket as before, after
//!   what is held (nothing is ever reordered: every direct write sends the
//!   outbox first);
//! - a thread lists at most [`LIST_MAX`] connections, and sends them all
//!   sooner when a guest's poll ran for [`LONG_POLL`] or the list is older
//!   than one tick of the coarse clock, so a busy worker (a spinning guest,
//!   a bulk relay) delays a held reply by about a millisecond, not until it
//!   idles;
//! - a held reply the client does not take (its receive window is full) is
//!   sent by the connection's own task as the socket takes it: its next
//!   write, its read waits, its close.
//!
//! Only runtime workers hold (a thread is marked at its first park); any
//! other thread writes straight through.

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Waker};
use std::time::Duration;

use super::super::activity::coarse_millis;
use super::{Connection, Socket};
use super::{IoFailure, io_failure};

/// The most bytes one connection's outbox holds.
pub(crate) const HOLD_MAX: usize = 16 * 1024;

/// The most connections one thread lists before it sends them all.
const LIST_MAX: usize = 256;

/// A guest poll this long sends what the thread holds right after it.
pub(crate) const LONG_POLL: Duration = Duration::from_micros(200);

/// An outbox's capacity kept between replies; a larger one is freed once
/// sent, so an idle connection holds no buffer.
const KEEP_CAPACITY: usize = 4 * 1024;

thread_local! {
    /// Whether this thread sends its list when it parks (a runtime worker).
    static HOLDS: Cell<bool> = const { Cell::new(false) };
    /// The connections whose outboxes this thread holds bytes in.
    static LISTED: RefCell<Vec<Weak<Connection>>> = const { RefCell::new(Vec::new()) };
    /// When the list became non-empty ([`coarse_millis`]).
    static LISTED_SINCE: Cell<u64> = const { Cell::new(0) };
}

/// A connection's held bytes.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// Whether bytes are held: the check every direct write makes.
    held: AtomicBool,
    state: Mutex<OutboxState>,
}

#[derive(Debug, Default)]
struct OutboxState {
    bytes: Vec<u8>,
    /// On a thread's list.
    listed: bool,
    /// A thread's send found the socket full: the connection's own task
    /// sends the rest as the socket takes it.
    stalled: bool,
    /// The connection's task, waiting to read, woken when a send stalls.
    waker: Option<Waker>,
}

/// Sends every outbox this thread holds; the runtime calls it before a
/// worker sleeps (`on_thread_park`), which also marks the thread as one
/// that holds.
pub(crate) fn send_held_on_park() {
    HOLDS.set(true);
    send_listed();
}

/// Sends what the thread holds if it has held it for a tick of the coarse
/// clock (a busy worker that does not park).
pub(crate) fn send_listed_if_old() {
    let since = LISTED_SINCE.get();
    if since != 0 && coarse_millis() > since {
        send_listed();
    }
}

/// Sends every outbox on this thread's list.
pub(crate) fn send_listed() {
    let listed = LISTED.with_borrow_mut(std::mem::take);
    if listed.is_empty() {
        return;
    }
    LISTED_SINCE.set(0);
    let mut listed = listed;
    for conn in listed.drain(..) {
        if let Some(conn) = conn.upgrade() {
            conn.send_listed_outbox();
        }
    }
    // The list's allocation is kept for the next round.
    LISTED.with_borrow_mut(|now| {
        if now.is_empty() {
            *now = listed;
        }
    });
}

impl Connection {
    /// Holds `bytes` to send when the thread idles; false when they must be
    /// written now (not a stream, not a worker, too large, or the outbox
    /// is stalled or full).
    pub(super) fn hold(self: &Arc<Self>, bytes: &[u8]) -> bool {
        if !HOLDS.get() || !self.is_stream() || bytes.len() > HOLD_MAX {
            return false;
        }
        let Ok(mut state) = self.outbox.state.lock() else {
            return false;
        };
        if state.stalled || state.bytes.len() + bytes.len() > HOLD_MAX {
            return false;
        }
        state.bytes.extend_from_slice(bytes);
        self.outbox.held.store(true, Ordering::Relaxed);
        if state.listed {
            return true;
        }
        state.listed = true;
        drop(state);
        let full = LISTED.with_borrow_mut(|listed| {
            if listed.is_empty() {
                LISTED_SINCE.set(coarse_millis().max(1));
            }
            listed.push(Arc::downgrade(self));
            listed.len() >= LIST_MAX
        });
        if full {
            send_listed();
        }
        true
    }

    /// Sends what the outbox holds, as much as the socket takes now:
    /// `Ok(true)` once nothing is held.
    pub(crate) fn send_held(&self) -> Result<bool, IoFailure> {
        if !self.outbox.held.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let Ok(mut state) = self.outbox.state.lock() else {
            return Ok(true);
        };
        while !state.bytes.is_empty() {
            match self.send_raw(&state.bytes) {
                Ok(sent) => {
                    let sent = sent.min(state.bytes.len());
                    state.bytes.drain(..sent);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) => {
                    // The client is gone: what was held is lost with it.
                    state.bytes.clear();
                    state.stalled = false;
                    self.outbox.held.store(false, Ordering::Relaxed);
                    return Err(self.failed(io_failure(err)));
                }
            }
        }
        if state.bytes.capacity() > KEEP_CAPACITY {
            state.bytes = Vec::new();
        }
        state.stalled = false;
        self.outbox.held.store(false, Ordering::Relaxed);
        Ok(true)
    }

    /// The thread's send of a listed outbox: what the socket does not take
    /// is left to the connection's task, woken to send it.
    fn send_listed_outbox(&self) {
        if let Ok(mut state) = self.outbox.state.lock() {
            state.listed = false;
        }
        if let Ok(true) = self.send_held() {
            return;
        }
        let waker = match self.outbox.state.lock() {
            Ok(mut state) => {
                state.stalled = self.outbox.held.load(Ordering::Relaxed);
                state.waker.take()
            }
            Err(_) => None,
        };
        if let Some(waker) = waker {
            waker.wake();
        }
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
    pub(super) fn poll_held(&self, cx: &mut Context<'_>) {
        if !self.outbox.held.load(Ordering::Relaxed) {
            return;
        }
        let stalled = match self.outbox.state.lock() {
            Ok(mut state) => {
                if !state.stalled
                    && !state
                        .waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    state.waker = Some(cx.waker().clone());
                }
                state.stalled
            }
            Err(_) => false,
        };
        if !stalled {
            return;
        }
        while self.poll_ready(cx, true).is_ready() {
            if !matches!(self.send_held(), Ok(false)) {
                return;
            }
        }
    }

    /// One `send` of `bytes` on the stream.
    fn send_raw(&self, bytes: &[u8]) -> io::Result<usize> {
        match &self.socket {
            Socket::Tcp(stream) => stream.try_write(bytes),
            Socket::Unix(stream) => stream.try_write(bytes),
            Socket::Datagram(_) => Ok(bytes.len()),
        }
    }
}

/// A connection dropped without a close (its instance trapped or was cut)
/// still sends what it held, if the socket takes it now.
impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.send_held();
    }
}
