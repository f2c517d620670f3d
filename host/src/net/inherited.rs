//! Listening sockets handed over by the parent process: systemd socket
//! activation (`LISTEN_PID` / `LISTEN_FDS`) and `--listen-fd N`, the use case
//! of Python's `socket.fromfd`.
//!
//! The transport is read from the socket itself (stream or datagram, IP or
//! Unix), so one `.socket` unit can hand wasmserve any mix of sockets. A
//! *connected* stream socket (systemd `Accept=yes`, inetd "nowait", or
//! `--inetd`'s stdin) is one connection: it is served once, and the process
//! exits after it.

use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};

use socket2::Socket;

use super::listener::{ListenOptions, Listener};
use crate::error::ListenError;

/// The first descriptor systemd passes (after stdin, stdout, stderr).
const SD_LISTEN_FDS_START: RawFd = 3;

/// The descriptors systemd passed to this process, if it was socket
/// activated: `LISTEN_FDS` descriptors from 3 on, when `LISTEN_PID` is this
/// process. (The variables stay set: guests never see the host's
/// environment, and wasmserve starts no other process.)
pub(crate) fn systemd_fds() -> Result<Vec<RawFd>, ListenError> {
    let Some(pid) = std::env::var_os("LISTEN_PID") else {
        return Ok(Vec::new());
    };
    let count = std::env::var_os("LISTEN_FDS");
    if pid.to_str().and_then(|pid| pid.parse::<u32>().ok()) != Some(std::process::id()) {
        // Meant for another process (e.g. our parent): not ours to take.
        return Ok(Vec::new());
    }
    let count = count
        .and_then(|count| count.to_str()?.parse::<RawFd>().ok())
        .ok_or_else(|| ListenError::Inherited {
            fd: SD_LISTEN_FDS_START,
            reason: "LISTEN_PID is set but LISTEN_FDS is not a number".to_owned(),
        })?;
    Ok((0..count).map(|i| SD_LISTEN_FDS_START + i).collect())
}

/// What descriptor `fd` refers to, as /proc names it; `None` when it is
/// not open.
fn fd_target(fd: RawFd) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

/// Whether a /proc descriptor target is a socket (`socket:[inode]`).
fn names_socket(target: &Path) -> bool {
    target.to_string_lossy().starts_with("socket:")
}

/// Whether descriptor `fd` is an open socket.
pub(crate) fn is_socket(fd: RawFd) -> bool {
    fd_target(fd).is_some_and(|target| names_socket(&target))
}

/// Whether descriptor `fd` is one connected stream socket (rather than a
/// listening or datagram socket): then the process serves that connection
/// and exits.
pub(crate) fn is_connection(fd: RawFd) -> bool {
    if !is_socket(fd) {
        return false;
    }
    // SAFETY: `fd` is an open socket (checked above); the borrow ends
    // before this returns, and nothing is closed.
    #[expect(
        unsafe_code,
        reason = "looking at an inherited descriptor needs borrow_raw"
    )]
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let socket = socket2::SockRef::from(&borrowed);
    socket
        .r#type()
        .is_ok_and(|kind| kind == socket2::Type::STREAM)
        && !socket.is_listener().unwrap_or(true)
        && socket.peer_addr().is_ok()
}

/// Takes ownership of descriptor `fd`, which must be an open socket (bound;
/// listening, for streams), and wraps it in a [`Listener`].
pub(crate) fn adopt_fd(fd: RawFd, options: &ListenOptions) -> Result<Listener, ListenError> {
    let fail = |reason: String| ListenError::Inherited { fd, reason };
    if fd == 1 || fd == 2 {
        return Err(fail(
            "descriptors 1 and 2 are stdout and stderr (inetd's socket is stdin: --inetd)"
                .to_owned(),
        ));
    }
    // Check that the descriptor is open and is a socket before owning it.
    let target = fd_target(fd).ok_or_else(|| fail("no such open descriptor".to_owned()))?;
    if !names_socket(&target) {
        return Err(fail(format!("it is not a socket ({})", target.display())));
    }
    // SAFETY: `fd` is open (checked above), is a socket, and nothing else in
    // this process owns it: the caller passes each inherited descriptor once
    // (duplicates are refused by `service::spec::validate`).
    #[expect(
        unsafe_code,
        reason = "adopting an inherited descriptor needs from_raw_fd"
    )]
    let socket = unsafe { Socket::from_raw_fd(fd) };
    let is_stream = socket.r#type().map_err(|err| fail(err.to_string()))? == socket2::Type::STREAM;
    if is_stream && !socket.is_listener().unwrap_or(true) {
        if socket.peer_addr().is_ok() {
            return Listener::connection(socket, fd).map_err(|err| fail(err.to_string()));
        }
        socket
            .listen(options.backlog)
            .map_err(|err| fail(format!("cannot listen: {err}")))?;
    }
    let is_tcp_listener = is_stream
        && socket
            .local_addr()
            .ok()
            .and_then(|addr| addr.as_socket())
            .is_some();
    if is_tcp_listener {
        super::listener::tune_tcp_listener(&socket, options)
            .map_err(|err| fail(format!("cannot set its TCP options: {err}")))?;
    }
    if let Some(size) = options.recv_buffer {
        socket
            .set_recv_buffer_size(size)
            .map_err(|err| fail(err.to_string()))?;
    }
    Listener::adopt(socket, Some(fd), None).map_err(|err| fail(err.to_string()))
}
