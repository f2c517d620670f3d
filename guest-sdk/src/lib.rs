//! Write wasmserve socket handlers in Rust.
//!
//! A handler is a function that takes a [`Request`] — one TCP or Unix-stream
//! connection, or one UDP or Unix datagram — and serves it, like the
//! `handle()` method of a Python `socketserver.BaseRequestHandler`. One macro,
//! [`export_handler!`], turns the function into the component's `handle`
//! export. Build with `cargo build --release --target wasm32-wasip2`; no other
//! tool is needed.
//!
//! # A tour
//!
//! Echo, the classic: send back everything until the client closes. `&Request`
//! implements [`std::io::Read`] and [`std::io::Write`], like `&TcpStream`:
//!
//! ```no_run
//! use wasmserve_sdk::Request;
//!
//! fn handle(request: Request) -> std::io::Result<()> {
//!     std::io::copy(&mut &request, &mut &request)?;
//!     Ok(())
//! }
//!
//! wasmserve_sdk::export_handler!(handle);
//! # fn main() {}
//! ```
//!
//! A line protocol, with the standard library's buffered reader:
//!
//! ```no_run
//! use std::io::{BufRead, BufReader, Write};
//! use wasmserve_sdk::Request;
//!
//! fn handle(request: Request) -> std::io::Result<()> {
//!     let mut out = &request;
//!     for line in BufReader::new(&request).lines() {
//!         let line = line?;
//!         println!("{} said {line:?}", request.peer_addr()); // goes to the host log
//!         writeln!(out, "{}", line.to_uppercase())?;
//!     }
//!     Ok(())
//! }
//!
//! wasmserve_sdk::export_handler!(handle);
//! # fn main() {}
//! ```
//!
//! Or with the request's own line reader, as a `StreamRequestHandler` reads
//! `self.rfile`:
//!
//! ```no_run
//! use wasmserve_sdk::{Error, Request};
//!
//! fn handle(request: Request) -> Result<(), Error> {
//!     for line in request.lines() {
//!         request.sendall(format!("{}\n", line?.to_uppercase()).as_bytes())?;
//!     }
//!     Ok(())
//! }
//!
//! wasmserve_sdk::export_handler!(handle);
//! # fn main() {}
//! ```
//!
//! The same handler serves datagrams: on UDP or a Unix datagram socket,
//! [`Request::recv`] yields the datagram's payload and then end of stream,
//! and each [`Request::sendall`] sends one datagram back to the sender. A
//! handler written for datagrams says so with [`Request::payload`] and
//! [`Request::reply`]:
//!
//! ```no_run
//! use wasmserve_sdk::{Error, Request};
//!
//! fn handle(request: Request) -> Result<(), Error> {
//!     let question = request.payload()?;
//!     let answer = if question == b"ping" { &b"pong"[..] } else { &b"?"[..] };
//!     request.reply(answer)
//! }
//!
//! wasmserve_sdk::export_handler!(handle);
//! # fn main() {}
//! ```
//!
//! # Logging
//!
//! Whatever the guest prints to stdout (`println!`) or stderr (`eprintln!`)
//! becomes a line in the host's log, at `info` and `warn` level, tagged with
//! the connection's id, peer and handler.
//!
//! # Settings
//!
//! [`setting`] reads what the operator passed with `--set KEY=VALUE` (or a
//! service's `[service.settings]`), so one build serves many configurations.

#![deny(missing_docs)]

use std::fmt;
use std::io;

pub mod aio;
pub mod channels;
mod hand_off;
mod keyspace;
pub mod kv;
mod pending;
mod readiness;
mod request;
mod tls;

pub use hand_off::HandOffError;
pub use request::{Lines, Request};
pub use tls::TlsInfo;
/// The WASI 0.2 bindings the request's streams and pollables are typed
/// with (`wasip2::io::streams::InputStream`, `wasip2::io::poll::poll`, ...).
pub use wasip2;
/// The async executor and standard library under [`aio`].
pub use wstd;

