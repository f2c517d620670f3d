//! Reading the PROXY protocol header (v1 text or v2 binary, HAProxy's
//! spec) that a load balancer sends first on each connection, to learn the
//! client's real address. Parsing is `ppp`'s; this reads exactly the
//! header's bytes off the socket, never the client's data after it, so the
//! handler gets the stream from its first byte.

use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The v2 header's first 12 bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The shortest header (`PROXY UNKNOWN\r\n`): read before looking.
const SHORTEST: usize = 15;
/// A v1 header's longest form, by the spec.
const V1_MAX: usize = 107;
/// The most address and TLV bytes of a v2 header read (HAProxy sends a few
/// dozen; the format allows 64 KiB).
const V2_MAX_BODY: usize = 4096;

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("no PROXY protocol header: the connection began {0:?}")]
    Missing(String),
    #[error("bad PROXY protocol header: {0}")]
    Malformed(String),
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the PROXY header `stream` starts with: the client's address, or
/// `None` for a header that names none (v2 `LOCAL`, such as a load
/// balancer's health check, or v1 `UNKNOWN`).
pub(crate) async fn read_proxy_header(
    stream: &mut TcpStream,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut header = vec![0u8; SHORTEST];
    stream.read_exact(&mut header).await?;
    if header.starts_with(V2_SIGNATURE) {
        header.resize(16, 0);
        stream.read_exact(&mut header[SHORTEST..]).await?;
        let body = usize::from(u16::from_be_bytes([header[14], header[15]]));
        if body > V2_MAX_BODY {
            return Err(ProxyHeaderError::Malformed(format!(
                "{body} bytes of addresses and TLVs (at most {V2_MAX_BODY} are read)"
            )));
        }
        header.resize(16 + body, 0);
        stream.read_exact(&mut header[16..]).await?;
        return v2_source(&header);
    }
    if !header.starts_with(b"PROXY ") {
        let start = String::from_utf8_lossy(&header).into_owned();
        return Err(ProxyHeaderError::Missing(start));
    }
    // v1: one line; read a byte at a time past the shortest form, so as
    // not to read past its end.
    while !header.ends_with(b"\r\n") {
        if header.len() >= V1_MAX {
            return Err(ProxyHeaderError::Malformed(format!(
                "a v1 header longer than {V1_MAX} bytes"
            )));
        }
        header.push(stream.read_u8().await?);
    }
    v1_source(&header)
}

fn v2_source(header: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    use ppp::v2::{Addresses, Command, Header};
    let parsed =
        Header::try_from(header).map_err(|err| ProxyHeaderError::Malformed(err.to_string()))?;
    if parsed.command == Command::Local {
        return Ok(None);
    }
    Ok(match parsed.addresses {
        Addresses::IPv4(ip) => Some((ip.source_address, ip.source_port).into()),
        Addresses::IPv6(ip) => Some((ip.source_address, ip.source_port).into()),
        Addresses::Unspecified | Addresses::Unix(_) => None,
    })
}

fn v1_source(header: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    use ppp::v1::{Addresses, Header};
    let parsed =
        Header::try_from(header).map_err(|err| ProxyHeaderError::Malformed(err.to_string()))?;
    Ok(match parsed.addresses {
        Addresses::Tcp4(ip) => Some((ip.source_address, ip.source_port).into()),
        Addresses::Tcp6(ip) => Some((ip.source_address, ip.source_port).into()),
        Addresses::Unknown => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_sources() {
        let v1 = v1_source(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n");
        assert_eq!(v1.ok().flatten(), "192.0.2.7:40000".parse().ok());
        let unknown = v1_source(b"PROXY UNKNOWN\r\n");
        assert!(matches!(unknown, Ok(None)));
        let bad = v1_source(b"PROXY TCP4 nonsense\r\n");
        assert!(bad.is_err());
        let built = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (
                "[2001:db8::7]:5000"
                    .parse::<SocketAddr>()
                    .unwrap_or(([0; 16], 0).into()),
                "[2001:db8::1]:443"
                    .parse::<SocketAddr>()
                    .unwrap_or(([0; 16], 0).into()),
            ),
        )
        .build()
        .unwrap_or_default();
        let v2 = v2_source(&built);
        assert_eq!(v2.ok().flatten(), "[2001:db8::7]:5000".parse().ok());
    }
}
