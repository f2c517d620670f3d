//! `--inetd`: inetd and xinetd start one process per connection with the
//! socket as stdin, stdout and (often) stderr. wasmserve serves the socket
//! on descriptor 0; its own stdout and stderr are moved off the socket to
//! /dev/null, so that nothing wasmserve prints reaches the client, and so
//! that the client sees the connection close when the handler is done
//! (a copy of the socket left open on 1 or 2 would keep it open).

use std::os::fd::AsFd;

use crate::net::is_socket;

/// Points stdout and stderr at /dev/null where they are sockets.
pub(super) fn detach_stdout_and_stderr() {
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return;
    };
    if is_socket(1) {
        let _ = nix::unistd::dup2_stdout(null.as_fd());
    }
    if is_socket(2) {
        let _ = nix::unistd::dup2_stderr(null.as_fd());
    }
}
