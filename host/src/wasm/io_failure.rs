//! What the guest is told when an operation on its request fails: one
//! host-side type, mapped to each contract version's `error` variant (in
//! `request_host.rs`) and to WASI's stream errors (in `streams.rs`).

use std::io;

/// Why an operation on a request failed, as every contract version
/// reports it to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IoFailure {
    /// The peer closed or reset the connection, or the write side is shut.
    Closed,
    /// The client sent nothing for the idle timeout.
    TimedOut,
    /// Anything else, described.
    Other(String),
}

impl std::fmt::Display for IoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoFailure::Closed => f.write_str("connection closed"),
            IoFailure::TimedOut => f.write_str("client idle past --idle-timeout"),
            IoFailure::Other(message) => f.write_str(message),
        }
    }
}

/// Maps an I/O error to what the guest can match on.
pub(crate) fn io_failure(err: io::Error) -> IoFailure {
    match err.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::WriteZero => IoFailure::Closed,
        io::ErrorKind::TimedOut => IoFailure::TimedOut,
        _ => IoFailure::Other(err.to_string()),
    }
}
