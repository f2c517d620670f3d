//! What to listen on, in one vocabulary: the transports (`tcp`, `udp`,
//! `unix`, `unix-dgram` — the names of the flags, of the config file's
//! `listen` entries, of log lines and of metric labels), `[HOST:]PORT`
//! addresses and their resolution.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::ListenError;

/// A transport, named as everywhere on the host side (flags, config file,
/// `listening` lines, logs, metrics). The WIT contract names two of them
/// differently (`unix-stream`, `unix-datagram`); `wasm::request` maps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    /// TCP connections.
    Tcp,
    /// UDP datagrams.
    Udp,
    /// Unix-domain stream connections.
    Unix,
    /// Unix-domain datagrams.
    UnixDgram,
}

impl Transport {
    /// The transport's name: `tcp`, `udp`, `unix` or `unix-dgram`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Unix => "unix",
            Transport::UnixDgram => "unix-dgram",
        }
    }

    /// Whether it carries datagrams (one request each).
    pub(crate) fn is_datagram(self) -> bool {
        matches!(self, Transport::Udp | Transport::UnixDgram)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[HOST:]PORT` listen address as written on the command line or in the
/// config file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ListenAddr {
    /// The host part, without IPv6 brackets; `None` for a bare port.
    host: Option<String>,
    /// The port; 0 asks the OS for a free one.
    port: u16,
}

impl ListenAddr {
    /// The host a bare port binds to: loopback, so nothing is exposed by
    /// accident.
    pub(crate) const DEFAULT_HOST: &'static str = "127.0.0.1";

    /// The port asked for (0: any free one).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Resolves the address and returns **every** socket address it names,
    /// without duplicates, in the resolver's order: `localhost:8100` is
    /// both `127.0.0.1:8100` and `[::1]:8100` where the system says so, and
    /// a server bound to only one of them would refuse clients of the other.
    pub(crate) async fn resolve(&self) -> Result<Vec<SocketAddr>, ListenError> {
        let host = self.host.as_deref().unwrap_or(Self::DEFAULT_HOST);
        let resolved = tokio::net::lookup_host((host, self.port))
            .await
            .map_err(|cause| ListenError::Resolve {
                addr: self.to_string(),
                cause,
            })?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in resolved {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(ListenError::Resolve {
                addr: self.to_string(),
                cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"),
            });
        }
        Ok(addrs)
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid =
            || format!("expected [HOST:]PORT, e.g. 8100, 0.0.0.0:8100 or [::1]:8100, got {text:?}");
        let parse_port = |port: &str| port.parse::<u16>().map_err(|_| invalid());
        if !text.contains(':') {
            return Ok(Self {
                host: None,
                port: parse_port(text)?,
            });
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
        let host = match host.strip_prefix('[') {
            Some(bracketed) => bracketed.strip_suffix(']').ok_or_else(invalid)?,
            // An unbracketed IPv6 address ("::1:8100") is ambiguous.
            None if host.contains(':') => return Err(invalid()),
            None => host,
        };
        if host.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            host: Some(host.to_owned()),
            port: parse_port(port)?,
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            None => write!(f, "{}:{}", Self::DEFAULT_HOST, self.port),
            Some(host) if host.contains(':') => write!(f, "[{host}]:{}", self.port),
            Some(host) => write!(f, "{host}:{}", self.port),
        }
    }
}

/// One thing to listen on: `--tcp 8100`, or `"tcp:8100"` in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ListenSpec {
    /// `--tcp [HOST:]PORT`, `tcp:[HOST:]PORT`
    Tcp(ListenAddr),
    /// `--udp [HOST:]PORT`, `udp:[HOST:]PORT`
    Udp(ListenAddr),
    /// `--unix PATH`, `unix:PATH`
    Unix(PathBuf),
    /// `--unix-dgram PATH`, `unix-dgram:PATH`
    UnixDgram(PathBuf),
    /// `--listen-fd N`, or a socket passed by systemd socket activation; its
    /// transport is read from the socket when it is adopted.
    Fd(i32),
}

impl ListenSpec {
    /// The transport, where the spec names it (an inherited descriptor's
    /// is known only once adopted).
    pub(crate) fn transport(&self) -> Option<Transport> {
        match self {
            ListenSpec::Tcp(_) => Some(Transport::Tcp),
            ListenSpec::Udp(_) => Some(Transport::Udp),
            ListenSpec::Unix(_) => Some(Transport::Unix),
            ListenSpec::UnixDgram(_) => Some(Transport::UnixDgram),
            ListenSpec::Fd(_) => None,
        }
    }

    /// The `[HOST:]PORT` of a TCP or UDP spec.
    pub(crate) fn inet_addr(&self) -> Option<&ListenAddr> {
        match self {
            ListenSpec::Tcp(addr) | ListenSpec::Udp(addr) => Some(addr),
            _ => None,
        }
    }
}

/// `tcp:127.0.0.1:8100`, `unix:/run/echo.sock`, `fd:3`: the spec as the
/// config file writes it, with a bare port's host filled in.
impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenSpec::Tcp(addr) => write!(f, "tcp:{addr}"),
            ListenSpec::Udp(addr) => write!(f, "udp:{addr}"),
            ListenSpec::Unix(path) => write!(f, "unix:{}", path.display()),
            ListenSpec::UnixDgram(path) => write!(f, "unix-dgram:{}", path.display()),
            ListenSpec::Fd(fd) => write!(f, "fd:{fd}"),
        }
    }
}

impl FromStr for ListenSpec {
    type Err = String;

    /// `tcp:[HOST:]PORT`, `udp:[HOST:]PORT`, `unix:PATH`, `unix-dgram:PATH`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = "expected tcp:[HOST:]PORT, udp:[HOST:]PORT, unix:PATH or unix-dgram:PATH";
        let (transport, addr) = text.split_once(':').ok_or_else(|| {
            format!("listen address {text:?} lacks a transport: {expected}, e.g. tcp:8100")
        })?;
        match transport {
            "tcp" => addr.parse::<ListenAddr>().map(ListenSpec::Tcp),
            "udp" => addr.parse::<ListenAddr>().map(ListenSpec::Udp),
            "unix" if !addr.is_empty() => Ok(ListenSpec::Unix(addr.into())),
            "unix-dgram" if !addr.is_empty() => Ok(ListenSpec::UnixDgram(addr.into())),
            _ => Err(format!("listen address {text:?}: {expected}")),
        }
    }
}

/// `addr` as `SocketAddr`'s `Display` writes it (`127.0.0.1:8100`,
/// `[::1]:8100`), an IPv4 address without `core::fmt`'s machinery: every
/// request formats its peer's address (a datagram's, once per datagram).
pub(crate) fn socket_addr_text(addr: &SocketAddr) -> String {
    let SocketAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    let mut text = String::with_capacity("255.255.255.255:65535".len());
    let mut digits = itoa::Buffer::new();
    for (index, octet) in v4.ip().octets().into_iter().enumerate() {
        if index > 0 {
            text.push('.');
        }
        text.push_str(digits.format(octet));
    }
    text.push(':');
    text.push_str(digits.format(v4.port()));
    text
}

#[cfg(test)]
mod tests {
    use super::{ListenAddr, ListenSpec, socket_addr_text};

    fn parse(text: &str) -> Result<String, String> {
        text.parse::<ListenAddr>().map(|addr| addr.to_string())
    }

    #[test]
    fn bare_port_binds_loopback() {
        assert_eq!(parse("8100").as_deref(), Ok("127.0.0.1:8100"));
        assert_eq!(parse("0").as_deref(), Ok("127.0.0.1:0"));
    }

    #[test]
    fn host_and_port() {
        assert_eq!(parse("0.0.0.0:8100").as_deref(), Ok("0.0.0.0:8100"));
        assert_eq!(parse("localhost:80").as_deref(), Ok("localhost:80"));
        assert_eq!(parse("[::1]:8100").as_deref(), Ok("[::1]:8100"));
        assert_eq!(parse("[::]:0").as_deref(), Ok("[::]:0"));
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "abc",
            "70000",
            "-1",
            ":8100",
            "host:",
            "::1:8100",
            "[::1:8100",
            "1.2.3.4:x",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("expected [HOST:]PORT"), "{bad}: {err}");
        }
    }

    #[test]
    fn specs_round_trip_in_one_vocabulary() {
        for text in [
            "tcp:127.0.0.1:8100",
            "udp:[::1]:53",
            "unix:/tmp/e.sock",
            "unix-dgram:/tmp/d.sock",
        ] {
            let spec: ListenSpec = text.parse().expect(text);
            assert_eq!(spec.to_string(), text);
        }
        assert_eq!(
            "tcp:8100".parse::<ListenSpec>().map(|s| s.to_string()),
            Ok("tcp:127.0.0.1:8100".to_owned())
        );
        for bad in ["8100", "unix-stream:/x", "unix:", "sctp:1"] {
            assert!(bad.parse::<ListenSpec>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn resolve_returns_every_address_once() {
        let addrs = "127.0.0.1:0"
            .parse::<ListenAddr>()
            .expect("valid")
            .resolve()
            .await
            .expect("resolves");
        assert_eq!(addrs.len(), 1);
    }

    #[test]
    fn socket_addresses_read_as_display_writes_them() {
        for text in [
            "0.0.0.0:0",
            "127.0.0.1:8100",
            "10.20.30.40:5",
            "255.255.255.255:65535",
            "[::1]:8100",
            "[2001:db8::7]:443",
            "[::ffff:127.0.0.1]:80",
        ] {
            let addr: std::net::SocketAddr = text.parse().expect(text);
            assert_eq!(socket_addr_text(&addr), addr.to_string());
            assert_eq!(socket_addr_text(&addr), text);
        }
    }
}