// The generated code below refers to this crate by name, as handler crates do.
extern crate self as wasmserve_sdk;

#[doc(hidden)]
pub mod bindings {
    //! Bindings generated from `wit/handler.wit`; use the crate's own types.
    wit_bindgen::generate!({
        path: "../wit",
        world: "wasmserve:handler/handler",
        // WASI's types are the `wasip2` crate's, the ones wstd and every
        // other WASI 0.2 library use, so the request's pollables and
        // streams go to their `poll`, timers and async streams.
        with: {
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
            "wasi:keyvalue/store@0.2.0-draft2": generate,
            "wasi:keyvalue/atomics@0.2.0-draft2": generate,
            "wasi:keyvalue/batch@0.2.0-draft2": generate,
            "wasmserve:handler/keyspace@0.2.4": generate,
        },
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
        default_bindings_module: "wasmserve_sdk::bindings",
        runtime_path: "wasmserve_sdk::__private::wit_bindgen::rt",
    });
}

use bindings::wasmserve::handler::types as wit;

/// The kind of socket a request arrived on.
///
/// ```
/// use wasmserve_sdk::Transport;
/// assert_eq!(Transport::UnixDatagram.to_string(), "unix-datagram");
/// assert!(Transport::Udp.is_datagram());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A TCP connection.
    Tcp,
    /// One UDP datagram.
    Udp,
    /// A Unix-domain stream connection.
    UnixStream,
    /// One Unix-domain datagram.
    UnixDatagram,
}

impl Transport {
    /// Whether each request is a single datagram (UDP, Unix datagram).
    ///
    /// ```
    /// assert!(!wasmserve_sdk::Transport::Tcp.is_datagram());
    /// ```
    pub fn is_datagram(self) -> bool {
        matches!(self, Transport::Udp | Transport::UnixDatagram)
    }
}

impl From<wit::Transport> for Transport {
    fn from(transport: wit::Transport) -> Self {
        match transport {
            wit::Transport::Tcp => Transport::Tcp,
            wit::Transport::Udp => Transport::Udp,
            wit::Transport::UnixStream => Transport::UnixStream,
            wit::Transport::UnixDatagram => Transport::UnixDatagram,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::UnixStream => "unix-stream",
            Transport::UnixDatagram => "unix-datagram",
        })
    }
}

/// Why an operation on a [`Request`] failed.
///
/// It converts into [`io::Error`] (so `?` works in handlers returning
/// `io::Result`), with [`io::ErrorKind::BrokenPipe`] for `Closed` and
/// [`io::ErrorKind::TimedOut`] for `TimedOut`.
///
/// ```no_run
/// use wasmserve_sdk::Error;
/// # fn handle(request: wasmserve_sdk::Request) -> Result<(), Error> {
/// match request.sendall(b"hello\n") {
///     Ok(()) | Err(Error::Closed) => Ok(()), // a client that left is no failure
///     Err(other) => Err(other),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The peer closed or reset the connection; nothing more can be sent.
    Closed,
    /// The host's idle timeout passed before the peer sent anything.
    TimedOut,
    /// Any other failure, with the host's description.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => f.write_str("connection closed"),
            Error::TimedOut => f.write_str("timed out"),
            Error::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(err: wit::Error) -> Self {
        match err {
            wit::Error::Closed => Error::Closed,
            wit::Error::TimedOut => Error::TimedOut,
            wit::Error::Other(message) => Error::Other(message),
        }
    }
}

/// A key-value failure ends a handler like any other (`?`).
impl From<kv::Error> for Error {
    fn from(err: kv::Error) -> Self {
        Error::Other(format!("key-value: {err}"))
    }
}

/// A channel failure ends a handler like any other (`?`).
impl From<channels::Error> for Error {
    fn from(err: channels::Error) -> Self {
        Error::Other(format!("channels: {err}"))
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Closed => io::Error::new(io::ErrorKind::BrokenPipe, err),
            Error::TimedOut => io::Error::new(io::ErrorKind::TimedOut, err),
            Error::Other(message) => io::Error::other(message),
        }
    }
}

