//! The blocking request API: [`Request`], read and written like a
//! `&TcpStream`, for handlers that wait on one thing at a time.

use std::fmt;
use std::io;

use crate::pending::Pending;
use crate::{Error, Transport, wit};

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
    pub(crate) inner: wit::Request,
    /// Bytes received but not consumed yet: [`Request::read_line`] reads
    /// ahead, and every other way of receiving takes these first.
    pub(crate) pending: Pending,
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
    /// Wraps the host's request handle.
    pub(crate) fn new(inner: wit::Request) -> Self {
        Self {
            inner,
            pending: Pending::default(),
        }
    }

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
        match self.pending.take(max) {
            Some(bytes) => Ok(bytes),
            None => self.recv_from_host(max),
        }
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
            if let Some(line) = self.pending.line() {
                return Ok(line);
            }
            let more = self.recv_from_host(Self::MAX_RECV)?;
            if more.is_empty() {
                return Ok(self.pending.rest());
            }
            self.pending.push(&more);
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

    /// Copies everything the client sends back to it until it stops (on a
    /// datagram transport: its payload, as one datagram). Returns how many
    /// bytes were copied. As the async [`crate::aio::Request::echo`].
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// request.echo()?;
    /// # Ok(()) }
    /// ```
    pub fn echo(&self) -> Result<u64, Error> {
        let mut copied = 0;
        loop {
            let data = self.recv(Self::MAX_RECV)?;
            if data.is_empty() {
                return Ok(copied);
            }
            self.sendall(&data)?;
            copied += data.len() as u64;
        }
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
        self.inner.transport().into()
    }

    /// What TLS negotiated, when the host terminated TLS for this
    /// connection (`--tls-cert`); `None` on a plaintext one. The transport
    /// stays [`Transport::Tcp`].
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) {
    /// let who = request.tls().and_then(|tls| tls.client_subject);
    /// # }
    /// ```
    pub fn tls(&self) -> Option<crate::TlsInfo> {
        self.inner.tls().map(Into::into)
    }

    /// Hands the connection to `upstream` (an `IP:PORT` the service's
    /// `--allow-connect` lists): the host connects now, and once `handle`
    /// returns `Ok`, relays the bytes both ways in native code. `first`
    /// (what the handler read to choose, if it should reach the upstream)
    /// goes ahead of the client's bytes, and so does anything
    /// [`Request::read_line`] read past its line. On an error the request
    /// is still the handler's.
    ///
    /// ```no_run
    /// # fn handle(request: wasmserve_sdk::Request) -> Result<(), wasmserve_sdk::Error> {
    /// // Route by the first line: the upstream sees it too.
    /// let line = request.read_line()?;
    /// let upstream = if line.starts_with("GET") { "127.0.0.1:8080" } else { "127.0.0.1:6379" };
    /// request.hand_off(upstream, line.as_bytes())?;
    /// Ok(())
    /// # }
    /// ```
    pub fn hand_off(&self, upstream: &str, first: &[u8]) -> Result<(), crate::HandOffError> {
        crate::hand_off::hand_off(&self.inner, &self.pending, upstream, first)
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
