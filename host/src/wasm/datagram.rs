//! A received datagram as a request: its payload, read once, and its
//! replies, bounded by the reply budget (UDP senders can be forged, so an
//! unbounded handler would be an amplifier aimed at anyone).
//!
//! On a runtime worker, UDP replies are held (at most [`MAX_REPLIES`], the
//! budget's bytes) and sent when the worker idles, with the other
//! requests' (see `outbox`): the senders are woken once per burst rather
//! than once per reply. A held reply the socket does not take then (its
//! send buffer is full) is dropped and counted, as the network may drop
//! any datagram. (A Unix datagram socket pushes back when its reader is
//! behind: its replies are sent at once, and a handler waits for room.)

use std::io;
use std::sync::Mutex;

use crate::net::DatagramReply;

/// Datagrams one received datagram may be answered with.
pub(crate) const MAX_REPLIES: usize = 8;
/// Reply bytes allowed per byte received; with [`REPLY_FLOOR`], this bounds
/// how much a spoofed sender can make a handler send to its victim.
pub(crate) const REPLY_FACTOR: usize = 10;
/// The largest datagram, received or replied, whose replies are held: the
/// payload of one Ethernet frame over IPv4. A thread lists at most 256
/// requests, so what it holds stays under 4 MiB; larger replies go at once.
const HOLD_MAX: usize = 1472;
/// Reply bytes always allowed, whatever was received (a short request may
/// get a longer answer: `whoami`, `daytime`).
pub(crate) const REPLY_FLOOR: usize = 1024;

/// A received datagram: its payload, read once, and where replies go.
#[derive(Debug)]
pub(super) struct Datagram {
    payload: Vec<u8>,
    pub(super) reply: DatagramReply,
    /// How much of the payload was read, and the replies sent so far (count
    /// and bytes).
    progress: Mutex<DatagramProgress>,
}

#[derive(Debug, Default)]
struct DatagramProgress {
    read_pos: usize,
    replies: usize,
    reply_bytes: usize,
    /// Replies held until the worker idles, in order.
    held: Vec<Vec<u8>>,
}

/// What became of a reply offered to [`Datagram::hold_reply`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Held {
    /// Held; the request is to be listed on the thread (its first).
    First,
    /// Held behind others (the request is listed already).
    Behind,
    /// Not held (not a runtime worker): send it now.
    No,
}

impl Datagram {
    /// A datagram to serve: nothing read, nothing replied yet.
    pub(super) fn new(payload: Vec<u8>, reply: DatagramReply) -> Self {
        Self {
            payload,
            reply,
            progress: Mutex::default(),
        }
    }

    /// The next `max` bytes of the payload; empty once it was all read.
    pub(super) fn read(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut progress = self.progress.lock().map_err(|_| poisoned())?;
        let rest = self.payload.get(progress.read_pos..).unwrap_or_default();
        let chunk = rest[..rest.len().min(max)].to_vec();
        progress.read_pos += chunk.len();
        Ok(chunk)
    }

    /// The most reply bytes this datagram may be answered with.
    fn reply_allowance(&self) -> usize {
        self.payload
            .len()
            .saturating_mul(REPLY_FACTOR)
            .max(REPLY_FLOOR)
    }

    /// Refuses a reply of `len` bytes over the reply budget.
    fn check_budget(&self, progress: &DatagramProgress, len: usize) -> io::Result<()> {
        let allowed = self.reply_allowance();
        if progress.replies >= MAX_REPLIES || progress.reply_bytes.saturating_add(len) > allowed {
            return Err(io::Error::other(ReplyRefused {
                received: self.payload.len(),
                allowed,
            }));
        }
        Ok(())
    }

    /// Holds `bytes` as one UDP reply to send when the worker idles, if
    /// the reply budget allows it (booked now); only small replies to
    /// small datagrams ([`HOLD_MAX`]).
    pub(super) fn hold_reply(&self, bytes: &[u8]) -> io::Result<Held> {
        let small = bytes.len() <= HOLD_MAX && self.payload.len() <= HOLD_MAX;
        if !small || !super::outbox::holds() || !matches!(self.reply, DatagramReply::Udp { .. }) {
            return Ok(Held::No);
        }
        let mut progress = self.progress.lock().map_err(|_| poisoned())?;
        self.check_budget(&progress, bytes.len())?;
        progress.replies += 1;
        progress.reply_bytes += bytes.len();
        progress.held.push(bytes.to_vec());
        Ok(match progress.held.len() {
            1 => Held::First,
            _ => Held::Behind,
        })
    }

    /// Sends the held replies, in order; how many the socket did not take
    /// (dropped: a full send buffer, or the sender unreachable).
    pub(super) fn send_held(&self) -> usize {
        let held = match self.progress.lock() {
            Ok(mut progress) if !progress.held.is_empty() => std::mem::take(&mut progress.held),
            _ => return 0,
        };
        let mut dropped = 0;
        for reply in &held {
            if let Err(err) = self.reply.try_send(reply) {
                tracing::debug!(error = %err, "held datagram reply dropped");
                dropped += 1;
            }
        }
        dropped
    }

    /// Sends `bytes` as one datagram back, if the reply budget allows it
    /// (the caller sends the held replies first).
    pub(super) fn try_reply(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut progress = self.progress.lock().map_err(|_| poisoned())?;
        self.check_budget(&progress, bytes.len())?;
        self.reply.try_send(bytes)?;
        progress.replies += 1;
        progress.reply_bytes += bytes.len();
        Ok(bytes.len())
    }
}

/// A datagram reply over the budget; the guest sees the message.
#[derive(Debug, thiserror::Error)]
#[error(
    "reply refused: a datagram of {received} bytes may be answered with at most {MAX_REPLIES} datagrams and {allowed} bytes"
)]
pub(super) struct ReplyRefused {
    received: usize,
    allowed: usize,
}

/// A lock poisoned by a panic elsewhere (never expected).
fn poisoned() -> io::Error {
    io::Error::other("internal error: a lock was poisoned")
}
