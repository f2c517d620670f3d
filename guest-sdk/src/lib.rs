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

use std::cell::RefCell;
use std::fmt;
use std::io;

// The generated code below refers to this crate by name, as handler crates do.
extern crate self as wasmserve_sdk;

#[doc(hidden)]
pub mod bindings {
    //! Bindings generated from `wit/handler.wit`; use the crate's own types.
    wit_bindgen::generate!({
        path: "../wit",
        world: "wasmserve:handler/handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
        default_bindings_module: "wasmserve_sdk::bindings",
        runtime_path: "wasmserve_sdk::__private::wit_bindgen::rt",
    });
}

use bindings::wasmserve::handler::types as wit;

/// One request: a connection on a stream transport, or a datagram on a
/// datagram transport. Dropping it closes the connection.
///
/// `&Request` implements [`io::Read`] and [`io::Write`], so
/// [`io::BufReader`], `read_line`, `lines()` and [`io::copy`] work as they do
/// with a `&TcpStream`:
///
/// ```no_run
/// use std::io::{BufRead, BufReader};
/// # fn handle(request: wasmserve_sdk::Request) -> std::io::Result<()> {
/// let mut first_line = String::new();
/// BufReader::new(&request).read_line(&mut first_line)?;
/// # Ok(()) }
/// ```
pub struct Request {
    /// The host's resource handle.
    inner: wit::Request,
    /// Bytes received but not consumed yet: [`Request::read_line`] reads
    /// ahead, and every other way of receiving takes these first.
    pending: RefCell<Vec<u8>>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("transport", &self.transport())
            .field("peer_addr", &self.peer_addr())
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

impl Request {
    /// The most bytes one [`Request::recv`] returns, whatever is asked: the
    /// host caps a read at 64 KiB, which holds any UDP datagram.
    pub const MAX_RECV: usize = 64 * 1024;

    /// Receives up to `max` bytes, waiting until at least one arrives, like
    /// Python's `socket.recv`. An empty vector means end of stream: the peer
    /// closed its side, or a datagram's payload was read already.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let data = request.recv(1024)?;
    /// if data.is_empty() {
    ///     return Ok(()); // the client is done
    /// }
    /// # Ok(()) }
    /// ```
    pub fn recv(&self, max: usize) -> Result<Vec<u8>, Error> {
        let mut pending = self.pending.borrow_mut();
        if !pending.is_empty() {
            let n = max.max(1).min(pending.len());
            return Ok(pending.drain(..n).collect());
        }
        drop(pending);
        self.recv_from_host(max)
    }

    /// Asks the host for up to `max` bytes, bypassing what is pending.
    fn recv_from_host(&self, max: usize) -> Result<Vec<u8>, Error> {
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        self.inner.read(max).map_err(Error::from)
    }

    /// Receives one line, up to and including its `\n`, like Python's
    /// `self.rfile.readline()` in a `StreamRequestHandler`. At end of stream
    /// it returns what is left (a last line without `\n`), then `""`.
    /// Bytes that are not UTF-8 come out as U+FFFD.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let command = request.read_line()?;
    /// if command.trim_end() == "QUIT" {
    ///     request.sendall(b"bye\n")?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn read_line(&self) -> Result<String, Error> {
        loop {
            let newline = self.pending.borrow().iter().position(|byte| *byte == b'\n');
            let end = match newline {
                Some(newline) => newline + 1,
                None => {
                    let more = self.recv_from_host(Self::MAX_RECV)?;
                    if !more.is_empty() {
                        self.pending.borrow_mut().extend_from_slice(&more);
                        continue;
                    }
                    self.pending.borrow().len()
                }
            };
            let line: Vec<u8> = self.pending.borrow_mut().drain(..end).collect();
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }

    /// The lines the client sends, without their `\n` (or `\r\n`), until
    /// it closes: `for line in request.lines()`.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// for line in request.lines() {
    ///     let line = line?;
    ///     request.sendall(format!("{}\n", line.len()).as_bytes())?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn lines(&self) -> Lines<'_> {
        Lines { request: self }
    }

    /// Receives exactly `n` bytes; fails with [`Error::Closed`] if the
    /// client closes first.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let header = request.read_exact(4)?;
    /// let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    /// let body = request.read_exact(len as usize)?;
    /// # Ok(()) }
    /// ```
    pub fn read_exact(&self, n: usize) -> Result<Vec<u8>, Error> {
        let mut data = Vec::with_capacity(n.min(Self::MAX_RECV));
        while data.len() < n {
            let more = self.recv(n - data.len())?;
            if more.is_empty() {
                return Err(Error::Closed);
            }
            data.extend_from_slice(&more);
        }
        Ok(data)
    }

    /// Everything the client sends until it stops: for a datagram, its
    /// payload (socketserver's `self.request[0]`); for a connection, every
    /// byte until the client shuts down its side.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// let question = request.payload()?;
    /// request.reply(&question)?;
    /// # Ok(()) }
    /// ```
    pub fn payload(&self) -> Result<Vec<u8>, Error> {
        let mut data = Vec::new();
        loop {
            let more = self.recv(Self::MAX_RECV)?;
            if more.is_empty() {
                return Ok(data);
            }
            data.extend_from_slice(&more);
        }
    }

