//! Bytes held back until the worker thread has nothing else to run, then
//! sent together (redis-server's `beforeSleep`, HAProxy's event loop).
//!
//! A small write to a client (a guest's, or the relay's) or to a relayed
//! upstream is copied into that socket's [`Outbox`] and the socket is
//! listed on the worker thread; when the worker is about to sleep (tokio's
//! `on_thread_park`), every listed outbox is sent. On loopback and on a
//! busy host this is what makes the difference against native servers:
//! each `send` to a peer that sleeps in `epoll_wait` wakes it (an
//! inter-processor interrupt, a hypervisor exit on a VM), and replies sent
//! in one burst find it awake. Measured (bench/RESULTS.md): kvstore GET and
//! SET +33 %, 64-connection TCP echo +10 %, the proxy +15 %, UDP echo with
//! a fresh instance per datagram +35 to +55 %.
//!
//! Bounds:
//! - an outbox holds at most [`HOLD_MAX`] bytes; a larger write, or one to
//!   an outbox that could not be sent, goes to the socket as before, after
//!   what is held (nothing is ever reordered: every direct write sends the
//!   outbox first);
//! - a thread lists at most [`LIST_MAX`] sockets, and sends them all sooner
//!   when a guest's poll ran for [`LONG_POLL`], a busy relay yields, or the
//!   list is older than one tick of the coarse clock, so a busy worker (a
//!   spinning guest, a bulk relay) delays a held reply by a millisecond or
//!   two, not until it idles;
//! - a held reply the peer does not take (its receive window is full) is
//!   sent by the socket's own task as the socket takes it: its next write,
//!   its read waits, its close.
//!
//! A datagram's replies are held the same way (`datagram.rs`), by the
//! request itself rather than an outbox: a datagram's request usually ends
//! before the worker idles, so the list keeps it until its replies are
//! sent ([`list_until_sent`]).
//!
//! Only runtime workers hold (a thread is marked at its first park); any
//! other thread writes straight through.

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Waker};
use std::time::Duration;

use super::activity::coarse_millis;

/// The most bytes one outbox holds.
pub(crate) const HOLD_MAX: usize = 16 * 1024;

/// The most sockets one thread lists before it sends them all.
const LIST_MAX: usize = 256;

/// A guest poll this long sends what the thread holds right after it.
pub(crate) const LONG_POLL: Duration = Duration::from_micros(200);

/// An outbox's capacity kept between sends; a larger one is freed once
/// sent, so an idle connection holds little.
const KEEP_CAPACITY: usize = 4 * 1024;

/// A socket with an outbox, as the thread's list knows it.
pub(crate) trait HeldSend: Send + Sync {
    /// The thread's send of this socket's outbox; what the socket does not
    /// take is left to the socket's own task (see [`Outbox::send_listed_by`]).
    fn send_listed(&self);
}

thread_local! {
    /// Whether this thread sends its list when it parks (a runtime worker).
    static HOLDS: Cell<bool> = const { Cell::new(false) };
    /// The sockets whose outboxes this thread holds bytes in.
    static LISTED: RefCell<Vec<Listed>> = const { RefCell::new(Vec::new()) };
    /// When the list became non-empty ([`coarse_millis`]).
    static LISTED_SINCE: Cell<u64> = const { Cell::new(0) };
}

/// Sends every outbox this thread holds; the runtime calls it before a
/// worker sleeps (`on_thread_park`), which also marks the thread as one
/// that holds.
pub(crate) fn send_held_on_park() {
    HOLDS.set(true);
    send_listed();
}

/// A socket on a thread's list.
enum Listed {
    /// A connection's: gone with the connection (whose drop sends).
    Outbox(Weak<dyn HeldSend>),
    /// A datagram's: kept until its replies are sent.
    Replies(Arc<dyn HeldSend>),
}

/// Whether this thread holds replies (a runtime worker).
pub(crate) fn holds() -> bool {
    HOLDS.get()
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
    let mut listed = LISTED.with_borrow_mut(std::mem::take);
    if listed.is_empty() {
        return;
    }
    LISTED_SINCE.set(0);
    for socket in listed.drain(..) {
        match socket {
            Listed::Outbox(socket) => {
                if let Some(socket) = socket.upgrade() {
                    socket.send_listed();
                }
            }
            Listed::Replies(socket) => socket.send_listed(),
        }
    }
    // The list's allocation is kept for the next round.
    LISTED.with_borrow_mut(|now| {
        if now.is_empty() {
            *now = listed;
        }
    });
}

