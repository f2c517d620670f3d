//! Non-blocking reads on a stream socket that [`super::connection`]
//! builds on: a read that tells tokio when the receive queue ran dry, and
//! the worker thread's read buffer.

use std::io;

use tokio::net::{TcpStream, UnixStream};

use super::connection::MAX_READ;

thread_local! {
    /// Each worker thread's read buffer: a read lands here, then only the
    /// bytes received are copied out, so no request allocates (or holds)
    /// a [`MAX_READ`] buffer of its own.
    static READ_SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; MAX_READ]);
}

/// A socket tokio tracks readiness for.
pub(super) trait TrackedSocket: std::os::fd::AsFd {
    fn try_io<R>(
        &self,
        interest: tokio::io::Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R>;
}

impl TrackedSocket for TcpStream {
    fn try_io<R>(
        &self,
        interest: tokio::io::Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        TcpStream::try_io(self, interest, f)
    }
}

impl TrackedSocket for UnixStream {
    fn try_io<R>(
        &self,
        interest: tokio::io::Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        UnixStream::try_io(self, interest, f)
    }
}

/// Reads what is there into `buf` without waiting, and when that was less
/// than `buf` holds — the socket's receive queue is empty — tells tokio so,
/// as its own `AsyncRead` does: the next read then waits for the socket to
/// become readable instead of first making a `recv` that fails with
/// `EAGAIN` (one system call in three, on an echo).
pub(super) fn read_draining<S: TrackedSocket>(socket: &S, buf: &mut [u8]) -> io::Result<usize> {
    let mut short_read = None;
    let read = socket.try_io(tokio::io::Interest::READABLE, || {
        let (got, _) = rustix::net::recv(socket, &mut *buf, rustix::net::RecvFlags::empty())?;
        if got > 0 && got < buf.len() {
            // Reported as "would block" so that tokio clears the socket's
            // readiness (unless an event arrived meanwhile); the bytes are
            // kept aside and returned below.
            short_read = Some(got);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(got)
    });
    match (read, short_read) {
        (_, Some(got)) => Ok(got),
        (read, None) => read,
    }
}

/// Sends what `socket` takes of `bytes` now, with `flags`, never raising
/// `SIGPIPE`: `WouldBlock` when it takes nothing.
///
/// The system call is made directly (rustix), as `recv` is in
/// [`read_draining`]: libc's `send` and `recv` are cancellation points,
/// and in a process with threads each call marks and unmarks the thread
/// as cancellable (`__pthread_enable_asynccancel`, two atomic operations:
/// 2 % of the proxy's CPU, 1.3 % of an echo's).
pub(super) fn send_now<S: TrackedSocket>(
    socket: &S,
    bytes: &[u8],
    flags: rustix::net::SendFlags,
) -> io::Result<usize> {
    socket.try_io(tokio::io::Interest::WRITABLE, || {
        Ok(rustix::net::send(
            socket,
            bytes,
            flags | rustix::net::SendFlags::NOSIGNAL,
        )?)
    })
}

/// Shuts `socket`'s write side down (the peer reads end of stream); one
/// shut already, or whose peer went, has nothing left to shut.
pub(super) fn shutdown_write(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    match socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Write) {
        Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(()),
        shut => shut,
    }
}

/// Runs `f` on the first `max` bytes of the thread's scratch buffer.
pub(super) fn with_scratch<R>(max: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    READ_SCRATCH.with_borrow_mut(|scratch| {
        let len = max.min(scratch.len());
        f(&mut scratch[..len])
    })
}

/// Reads up to `max` bytes with `read` into the thread's scratch buffer and
/// copies out what arrived.
pub(super) fn read_scratch(
    max: usize,
    read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
) -> io::Result<Vec<u8>> {
    with_scratch(max, |buf| {
        let got = read(buf)?;
        Ok(buf[..got].to_vec())
    })
}