    /// Answers the client: on a datagram transport, sends `bytes` as one
    /// datagram back to the sender (socketserver's
    /// `socket.sendto(data, self.client_address)`); on a connection, the
    /// same as [`Request::sendall`].
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.reply(b"pong")?;
    /// # Ok(()) }
    /// ```
    pub fn reply(&self, bytes: &[u8]) -> Result<(), Error> {
        self.sendall(bytes)
    }

    /// A buffered writer to the client: many small writes leave as few
    /// large ones. It sends what it holds when dropped (at the latest when
    /// the handler returns) or on `flush()`. On a datagram transport every
    /// flush is one datagram.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// # fn handle(request: wasmserve_sdk::Request) -> std::io::Result<()> {
    /// let mut out = request.writer();
    /// for n in 1..=100 {
    ///     writeln!(out, "{n}")?;
    /// }
    /// out.flush()?; // or let it drop
    /// # Ok(()) }
    /// ```
    pub fn writer(&self) -> io::BufWriter<&Request> {
        io::BufWriter::new(self)
    }

    /// Sends every byte of `bytes`, like Python's `socket.sendall`. On a
    /// datagram transport, each call sends one datagram back to the sender.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.sendall(b"Thank you for connecting")?;
    /// # Ok(()) }
    /// ```
    pub fn sendall(&self, bytes: &[u8]) -> Result<(), Error> {
        self.inner.write(bytes).map_err(Error::from)
    }

    /// Shuts down the sending half: the peer reads end of stream, while this
    /// handler can still receive. Does nothing on datagram transports.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.sendall(b"bye\n")?;
    /// request.shutdown_write()?;
    /// # Ok(()) }
    /// ```
    pub fn shutdown_write(&self) -> Result<(), Error> {
        self.inner.shutdown_write().map_err(Error::from)
    }

    /// The client's address: `"127.0.0.1:50000"`, `"[::1]:50000"`, a Unix
    /// socket path, or `""` for an unbound Unix socket.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) {
    /// println!("connection from {}", request.peer_addr());
    /// # }
    /// ```
    pub fn peer_addr(&self) -> String {
        self.inner.peer_addr()
    }

    /// The address the request arrived on, in the same format as
    /// [`Request::peer_addr`].
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) {
    /// let served_on = request.local_addr();
    /// # }
    /// ```
    pub fn local_addr(&self) -> String {
        self.inner.local_addr()
    }

    /// The kind of socket the request arrived on.
    ///
    /// ```no_run
    /// use wasmserve_sdk::Transport;
    /// # fn handle(request: wasmserve_sdk::Request) {
    /// if request.transport().is_datagram() {
    ///     // one request per datagram
    /// }
    /// # }
    /// ```
    pub fn transport(&self) -> Transport {
        match self.inner.transport() {
            wit::Transport::Tcp => Transport::Tcp,
            wit::Transport::Udp => Transport::Udp,
            wit::Transport::UnixStream => Transport::UnixStream,
            wit::Transport::UnixDatagram => Transport::UnixDatagram,
        }
    }
}

impl io::Read for &Request {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let data = self.recv(buf.len())?;
        // The host never returns more than asked; stay safe if it did.
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }
}

impl io::Read for Request {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl io::Write for &Request {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sendall(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Ok(self.sendall(buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Write for Request {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The lines of a request, from [`Request::lines`].
///
/// ```no_run
/// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
/// let mut lines: wasmserve_sdk::Lines<'_> = request.lines();
/// let first = lines.next().transpose()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lines<'a> {
    /// The request the lines come from.
    request: &'a Request,
}

impl Iterator for Lines<'_> {
    type Item = Result<String, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.request.read_line() {
            Ok(line) if line.is_empty() => None,
            Ok(mut line) => {
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                Some(Ok(line))
            }
            Err(err) => Some(Err(err)),
        }
    }
}

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
        const _: () = {
            struct WasmserveHandler;

            impl $crate::bindings::Guest for WasmserveHandler {
                fn handle(
                    request: $crate::bindings::wasmserve::handler::types::Request,
                ) -> ::core::result::Result<(), $crate::__private::String> {
                    $crate::__private::run($handle, request)
                }
            }

            $crate::bindings::__export_handler_world!(WasmserveHandler with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    //! Support for [`export_handler!`](crate::export_handler); not public API.
    pub use std::string::String;
    pub use wit_bindgen;

    /// Calls the user's handler with the SDK's request type.
    pub fn run<R: crate::HandlerResult>(
        handle: impl FnOnce(crate::Request) -> R,
        request: crate::wit::Request,
    ) -> Result<(), String> {
        handle(crate::Request {
            inner: request,
            pending: Default::default(),
        })
        .into_handler_result()
    }
}