/// Puts a request whose replies are held on this thread's list, which
/// keeps it until they are sent.
pub(crate) fn list_until_sent(socket: Arc<dyn HeldSend>) {
    list(Listed::Replies(socket));
}

/// Puts `socket` on this thread's list.
fn list(socket: Listed) {
    let full = LISTED.with_borrow_mut(|listed| {
        if listed.is_empty() {
            LISTED_SINCE.set(coarse_millis().max(1));
        }
        listed.push(socket);
        listed.len() >= LIST_MAX
    });
    if full {
        send_listed();
    }
}

/// One socket's held bytes.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Whether bytes are held: the check every direct write makes.
    held: AtomicBool,
    state: Mutex<OutboxState>,
}

#[derive(Debug, Default)]
struct OutboxState {
    bytes: Vec<u8>,
    /// On a thread's list.
    listed: bool,
    /// A thread's send found the socket full: the socket's own task sends
    /// the rest as the socket takes it.
    stalled: bool,
    /// The socket's task, waiting to read, woken when a send stalls.
    waker: Option<Waker>,
}

impl Outbox {
    /// Holds `bytes`; false when they must be written now (not a worker
    /// thread, too large, or the outbox is stalled or full). `socket` is
    /// listed on the thread when it is not yet.
    pub(crate) fn hold(&self, bytes: &[u8], socket: impl FnOnce() -> Weak<dyn HeldSend>) -> bool {
        if !HOLDS.get() || bytes.len() > HOLD_MAX {
            return false;
        }
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.stalled || state.bytes.len() + bytes.len() > HOLD_MAX {
            return false;
        }
        state.bytes.extend_from_slice(bytes);
        self.held.store(true, Ordering::Relaxed);
        if !state.listed {
            state.listed = true;
            drop(state);
            list(Listed::Outbox(socket()));
        }
        true
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        !self.held.load(Ordering::Relaxed)
    }

    /// Sends what is held with `send` (one `send(2)` of what it is given),
    /// as much as the socket takes now: `Ok(true)` once nothing is held.
    /// After an error the held bytes are dropped: the peer is gone.
    pub(crate) fn send(
        &self,
        mut send: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<bool> {
        if self.is_empty() {
            return Ok(true);
        }
        let Ok(mut state) = self.state.lock() else {
            return Ok(true);
        };
        while !state.bytes.is_empty() {
            match send(&state.bytes) {
                Ok(sent) => {
                    let sent = sent.min(state.bytes.len());
                    state.bytes.drain(..sent);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) => {
                    state.bytes.clear();
                    state.stalled = false;
                    self.held.store(false, Ordering::Relaxed);
                    return Err(err);
                }
            }
        }
        if state.bytes.capacity() > KEEP_CAPACITY {
            state.bytes = Vec::new();
        }
        state.stalled = false;
        self.held.store(false, Ordering::Relaxed);
        Ok(true)
    }

    /// The thread's send of this listed outbox, by `send_held` (the
    /// socket's own send, true once nothing is held): what it leaves is
    /// the socket's task's to send, which is woken for it.
    pub(crate) fn send_listed_by(&self, send_held: impl FnOnce() -> bool) {
        if let Ok(mut state) = self.state.lock() {
            state.listed = false;
        }
        if !send_held() {
            self.stall();
        }
    }

    /// After a thread's send that left bytes held: the socket's task is
    /// woken to send them as the socket takes them.
    fn stall(&self) {
        let waker = match self.state.lock() {
            Ok(mut state) => {
                state.stalled = !self.is_empty();
                state.waker.take()
            }
            Err(_) => None,
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Part of every wait on the socket: a stalled outbox is sent with
    /// `send_held` (the socket's own send, true once nothing is held)
    /// whenever `writable` (its write readiness) says it may take more;
    /// otherwise the waiting task is noted, to be woken should the
    /// thread's send stall.
    pub(crate) fn poll_held(
        &self,
        cx: &mut Context<'_>,
        mut writable: impl FnMut(&mut Context<'_>) -> bool,
        mut send_held: impl FnMut() -> bool,
    ) {
        if self.is_empty() {
            return;
        }
        let stalled = match self.state.lock() {
            Ok(mut state) => {
                if !state.stalled
                    && !state
                        .waker
                        .as_ref()
                        .is_some_and(|waker| waker.will_wake(cx.waker()))
                {
                    state.waker = Some(cx.waker().clone());
                }
                state.stalled
            }
            Err(_) => false,
        };
        while stalled && writable(cx) {
            if send_held() {
                return;
            }
        }
    }
}