/// The operator's setting `name` (`wasmserve --set name=value`), or `None`
/// when it is not set: a handler is configured without a rebuild.
///
/// ```no_run
/// fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
///     let greeting = wasmserve_sdk::setting("greeting")
///         .unwrap_or_else(|| "Thank you for connecting".to_owned());
///     request.sendall(greeting.as_bytes())
/// }
/// # fn main() {}
/// ```
pub fn setting(name: &str) -> Option<String> {
    bindings::wasmserve::handler::config::get(name)
}

/// The operator's setting `name` read as a duration: seconds (`2.5`, `2s`)
/// or milliseconds (`500ms`); `None` when it is not set or not a duration.
///
/// ```no_run
/// use std::time::Duration;
/// let timeout = wasmserve_sdk::duration_setting("timeout").unwrap_or(Duration::from_secs(10));
/// ```
pub fn duration_setting(name: &str) -> Option<std::time::Duration> {
    parse_duration(&setting(name)?)
}

/// `2.5` or `2s` (seconds), `500ms` (milliseconds).
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    if let Some(millis) = text.strip_suffix("ms") {
        return millis
            .trim()
            .parse()
            .ok()
            .map(std::time::Duration::from_millis);
    }
    let seconds: f64 = text.strip_suffix('s').unwrap_or(text).trim().parse().ok()?;
    std::time::Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_in_seconds_or_milliseconds() {
        assert_eq!(parse_duration("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_duration(" 2s "), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("soon"), None);
    }
}

/// What a handler function may return: `()`, or a `Result` whose error
/// is displayable (an [`io::Error`], an [`Error`], a `String`, ...). An
/// error is reported to the host, which logs it with the connection.
///
/// ```
/// use wasmserve_sdk::HandlerResult;
/// assert_eq!(().into_handler_result(), Ok(()));
/// let failed: Result<(), &str> = Err("bad request");
/// assert_eq!(failed.into_handler_result(), Err("bad request".to_string()));
/// ```
pub trait HandlerResult {
    /// The outcome as the host sees it: `Err` carries the message to log.
    fn into_handler_result(self) -> Result<(), String>;
}

impl HandlerResult for () {
    fn into_handler_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> HandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), String> {
        self.map_err(|err| err.to_string())
    }
}

/// Exports a function as the component's `handle`: the one line that makes
/// a crate a wasmserve handler.
///
/// The function takes a [`Request`] and returns `()` or a `Result` (see
/// [`HandlerResult`]). Use it once per crate, in a `cdylib` crate built for
/// `wasm32-wasip2`.
///
/// ```no_run
/// fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
///     request.sendall(b"Thank you for connecting")
/// }
///
/// wasmserve_sdk::export_handler!(handle);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_handler {
    ($handle:path) => {
        $crate::__export_with!($handle, $crate::__private::run);
    };
}

/// The one `handle` export behind [`export_handler!`] and
/// [`export_async_handler!`]: `$run` calls the user's function.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_with {
    ($handle:path, $run:path) => {
        const _: () = {
            struct WasmserveHandler;

            impl $crate::bindings::Guest for WasmserveHandler {
                fn handle(
                    request: $crate::bindings::wasmserve::handler::types::Request,
                ) -> ::core::result::Result<(), $crate::__private::String> {
                    $run($handle, request)
                }
            }

            $crate::bindings::__export_handler_world!(WasmserveHandler with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    //! Support for [`export_handler!`](crate::export_handler); not public API.
    pub use crate::aio::run_async;
    pub use std::string::String;
    pub use wit_bindgen;

    /// Calls the user's handler with the SDK's request type.
    pub fn run<R: crate::HandlerResult>(
        handle: impl FnOnce(crate::Request) -> R,
        request: crate::wit::Request,
    ) -> Result<(), String> {
        handle(crate::Request::new(request)).into_handler_result()
    }
}
